/**
 * `tether studio` (the page and the runner endpoint), and the options `tether agent` takes to
 * attach to one (`--studio`). The studio's code (`studioRun.ts`) loads when the command
 * runs, so `tether --help` stays small.
 *
 * ```sh
 * tether studio --port 8300                               # http://127.0.0.1:8300/
 * tether agent -c mcp.json --studio ws://127.0.0.1:8300 --session work   # headless, driven by the page
 * ```
 *
 * @since 0.1.0
 */
import { type Command, Options } from "@effect/cli"
import type { Option, Redacted } from "effect"
import { lazyCommand } from "./lazyCommand.js"
import * as SharedOptions from "./options.js"

const options = {
  host: SharedOptions.host("Address to bind"),
  port: Options.integer("port").pipe(
    Options.withDefault(8300),
    Options.withDescription("Port (0: any free port)")
  ),
  dataDir: Options.text("data-dir").pipe(
    Options.withDescription("Remember the known sessions here (the studio recovers without it)"),
    Options.optional
  ),
  heartbeat: Options.integer("heartbeat").pipe(
    Options.withDefault(2_000),
    Options.withDescription("How often the page pings the studio, in ms")
  ),
  deliveryTimeout: Options.integer("delivery-timeout").pipe(
    Options.withDefault(15_000),
    Options.withDescription("How long a message waits for its agent before it is refused, in ms")
  ),
  // As for `serve`: --api-key, --api-key-file, --no-auth, TETHER_API_KEY.
  ...SharedOptions.auth
}

/**
 * The parsed options of `tether studio`.
 *
 * @since 0.1.0
 * @category models
 */
export type StudioOptions = Command.Command.ParseConfig<typeof options>

/**
 * @since 0.1.0
 * @category commands
 */
export const studio = lazyCommand(
  "studio",
  options,
  () => import("./studioRun.js").then((m) => m.run),
  "Serve Tether Studio: a live page of the agents that attach with --studio"
)

/**
 * The options `tether agent` takes to attach to a studio.
 *
 * @since 0.1.0
 * @category options
 */
export const agentOptions = {
  studio: Options.text("studio").pipe(
    Options.withDescription(
      "Attach to Tether Studio at this address (ws://127.0.0.1:8300); without --prompt/--script the runner waits for the page"
    ),
    Options.optional
  ),
  studioHeartbeat: Options.integer("studio-heartbeat").pipe(
    Options.withDescription(
      "Heartbeat of the studio link, in ms (the agent shows offline after 2 silent intervals)"
    ),
    Options.withDefault(5_000)
  ),
  studioApiKey: Options.redacted("studio-api-key").pipe(
    Options.withDescription("The studio's API key (also TETHER_API_KEY)"),
    Options.optional
  )
}

/**
 * @since 0.1.0
 * @category models
 */
export interface AgentStudioOptions {
  readonly studio: Option.Option<string>
  readonly studioHeartbeat: number
  readonly studioApiKey: Option.Option<Redacted.Redacted<string>>
}
