/**
 * The closed union of errors that leave Tether, in three families:
 * recoverable (the runtime reconnects and/or retries), business (surfaced at once,
 * never a reconnect loop) and indeterminate (`OutcomeUnknown`: the caller decides).
 *
 * Every error is a `Schema.TaggedError`, so it is `yield*`-able, caught with
 * `Effect.catchTag`, and serializable (the gateway and the Promise API keep `_tag`
 * and the fields).
 *
 * @since 0.1.0
 */
import { Predicate, Schema } from "effect"

const base = {
  /** The server (connection name) the error concerns, when known. */
  server: Schema.optional(Schema.String),
  message: Schema.String
}

// ---------------------------------------------------------------------------
// Recoverable
// ---------------------------------------------------------------------------

/**
 * The transport could not be opened: refused, unknown host, DNS failure, connect timeout.
 *
 * @since 0.1.0
 * @category errors
 */
export class ConnectFailed extends Schema.TaggedError<ConnectFailed>()("ConnectFailed", {
  ...base,
  code: Schema.optional(Schema.String)
}) {}

/**
 * An open link died: reset, broken pipe, closed socket or stdio, child exited, stream
 * aborted. Requests in flight settle with this error.
 *
 * @since 0.1.0
 * @category errors
 */
export class ConnectionLost extends Schema.TaggedError<ConnectionLost>()("ConnectionLost", {
  ...base,
  reason: Schema.Literal(
    "Closed",
    "Reset",
    "ChildExited",
    "StreamAborted",
    "WebSocketClosed",
    "NotConnected"
  ),
  code: Schema.optional(Schema.Union(Schema.String, Schema.Number))
}) {}

/**
 * A request (or a connect) did not complete within its deadline.
 *
 * @since 0.1.0
 * @category errors
 */
export class RequestTimeout extends Schema.TaggedError<RequestTimeout>()("RequestTimeout", {
  ...base,
  timeoutMs: Schema.optional(Schema.Number),
  /** The connection's last link error when the call ran out of time, as data (never nested text). */
  cause: Schema.optional(Schema.Unknown)
}) {}

/**
 * The heartbeat saw `misses` pings in a row go unanswered: the link is half-open.
 *
 * @since 0.1.0
 * @category errors
 */
export class HeartbeatMissed extends Schema.TaggedError<HeartbeatMissed>()("HeartbeatMissed", {
  ...base,
  misses: Schema.Number
}) {}

/**
 * The HTTP front answered 429/500/502/503/504. `retryAfterMs` holds the server's
 * `Retry-After` when it sent one.
 *
 * @since 0.1.0
 * @category errors
 */
export class HttpUnavailable extends Schema.TaggedError<HttpUnavailable>()("HttpUnavailable", {
  ...base,
  status: Schema.Number,
  retryAfterMs: Schema.optional(Schema.Number)
}) {}

/**
 * A Streamable HTTP server no longer knows our session id (404, or 400 from some servers).
 * The connection re-initializes a new session by itself.
 *
 * @since 0.1.0
 * @category errors
 */
export class SessionExpired extends Schema.TaggedError<SessionExpired>()("SessionExpired", {
  ...base,
  status: Schema.Number
}) {}

/**
 * The circuit breaker is open: the server is known down (or failing every call) and calls
 * fail fast, without being sent, until `retryAt` (epoch ms: the next probe, or the end of
 * the cooldown). `lastError` is a one-line summary of why; `cause` is that error itself.
 *
 * @since 0.1.0
 * @category errors
 */
export class ServerUnavailable extends Schema.TaggedError<ServerUnavailable>()("ServerUnavailable", {
  ...base,
  retryAt: Schema.optional(Schema.Number),
  lastError: Schema.optional(Schema.String),
  cause: Schema.optional(Schema.Unknown)
}) {}

/**
 * Too many calls are already waiting for the connection; this one was refused at once.
 *
 * @since 0.1.0
 * @category errors
 */
export class Overloaded extends Schema.TaggedError<Overloaded>()("Overloaded", {
  ...base,
  limit: Schema.Number
}) {}

// ---------------------------------------------------------------------------
// Business / permanent
// ---------------------------------------------------------------------------

/**
 * The tool ran and reported an error (`result.isError`). `result` is the tool's result.
 *
 * @since 0.1.0
 * @category errors
 */
export class ToolFailed extends Schema.TaggedError<ToolFailed>()("ToolFailed", {
  ...base,
  tool: Schema.String,
  result: Schema.Unknown
}) {}

/**
 * The server answered with a JSON-RPC error (method not found, invalid params, …).
 *
 * @since 0.1.0
 * @category errors
 */
export class ProtocolError extends Schema.TaggedError<ProtocolError>()("ProtocolError", {
  ...base,
  code: Schema.Number,
  data: Schema.optional(Schema.Unknown)
}) {}

/**
 * The server refused our credentials (HTTP 401/403, WebSocket policy close).
 *
 * @since 0.1.0
 * @category errors
 */
export class Unauthorized extends Schema.TaggedError<Unauthorized>()("Unauthorized", {
  ...base,
  status: Schema.optional(Schema.Number)
}) {}

/**
 * The server needs an OAuth authorization Tether does not have (no stored tokens, or the
 * authorization server refused the refresh: `invalid_grant`, a revoked client). Only a
 * person can fix it, with `tether auth login SERVER`; the message says so. Never carries
 * a token or secret.
 *
 * @since 0.1.0
 * @category errors
 */
export class AuthorizationRequired extends Schema.TaggedError<AuthorizationRequired>()(
  "AuthorizationRequired",
  {
    ...base,
    reason: Schema.Literal("NoTokens", "InvalidGrant", "InvalidClient", "Rejected")
  }
) {}

