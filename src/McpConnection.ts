/**
 * ONE resilient connection to one MCP server: a scoped resource whose supervisor fiber
 * owns the transport, reconnects under the policy's `Schedule`, rebuilds the session
 * after every reconnect, detects dead links with a heartbeat, and gives every call a
 * deadline and at-most-once semantics unless the call is known safe to repeat.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { McpConnection } from "tether-mcp"
 *
 * const program = Effect.gen(function* () {
 *   const conn = yield* McpConnection.make({
 *     name: "files",
 *     server: { type: "stdio", command: "node", args: ["server.js"] }
 *   })
 *   const result = yield* conn.callTool("echo", { text: "hi" })
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 */
import type {
  CallToolResult,
  CreateMessageRequest,
  CreateMessageResult,
  ElicitRequest,
  ElicitResult,
  GetPromptResult,
  LoggingLevel,
  Prompt,
  ReadResourceResult,
  Resource,
  ResourceTemplate,
  Root,
  ServerNotification,
  Tool
} from "@modelcontextprotocol/sdk/types.js"
import { Context, type Duration, Effect, Layer, type Scope, type Stream } from "effect"
import type { ConnectionState, ServerInfo } from "./ConnectionState.js"
import type * as Errors from "./Errors.js"
import * as internal from "./internal/connection.js"
import type * as Resilience from "./Resilience.js"
import type * as ServerSpec from "./ServerSpec.js"

/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: unique symbol = internal.TypeId

/**
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = typeof TypeId

/**
 * The errors a call can end with.
 *
 * @since 0.1.0
 * @category models
 */
export type CallError = Errors.TetherError

/**
 * Counters of one connection, for status pages and metrics.
 *
 * @since 0.1.0
 * @category models
 */
export interface Stats {
  /** Connect attempts made, successful or not. */
  readonly connectAttempts: number
  /** Sessions opened after the first (each a successful reconnect). */
  readonly reconnects: number
  /** Calls that ended in an error of any kind. */
  readonly errors: number
  readonly lastError: Errors.TetherError | undefined
  /** Epoch ms of the last error. */
  readonly lastErrorAt: number | undefined
  /** Calls in flight or waiting for the connection right now. */
  readonly pendingCalls: number
  /** Epoch ms of the last state change. */
  readonly stateSince: number
}

/**
 * Per-call options.
 *
 * @since 0.1.0
 * @category models
 */
export interface CallOptions {
  /** Total deadline (ms or a Duration); default `policy.call.timeout`. */
  readonly timeout?: Duration.DurationInput | undefined
  /** Overrides what is known about the tool: `true` allows a retry after the call was written. */
  readonly idempotent?: boolean | undefined
  /**
   * Fails the call with `RequestTimeout` when no progress (and no answer) arrived for this
   * long. Each progress notification pushes it back; the total `timeout` never moves.
   */
  readonly idleTimeout?: Duration.DurationInput | undefined
  /** Receives `notifications/progress` for this call. */
  readonly onProgress?: ((progress: Progress) => void) | undefined
}

/**
 * A progress notification for a call.
 *
 * @since 0.1.0
 * @category models
 */
export interface Progress {
  readonly progress: number
  readonly total?: number | undefined
  readonly message?: string | undefined
}

/**
 * What Tether knows about one tool from config (wins over server annotations).
 *
 * @since 0.1.0
 * @category models
 */
