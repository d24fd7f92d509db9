/**
 * The `agent` command (a subcommand of `tether`, and the whole of `scripts/agent.ts`): its
 * options, and the runner (`agent.ts`: the model, the pool, sessions) loaded when it runs, so
 * `tether --help` does not parse the agent's code.
 *
 * @since 0.1.0
 */
import { Options } from "@effect/cli"
import { lazyCommand } from "./lazyCommand.js"
import * as SharedOptions from "./options.js"
import * as StudioOptions from "./studio.js"

/**
 * The options of the `agent` command. A new option goes here and into `RunOptions`
 * (`agent.ts`), whose `run` receives them all.
 *
 * @since 0.1.0
 * @category commands
 */
export const agentOptions = {
  config: SharedOptions.config,
  prompt: Options.text("prompt").pipe(
    Options.withAlias("p"),
    Options.withDescription("Run one turn with this message, print the answer, exit"),
    Options.optional
  ),
  script: Options.text("script").pipe(
    Options.withDescription(
      "Run each line of this file as a user message (lines starting with / are commands)"
    ),
    Options.optional
  ),
  session: Options.text("session").pipe(
    Options.withAlias("s"),
    Options.withDescription("Resume (or start) the session with this id"),
    Options.optional
  ),
  dataDir: Options.text("data-dir").pipe(
    Options.withDescription("Where sessions are stored (in sessions/)"),
    Options.withDefault("~/.tether")
  ),
  sessionTtl: Options.text("session-ttl").pipe(
    Options.withDescription("Idle sessions expire after this (7d, 12h, 30m…)"),
    Options.withDefault("7d")
  ),
  model: Options.text("model").pipe(
    Options.withAlias("m"),
    Options.withDescription(
      "The model name (default TETHER_LLM_MODEL), or scripted:FILE to replay recorded replies offline"
    ),
    Options.optional
  ),
  maxSteps: Options.integer("max-steps").pipe(
    Options.withDescription("Model requests per turn before the turn is stopped"),
    Options.withDefault(20)
  ),
  system: Options.text("system").pipe(
    Options.withDescription('The system prompt ("" for none)'),
    Options.optional
  ),
  ...StudioOptions.agentOptions
}

/**
 * @since 0.1.0
 * @category commands
 */
export const agentCommand = lazyCommand(
  "agent",
  agentOptions,
  () => import("./agent.js").then((m) => m.main),
  "Chat with an LLM (any OpenAI-compatible endpoint) that uses the tools of every server, with sessions"
)
