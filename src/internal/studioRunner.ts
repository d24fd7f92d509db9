/**
 * The runner's end of the studio link: one supervisor loop that connects, registers the
 * agent's session with a snapshot, streams its events, answers deliveries, pings, and on
 * any loss (closed socket, studio silent past the heartbeat bound) reconnects under the
 * reconnect `Schedule` of `Resilience`, forever. Its state is a `SubscriptionRef`.
 *
 * @internal
 */
import type { Prompt } from "@effect/ai"
import { FileSystem, Socket } from "@effect/platform"
import { randomUUID } from "node:crypto"
import { dirname } from "node:path"
import {
  Clock,
  Data,
  Deferred,
  Duration,
  Effect,
  Either,
  FiberHandle,
  FiberSet,
  Option,
  PubSub,
  Queue,
  Schedule,
  Schema,
  type Scope,
  Stream,
  SubscriptionRef
} from "effect"
import type * as Agent from "../agent/Agent.js"
import * as AgentEvent from "../agent/AgentEvent.js"
import * as Resilience from "../Resilience.js"
import * as Protocol from "./studioProtocol.js"
import * as Transcript from "./studioTranscript.js"

/** @internal */
export type LinkState = Data.TaggedEnum<{
  Connecting: { readonly attempt: number }
  Connected: { readonly studioId: string; readonly since: number }
  Reconnecting: { readonly attempt: number; readonly lastError: string }
  /** The reconnect schedule ended (only with a bounded policy). */
  Failed: { readonly lastError: string }
}>

/** @internal */
export const LinkState = Data.taggedEnum<LinkState>()

/** @internal What `attach` gives back: the link's state, as it changes. */
export interface Attached {
  readonly state: SubscriptionRef.SubscriptionRef<LinkState>
}

/** @internal */
export class LinkLost extends Data.TaggedError("LinkLost")<{
  readonly reason: "Open" | "Closed" | "HeartbeatMissed" | "Protocol"
  readonly message: string
}> {}

/** @internal */
export interface AttachOptions {
  readonly url: string
  /** Default 5,000 ms. */
  readonly heartbeatMs?: number | undefined
  /** Silent intervals before a side calls the other dead (default 2). */
  readonly misses?: number | undefined
  readonly reconnect?: Resilience.Policy["reconnect"] | undefined
  /** Where accepted message ids are kept, so a restarted runner still refuses to run one twice. */
  readonly idsFile?: string | undefined
}

/** The chat as the history says it (what a runner that starts with a saved session shows). */
export const fromHistory = (messages: ReadonlyArray<Prompt.Message>): Array<Transcript.Item> => {
  const items: Array<Transcript.Item> = []
  let turn = 0
  const tools = new Map<string, number>()
  for (const message of messages) {
    if (message.role === "user") {
      turn += 1
      const text = message.content.map((p) => (p.type === "text" ? p.text : "")).join("")
      items.push({ kind: "user", turn, text })
    } else if (message.role === "assistant") {
      for (const part of message.content) {
        if (part.type === "text" && part.text.length > 0)
          items.push({ kind: "assistant", turn, text: part.text })
        if (part.type === "tool-call") {
          tools.set(part.id, items.length)
          items.push({
            kind: "tool",
            turn,
            id: part.id,
            name: part.name,
            arguments: JSON.stringify(part.params ?? {}),
            outcome: "running",
            text: ""
          })
        }
      }
    } else if (message.role === "tool") {
      for (const part of message.content) {
        const at = tools.get(part.id)
        const item = at === undefined ? undefined : items[at]
        if (at === undefined || item === undefined || item.kind !== "tool") continue
        const text = typeof part.result === "string" ? part.result : JSON.stringify(part.result)
        items[at] = {
          ...item,
          text,
          outcome: !part.isFailure ? "ok" : text.startsWith("OUTCOME UNKNOWN") ? "unknown" : "error"
        }
      }
    }
  }
  return items
}

const IdList = Schema.parseJson(Schema.Array(Schema.String))
const MAX_IDS = 1_000

