/**
 * `tether serve`: the HTTP gateway (see `Gateway.ts`) as a long-running process.
 * SIGINT/SIGTERM close it gracefully: the server stops, transports close, children are reaped.
 *
 * @since 0.1.0
 */
import { type Command, Options } from "@effect/cli"
import { lazyCommand } from "./lazyCommand.js"
import * as SharedOptions from "./options.js"

const options = {
  config: SharedOptions.config,
  host: SharedOptions.host("Address to bind"),
  port: SharedOptions.integerIn("port", 0, 65_535).pipe(
    Options.withDefault(8000),
    Options.withDescription("Port (0: any free port)")
  ),
  ...SharedOptions.auth,
  protectHealth: Options.boolean("protect-health").pipe(
    Options.withDescription("Require the API key for /health too")
  ),
  maxBody: SharedOptions.maxBody,
  waitReady: SharedOptions.integerIn("wait-ready", 0, SharedOptions.MAX_TIMEOUT_MS).pipe(
    Options.withDefault(5_000),
    Options.withDescription(
      "How long a call to a server that is not Ready waits for it before a 503, in ms (within the call's deadline)"
    )
  )
}

/**
 * The parsed options of `tether serve`.
 *
 * @since 0.1.0
 * @category models
 */
export type ServeOptions = Command.Command.ParseConfig<typeof options>

/**
 * @since 0.1.0
 * @category commands
 */
export const serve = lazyCommand(
  "serve",
  options,
  () => import("./serveRun.js").then((m) => m.run),
  "Serve the configured MCP tools as HTTP, with /health, /metrics, /openapi.json and the MCP endpoint /mcp"
)
