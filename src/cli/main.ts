/**
 * The `tether` command line: `tools`, `call`, `status` against the servers of an
 * `mcp.json` (`--config`, default `TETHER_CONFIG` or `./mcp.json`), human-readable or
 * `--json`.
 *
 * Exit codes: 0 ok · 1 tool or business error · 2 usage or config error · 3 server unavailable.
 *
 * @since 0.1.0
 */
import { Args, Command, Options, ValidationError } from "@effect/cli"
// Deep imports: the package's index also loads undici (~0.5 MB) that no command needs to start.
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Effect, Exit, Layer } from "effect"
import { VERSION } from "../internal/version.js"
import * as SharedOptions from "./options.js"
import * as PlainConsole from "./plainConsole.js"
import { serve } from "./serve.js"
import { proxy } from "./proxy.js"
import { agentCommand } from "./agentCommand.js"
import { studio } from "./studio.js"
import { authCommand } from "./oauth.js"

/**
 * The commands' code loads when one runs: what `--help` needs (the options) stays small, so
 * the CLI starts fast; the pool, the MCP SDK and the gateway come with the command.
 */
const commands = Effect.promise(() => import("./commands.js"))

const configOption = SharedOptions.config
const jsonOption = Options.boolean("json").pipe(Options.withDescription("Print JSON instead of text"))
const waitOption = SharedOptions.integerIn("wait", 0, SharedOptions.MAX_TIMEOUT_MS).pipe(
  Options.withDescription("How long to wait for servers to connect, in ms"),
  Options.withDefault(10_000)
)

const tools = Command.make(
  "tools",
  {
    config: configOption,
    json: jsonOption,
    wait: waitOption,
    server: Options.text("server").pipe(
      Options.withAlias("s"),
      Options.withDescription("Only this server"),
      Options.optional
    )
  },
  (args) => Effect.flatMap(commands, (c) => c.tools(args))
).pipe(Command.withDescription("List the tools of every server (or one), with namespaced names"))

const call = Command.make(
  "call",
  {
    config: configOption,
    json: jsonOption,
    server: Args.text({ name: "server" }),
    tool: Args.text({ name: "tool" }),
    args: Options.text("args").pipe(
      Options.withAlias("a"),
      Options.withDescription("Tool arguments as a JSON object"),
      Options.withDefault("{}")
    ),
    timeout: SharedOptions.integerIn("timeout", 1, SharedOptions.MAX_TIMEOUT_MS).pipe(
      Options.withDescription("Deadline of the call in ms"),
      Options.optional
    )
  },
  (args) => Effect.flatMap(commands, (c) => c.call(args))
).pipe(Command.withDescription('Call one tool: tether call SERVER TOOL --args \'{"k":"v"}\''))

const status = Command.make("status", { config: configOption, json: jsonOption, wait: waitOption }, (args) =>
  Effect.flatMap(commands, (c) => c.status(args))
).pipe(Command.withDescription("Connect to every server and print its state"))

/**
 * The root command; `serve` and `agent` join it as they are built. A new subcommand keeps
 * its options in a light module and loads its code in the handler (as `commands` above,
 * `serve.ts`, `agentCommand.ts` do): what this file imports statically is parsed and
 * run by every `tether --help` (bench part 8 measures it).
 */
export const tether = Command.make("tether").pipe(
  Command.withDescription("Resilient MCP connections: list tools, call them, watch their state"),
  Command.withSubcommands([tools, call, status, serve, agentCommand, studio, proxy, authCommand])
)

const cli = Command.run(tether, { name: "tether", version: VERSION })

const main = Effect.suspend(() => cli(process.argv)).pipe(
  Effect.catchIf(ValidationError.isValidationError, () =>
    Effect.sync(() => {
      // @effect/cli has printed the usage problem already.
      process.exitCode = 2
    })
  ),
  PlainConsole.whenNotTerminal,
  Effect.provide(Layer.mergeAll(NodeContext.layer))
)

NodeRuntime.runMain(main, {
  disableErrorReporting: false,
  teardown: (exit, onExit) => {
    if (Exit.isFailure(exit) && !Cause.isInterruptedOnly(exit.cause)) {
      onExit(process.exitCode && process.exitCode !== 0 ? Number(process.exitCode) : 1)
    } else onExit(Number(process.exitCode ?? 0))
  }
})
