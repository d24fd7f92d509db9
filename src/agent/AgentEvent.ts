/**
 * What the agent runner does, as a typed stream of events: turns, model replies, tool calls
 * and their results, connection state changes, model retries. The REPL renders them; a
 * studio link can forward them as they are (every event is a `Schema`, so it encodes to
 * JSON and decodes back, and `seq` orders them so a consumer can tell what it missed).
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

const common = {
  /** Increases by one per event of one agent, from 1. */
  seq: Schema.Number,
  /** Epoch ms. */
  at: Schema.Number
}

const turnCommon = {
  ...common,
  sessionId: Schema.String,
  /** The turn number within the session (1 = the first user message). */
  turn: Schema.Number
}

/**
 * A user message was taken and the turn begins.
 *
 * @since 0.1.0
 * @category models
 */
export class TurnStarted extends Schema.TaggedClass<TurnStarted>()("TurnStarted", {
  ...turnCommon,
  input: Schema.String
}) {}

/**
 * The model answered one step of a turn: text, tool calls, or both.
 *
 * @since 0.1.0
 * @category models
 */
export class ModelReply extends Schema.TaggedClass<ModelReply>()("ModelReply", {
  ...turnCommon,
  step: Schema.Number,
  text: Schema.String,
  toolCalls: Schema.Array(Schema.Struct({ id: Schema.String, name: Schema.String })),
  finishReason: Schema.String,
  /** The model's label (`gpt-4o-mini`, `replay:demo.json`). */
  model: Schema.String,
  /** The reply was replayed from a recording, not generated. */
  replay: Schema.Boolean
}) {}

/**
 * A transient model error (connect error, 429, 5xx) will be retried after `delayMs`.
 *
 * @since 0.1.0
 * @category models
 */
export class ModelRetry extends Schema.TaggedClass<ModelRetry>()("ModelRetry", {
  ...turnCommon,
  attempt: Schema.Number,
  delayMs: Schema.Number,
  error: Schema.String
}) {}

/**
 * The model asked for a tool; the runner is calling it.
 *
 * @since 0.1.0
 * @category models
 */
export class ToolCall extends Schema.TaggedClass<ToolCall>()("ToolCall", {
  ...turnCommon,
  id: Schema.String,
  /** The namespaced name the model used (`server__tool`). */
  name: Schema.String,
  arguments: Schema.Unknown
}) {}

/**
 * How a tool call ended: `ok`; `error` (the tool reported an error, or the call failed and
 * will not be retried); `unknown` (`OutcomeUnknown`: the link died after the call was sent,
 * it may or may not have run, and it was not retried).
 *
 * @since 0.1.0
 * @category models
 */
export const ToolOutcome = Schema.Literal("ok", "error", "unknown")

/**
 * @since 0.1.0
 * @category models
 */
export type ToolOutcome = typeof ToolOutcome.Type

/**
 * A tool call ended; `text` is what the model is told.
 *
 * @since 0.1.0
 * @category models
 */
export class ToolResult extends Schema.TaggedClass<ToolResult>()("ToolResult", {
  ...turnCommon,
  id: Schema.String,
  name: Schema.String,
  outcome: ToolOutcome,
  text: Schema.String,
  /** The Tether error tag when the call failed (`ToolFailed`, `OutcomeUnknown`, …). */
  errorTag: Schema.optional(Schema.String),
  durationMs: Schema.Number
}) {}

/**
 * The state of an MCP server's connection changed (the first event per server is its state
 * when the agent started watching it).
 *
 * @since 0.1.0
 * @category models
 */
export class ConnectionChanged extends Schema.TaggedClass<ConnectionChanged>()("ConnectionChanged", {
  ...common,
  server: Schema.String,
  /** `Connecting`, `Ready`, `Reconnecting`, `Failed`, `Closed`. */
  state: Schema.String,
  detail: Schema.String
}) {}

/**
 * The turn is over: `answer` (the model stopped calling tools), `step-limit` (it was still
 * calling tools after the maximum number of steps), or `error` (the model failed; the turn
 * was rolled back and the session is as it was before it).
 *
 * @since 0.1.0
 * @category models
 */
export class TurnEnded extends Schema.TaggedClass<TurnEnded>()("TurnEnded", {
  ...turnCommon,
  outcome: Schema.Literal("answer", "step-limit", "error"),
  text: Schema.String,
  steps: Schema.Number,
  toolCalls: Schema.Number,
  error: Schema.optional(Schema.Struct({ tag: Schema.String, message: Schema.String }))
}) {}

/**
 * The session history was cleared (`/reset`).
 *
 * @since 0.1.0
 * @category models
 */
export class SessionReset extends Schema.TaggedClass<SessionReset>()("SessionReset", {
  ...common,
  sessionId: Schema.String
}) {}

/**
 * Every agent event.
 *
 * @since 0.1.0
 * @category models
 */
export const AgentEvent = Schema.Union(
  TurnStarted,
  ModelReply,
  ModelRetry,
  ToolCall,
  ToolResult,
  ConnectionChanged,
  TurnEnded,
  SessionReset
)

/**
 * @since 0.1.0
 * @category models
 */
export type AgentEvent = typeof AgentEvent.Type

/**
 * An event as JSON (what a studio link sends).
 *
 * @since 0.1.0
 * @category codecs
 */
export const encodeJson: (event: AgentEvent) => string = Schema.encodeSync(Schema.parseJson(AgentEvent))

/**
 * @since 0.1.0
 * @category codecs
 */
export const decodeJson: (json: string) => AgentEvent = Schema.decodeSync(Schema.parseJson(AgentEvent))
