/**
 * Where agent sessions (the conversation history of each session id) live between runs.
 *
 * `SessionStore` is a port with several implementations: the default sits on any
 * @effect/platform `KeyValueStore` ({@link layerKeyValueStore}): on disk with atomic writes
 * ({@link layerFileSystem}), in memory ({@link layerMemory}), and later Redis or Postgres
 * behind the same tag so several runner processes can serve one user.
 *
 * A session idle for longer than `ttl` is expired: `load` treats it as absent (and removes
 * it), `prune` removes every expired one. History is stored as @effect/ai `Prompt.Message`s,
 * encoded with their own schema.
 *
 * Concurrency: one process at a time per session id. Writes of one process are serialized;
 * two processes writing the same session concurrently would last-writer-win.
 *
 * @since 0.1.0
 */
import { Prompt } from "@effect/ai"
import { type FileSystem, KeyValueStore, type Path } from "@effect/platform"
import type * as PlatformError from "@effect/platform/Error"
import { Clock, Context, Duration, Effect, Layer, Option, ParseResult, Schema } from "effect"
import * as FileKeyValueStore from "./FileKeyValueStore.js"

/**
 * One session.
 *
 * @since 0.1.0
 * @category models
 */
export interface Session {
  readonly id: string
  /** Epoch ms. */
  readonly createdAt: number
  /** Epoch ms of the last save: the TTL counts from here. */
  readonly updatedAt: number
  /** Completed turns. */
  readonly turns: number
  readonly messages: ReadonlyArray<Prompt.Message>
}

/**
 * A line of {@link SessionStore.list}.
 *
 * @since 0.1.0
 * @category models
 */
export interface Summary {
  readonly id: string
  readonly updatedAt: number
  readonly turns: number
}

const SessionRecord = Schema.Struct({
  version: Schema.Literal(1),
  id: Schema.String,
  createdAt: Schema.Number,
  updatedAt: Schema.Number,
  turns: Schema.Number,
  messages: Schema.Array(Prompt.Message)
})

const SessionJson = Schema.parseJson(SessionRecord)

const Index = Schema.parseJson(
  Schema.Record({
    key: Schema.String,
    value: Schema.Struct({ updatedAt: Schema.Number, turns: Schema.Number })
  })
)

/**
 * The store failed, a stored session is not readable, or an id is not valid.
 *
 * @since 0.1.0
 * @category errors
 */
export class SessionStoreError extends Schema.TaggedError<SessionStoreError>()("SessionStoreError", {
  reason: Schema.Literal("Read", "Write", "Corrupt", "InvalidId"),
  sessionId: Schema.optional(Schema.String),
  message: Schema.String
}) {}

/**
 * @since 0.1.0
 * @category models
 */
export interface SessionStore {
  /** The session, or none when it never existed or has expired (an expired one is removed). */
  readonly load: (id: string) => Effect.Effect<Option.Option<Session>, SessionStoreError>
  /** Saves the session; `updatedAt` is set to now. */
  readonly save: (session: Omit<Session, "updatedAt">) => Effect.Effect<Session, SessionStoreError>
  readonly remove: (id: string) => Effect.Effect<void, SessionStoreError>
  /** Sessions that have not expired, most recent first. */
  readonly list: Effect.Effect<ReadonlyArray<Summary>, SessionStoreError>
  /** Removes every expired session; returns how many. */
  readonly prune: Effect.Effect<number, SessionStoreError>
  readonly ttl: Duration.Duration
  /** Where the sessions are, for humans (`~/.tether/sessions`, `memory`). */
  readonly location: string
}

/**
 * @since 0.1.0
 * @category tags
 */
export const SessionStore: Context.Tag<SessionStore, SessionStore> =
  Context.GenericTag<SessionStore>("tether/agent/SessionStore")

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Idle sessions expire after this (default 7 days). */
  readonly ttl?: Duration.DurationInput | undefined
  readonly location?: string | undefined
}

const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/

/**
 * Is this a valid session id (letters, digits, `.`, `_`, `-`; at most 128)?
 *
 * @since 0.1.0
 * @category guards
 */
export const isValidId = (id: string): boolean => ID.test(id)

const keyOf = (id: string) => `session-${id}`
const INDEX = "index"

