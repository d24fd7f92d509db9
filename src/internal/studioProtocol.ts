/**
 * The studio's wire protocol: JSON text frames over two WebSockets, `/runners` (runner ↔
 * studio) and `/page` (browser ↔ studio). Every frame is one tagged object. Requests that
 * change something (`Deliver`, `Send`, `Reset`) carry an id and are answered with that id
 * (`Ack`, `Result`), so a sender that lost the link can send the same id again and the
 * receiver answers it instead of running it twice.
 *
 * Resync: a runner opens every link with `Register` (its sessions with a snapshot each,
 * whose `seq` is the last event it covers), then sends live `Event`s in `seq` order. A
 * studio that sees a gap answers `Resync` and gets a fresh `Register`.
 *
 * @internal
 */
import { Schema } from "effect"
import * as AgentEvent from "../agent/AgentEvent.js"

const Item = Schema.Union(
  Schema.Struct({
    kind: Schema.Literal("user"),
    turn: Schema.Number,
    text: Schema.String,
    messageId: Schema.optionalWith(Schema.String, { exact: true })
  }),
  Schema.Struct({ kind: Schema.Literal("assistant"), turn: Schema.Number, text: Schema.String }),
  Schema.Struct({
    kind: Schema.Literal("tool"),
    turn: Schema.Number,
    id: Schema.String,
    name: Schema.String,
    arguments: Schema.String,
    outcome: Schema.Literal("running", "ok", "error", "unknown"),
    text: Schema.String,
    errorTag: Schema.optionalWith(Schema.String, { exact: true })
  }),
  Schema.Struct({ kind: Schema.Literal("notice"), text: Schema.String })
)

/** @internal */
export const Transcript = Schema.Struct({
  seq: Schema.Number,
  busy: Schema.Boolean,
  items: Schema.Array(Item),
  servers: Schema.Array(
    Schema.Struct({
      name: Schema.String,
      state: Schema.String,
      detail: Schema.String,
      reconnects: Schema.Number
    })
  )
})

/** @internal */
export const SessionSnapshot = Schema.Struct({
  sessionId: Schema.String,
  model: Schema.String,
  transcript: Transcript
})

/** What a person is shown about an agent. @internal */
export const Status = Schema.Literal("online", "busy", "offline", "unknown")

/** @internal */
export type Status = typeof Status.Type

// --- runner → studio --------------------------------------------------------------------

/** @internal */
export const Register = Schema.TaggedStruct("Register", {
  /** New for every runner process: a message sent to one runner is never re-sent to another. */
  runnerId: Schema.String,
  /** The runner pings every `heartbeatMs`; `misses` silent intervals make it offline. */
  heartbeatMs: Schema.Number.pipe(Schema.positive()),
  misses: Schema.Number.pipe(Schema.int(), Schema.positive()),
  sessions: Schema.Array(SessionSnapshot)
})

/** @internal */
export const Event = Schema.TaggedStruct("Event", {
  sessionId: Schema.String,
  event: Schema.encodedSchema(AgentEvent.AgentEvent),
  /** On `TurnStarted`: the studio message that started the turn. */
  messageId: Schema.optionalWith(Schema.String, { exact: true })
})

/** @internal */
export const Ping = Schema.TaggedStruct("Ping", {})

/** @internal */
export const Ack = Schema.TaggedStruct("Ack", {
  id: Schema.String,
  /** `duplicate`: this id was accepted before (and ran, or is running, once). */
  status: Schema.Literal("accepted", "duplicate", "rejected"),
  reason: Schema.optionalWith(Schema.String, { exact: true })
})

/** @internal */
export const FromRunner = Schema.Union(Register, Event, Ping, Ack)

/** @internal */
export type FromRunner = typeof FromRunner.Type

// --- studio → runner --------------------------------------------------------------------

/** @internal */
export const Welcome = Schema.TaggedStruct("Welcome", { studioId: Schema.String })

/** @internal */
export const Pong = Schema.TaggedStruct("Pong", {})

/** @internal */
export const Deliver = Schema.TaggedStruct("Deliver", {
  id: Schema.String,
  sessionId: Schema.String,
  kind: Schema.Literal("message", "reset"),
  text: Schema.String
})

/** @internal */
export const Resync = Schema.TaggedStruct("Resync", { reason: Schema.String })

/** @internal */
export const ToRunner = Schema.Union(Welcome, Pong, Deliver, Resync)

/** @internal */
export type ToRunner = typeof ToRunner.Type

// --- page → studio ----------------------------------------------------------------------

/** @internal */
export const Send = Schema.TaggedStruct("Send", {
  id: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(100)),
  sessionId: Schema.String,
  text: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(100_000))
})

/** @internal */
export const Reset = Schema.TaggedStruct("Reset", {
  id: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(100)),
  sessionId: Schema.String
})

/** @internal */
export const FromPage = Schema.Union(Ping, Send, Reset)

/** @internal */
export type FromPage = typeof FromPage.Type

// --- studio → page ----------------------------------------------------------------------

/** @internal */
export const SessionView = Schema.Struct({
  sessionId: Schema.String,
  model: Schema.String,
  status: Status,
  /** Why the status is what it is (`last heartbeat 0.4 s ago`, `runner disconnected`). */
  detail: Schema.String,
  transcript: Transcript
})

/** @internal */
export type SessionView = typeof SessionView.Type

/** @internal */
export const Hello = Schema.TaggedStruct("Hello", {
  studioId: Schema.String,
  sessions: Schema.Array(SessionView)
})

/** A session's whole view (after a runner registers or resyncs). @internal */
export const SessionChanged = Schema.TaggedStruct("SessionChanged", { session: SessionView })

/** @internal */
export const StatusChanged = Schema.TaggedStruct("StatusChanged", {
  sessionId: Schema.String,
  status: Status,
  detail: Schema.String
})

/**
 * What became of a `Send`/`Reset`: `queued` (the studio holds it until the agent is
 * reachable), `delivered` (the runner took it; it runs once), `refused` (it was never given
 * to a runner), `unconfirmed` (given to a runner that went away before confirming: it may
 * or may not run, and it is not sent again).
 *
 * @internal
 */
export const Result = Schema.TaggedStruct("Result", {
  id: Schema.String,
  sessionId: Schema.String,
  status: Schema.Literal("queued", "delivered", "refused", "unconfirmed"),
  reason: Schema.String
})

/** @internal */
export const ToPage = Schema.Union(Hello, SessionChanged, StatusChanged, Event, Result, Pong)

/** @internal */
export type ToPage = typeof ToPage.Type

/** @internal */
export const decodeFromRunner = Schema.decodeUnknownEither(Schema.parseJson(FromRunner))
/** @internal */
export const decodeToRunner = Schema.decodeUnknownEither(Schema.parseJson(ToRunner))
/** @internal */
export const decodeFromPage = Schema.decodeUnknownEither(Schema.parseJson(FromPage))
