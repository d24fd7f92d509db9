/**
 * The `mcp.json` file: the standard `mcpServers` object of Claude Desktop, Cursor,
 * VS Code and mcp-use, plus Tether's own settings (a `resilience` block globally and per
 * server, per-tool overrides, `lazy`, `optional`, `trustAnnotations`).
 *
 * ```json
 * {
 *   "resilience": { "call": { "timeout": "30 seconds" } },
 *   "mcpServers": {
 *     "files": { "command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "."] },
 *     "github": {
 *       "url": "https://api.githubcopilot.com/mcp/",
 *       "headers": { "Authorization": "Bearer ${GITHUB_TOKEN}" },
 *       "tools": { "create_issue": { "idempotent": false } }
 *     }
 *   }
 * }
 * ```
 *
 * - The transport comes from `type` (or its alias `transport`): `stdio`, `http` (also
 *   `streamable-http`, `streamableHttp`), `sse`, `websocket` (also `ws`). Without one, a
 *   `command` means stdio and a `url` means http (websocket for a `ws:`/`wss:` URL).
 * - `${NAME}`, `${env:NAME}` and `${NAME:-default}` in `env` values, `headers` values,
 *   `auth` values and `url` are filled from the environment (read through the current
 *   `ConfigProvider` by {@link load} and {@link fromObject}); an unset variable is an error. `${tenant.key}`
 *   placeholders are kept, and filled per tenant by {@link renderTenant}.
 * - Header and env values are `Redacted`: they never show in logs, `String` or JSON.
 * - The `TETHER_*` variables ({@link envOverrides}) override the global `resilience`
 *   block; a server's own block wins over both.
 * - Comments and trailing commas are accepted. A bad file is rejected before anything
 *   starts, with every problem listed by JSON path.
 * - A field the file format does not declare (a typo such as `"optinal"`) is an error,
 *   with a "did you mean" when a declared field is close. The file is declared once, as
 *   Schemas, in `internal/configSchema.ts` (`entrySchemas`: one struct per transport;
 *   `File` at the top level; `$schema`, VS Code's `inputs` and a few other hosts' UI
 *   settings are accepted and ignored). The top level is checked when it has `mcpServers`
 *   or `servers`.
 *
 * @since 0.1.0
 */
import { FileSystem } from "@effect/platform"
import { Effect, type Either, type LogLevel } from "effect"
import type { InvalidConfig } from "./Errors.js"
import * as internal from "./internal/config.js"
import type { McpConnection, ToolOverride } from "./McpConnection.js"
import type * as Resilience from "./Resilience.js"
import type * as ServerSpec from "./ServerSpec.js"

/**
 * One server of the file, decoded: its spec (which may still hold `${tenant.key}`
 * placeholders), its merged policy, its tool overrides and flags.
 *
 * @since 0.1.0
 * @category models
 */
export interface ServerConfig {
  readonly name: string
  readonly spec: ServerSpec.ServerSpec
  /** Defaults < global block < `TETHER_*` variables < this server's block. */
  readonly resilience: Resilience.Policy
  readonly tools: Readonly<Record<string, ToolOverride>>
  /** Connect on first use instead of at start (default false). */
  readonly lazy: boolean
  /** A server whose absence does not make the whole process unhealthy (default false). */
  readonly optional: boolean
  /** Trust the server's `readOnlyHint`/`idempotentHint` annotations (default true). */
  readonly trustAnnotations: boolean
  /**
   * What `tether proxy` puts before this server's tool, prompt and resource names
   * (default `<name>__` with several servers, nothing with one; `""` for none).
   */
  readonly prefix?: string | undefined
}

/**
 * A whole decoded file.
 *
 * @since 0.1.0
 * @category models
 */
export interface TetherConfig {
  /** In file order; servers with `"disabled": true` are left out. */
  readonly servers: ReadonlyArray<ServerConfig>
  /** Between server and tool in catalog names (default `__`). */
  readonly namespaceSeparator: string
  readonly maxConnections: number | undefined
  /** Milliseconds. */
  readonly idleTimeToLive: number | undefined
  /** Where the config came from (a file path), as shown in error messages. */
  readonly source: string
}

/**
 * Options of {@link decode} and {@link parse}.
 *
 * @since 0.1.0
 * @category models
 */
export interface DecodeOptions {
  /** Names the input in messages (default `(inline)`). */
  readonly source?: string | undefined
  /**
   * Fills `${NAME}` placeholders (default `process.env`). To read them through a
   * `ConfigProvider` instead, use {@link fromObject} or {@link load}.
   */
  readonly env?: Readonly<Record<string, string | undefined>> | undefined
  /** Wins over the global `resilience` block, loses to a server's own (e.g. {@link envOverrides}). */
  readonly overrides?: Resilience.PolicyInput | undefined
}