export interface ToolOverride {
  readonly idempotent?: boolean | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface McpConnection {
  readonly [TypeId]: TypeId
  readonly name: string
  readonly spec: ServerSpec.ServerSpec
  readonly policy: Resilience.Policy
  /** The current state. */
  readonly state: Effect.Effect<ConnectionState>
  /** The current state, then every change. */
  readonly changes: Stream.Stream<ConnectionState>
  readonly stats: Effect.Effect<Stats>
  /** Waits until the connection is Ready (within the call deadline). */
  readonly awaitReady: (options?: CallOptions) => Effect.Effect<ServerInfo, CallError>
  /** The last known tool catalog (refreshed on every reconnect and `tools/list_changed`). */
  readonly tools: Effect.Effect<ReadonlyArray<Tool>>
  /** The catalog, then every change. */
  readonly toolChanges: Stream.Stream<ReadonlyArray<Tool>>
  /** Every notification the server sends (resource updates, list changes, logs…). */
  readonly notifications: Stream.Stream<ServerNotification>
  /** Calls a tool. A result with `isError` fails with `ToolFailed` (the result inside). */
  readonly callTool: (
    name: string,
    args?: Record<string, unknown>,
    options?: CallOptions
  ) => Effect.Effect<CallToolResult, CallError>
  readonly listTools: (options?: CallOptions) => Effect.Effect<ReadonlyArray<Tool>, CallError>
  readonly listResources: (options?: CallOptions) => Effect.Effect<ReadonlyArray<Resource>, CallError>
  readonly listResourceTemplates: (
    options?: CallOptions
  ) => Effect.Effect<ReadonlyArray<ResourceTemplate>, CallError>
  readonly readResource: (uri: string, options?: CallOptions) => Effect.Effect<ReadResourceResult, CallError>
  readonly listPrompts: (options?: CallOptions) => Effect.Effect<ReadonlyArray<Prompt>, CallError>
  readonly getPrompt: (
    name: string,
    args?: Record<string, string>,
    options?: CallOptions
  ) => Effect.Effect<GetPromptResult, CallError>
  /** Subscribes to a resource; restored after every reconnect. */
  readonly subscribe: (uri: string, options?: CallOptions) => Effect.Effect<void, CallError>
  readonly unsubscribe: (uri: string, options?: CallOptions) => Effect.Effect<void, CallError>
  /** Sets the server's log level; restored after every reconnect. */
  readonly setLogLevel: (level: LoggingLevel, options?: CallOptions) => Effect.Effect<void, CallError>
  /** Round trip time of one `ping`, in ms. */
  readonly ping: (options?: CallOptions) => Effect.Effect<number, CallError>
  /** Drops the current session (if any) and connects again now, with a fresh schedule. */
  readonly reconnect: Effect.Effect<void>
  /**
   * Tells the server the client's roots changed (`notifications/roots/list_changed`), so it
   * asks the `roots` handler again. Nothing is sent without a `roots` handler or while
   * disconnected (a new session asks for roots anyway).
   */
  readonly rootsChanged: Effect.Effect<void>
}

/**
 * @since 0.1.0
 * @category tags
 */
export const McpConnection: Context.Tag<McpConnection, McpConnection> =
  Context.GenericTag<McpConnection>("tether/McpConnection")

/**
 * @since 0.1.0
 */
export declare namespace McpConnection {
  /**
   * @since 0.1.0
   * @category models
   */
  export interface Options {
    /** The server's name (labels errors, logs and metrics). */
    readonly name: string
    readonly server: ServerSpec.ServerSpec | ServerSpec.Encoded
    readonly resilience?: Resilience.PolicyInput | undefined
    /** Trust the server's `readOnlyHint`/`idempotentHint` annotations (default true). */
    readonly trustAnnotations?: boolean | undefined
    /** Per-tool overrides, which win over annotations. */
    readonly tools?: Readonly<Record<string, ToolOverride>> | undefined
    /**
     * Answers the server's `elicitation/create` requests (form mode). When given, the
     * client declares the elicitation capability with `applyDefaults`: fields the answer
     * leaves out are filled from the requested schema's defaults. A failure or defect of
     * the handler is sent back to the server as an error. Without it, the capability is not
     * declared and servers do not elicit.
     */
    readonly elicitation?: ElicitationHandler | undefined
    /**
     * Answers the server's `sampling/createMessage` requests (an LLM completion the server
     * asks the client for). When given, the client declares the sampling capability; the
     * handler is interrupted when the server cancels its request, and a failure is sent
     * back as an error with a short reason. Without it, servers do not sample.
     */
    readonly sampling?: SamplingHandler | undefined
    /**
     * Answers the server's `roots/list` requests. When given, the client declares the roots
     * capability (with `listChanged`; see `rootsChanged`). Without it, servers see no roots.
     */
    readonly roots?: RootsHandler | undefined
  }
}

/**
 * Answers one `elicitation/create` request: accept (with content), decline or cancel.
 *
 * @since 0.1.0
 * @category models
 */
export type ElicitationHandler = (request: ElicitRequest["params"]) => Effect.Effect<ElicitResult, unknown>

/**
 * Answers one `sampling/createMessage` request with the model's message.
 *
 * @since 0.1.0
 * @category models
 */
export type SamplingHandler = (
  request: CreateMessageRequest["params"]
) => Effect.Effect<CreateMessageResult, unknown>

/**
 * The client's roots (directories or files a server may work in), asked at every `roots/list`.
 *
 * @since 0.1.0
 * @category models
 */
export type RootsHandler = () => Effect.Effect<ReadonlyArray<Root>, unknown>

/**
 * An elicitation handler that accepts every form with the schema's defaults (what an
 * unattended agent can do when a server asks for optional details).
 *
 * @since 0.1.0
 * @category elicitation
 */
export const acceptWithDefaults: ElicitationHandler = () => Effect.succeed({ action: "accept", content: {} })

/**
 * Opens a connection in the current scope. Fails only for a bad spec or policy
 * (`InvalidConfig`); connect failures show in `state` and in calls.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: McpConnection.Options
): Effect.Effect<McpConnection, Errors.InvalidConfig, Scope.Scope> => internal.make(options)

/**
 * A layer providing one connection.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: McpConnection.Options): Layer.Layer<McpConnection, Errors.InvalidConfig> =>
  Layer.scoped(McpConnection, make(options))
