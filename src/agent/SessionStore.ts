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
 * Concurrency: one process at a time per session id. A runner {@link SessionStore.acquire}s
 * its session for as long as it runs: on disk that is a lock file (`session-<id>.lock`,
 * naming the pid and host) that a second runner finds at once, so two runners can never
 * overwrite each other's turns. A lock left by a process that died (same host, pid gone)
 * is taken over. Writes of one process are serialized.
 *
 * @since 0.1.0
 */
import { Prompt } from "@effect/ai"
import { FileSystem, KeyValueStore, Path } from "@effect/platform"
import type * as PlatformError from "@effect/platform/Error"
import { Clock, Context, Duration, Effect, Layer, Option, ParseResult, Random, Schema } from "effect"
import type { Scope } from "effect"
import { hostname } from "node:os"
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
  reason: Schema.Literal("Read", "Write", "Corrupt", "InvalidId", "Locked"),
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
  /**
   * Holds the session for this process until the scope closes. Fails at once with reason
   * `Locked`, naming the holder, when another runner holds it.
   */
  readonly acquire: (id: string) => Effect.Effect<void, SessionStoreError, Scope.Scope>
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
  /** Where a key is stored, for error messages (a file path). */
  readonly describeKey?: ((key: string) => string) | undefined
  /** Every key of the store: lets a damaged index be rebuilt from the sessions. */
  readonly keys?: Effect.Effect<ReadonlyArray<string>, PlatformError.PlatformError> | undefined
  /** Holds a session across processes (default: within this process only). */
  readonly lock?: ((id: string) => Effect.Effect<void, SessionStoreError, Scope.Scope>) | undefined
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

    type IndexRecord = Record<string, { updatedAt: number; turns: number }>
    const describeKey = options.describeKey ?? ((key: string) => key)

    /** The index from the sessions themselves (unreadable ones are left out, not removed). */
    const rebuildIndex = (keys: Effect.Effect<ReadonlyArray<string>, PlatformError.PlatformError>) =>
      Effect.gen(function* () {
        const index: IndexRecord = {}
        for (const key of yield* keys.pipe(Effect.mapError(failWith("Read", undefined)))) {
          if (!key.startsWith("session-")) continue
          const id = key.slice("session-".length)
          if (!isValidId(id)) continue
          const text = yield* kv.get(key).pipe(Effect.mapError(failWith("Read", id)))
          if (Option.isNone(text)) continue
          const record = yield* Effect.option(Schema.decode(SessionJson)(text.value))
          if (Option.isSome(record) && record.value.id === id) {
            index[id] = { updatedAt: record.value.updatedAt, turns: record.value.turns }
          }
        }
        return index
      })

    const readIndex: Effect.Effect<IndexRecord, SessionStoreError> = Effect.flatMap(
      kv.get(INDEX).pipe(Effect.mapError(failWith("Read", undefined))),
      (text) =>
        Option.match(text, {
          onNone: () => Effect.succeed({} as IndexRecord),
          // The index only serves list/prune: a damaged one is rebuilt from the sessions.
          onSome: (t) =>
            Schema.decode(Index)(t).pipe(
              Effect.map((index): IndexRecord => ({ ...index })),
              Effect.catchAll(() =>
                options.keys === undefined
                  ? Effect.succeed({} as IndexRecord)
                  : Effect.tap(rebuildIndex(options.keys), () =>
                      Effect.logWarning(
                        `session index ${describeKey(INDEX)} was damaged; rebuilt from the sessions`
                      )
                    )
              )
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
                message: `session ${id} is stored but cannot be read (${describeKey(keyOf(id))}: ${ParseResult.TreeFormatter.formatErrorSync(e).split("\n")[0]}); remove it or use another --session`
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

    const held = new Set<string>()
    const inProcessLock = (id: string) =>
      Effect.acquireRelease(
        Effect.suspend(() => {
          if (held.has(id)) {
            return Effect.fail(
              new SessionStoreError({
                reason: "Locked",
                sessionId: id,
                message: `session ${id} is in use by another runner in this process`
              })
            )
          }
          held.add(id)
          return Effect.void
        }),
        () => Effect.sync(() => held.delete(id))
      )

    return {
      load,
      save,
      acquire: (id) => Effect.zipRight(checkId(id), (options.lock ?? inProcessLock)(id)),
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

/** What a lock file says about its holder. */
const Holder = Schema.parseJson(
  Schema.Struct({ pid: Schema.Number, host: Schema.String, since: Schema.Number })
)

/** Is a process of this host alive? (`kill(pid, 0)` sends nothing; EPERM means it exists.) */
const isAlive = (pid: number): Effect.Effect<boolean> =>
  Effect.try(() => process.kill(pid, 0)).pipe(
    Effect.as(true),
    Effect.catchAll((e) =>
      Effect.succeed(!(e.error instanceof Error && "code" in e.error && e.error.code === "ESRCH"))
    )
  )

/**
 * A lock per session as a file `session-<id>.lock` beside the session, created atomically
 * (written whole to a temporary file, then hard-linked to its name, which fails if it exists).
 * A lock whose holder is gone (same host, no such pid) is taken over: it is renamed aside
 * first and checked, so two runners that both find it stale cannot both take it.
 */
const fileLock =
  (directory: string, fs: FileSystem.FileSystem, path: Path.Path) =>
  (id: string): Effect.Effect<void, SessionStoreError, Scope.Scope> => {
    const file = path.join(directory, `${encodeURIComponent(keyOf(id))}.lock`)
    const host = hostname()
    const failed = (reason: "Read" | "Write") => (e: PlatformError.PlatformError) =>
      new SessionStoreError({ reason, sessionId: id, message: `session lock ${file}: ${e.message}` })
    const locked = (detail: string) =>
      new SessionStoreError({
        reason: "Locked",
        sessionId: id,
        message: `session ${id} is in use by ${detail} (lock ${file}); wait for it to end or use another --session`
      })
    const unique = Effect.map(
      Random.nextIntBetween(0, 2 ** 31),
      (n) => `${file}.${process.pid}-${n.toString(36)}`
    )
    const exists = (e: PlatformError.PlatformError) =>
      e._tag === "SystemError" && e.reason === "AlreadyExists"

    const tryLink = (content: string) =>
      Effect.gen(function* () {
        const temp = `${yield* unique}.tmp`
        yield* fs.writeFileString(temp, content, { mode: 0o600 }).pipe(Effect.mapError(failed("Write")))
        return yield* fs.link(temp, file).pipe(
          Effect.as(true),
          Effect.catchIf(exists, () => Effect.succeed(false)),
          Effect.mapError(failed("Write")),
          Effect.ensuring(Effect.ignore(fs.remove(temp)))
        )
      })

    /** Who holds it, or none when the holder is gone (and the stale lock was removed). */
    const holder = Effect.gen(function* () {
      const text = yield* fs.readFileString(file).pipe(
        Effect.map(Option.some),
        Effect.catchIf(
          (e) => e._tag === "SystemError" && e.reason === "NotFound",
          () => Effect.succeed(Option.none<string>())
        ),
        Effect.mapError(failed("Read"))
      )
      if (Option.isNone(text)) return Option.none<string>()
      const decoded = Schema.decodeOption(Holder)(text.value)
      if (Option.isNone(decoded)) return Option.some("an unknown holder (the lock file cannot be read)")
      const { pid, since } = decoded.value
      const who = `pid ${pid} on ${decoded.value.host} since ${new Date(since).toISOString()}`
      if (decoded.value.host !== host || (yield* isAlive(pid))) return Option.some(who)
      // Stale: move it aside, and make sure what was moved is the stale one.
      const aside = `${yield* unique}.stale`
      const moved = yield* Effect.either(fs.rename(file, aside))
      if (moved._tag === "Left") return Option.none<string>()
      const movedText = yield* Effect.orElseSucceed(fs.readFileString(aside), () => "")
      if (movedText !== text.value) {
        // Another runner took it over in between: put its lock back.
        yield* Effect.ignore(fs.link(aside, file))
        yield* Effect.ignore(fs.remove(aside))
        return Option.some("another runner")
      }
      yield* Effect.ignore(fs.remove(aside))
      yield* Effect.logWarning(`session ${id}: took over the lock of ${who}, which is no longer running`)
      return Option.none<string>()
    })

    const acquire = Effect.gen(function* () {
      const since = yield* Clock.currentTimeMillis
      const content = yield* Schema.encode(Holder)({ pid: process.pid, host, since }).pipe(Effect.orDie)
      // Two rounds: a stale lock is removed in the first.
      for (let round = 0; round < 2; round++) {
        const linked = yield* Effect.either(tryLink(content))
        if (linked._tag === "Left") {
          // A directory nobody can write to (read-only, full): no runner can save there
          // either, so no turn can be overwritten; each failed save is reported as it happens.
          yield* Effect.logWarning(`session ${id} is not locked: ${linked.left.message}`)
          return Option.none<string>()
        }
        if (linked.right) return Option.some(content)
        const who = yield* holder
        if (Option.isSome(who)) return yield* Effect.fail(locked(who.value))
      }
      return yield* Effect.fail(locked("another runner"))
    })

    const release = (content: Option.Option<string>) =>
      Effect.gen(function* () {
        if (Option.isNone(content)) return
        const now = yield* Effect.option(fs.readFileString(file))
        if (Option.isSome(now) && now.value === content.value) yield* Effect.ignore(fs.remove(file))
      })

    return Effect.asVoid(Effect.acquireRelease(acquire, release))
  }

/**
 * Sessions as files under `directory`, written atomically (see `FileKeyValueStore`), with
 * a lock file per session in use, and an index rebuilt from the files when damaged.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFileSystem = (
  directory: string,
  options?: Options
): Layer.Layer<SessionStore, PlatformError.PlatformError, FileSystem.FileSystem | Path.Path> =>
  Layer.effect(
    SessionStore,
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const path = yield* Path.Path
      const keys = Effect.map(fs.readDirectory(directory), (names) =>
        names
          .filter((n) => !n.endsWith(".tmp") && !n.endsWith(".lock") && !n.endsWith(".stale"))
          .map(decodeURIComponent)
      )
      return yield* make({
        location: directory,
        describeKey: (key) => path.join(directory, encodeURIComponent(key)),
        keys,
        lock: fileLock(directory, fs, path),
        ...options
      })
    })
  ).pipe(Layer.provide(FileKeyValueStore.layer(directory)))

/**
 * Sessions in memory, for tests and throw-away runs.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory = (options?: Options): Layer.Layer<SessionStore> =>
  layerKeyValueStore({ location: "memory", ...options }).pipe(Layer.provide(KeyValueStore.layerMemory))