/**
 * The server answered something we cannot use: a malformed message, an unexpected HTTP
 * status or content type, a result that fails its schema.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidResponse extends Schema.TaggedError<InvalidResponse>()("InvalidResponse", {
  ...base,
  status: Schema.optional(Schema.Number)
}) {}

/**
 * A configuration value is wrong. `path` names where (e.g. `mcpServers.github.url`).
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidConfig extends Schema.TaggedError<InvalidConfig>()("InvalidConfig", {
  ...base,
  path: Schema.optional(Schema.String),
  issues: Schema.optional(Schema.Array(Schema.String))
}) {}

/**
 * No server of that name is configured.
 *
 * @since 0.1.0
 * @category errors
 */
export class UnknownServer extends Schema.TaggedError<UnknownServer>()("UnknownServer", {
  ...base,
  known: Schema.Array(Schema.String)
}) {}

/**
 * The server does not offer a tool of that name.
 *
 * @since 0.1.0
 * @category errors
 */
export class UnknownTool extends Schema.TaggedError<UnknownTool>()("UnknownTool", {
  ...base,
  tool: Schema.String
}) {}

/**
 * A stdio server could not be started: command not found, not executable, bad cwd.
 *
 * @since 0.1.0
 * @category errors
 */
export class SpawnFailed extends Schema.TaggedError<SpawnFailed>()("SpawnFailed", {
  ...base,
  command: Schema.String,
  code: Schema.optional(Schema.String)
}) {}

// ---------------------------------------------------------------------------
// Indeterminate
// ---------------------------------------------------------------------------

/**
 * The link died after a call that is not known to be safe to repeat was written: it may
 * or may not have run. Tether does not retry it; the caller decides.
 *
 * @since 0.1.0
 * @category errors
 */
export class OutcomeUnknown extends Schema.TaggedError<OutcomeUnknown>()("OutcomeUnknown", {
  ...base,
  method: Schema.String,
  tool: Schema.optional(Schema.String),
  requestId: Schema.optional(Schema.Union(Schema.String, Schema.Number)),
  /** The link failure that cut the call (a Tether error), as data. */
  cause: Schema.optional(Schema.Unknown)
}) {}

// ---------------------------------------------------------------------------
// Unions and guards
// ---------------------------------------------------------------------------

/**
 * Failures the runtime recovers from by reconnecting and/or retrying.
 *
 * @since 0.1.0
 * @category models
 */
export type Recoverable =
  | ConnectFailed
  | ConnectionLost
  | RequestTimeout
  | HeartbeatMissed
  | HttpUnavailable
  | SessionExpired
  | ServerUnavailable
  | Overloaded

/**
 * Failures surfaced at once; never a reconnect loop.
 *
 * @since 0.1.0
 * @category models
 */
export type Business =
  | ToolFailed
  | ProtocolError
  | Unauthorized
  | AuthorizationRequired
  | InvalidResponse
  | InvalidConfig
  | UnknownServer
  | UnknownTool
  | SpawnFailed

/**
 * Every error that leaves Tether.
 *
 * @since 0.1.0
 * @category models
 */
export type TetherError = Recoverable | Business | OutcomeUnknown

/**
 * What a single transport or protocol failure is, once classified (before the call layer
 * decides whether it became `OutcomeUnknown`).
 *
 * @since 0.1.0
 * @category models
 */
export type Classified =
  | ConnectFailed
  | ConnectionLost
  | RequestTimeout
  | HttpUnavailable
  | SessionExpired
  | ProtocolError
  | Unauthorized
  | AuthorizationRequired
  | InvalidResponse
  | SpawnFailed

const recoverableTags: ReadonlySet<string> = new Set([
  "ConnectFailed",
  "ConnectionLost",
  "RequestTimeout",
  "HeartbeatMissed",
  "HttpUnavailable",
  "SessionExpired",
  "ServerUnavailable",
  "Overloaded"
])

const tetherTags: ReadonlySet<string> = new Set([
  ...recoverableTags,
  "ToolFailed",
  "ProtocolError",
  "Unauthorized",
  "AuthorizationRequired",
  "InvalidResponse",
  "InvalidConfig",
  "UnknownServer",
  "UnknownTool",
  "SpawnFailed",
  "OutcomeUnknown"
])

/**
 * Is this one of Tether's errors?
 *
 * @since 0.1.0
 * @category guards
 */
export const isTetherError = (u: unknown): u is TetherError =>
  Predicate.hasProperty(u, "_tag") && typeof u._tag === "string" && tetherTags.has(u._tag)

/**
 * Is this error of the recoverable family (reconnect and/or retry)?
 *
 * @since 0.1.0
 * @category guards
 */
export const isRecoverable = (e: TetherError): e is Recoverable => recoverableTags.has(e._tag)

/**
 * Does this failure mean the link itself is gone, so the connection must be rebuilt
 * (as opposed to one request failing on a healthy link)?
 *
 * @since 0.1.0
 * @category guards
 */
export const isLinkFailure = (e: TetherError): boolean =>
  e._tag === "ConnectionLost" ||
  e._tag === "ConnectFailed" ||
  e._tag === "SessionExpired" ||
  e._tag === "HeartbeatMissed"

/**
 * Extra facts `Transport.classify` cannot read from the cause itself.
 *
 * @since 0.1.0
 * @category models
 */
export interface ClassifyContext {
  readonly server?: string | undefined
  /** The link had a session id when the failure happened (a 404/400 then means expiry). */
  readonly hasSession?: boolean | undefined
}
