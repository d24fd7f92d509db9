/**
 * `tether serve`: the HTTP gateway (see `Gateway.ts`) as a long-running process.
 * SIGINT/SIGTERM close it gracefully: the server stops, transports close, children are reaped.
 *
 * @since 0.1.0
 */
import { Command, Options } from "@effect/cli"
import { Effect } from "effect"
import * as SharedOptions from "./options.js"

const options = {
  config: SharedOptions.config,
  host: Options.text("host").pipe(
    Options.withDefault("127.0.0.1"),
    Options.withDescription("Address to bind")
  ),
  port: SharedOptions.integerIn("port", 0, 65_535).pipe(
    Options.withDefault(8000),
    Options.withDescription("Port (0: any free port)")
  ),
  ...SharedOptions.auth,
  protectHealth: Options.boolean("protect-health").pipe(
    Options.withDescription("Require the API key for /health too")
  ),
  maxBody: SharedOptions.integerIn("max-body", 1, 1024 * 1024 * 1024).pipe(
    Options.withDefault(1024 * 1024),
    Options.withDescription("Largest request body in bytes")
  ),
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
export const serve = Command.make("serve", options, (parsed) =>
  // The gateway's code loads when the command runs, not for `tether --help`.
  Effect.flatMap(
    Effect.promise(() => import("./serveRun.js")),
    (run) => run.run(parsed)
  )
).pipe(
  Command.withDescription(
    "Serve the configured MCP tools as HTTP, with /health, /metrics, /openapi.json and the MCP endpoint /mcp"
  )
)
