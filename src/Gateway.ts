/**
 * `tether serve`: MCP tools as plain HTTP in front of an `McpPool`, with `/health`,
 * Prometheus `/metrics`, a live OpenAPI document and an API key.
 *
 * | route | what |
 * |---|---|
 * | `GET /health` | 200 when every server not marked `optional` is Ready, else 503; per-server JSON |
 * | `GET /metrics` | Prometheus text |
 * | `POST /{server}/{tool}` | the tool's arguments as the JSON body → the tool's result |
 * | `GET /openapi.json`, `GET /docs` | generated from the live catalog |
 * | `POST /admin/servers/{name}/reconnect` | drop the session and connect again |
 * | `/mcp` | the MCP endpoint of `tether proxy` (Streamable HTTP), when `mcp` is given |
 *
 * Errors map to HTTP with a JSON body `{ error: { tag, message, … } }` (a message a server
 * or the network wrote is a sanitized excerpt of at most 1000 characters):
 * bad arguments 422 · unknown server/tool 404 · tool error (`isError`) 200 with the result
 * as the tool gave it · unavailable (or not Ready within `waitReadyMs`) 503 with
 * `Retry-After` · timeout 504 · `OutcomeUnknown` 502 with `may_have_run: true` · other
 * upstream failures 502 · malformed JSON or a bad `x-tether-timeout-ms` 400 · body too
 * large (chunked or not) 413 · missing or wrong API key 401 with `WWW-Authenticate`.
 *
 * @since 0.1.0
 */
import type { HttpApp } from "@effect/platform"
import { HttpServer, type HttpServerError } from "@effect/platform"
import { type Layer, type Redacted } from "effect"
import type * as Errors from "./Errors.js"
import * as internal from "./internal/gateway.js"
import * as HttpListen from "./internal/httpListen.js"
import type * as McpPool from "./McpPool.js"
import type * as Prometheus from "./Prometheus.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Default 127.0.0.1. */
  readonly host?: string | undefined
  /** Default 8000; 0 picks a free port. */
  readonly port?: number | undefined
  /** When set, every route but (by default) `/health` needs `Authorization: Bearer <key>`. */
  readonly apiKey?: Redacted.Redacted<string> | undefined
  /** Whether `/health` is reachable without the key (default true). */
  readonly healthOpen?: boolean | undefined
  /** Largest accepted request body, in bytes (default 1 MiB). */
  readonly maxBodyBytes?: number | undefined
  /**
   * How long a call to a server that is not Ready waits for it (default 5000 ms, never
   * past the call's deadline) before it is answered 503 with `Retry-After`.
   */
  readonly waitReadyMs?: number | undefined
  /**
   * An MCP endpoint to mount at `/mcp` (`Proxy.httpHandler`); it checks its own API key,
   * Host and Origin and answers in JSON-RPC.
   */
  readonly mcp?: HttpApp.Default | undefined
}

/**
 * The largest deadline a request may ask for with `x-tether-timeout-ms`: one hour.
 *
 * @since 0.1.0
 * @category constants
 */
export const maxTimeoutMs: number = internal.MAX_TIMEOUT_MS

/**
 * The error → HTTP mapping, for hosts that expose Tether calls over HTTP themselves.
 *
 * @since 0.1.0
 * @category utils
 */
export const httpErrorOf: (
  error: Errors.TetherError,
  now?: number
) => {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: unknown
} = internal.httpErrorOf

/**
 * The gateway's routes as an HTTP app (no server): use it to mount Tether in your own
 * `@effect/platform` server.
 *
 * @since 0.1.0
 * @category constructors
 */
export const app = (options: Options = {}) => internal.makeApp(options)

/**
 * Serves the gateway on the Node HTTP server; prints `LISTENING <host>:<port>` on stdout
 * once bound.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options = {}
): Layer.Layer<never, ServeError, McpPool.McpPool | Prometheus.Prometheus> =>
  HttpListen.listen(HttpServer.serve(internal.makeApp(options)), options, 8000)

/**
 * The server could not listen (port in use, permission denied).
 *
 * @since 0.1.0
 * @category errors
 */
export type ServeError = HttpServerError.ServeError
