/**
 * `tether proxy`: the servers of an `mcp.json` behind one MCP server (see `Proxy.ts`), over
 * stdio (what desktop clients spawn) or, with `--port`, Streamable HTTP at `/mcp`.
 * Only the options live here; the code loads when the command runs (`proxyRun.ts`).
 *
 * @since 0.1.0
 */
import { type Command, Options } from "@effect/cli"
import { lazyCommand } from "./lazyCommand.js"
import * as SharedOptions from "./options.js"

const options = {
  config: SharedOptions.config,
  port: Options.integer("port").pipe(
    Options.withDescription(
      "Serve Streamable HTTP at http://HOST:PORT/mcp instead of stdio (0: any free port)"
    ),
    Options.optional
  ),
  host: SharedOptions.host("Address to bind (with --port)"),
  // The same API-key options as `tether serve`; used with --port.
  ...SharedOptions.auth,
  allowedHost: Options.text("allowed-host").pipe(
    Options.withDescription("A Host header to accept besides loopback names (repeatable)"),
    Options.repeated
  ),
  allowedOrigin: Options.text("allowed-origin").pipe(
    Options.withDescription("An Origin to accept besides loopback origins (repeatable)"),
    Options.repeated
  ),
  maxBody: SharedOptions.maxBody,
  stateless: Options.boolean("stateless").pipe(
    Options.withDescription("No session state (several proxies behind one load balancer); HTTP only")
  )
}

/**
 * The parsed options of `tether proxy`.
 *
 * @since 0.1.0
 * @category models
 */
export type ProxyOptions = Command.Command.ParseConfig<typeof options>

/**
 * @since 0.1.0
 * @category commands
 */
export const proxy = lazyCommand(
  "proxy",
  options,
  () => import("./proxyRun.js").then((m) => m.run),
  "Serve every configured MCP server as one MCP server (stdio, or Streamable HTTP with --port), with Tether's reconnects and safe retries"
)