/**
 * Options of {@link renderTenant}: name the server so messages give its JSON path.
 *
 * @since 0.1.0
 * @category models
 */
export interface RenderOptions {
  readonly server?: string | undefined
  /** The JSON path of the spec (default `mcpServers.<server>`). */
  readonly path?: string | undefined
}

/**
 * What the `TETHER_*` environment variables say.
 *
 * @since 0.1.0
 * @category models
 */
export interface EnvOverrides {
  /** `TETHER_CONFIG`: the config file. */
  readonly configPath?: string | undefined
  /** `TETHER_LOG_LEVEL` (`debug`, `info`, `warning`, …, case-insensitive). */
  readonly logLevel?: LogLevel.LogLevel | undefined
  /** The `TETHER_RECONNECT_*`, `TETHER_HEARTBEAT_*`, `TETHER_CALL_TIMEOUT_MS` and `TETHER_TOOL_MAX_RETRIES` values. */
  readonly resilience: Resilience.PolicyInput
}

/**
 * Decodes a config value (already parsed JSON), failing with an `InvalidConfig` that
 * lists every problem by JSON path.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decode = (input: unknown, options?: DecodeOptions): Either.Either<TetherConfig, InvalidConfig> =>
  internal.decode(input, options)

/**
 * Parses and decodes JSON text (comments and trailing commas allowed). A syntax error
 * names the source, line and column; a key given twice is an error.
 *
 * @since 0.1.0
 * @category decoding
 */
export const parse = (text: string, options?: DecodeOptions): Either.Either<TetherConfig, InvalidConfig> =>
  internal.parse(text, options)

/**
 * The `TETHER_*` variables, read through the current `ConfigProvider`: `TETHER_CONFIG`,
 * `TETHER_LOG_LEVEL`, `TETHER_RECONNECT_MAX_ATTEMPTS`, `TETHER_RECONNECT_INITIAL_DELAY_MS`,
 * `TETHER_RECONNECT_MAX_DELAY_MS`, `TETHER_HEARTBEAT_INTERVAL_MS`,
 * `TETHER_HEARTBEAT_TIMEOUT_MS`, `TETHER_CALL_TIMEOUT_MS`, `TETHER_TOOL_MAX_RETRIES`.
 * A blank variable counts as unset; a bad value fails naming the variable.
 *
 * @since 0.1.0
 * @category environment
 */
export const envOverrides: Effect.Effect<EnvOverrides, InvalidConfig> = internal.envOverrides

/**
 * Reads a config file, fills `${NAME}` placeholders from the environment (through the
 * current `ConfigProvider`) and applies {@link envOverrides}. A missing file fails with
 * `config file <path> not found`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const load = (path: string): Effect.Effect<TetherConfig, InvalidConfig, FileSystem.FileSystem> =>
  Effect.flatMap(FileSystem.FileSystem, (fs) => internal.load(fs, path))

/**
 * Decodes a config given in code, the way {@link load} does a file: `${NAME}` placeholders
 * are filled from the current `ConfigProvider` (so `Effect.withConfigProvider(
 * ConfigProvider.fromMap(...))` supplies them) and {@link envOverrides} are applied.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromObject = (
  input: unknown,
  options?: { readonly source?: string | undefined }
): Effect.Effect<TetherConfig, InvalidConfig> => internal.fromObject(input, options)

/**
 * Fills the `${tenant.key}` (or `${tenant.key:-default}`) placeholders of a decoded spec
 * (command, args, cwd, env, url, headers) from one tenant's values. Secrets stay
 * `Redacted`; a placeholder without a value, or a URL that is no longer valid, fails.
 *
 * @since 0.1.0
 * @category tenants
 */
export const renderTenant = (
  spec: ServerSpec.ServerSpec,
  tenant: Readonly<Record<string, string>>,
  options?: RenderOptions
): Either.Either<ServerSpec.ServerSpec, InvalidConfig> => internal.renderTenant(spec, tenant, options)

/**
 * The options that open an `McpConnection` for one configured server.
 *
 * @since 0.1.0
 * @category utils
 */
export const toConnectionOptions = (server: ServerConfig): McpConnection.Options => ({
  name: server.name,
  server: server.spec,
  resilience: server.resilience,
  tools: server.tools,
  trustAnnotations: server.trustAnnotations
})