/** @internal */
export const attach = (
  agent: Agent.Agent,
  options: AttachOptions
): Effect.Effect<Attached, never, Scope.Scope | Socket.WebSocketConstructor | FileSystem.FileSystem> =>
  Effect.gen(function* () {
    const heartbeatMs = options.heartbeatMs ?? 5_000
    const misses = options.misses ?? 2
    const reconnect = options.reconnect ?? { ...Resilience.defaultPolicy.reconnect, maxElapsed: null }
    const runnerId = randomUUID()
    const fs = yield* FileSystem.FileSystem
    const state = yield* SubscriptionRef.make<LinkState>(LinkState.Connecting({ attempt: 0 }))
    const turns = yield* FiberSet.make()

    // --- the session's transcript and the events after it, gap-free ------------------------
    const lock = yield* Effect.makeSemaphore(1)
    const hub = yield* Effect.acquireRelease(PubSub.unbounded<typeof Protocol.Event.Type>(), PubSub.shutdown)
    const events = yield* agent.subscribe
    const history = yield* agent.history
    const servers = yield* agent.status
    const startSeq = yield* agent.lastSeq
    let transcript: Transcript.Transcript = {
      seq: startSeq,
      busy: false,
      items: fromHistory(history),
      servers: servers
        .filter((s) => s.tenant === undefined)
        .map((s) => ({ name: s.server, state: s.state, detail: "", reconnects: s.reconnects }))
    }
    /** Turns this link started, in order: each `TurnStarted` takes the first (turns are serialized). */
    const started: Array<{ readonly id: string; readonly text: string }> = []
    const encodeEvent = Schema.encodeSync(AgentEvent.AgentEvent)
    yield* Stream.runForEach(events, (event) =>
      lock.withPermits(1)(
        Effect.suspend(() => {
          if (event.seq <= transcript.seq) return Effect.void
          const json = encodeEvent(event)
          let messageId: string | undefined
          if (event._tag === "TurnStarted" && started[0]?.text === event.input)
            messageId = started.shift()?.id
          transcript = Transcript.apply(transcript, json, messageId)
          return PubSub.publish(hub, {
            _tag: "Event" as const,
            sessionId: agent.sessionId,
            event: json,
            ...(messageId !== undefined ? { messageId } : {})
          })
        })
      )
    ).pipe(Effect.forkScoped)

    // --- message ids already taken (never run one twice) --------------------------------------
    const seen = new Set<string>()
    if (options.idsFile !== undefined) {
      const loaded = yield* fs.readFileString(options.idsFile).pipe(
        Effect.map((text) => Either.getOrElse(Schema.decodeUnknownEither(IdList)(text), () => [])),
        Effect.orElseSucceed((): ReadonlyArray<string> => [])
      )
      for (const id of loaded) seen.add(id)
    }
    const remember = (id: string) =>
      Effect.suspend(() => {
        seen.add(id)
        if (seen.size > MAX_IDS) seen.delete(seen.values().next().value!)
        const file = options.idsFile
        if (file === undefined) return Effect.void
        // Written before the ack: a runner restarted after taking a message still knows it.
        return fs.makeDirectory(dirname(file), { recursive: true }).pipe(
          Effect.zipRight(fs.writeFileString(`${file}.tmp`, JSON.stringify([...seen]))),
          Effect.zipRight(fs.rename(`${file}.tmp`, file)),
          Effect.catchAll((e) => Effect.logWarning(`studio link: cannot save message ids: ${e.message}`))
        )
      })

    const deliver = (d: typeof Protocol.Deliver.Type): Effect.Effect<typeof Protocol.Ack.Type> =>
      Effect.gen(function* () {
        if (seen.has(d.id)) return { _tag: "Ack", id: d.id, status: "duplicate" } as const
        if (d.sessionId !== agent.sessionId) {
          return {
            _tag: "Ack",
            id: d.id,
            status: "rejected",
            reason: `this runner has no session ${JSON.stringify(d.sessionId)}`
          } as const
        }
        yield* remember(d.id)
        if (d.kind === "reset") {
          yield* FiberSet.run(turns, Effect.ignore(agent.reset))
        } else {
          started.push({ id: d.id, text: d.text })
          // Turns outlive the link: a studio that goes away does not stop a running turn.
          yield* FiberSet.run(turns, Effect.ignore(agent.send(d.text)))
        }
        return { _tag: "Ack", id: d.id, status: "accepted" } as const
      })

    // --- one connection --------------------------------------------------------------------------
    const connectOnce = (onConnected: (since: number) => void) =>
      Effect.scoped(
        Effect.gen(function* () {
          const socket = yield* Socket.makeWebSocket(options.url, {
            closeCodeIsError: () => true,
            // An open that takes longer than the heartbeat bound is as dead as a silent link.
            openTimeout: Duration.millis(Math.max(500, heartbeatMs * misses))
          })
          const write = yield* socket.writer
          const lost = yield* Deferred.make<never, LinkLost>()
          const incoming = yield* Queue.unbounded<string>()
          const forwarder = yield* FiberHandle.make()
          let lastHeard = yield* Clock.currentTimeMillis
          const send = (m: Protocol.FromRunner) =>
            write(JSON.stringify(m)).pipe(
              Effect.catchAll((e) =>
                Deferred.fail(lost, new LinkLost({ reason: "Closed", message: `send failed: ${e.message}` }))
              ),
              Effect.asVoid
            )
          /** Register with a snapshot and forward every later event (again on `Resync`). */
          const register = Effect.gen(function* () {
            const sub = yield* lock.withPermits(1)(
              Effect.gen(function* () {
                const sub = yield* PubSub.subscribe(hub)
                yield* send({
                  _tag: "Register",
                  runnerId,
                  heartbeatMs,
                  misses,
                  sessions: [{ sessionId: agent.sessionId, model: agent.model.label, transcript }]
                })
                return sub
              })
            )
            yield* FiberHandle.run(forwarder, Queue.take(sub).pipe(Effect.flatMap(send), Effect.forever))
          })
          const onFrame = (text: string) =>
            Effect.gen(function* () {
              lastHeard = yield* Clock.currentTimeMillis
              const decoded = Protocol.decodeToRunner(text)
              if (Either.isLeft(decoded)) {
                return yield* Effect.logWarning(
                  `studio link: ignored a malformed frame (${text.length} characters)`
                )
              }
              const message = decoded.right
              switch (message._tag) {
                case "Welcome": {
                  yield* register
                  onConnected(lastHeard)
                  return yield* SubscriptionRef.set(
                    state,
                    LinkState.Connected({ studioId: message.studioId, since: lastHeard })
                  )
                }
                case "Resync":
                  yield* Effect.logInfo(`studio link: resync (${message.reason})`)
                  return yield* register
                case "Deliver":
                  return yield* Effect.flatMap(deliver(message), send)
                case "Pong":
                  return
              }
            })
          yield* Queue.take(incoming).pipe(Effect.flatMap(onFrame), Effect.forever, Effect.forkScoped)
          // Heartbeat: ping every interval; a studio silent for `misses` intervals is dead.
          yield* Effect.gen(function* () {
            yield* Effect.sleep(Duration.millis(heartbeatMs))
            const now = yield* Clock.currentTimeMillis
            if (now - lastHeard > heartbeatMs * misses) {
              return yield* Deferred.fail(
                lost,
                new LinkLost({
                  reason: "HeartbeatMissed",
                  message: `the studio was silent for ${now - lastHeard} ms (bound ${heartbeatMs * misses} ms)`
                })
              )
            }
            yield* send({ _tag: "Ping" })
          }).pipe(Effect.forever, Effect.forkScoped)
          const decoder = new TextDecoder()
          return yield* socket
            .runRaw((data) => {
              Queue.unsafeOffer(incoming, typeof data === "string" ? data : decoder.decode(data))
            })
            .pipe(
              Effect.mapError((e) =>
                e.reason === "Open" || e.reason === "OpenTimeout"
                  ? new LinkLost({
                      reason: "Open",
                      message: `cannot reach the studio at ${options.url}: ${e.message}`
                    })
                  : new LinkLost({ reason: "Closed", message: `the studio link closed: ${e.message}` })
              ),
              Effect.zipRight(
                Effect.fail(new LinkLost({ reason: "Closed", message: "the studio closed the link" }))
              ),
              Effect.raceFirst(Deferred.await(lost))
            )
        })
      )

    // --- the supervisor: reconnect forever under the schedule ------------------------------------
    const driver = yield* Schedule.driver(Resilience.reconnectSchedule(reconnect))
    yield* Effect.gen(function* () {
      let attempt = 0
      while (true) {
        let connectedAt: number | undefined
        yield* SubscriptionRef.set(state, LinkState.Connecting({ attempt }))
        const error = yield* Effect.flip(
          connectOnce((since) => {
            connectedAt = since
          })
        )
        const now = yield* Clock.currentTimeMillis
        if (connectedAt !== undefined) {
          attempt = 0
          if (now - connectedAt >= reconnect.resetAfter) yield* driver.reset
        }
        attempt += 1
        yield* Effect.logInfo(`studio link: ${error.message}; reconnecting (attempt ${attempt})`)
        yield* SubscriptionRef.set(state, LinkState.Reconnecting({ attempt, lastError: error.message }))
        const next = yield* Effect.option(driver.next(undefined))
        if (Option.isNone(next)) {
          return yield* SubscriptionRef.set(state, LinkState.Failed({ lastError: error.message }))
        }
      }
    }).pipe(Effect.forkScoped)

    return { state }
  })
