/**
 * Many MCP servers by name, and per tenant: each an `McpConnection`, connected eagerly or
 * on first use, with an aggregated, namespaced tool catalog and a status snapshot.
 * Tenant connections live in an `RcMap` keyed by (tenant, server): closed after
 * `idleTimeToLive` without use, and never more than `maxConnections` open at once.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { McpPool } from "tether-mcp"
 *
 * const program = Effect.gen(function* () {
 *   const pool = yield* McpPool.McpPool
 *   const result = yield* pool.callTool("files", "read", { path: "a.txt" })
 * }).pipe(Effect.provide(McpPool.layerFromFile("./mcp.json")))
 * ```
 *
 * @since 0.1.0
 */
import type { CallToolResult, Tool } from "@modelcontextprotocol/sdk/types.js"
import type { FileSystem } from "@effect/platform"
import { Context, type Duration, type Effect, Layer, type Scope } from "effect"
import type * as Config from "./Config.js"
import type { ConnectionState } from "./ConnectionState.js"
import type * as Errors from "./Errors.js"
import * as internal from "./internal/pool.js"
import type {
  CallOptions,
  ElicitationHandler,
  McpConnection,
  RootsHandler,
  SamplingHandler
} from "./McpConnection.js"
import type * as Resilience from "./Resilience.js"
import type * as ServerSpec from "./ServerSpec.js"

/**
 * One tool of the aggregated catalog. `name` is namespaced (`server__tool`).
 *
 * @since 0.1.0
 * @category models
 */
export interface CatalogEntry {
  readonly name: string
  readonly server: string
  readonly tool: Tool
}

/**
 * @deprecated use {@link CatalogEntry}
 * @since 0.1.0
 * @category models
 */
export type CatalogueEntry = CatalogEntry

/**
 * A status line for one connection.
 *
 * @since 0.1.0
 * @category models
 */
export interface ConnectionStatus {
  readonly server: string
  readonly tenant: string | undefined
  /** `Idle` for a lazy server nobody has used yet. */
  readonly state: ConnectionState["_tag"] | "Idle"
  readonly detail: ConnectionState | undefined
  readonly optional: boolean
  readonly connectAttempts: number
  readonly reconnects: number
  readonly errors: number
  readonly lastError:
    { readonly tag: string; readonly message: string; readonly at: number | undefined } | undefined
  /** Epoch ms of the last state change (for `Idle`: when the pool started). */
  readonly since: number
  readonly pendingCalls: number
}

/**
 * What a pool needs to know about one server. `Config.ServerConfig` is one.
 *
 * @since 0.1.0
 * @category models
 */
export interface ServerOptions {
  readonly name: string
  /** May hold `${tenant.key}` placeholders, filled per tenant. */
  readonly spec: ServerSpec.ServerSpec
  readonly resilience?: Resilience.PolicyInput | undefined
  readonly tools?: McpConnection.Options["tools"]
  readonly lazy?: boolean | undefined
  readonly optional?: boolean | undefined
  readonly trustAnnotations?: boolean | undefined
  /** What `tether proxy` puts before this server's names (see `Config.ServerConfig`). */
  readonly prefix?: string | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly servers: ReadonlyArray<ServerOptions>
  /** Between server and tool in catalog names (default `__`). */
  readonly namespaceSeparator?: string | undefined
  /** The most tenant connections open at once (default 1,000). */
  readonly maxConnections?: number | undefined
  /** How long an unused tenant connection stays open (default 5 minutes). */
  readonly idleTimeToLive?: Duration.DurationInput | undefined
  /** Answers servers' elicitation requests, for every connection of the pool. */
  readonly elicitation?: ElicitationHandler | undefined
  /** Answers servers' `sampling/createMessage` requests, for every connection of the pool. */
  readonly sampling?: SamplingHandler | undefined
  /** Answers servers' `roots/list` requests, for every connection of the pool. */
  readonly roots?: RootsHandler | undefined
}

/**
 * Identifies a tenant. `values` fill `${tenant.key}` placeholders (`${tenant.id}` is the id).
 *
 * @since 0.1.0
 * @category models
 */
export interface Tenant {
  readonly id: string
  readonly values?: Readonly<Record<string, string>> | undefined
}

/**
 * The call surface of the pool, for the default tenant or one tenant.
 *
 * @since 0.1.0
 * @category models
 */
export interface Calls {
  /** The connection to one server (created on first use for lazy servers and tenants). */
  readonly connection: (
    server: string
  ) => Effect.Effect<
    McpConnection,
    Errors.UnknownServer | Errors.InvalidConfig | Errors.Overloaded,
    Scope.Scope
  >
  readonly callTool: (
    server: string,
    tool: string,
    args?: Record<string, unknown>,
    options?: CallOptions
  ) => Effect.Effect<CallToolResult, Errors.TetherError>
  /** Calls a tool by its namespaced catalog name (`server__tool`). */
  readonly call: (
    name: string,
    args?: Record<string, unknown>,
    options?: CallOptions
  ) => Effect.Effect<CallToolResult, Errors.TetherError>
  /**
   * The aggregated catalog (or one server's). Waits up to `timeout` (default 5 s) for
   * servers to be Ready; a server that is not contributes its last known tools.
   */
  readonly tools: (options?: {
    readonly server?: string | undefined
    readonly timeout?: Duration.DurationInput | undefined
  }) => Effect.Effect<ReadonlyArray<CatalogEntry>, Errors.UnknownServer>
  readonly status: Effect.Effect<ReadonlyArray<ConnectionStatus>>
  readonly reconnect: (
    server: string
  ) => Effect.Effect<void, Errors.UnknownServer | Errors.InvalidConfig | Errors.Overloaded>
}

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
 * @since 0.1.0
 * @category models
 */
export interface McpPool extends Calls {
  readonly [TypeId]: TypeId
  readonly servers: ReadonlyArray<string>
  readonly separator: string
  /** The same calls, on connections of one tenant (isolated from every other tenant's). */
  readonly forTenant: (tenant: Tenant) => Calls
  /** Status of every connection: default ones and open tenant ones. */
  readonly statusAll: Effect.Effect<ReadonlyArray<ConnectionStatus>>
  /** Calls in flight or waiting, across all connections. */
  readonly pendingCalls: Effect.Effect<number>
}

/**
 * @since 0.1.0
 * @category tags
 */
export const McpPool: Context.Tag<McpPool, McpPool> = Context.GenericTag<McpPool>("tether/McpPool")

/**
 * Builds a pool in the current scope. Eager servers start connecting at once (in the
 * background: a slow or broken server never blocks the others).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options | Config.TetherConfig
): Effect.Effect<McpPool, Errors.InvalidConfig, Scope.Scope> => internal.make(options)

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options | Config.TetherConfig): Layer.Layer<McpPool, Errors.InvalidConfig> =>
  Layer.scoped(McpPool, make(options))

/**
 * A pool from an `mcp.json` file (env overrides applied; see `Config.load`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFromFile = (
  path: string
): Layer.Layer<McpPool, Errors.InvalidConfig, FileSystem.FileSystem> =>
  Layer.scoped(McpPool, internal.fromFile(path))
