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
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Cause, Console, Effect, Exit, Layer, Option, Schedule } from "effect"
import * as Config from "../Config.js"
import * as ConnectionState from "../ConnectionState.js"
import * as Errors from "../Errors.js"
import * as McpPool from "../McpPool.js"
import { VERSION } from "../internal/version.js"
import { exitCodeOf, formatError, formatStatus, formatTools, renderResult } from "./format.js"
import * as SharedOptions from "./options.js"
import { serve } from "./serve.js"
import { agentCommand } from "../agent/Cli.js"

const configOption = SharedOptions.config
const jsonOption = Options.boolean("json").pipe(Options.withDescription("Print JSON instead of text"))
const waitOption = Options.integer("wait").pipe(
  Options.withDescription("How long to wait for servers to connect, in ms"),
  Options.withDefault(10_000)
)

/** Builds the pool from the config for the length of one command. */
const withPool = <A, E>(
  config: Option.Option<string>,
  use: (pool: McpPool.McpPool) => Effect.Effect<A, E>
): Effect.Effect<A, E | Errors.InvalidConfig, never> =>
  Effect.gen(function* () {
    const env = yield* Config.envOverrides
    const path = Option.getOrElse(config, () => env.configPath ?? "./mcp.json")
    const loaded = yield* Config.load(path)
    return yield* Effect.scoped(Effect.flatMap(McpPool.make(loaded), use))
  }).pipe(Effect.provide(NodeContext.layer))

/** Prints, then sets the exit code; expected errors never show a stack trace. */
const report = <A>(
  json: boolean,
  effect: Effect.Effect<A, Errors.TetherError>,
  render: (a: A) => string,
  toJson: (a: A) => unknown
) =>
  Effect.matchEffect(effect, {
    onSuccess: (a) => (json ? Console.log(JSON.stringify(toJson(a), null, 2)) : Console.log(render(a))),
    onFailure: (error) =>
      Effect.zipRight(
        json
          ? Console.log(
              JSON.stringify({ error: { ...error, tag: error._tag, message: error.message } }, null, 2)
            )
          : Console.error(formatError(error)),
        Effect.sync(() => {
          process.exitCode = exitCodeOf(error)
        })
      )
  })

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
  ({ config, json, server, wait }) =>
    report(
      json,
      withPool(config, (pool) => pool.tools({ server: Option.getOrUndefined(server), timeout: wait })),
      formatTools,
      (entries) =>
        entries.map((e) => ({
          name: e.name,
          server: e.server,
          description: e.tool.description,
          inputSchema: e.tool.inputSchema
        }))
    )
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
    timeout: Options.integer("timeout").pipe(
      Options.withDescription("Deadline of the call in ms"),
      Options.optional
    )
  },
  ({ args, config, json, server, timeout, tool }) =>
    report(
      json,
      Effect.gen(function* () {
        const parsed = yield* parseArgs(args)
        return yield* withPool(config, (pool) =>
          pool.callTool(server, tool, parsed, { timeout: Option.getOrUndefined(timeout) })
        )
      }),
      renderResult,
      (result) => result
    )
).pipe(Command.withDescription('Call one tool: tether call SERVER TOOL --args \'{"k":"v"}\''))

const status = Command.make(
  "status",
  { config: configOption, json: jsonOption, wait: waitOption },
  ({ config, json, wait }) =>
    report(
      json,
      withPool(config, (pool) =>
        Effect.gen(function* () {
          // Give eager servers a chance to settle so the snapshot says something.
          yield* pool.status.pipe(
            Effect.repeat({
              // Optional servers are reported as they are; only required ones are waited for.
              until: (all) =>
                all.every((s) => s.optional || (s.state !== "Connecting" && s.state !== "Reconnecting")),
              schedule: Schedule.spaced("50 millis")
            }),
            Effect.timeout(wait),
            Effect.ignore
          )
          return yield* pool.status
        })
      ),
      formatStatus,
      (all) =>
        all.map((s) => ({
          ...s,
          detail: s.detail === undefined ? undefined : ConnectionState.describe(s.detail)
        }))
    )
).pipe(Command.withDescription("Connect to every server and print its state"))

const parseArgs = (text: string) =>
  Effect.try({
    try: (): unknown => JSON.parse(text),
    catch: (e) =>
      new Errors.InvalidConfig({
        path: "--args",
        message: `--args is not valid JSON: ${e instanceof Error ? e.message : String(e)}`
      })
  }).pipe(
    Effect.filterOrFail(
      (v): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v),
      () =>
        new Errors.InvalidConfig({
          path: "--args",
          message: '--args must be a JSON object, e.g. \'{"text":"hi"}\''
        })
    )
  )

/** The root command; `serve` and `agent` join it as they are built. */
export const tether = Command.make("tether").pipe(
  Command.withDescription("Resilient MCP connections: list tools, call them, watch their state"),
  Command.withSubcommands([tools, call, status, serve, agentCommand])
)

const cli = Command.run(tether, { name: "tether", version: VERSION })

const main = Effect.suspend(() => cli(process.argv)).pipe(
  Effect.catchIf(ValidationError.isValidationError, () =>
    Effect.sync(() => {
      // @effect/cli has printed the usage problem already.
      process.exitCode = 2
    })
  ),
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
