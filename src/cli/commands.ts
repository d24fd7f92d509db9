/**
 * What `tether tools|call|status` do once their arguments are parsed. `main.ts` loads this
 * module only when one of them runs (it brings in the pool and the MCP SDK), so `tether --help`
 * parses and starts without them.
 *
 * @since 0.1.0
 */
import { Console, Effect, Option, Schedule } from "effect"
import * as Errors from "../Errors.js"
import * as McpPool from "../McpPool.js"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as OAuth from "../Auth.js"
import { excerpt } from "../internal/redact.js"
import { exitWith, failWith, loadConfig, setExitCode } from "./common.js"
import { errorJson, exitCodeOf, formatStatus, formatTools, renderResult, statusJson } from "./format.js"

/** Builds the pool from the config for the length of one command. */
const withPool = <A, E>(
  config: Option.Option<string>,
  use: (pool: McpPool.McpPool) => Effect.Effect<A, E>
): Effect.Effect<A, E | Errors.InvalidConfig, never> =>
  Effect.gen(function* () {
    const loaded = yield* loadConfig(config)
    // OAuth servers read and renew the tokens `tether auth login` stored.
    return yield* Effect.scoped(Effect.flatMap(McpPool.make(loaded), use)).pipe(
      Effect.provide(OAuth.layerDefault)
    )
  }).pipe(Effect.provide(NodeContext.layer))

/**
 * Required servers that are not Ready, one line each (`error (SpawnFailed): broken: …`):
 * `tools` and `status` print what they have, then exit 3 when there is any, so a script
 * never reads an empty catalog as success.
 */
const unavailableRequired = (pool: McpPool.McpPool, only: string | undefined) =>
  Effect.map(pool.status, (all) =>
    all
      .filter((s) => (only === undefined || s.server === only) && !s.optional && s.state !== "Ready")
      .map((s) =>
        s.lastError === undefined
          ? `error (ServerUnavailable): ${s.server} is not ready (${s.state})`
          : `error (${s.lastError.tag}): ${s.server} is not ready (${s.state}): ${excerpt(s.lastError.message, 300)}`
      )
  )

/** A command's result with the required servers that were not Ready when it ended. */
interface Checked<A> {
  readonly value: A
  readonly unavailable: ReadonlyArray<string>
}

const checked = <A, E>(
  pool: McpPool.McpPool,
  effect: Effect.Effect<A, E>,
  only?: string
): Effect.Effect<Checked<A>, E> =>
  Effect.zipWith(effect, unavailableRequired(pool, only), (value, unavailable) => ({ value, unavailable }))

/** Prints, then sets the exit code; expected errors never show a stack trace. */
const report = <A>(
  json: boolean,
  effect: Effect.Effect<A, Errors.TetherError>,
  render: (a: A) => string,
  toJson: (a: A) => unknown,
  unavailable: (a: A) => ReadonlyArray<string> = () => []
) =>
  Effect.matchEffect(effect, {
    onSuccess: (a) =>
      Effect.zipRight(
        json ? Console.log(JSON.stringify(toJson(a), null, 2)) : Console.log(render(a)),
        unavailable(a).length === 0 ? Effect.void : exitWith(unavailable(a).join("\n"), 3)
      ),
    onFailure: (error) =>
      json
        ? Effect.zipRight(
            Console.log(JSON.stringify(errorJson(error), null, 2)),
            setExitCode(exitCodeOf(error))
          )
        : failWith(error)
  })

/**
 * `tether tools`.
 *
 * @since 0.1.0
 * @category commands
 */
export const tools = ({
  config,
  json,
  server,
  wait
}: {
  readonly config: Option.Option<string>
  readonly json: boolean
  readonly server: Option.Option<string>
  readonly wait: number
}) =>
  report(
    json,
    withPool(config, (pool) =>
      checked(
        pool,
        pool.tools({ server: Option.getOrUndefined(server), timeout: wait }),
        Option.getOrUndefined(server)
      )
    ),
    (c) => formatTools(c.value),
    (c) =>
      c.value.map((e) => ({
        name: e.name,
        server: e.server,
        description: e.tool.description,
        inputSchema: e.tool.inputSchema
      })),
    (c) => c.unavailable
  )

/**
 * `tether call`.
 *
 * @since 0.1.0
 * @category commands
 */
export const call = ({
  args,
  config,
  json,
  server,
  timeout,
  tool
}: {
  readonly args: string
  readonly config: Option.Option<string>
  readonly json: boolean
  readonly server: string
  readonly timeout: Option.Option<number>
  readonly tool: string
}) =>
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

/**
 * `tether status`.
 *
 * @since 0.1.0
 * @category commands
 */
export const status = ({
  config,
  json,
  wait
}: {
  readonly config: Option.Option<string>
  readonly json: boolean
  readonly wait: number
}) =>
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
        return yield* checked(pool, pool.status)
      })
    ),
    (c) => formatStatus(c.value),
    (c) => c.value.map(statusJson),
    (c) => c.unavailable
  )

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
