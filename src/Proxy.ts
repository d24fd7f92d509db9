/**
 * `tether proxy`: an MCP *server* in front of an `McpPool`, so any MCP client (Claude
 * Desktop, VS Code, Cursor, the Inspector, agent frameworks) gets Tether's resilience.
 *
 * - **Aggregation.** Tools, resources, resource templates and prompts of every server, in
 *   one catalog. Names are prefixed `server__` when more than one server is configured,
 *   unprefixed with one; a server's `prefix` setting in `mcp.json` wins. Resource URIs are
 *   kept as the server gave them (a read goes to the server that listed the URI, or whose
 *   template matches it).
 * - **A down upstream never hides the others.** Its tools, resources and prompts stay
 *   listed from the last catalog, each description marked `[tether: NAME is reconnecting
 *   …]`; a call to it waits for the reconnect within its deadline. `list_changed` goes
 *   downstream only when a catalog really changed (an upstream's own `list_changed`, or a
 *   reconnect that brought a different catalog), not when a server merely went down.
 * - **Transparency.** `tools/call` forwards arguments, results, `isError`, progress and
 *   cancellation (a downstream `notifications/cancelled` interrupts the upstream call,
 *   which sends `notifications/cancelled` upstream); upstream log messages go to every
 *   session at the level it set; resource subscriptions are shared and restored upstream
 *   after reconnects.
 * - **Failures.** A non-idempotent call cut mid-flight is a tool result with
 *   `isError: true` saying the outcome is unknown and that it was not retried, with the
 *   structured `OutcomeUnknown` in `_meta["tether/outcomeUnknown"]`. An upstream down past
 *   the deadline is a JSON-RPC error (-32603) naming the server and why.
 *
 * The proxy owns no resilience of its own: reconnects, retries and `OutcomeUnknown` come
 * from `McpConnection`; the proxy only translates them.
 *
 * @since 0.1.0
 */