/**
 * A store over the `KeyValueStore` in context.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options = {}
): Effect.Effect<SessionStore, never, KeyValueStore.KeyValueStore> =>
  Effect.gen(function* () {
    const kv = yield* KeyValueStore.KeyValueStore
    const ttl = Duration.decode(options.ttl ?? "7 days")
    const lock = yield* Effect.makeSemaphore(1)

    const failWith =
      (reason: "Read" | "Write", sessionId: string | undefined) => (e: PlatformError.PlatformError) =>
        new SessionStoreError({
          reason,
          ...(sessionId !== undefined ? { sessionId } : {}),
          message: `session store ${reason === "Read" ? "read" : "write"} failed: ${e.message}`
        })

    const checkId = (id: string) =>
      isValidId(id)
        ? Effect.void
        : Effect.fail(
            new SessionStoreError({
              reason: "InvalidId",
              sessionId: id,
              message: `invalid session id ${JSON.stringify(id)}: use letters, digits, ".", "_" or "-" (at most 128)`
            })
          )

    const readIndex = Effect.flatMap(
      kv.get(INDEX).pipe(Effect.mapError(failWith("Read", undefined))),
      (text) =>
        Option.match(text, {
          onNone: () => Effect.succeed({} as Record<string, { updatedAt: number; turns: number }>),
          // A damaged index is rebuilt from what is saved next; it only serves list/prune.
          onSome: (t) =>
            Schema.decode(Index)(t).pipe(
              Effect.map((index) => ({ ...index })),
              Effect.orElseSucceed(() => ({}) as Record<string, { updatedAt: number; turns: number }>)
            )
        })
    )
    const writeIndex = (index: Record<string, { updatedAt: number; turns: number }>) =>
      Effect.flatMap(Schema.encode(Index)(index).pipe(Effect.orDie), (text) =>
        kv.set(INDEX, text).pipe(Effect.mapError(failWith("Write", undefined)))
      )
    const updateIndex = (f: (index: Record<string, { updatedAt: number; turns: number }>) => void) =>
      Effect.flatMap(readIndex, (index) => {
        f(index)
        return writeIndex(index)
      })

    const isExpired = (updatedAt: number, now: number) => now - updatedAt > Duration.toMillis(ttl)

    const removeUnlocked = (id: string) =>
      kv.remove(keyOf(id)).pipe(
        Effect.mapError(failWith("Write", id)),
        Effect.zipRight(
          updateIndex((index) => {
            delete index[id]
          })
        )
      )

    const load = (id: string) =>
      Effect.gen(function* () {
        yield* checkId(id)
        const text = yield* kv.get(keyOf(id)).pipe(Effect.mapError(failWith("Read", id)))
        if (Option.isNone(text)) return Option.none<Session>()
        const record = yield* Schema.decode(SessionJson)(text.value).pipe(
          Effect.mapError(
            (e) =>
              new SessionStoreError({
                reason: "Corrupt",
                sessionId: id,
                message: `session ${id} is stored but cannot be read (${ParseResult.TreeFormatter.formatErrorSync(e).split("\n")[0]}); remove it or use another --session`
              })
          )
        )
        const now = yield* Clock.currentTimeMillis
        if (isExpired(record.updatedAt, now)) {
          yield* lock.withPermits(1)(removeUnlocked(id))
          return Option.none<Session>()
        }
        return Option.some<Session>({
          id: record.id,
          createdAt: record.createdAt,
          updatedAt: record.updatedAt,
          turns: record.turns,
          messages: record.messages
        })
      })

    const save = (session: Omit<Session, "updatedAt">) =>
      Effect.gen(function* () {
        yield* checkId(session.id)
        const updatedAt = yield* Clock.currentTimeMillis
        const text = yield* Schema.encode(SessionJson)({
          version: 1,
          id: session.id,
          createdAt: session.createdAt,
          updatedAt,
          turns: session.turns,
          messages: session.messages
        }).pipe(
          Effect.mapError(
            (e) =>
              new SessionStoreError({
                reason: "Write",
                sessionId: session.id,
                message: `session ${session.id} cannot be encoded: ${ParseResult.TreeFormatter.formatErrorSync(e)}`
              })
          )
        )
        yield* lock.withPermits(1)(
          kv.set(keyOf(session.id), text).pipe(
            Effect.mapError(failWith("Write", session.id)),
            Effect.zipRight(
              updateIndex((index) => {
                index[session.id] = { updatedAt, turns: session.turns }
              })
            )
          )
        )
        return { ...session, updatedAt }
      })

    const list = Effect.gen(function* () {
      const index = yield* readIndex
      const now = yield* Clock.currentTimeMillis
      return Object.entries(index)
        .filter(([, v]) => !isExpired(v.updatedAt, now))
        .map(([id, v]) => ({ id, updatedAt: v.updatedAt, turns: v.turns }))
        .sort((a, b) => b.updatedAt - a.updatedAt)
    })

    const prune = lock.withPermits(1)(
      Effect.gen(function* () {
        const index = yield* readIndex
        const now = yield* Clock.currentTimeMillis
        const expired = Object.entries(index).filter(([, v]) => isExpired(v.updatedAt, now))
        for (const [id] of expired) {
          yield* kv.remove(keyOf(id)).pipe(Effect.mapError(failWith("Write", id)))
          delete index[id]
        }
        if (expired.length > 0) yield* writeIndex(index)
        return expired.length
      })
    )

    return {
      load,
      save,
      remove: (id) => Effect.zipRight(checkId(id), lock.withPermits(1)(removeUnlocked(id))),
      list,
      prune,
      ttl,
      location: options.location ?? "key-value store"
    }
  })

/**
 * A store over whatever `KeyValueStore` is provided (the seam for Redis, Postgres…).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerKeyValueStore = (
  options?: Options
): Layer.Layer<SessionStore, never, KeyValueStore.KeyValueStore> => Layer.effect(SessionStore, make(options))

/**
 * Sessions as files under `directory`, written atomically (see `FileKeyValueStore`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFileSystem = (
  directory: string,
  options?: Options
): Layer.Layer<SessionStore, PlatformError.PlatformError, FileSystem.FileSystem | Path.Path> =>
  layerKeyValueStore({ location: directory, ...options }).pipe(
    Layer.provide(FileKeyValueStore.layer(directory))
  )

/**
 * Sessions in memory, for tests and throw-away runs.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory = (options?: Options): Layer.Layer<SessionStore> =>
  layerKeyValueStore({ location: "memory", ...options }).pipe(Layer.provide(KeyValueStore.layerMemory))
