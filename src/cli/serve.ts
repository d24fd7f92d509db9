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
  port: Options.integer("port").pipe(
    Options.withDefault(8000),
    Options.withDescription("Port (0: any free port)")
  ),
  apiKey: Options.redacted("api-key").pipe(
    Options.withDescription("Require Authorization: Bearer <key> (also TETHER_API_KEY)"),
    Options.optional
  ),
  protectHealth: Options.boolean("protect-health").pipe(
    Options.withDescription("Require the API key for /health too")
  ),
  maxBody: Options.integer("max-body").pipe(
    Options.withDefault(1024 * 1024),
    Options.withDescription("Largest request body in bytes")
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
  Command.withDescription("Serve the configured MCP tools as HTTP, with /health, /metrics and /openapi.json")
)