import { HttpRouter, HttpServer, type HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js"
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js"
import { Context, type Duration, Effect, Layer, type Redacted, type Scope } from "effect"
import type * as Config from "./Config.js"
import type * as Gateway from "./Gateway.js"
import * as HttpListen from "./internal/httpListen.js"
import * as internal from "./internal/proxy.js"
import * as internalHttp from "./internal/proxyHttp.js"
import type { ElicitationHandler, RootsHandler, SamplingHandler } from "./McpConnection.js"
import type * as McpPool from "./McpPool.js"

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
export interface Options {
  /** The name the proxy gives itself in `initialize` (default `tether-proxy`). */
  readonly name?: string | undefined
  readonly version?: string | undefined
  /** Per-server name prefixes (see {@link prefixesOf}); default `server__` with several servers. */
  readonly prefixes?: Readonly<Record<string, string>> | undefined
  /** How long a listing waits for a server that is still making its first connection (default 5 s). */
  readonly listWait?: Duration.DurationInput | undefined
  /** Give the pool this relay's `handlers` (or `handler` as its `elicitation`); see {@link elicitationRelay}. */
  readonly relay?: ElicitationRelay | undefined
}

/**
 * Forwards the upstream servers' requests to a downstream client: the pool is built with
 * `handlers` (or `handler` for elicitation alone), the proxy binds them.
 *
 * - `elicitation/create` goes to the session with the most recent tool call in flight whose
 *   client declared the elicitation capability; with none, the answer is `decline`.
 * - `sampling/createMessage` goes to such a session that declared `sampling`; with none,
 *   the server gets an error saying no downstream client can sample.
 * - `roots/list` is answered with the roots of such a session that declared `roots`, else
 *   of the only session that declared it; with none, an empty list. A downstream
 *   `notifications/roots/list_changed` is sent to every upstream server.
 *
 * @since 0.1.0
 * @category models
 */
export interface ElicitationRelay {
  /** The pool's `elicitation` handler. */
  readonly handler: ElicitationHandler
  /** The pool's `elicitation`, `sampling` and `roots` handlers, to spread into `McpPool.Options`. */
  readonly handlers: {
    readonly elicitation: ElicitationHandler
    readonly sampling: SamplingHandler
    readonly roots: RootsHandler
  }
  readonly bind: (targets: RelayTargets) => void
}

/**
 * What the proxy binds a relay to.
 *
 * @since 0.1.0
 * @category models
 */
export interface RelayTargets {
  readonly elicitation: ElicitationHandler
  readonly sampling: SamplingHandler
  readonly roots: RootsHandler
}

/**
 * The relay is bound once the proxy is built; a request before that finds no client.
 *
 * @since 0.1.0
 * @category constructors
 */
export const elicitationRelay = (): ElicitationRelay => {
  let targets: RelayTargets | undefined
  const elicitation: ElicitationHandler = (params) =>
    targets === undefined ? Effect.succeed({ action: "decline" }) : targets.elicitation(params)
  return {
    handler: elicitation,
    handlers: {
      elicitation,
      sampling: (params) =>
        targets === undefined ? Effect.fail(internal.noSampler()) : targets.sampling(params),
      roots: () => (targets === undefined ? Effect.succeed([]) : targets.roots())
    },
    bind: (t) => {
      targets = t
    }
  }
}

/**
 * The same as {@link elicitationRelay}: it relays sampling and roots too.
 *
 * @since 0.1.0
 * @category constructors
 */
export const relay: () => ElicitationRelay = elicitationRelay

/**
 * One downstream session.
 *
 * @since 0.1.0
 * @category models
 */
export interface Session {
  readonly close: Effect.Effect<void>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Proxy {
  readonly [TypeId]: TypeId
  /** The servers it fronts (servers needing a tenant are left out). */
  readonly servers: ReadonlyArray<string>
  /**
   * Serves one downstream session over an SDK server transport. A `stateless` session
   * keeps nothing between requests and gets no notifications.
   */
  readonly connect: (
    transport: Transport,
    options?: { readonly stateless?: boolean | undefined }
  ) => Effect.Effect<Session>
  /** Downstream sessions that receive notifications right now. */
  readonly sessions: Effect.Effect<number>
}

/**
 * @since 0.1.0
 * @category tags
 */
export const Proxy: Context.Tag<Proxy, Proxy> = Context.GenericTag<Proxy>("tether/Proxy")

/**
 * Builds the proxy over the pool in context; its watchers live in the current scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options?: Options): Effect.Effect<Proxy, never, McpPool.McpPool | Scope.Scope> =>
  internal.make(options)

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options?: Options): Layer.Layer<Proxy, never, McpPool.McpPool> =>
  Layer.scoped(Proxy, make(options))

/**
 * The `prefix` settings of a config, for {@link Options}.
 *
 * @since 0.1.0
 * @category utils
 */
export const prefixesOf = (config: Config.TetherConfig | McpPool.Options): Readonly<Record<string, string>> =>
  Object.fromEntries(config.servers.flatMap((s) => (s.prefix !== undefined ? [[s.name, s.prefix]] : [])))

/**
 * Serves one session over this process's stdin/stdout until the client closes stdin.
 * Nothing else may write to stdout meanwhile (log to stderr).
 *
 * @since 0.1.0
 * @category servers
 */
export const serveStdio: Effect.Effect<void, never, Proxy> = Effect.gen(function* () {
  const proxy = yield* Proxy
  const transport = new StdioServerTransport()
  const session = yield* proxy.connect(transport)
  // The SDK's stdio transport does not notice the end of stdin: the client is gone then.
  yield* Effect.async<void>((resume) => {
    const done = () => resume(Effect.void)
    process.stdin.once("end", done)
    process.stdin.once("close", done)
    return Effect.sync(() => {
      process.stdin.off("end", done)
      process.stdin.off("close", done)
    })
  }).pipe(Effect.ensuring(session.close))
})

/**
 * Options of the Streamable HTTP front.
 *
 * @since 0.1.0
 * @category models
 */
export interface HttpOptions {
  /** Every request needs `Authorization: Bearer <key>` when set. */
  readonly apiKey?: Redacted.Redacted<string> | undefined
  /** Largest request body in bytes (default 1 MiB, as `tether serve`). */
  readonly maxBodyBytes?: number | undefined
  /** `Host` values allowed besides loopback names (`host` or `host:port`). */
  readonly allowedHosts?: ReadonlyArray<string> | undefined
  /** `Origin` values allowed besides loopback origins (`http://host:port`). */
  readonly allowedOrigins?: ReadonlyArray<string> | undefined
  /** No session state: every request is answered by a fresh server, in JSON. */
  readonly stateless?: boolean | undefined
  /** The most downstream sessions at once (default 10,000). */
  readonly maxSessions?: number | undefined
  /**
   * A session without a request for this long is closed (default 24 hours; a client that
   * only listens on its GET stream counts as idle, hence the long default).
   */
  readonly sessionIdleTimeout?: Duration.DurationInput | undefined
}

/**
 * The `/mcp` endpoint as an HTTP app handler, to mount in any `@effect/platform` router
 * (`tether serve` mounts it at `/mcp`). Its sessions close with the scope.
 *
 * @since 0.1.0
 * @category servers
 */
export const httpHandler = (
  options?: HttpOptions
): Effect.Effect<
  Effect.Effect<HttpServerResponse.HttpServerResponse, never, HttpServerRequest.HttpServerRequest>,
  never,
  Proxy | Scope.Scope
> =>
  Effect.map(
    Effect.flatMap(Proxy, (proxy) => internalHttp.makeHandler(proxy, options)),
    (h) => h.handle
  )

/**
 * Serves `http://HOST:PORT/mcp` (Streamable HTTP) and prints `LISTENING host:port` once bound.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerHttp = (
  options: HttpOptions & { readonly host?: string | undefined; readonly port?: number | undefined }
): Layer.Layer<never, Gateway.ServeError, Proxy> =>
  HttpListen.listen(
    Layer.unwrapScoped(
      Effect.map(httpHandler(options), (handle) =>
        HttpServer.serve(
          HttpRouter.empty.pipe(
            HttpRouter.all("/mcp", handle),
            Effect.catchTag("RouteNotFound", () =>
              Effect.succeed(HttpServerResponse.text("not found: the MCP endpoint is /mcp", { status: 404 }))
            )
          )
        )
      )
    ),
    options,
    8000
  )
