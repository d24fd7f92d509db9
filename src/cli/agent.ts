/**
 * `tether agent` (and `scripts/agent.ts`): the bundled agent runner.
 *
 * ```sh
 * TETHER_LLM_BASE_URL=http://localhost:11434/v1 TETHER_LLM_MODEL=qwen2.5 \
 *   tether agent --config mcp.json                     # interactive (readline)
 * tether agent -c mcp.json --prompt "list my files"    # one turn, prints the answer
 * tether agent -c mcp.json --script questions.txt      # one user message a line
 * tether agent -c mcp.json --session 20250101-ab12cd   # resume a session
 * tether agent -c mcp.json --model scripted:examples/agent-demo.replay.json  # offline replay
 * ```
 *
 * One `McpPool` is built for the whole run and shared by every turn. Sessions are saved
 * under `--data-dir` (default `~/.tether`) in `sessions/`, atomically, after every turn;
 * idle ones expire after `--session-ttl` (default 7 days). A runner holds its session
 * (a lock file) while it runs: a second runner on the same session exits at once with 2,
 * naming the holder.
 *
 * Exit codes: 0 ok · 1 a turn failed or could not be saved · 2 usage, config or store
 * error, or the session is in use.
 *
 * @since 0.1.0
 */
import type { LanguageModel } from "@effect/ai"
import { FileSystem } from "@effect/platform"
import type * as PlatformError from "@effect/platform/Error"
import { NodeContext, NodeHttpClient } from "@effect/platform-node"
import {
  Clock,
  Duration,
  Effect,
  FiberRef,
  HashSet,
  Layer,
  Logger,
  LogLevel,
  Option,
  Random,
  Schema,
  type Scope
} from "effect"
import { homedir } from "node:os"
import { join } from "node:path"
import * as Config from "../Config.js"
import type * as Errors from "../Errors.js"
import * as OAuth from "../Auth.js"
import * as McpPool from "../McpPool.js"
import * as Agent from "../agent/Agent.js"
import * as OpenAiCompat from "../agent/OpenAiCompat.js"
import * as ReplayModel from "../agent/ReplayModel.js"
import * as Repl from "./repl.js"
import * as SessionStore from "../agent/SessionStore.js"
import type * as StudioOptions from "./studio.js"
import { attachStudio } from "./studioRun.js"

/**
 * A usage or setup problem of the runner (bad option, no model configured…).
 *
 * @since 0.1.0
 * @category errors
 */
export class AgentSetupError extends Schema.TaggedError<AgentSetupError>()("AgentSetupError", {
  message: Schema.String
}) {}

/**
 * `7d`, `12h`, `30m`, `45s`, `500ms`, `2w`, or an Effect duration (`7 days`).
 *
 * @since 0.1.0
 * @category parsing
 */
export const parseDuration = (text: string): Option.Option<Duration.Duration> => {
  const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)$/.exec(text.trim())
  if (match !== null) {
    const n = Number(match[1])
    const unit = match[2]
    const ms =
      unit === "ms"
        ? n
        : unit === "s"
          ? n * 1000
          : unit === "m"
            ? n * 60_000
            : unit === "h"
              ? n * 3_600_000
              : unit === "d"
                ? n * 86_400_000
                : n * 604_800_000
    return Option.some(Duration.millis(ms))
  }
  return Duration.decodeUnknown(text.trim())
}

const expandHome = (path: string) =>
  path === "~" ? homedir() : path.startsWith("~/") ? join(homedir(), path.slice(2)) : path

/** A new session id: the UTC date and 6 random base-36 characters (`20250101-ab12cd`). */
const newSessionId = Effect.gen(function* () {
  const now = yield* Clock.currentTimeMillis
  const date = new Date(now).toISOString().slice(0, 10).replaceAll("-", "")
  const n = yield* Random.nextIntBetween(0, 36 ** 6)
  return `${date}-${n.toString(36).padStart(6, "0")}`
})

/**
 * The options of one run.
 *
 * @since 0.1.0
 * @category models
 */
export interface RunOptions extends Partial<StudioOptions.AgentStudioOptions> {
  readonly config: Option.Option<string>
  readonly prompt: Option.Option<string>
  readonly script: Option.Option<string>
  readonly session: Option.Option<string>
  readonly dataDir: string
  readonly sessionTtl: string
  readonly model: Option.Option<string>
  readonly maxSteps: number
  readonly system: Option.Option<string>
}

/** The model layer and how to label it: a recording, or an OpenAI-compatible endpoint. */
const selectModel = (
  model: Option.Option<string>
): Effect.Effect<
  {
    readonly info: Agent.ModelInfo
    readonly layer: Layer.Layer<
      LanguageModel.LanguageModel,
      ReplayModel.RecordingError,
      FileSystem.FileSystem
    >
  },
  AgentSetupError
> => {
  if (Option.isSome(model) && model.value.startsWith("scripted:")) {
    const file = model.value.slice("scripted:".length)
    return Effect.succeed({
      info: { label: `replay of ${file}`, replay: true },
      layer: ReplayModel.layerFile(file)
    })
  }
  return OpenAiCompat.config({ model: Option.getOrUndefined(model) }).pipe(
    Effect.mapError(
      () =>
        new AgentSetupError({
          message:
            "no model: set TETHER_LLM_MODEL (and TETHER_LLM_BASE_URL, TETHER_LLM_API_KEY as needed) or pass " +
            "--model NAME; --model scripted:FILE replays a recording offline"
        })
    ),
    Effect.map((options) => ({
      info: { label: `${options.model} @ ${options.baseUrl}`, replay: false },
      layer: OpenAiCompat.layer(options).pipe(Layer.provide(NodeHttpClient.layerUndici))
    }))
  )
}

/**
 * Runs the agent with these options; fails only with setup errors (turn failures are
 * printed and counted). Succeeds with the exit code.
 *
 * @since 0.1.0
 * @category running
 */
export const run = (
  options: RunOptions,
  io: Repl.Io = Repl.nodeIo(process.stdout, process.stderr)
): Effect.Effect<
  number,
  | Errors.InvalidConfig
  | PlatformError.PlatformError
  | SessionStore.SessionStoreError
  | ReplayModel.RecordingError
  | AgentSetupError,
  FileSystem.FileSystem | Scope.Scope
> =>
  Effect.gen(function* () {
    const env = yield* Config.envOverrides
    const configPath = Option.getOrElse(options.config, () => env.configPath ?? "./mcp.json")
    const ttl = yield* Option.match(parseDuration(options.sessionTtl), {
      onNone: () =>
        Effect.fail(
          new AgentSetupError({
            message: `--session-ttl ${JSON.stringify(options.sessionTtl)} is not a duration (e.g. 7d, 12h, 30m)`
          })
        ),
      onSome: Effect.succeed
    })
    if (options.maxSteps < 1) {
      return yield* new AgentSetupError({ message: "--max-steps must be 1 or more" })
    }
    if (Option.isSome(options.prompt) && Option.isSome(options.script)) {
      return yield* new AgentSetupError({ message: "use --prompt or --script, not both" })
    }
    const sessionId = Option.isSome(options.session) ? options.session.value : yield* newSessionId
    if (!SessionStore.isValidId(sessionId)) {
      return yield* new AgentSetupError({
        message: `--session ${JSON.stringify(sessionId)}: use letters, digits, ".", "_" or "-" (at most 128)`
      })
    }
    const script = Option.isSome(options.script)
      ? Option.some(
          yield* Effect.flatMap(FileSystem.FileSystem, (fs) =>
            fs.readFileString(options.script.pipe(Option.getOrThrow))
          ).pipe(
            Effect.mapError(
              (e) =>
                new AgentSetupError({
                  message: `cannot read --script ${Option.getOrThrow(options.script)}: ${e.message}`
                })
            )
          )
        )
      : Option.none<string>()
    const model = yield* selectModel(options.model)
    const tetherConfig = yield* Config.load(configPath)

    const storeDir = join(expandHome(options.dataDir), "sessions")
    const services = Layer.mergeAll(
      // OAuth servers use the tokens `tether auth login` stored (here: under --data-dir).
      McpPool.layer(tetherConfig).pipe(
        Layer.provide(OAuth.layerLazy(join(expandHome(options.dataDir), "auth")))
      ),
      SessionStore.layerFileSystem(storeDir, { ttl }),
      model.layer
    ).pipe(Layer.provide(NodeContext.layer))

    const interactive = Option.isNone(options.prompt) && Option.isNone(script)
    return yield* Effect.gen(function* () {
      // Held before the session is read, so two runners can never write over each other.
      yield* Effect.flatMap(SessionStore.SessionStore, (store) => store.acquire(sessionId))
      const agent = yield* Agent.make({
        sessionId,
        model: model.info,
        maxSteps: options.maxSteps,
        system: Option.getOrUndefined(options.system)
      })
      const studio = yield* attachStudio(agent, {
        studio: options.studio ?? Option.none(),
        studioHeartbeat: options.studioHeartbeat ?? 5_000,
        studioApiKey: options.studioApiKey ?? Option.none(),
        dataDir: options.dataDir
      })
      if (studio && interactive) {
        // Headless: the studio page is the only input.
        yield* io.out(`tether agent · ${yield* Repl.describeSession(agent)} · waiting for the studio`)
        return yield* Effect.never
      }
      if (Option.isSome(options.prompt)) {
        const info = yield* agent.session
        yield* io.err(`session ${info.id}${info.resumed ? ` (resumed, ${info.turns} turn(s))` : " (new)"}`)
        const summary = yield* Repl.runPrompt(agent, io, options.prompt.value)
        return summary.failures > 0 || summary.saveFailures > 0 ? 1 : 0
      }
      yield* io.out(`tether agent · ${yield* Repl.describeSession(agent)}`)
      const summary = interactive
        ? yield* Repl.runInteractive(agent, io, {
            input: process.stdin,
            output: process.stdout,
            terminal: process.stdin.isTTY === true && process.stdout.isTTY === true
          })
        : yield* Repl.runScript(agent, io, Option.getOrThrow(script).split(/\r?\n/))
      if (summary.unsaved) {
        yield* io.err(
          `error: session ${sessionId} was NOT saved: its last turn(s) are lost when this runner ends`
        )
      } else if (summary.saveFailures > 0) {
        yield* io.err(
          `warning: ${summary.saveFailures} save(s) of session ${sessionId} failed; a later save kept every turn`
        )
      } else {
        yield* io.out(`session ${sessionId} saved; resume with --session ${sessionId}`)
      }
      return summary.failures > 0 || summary.saveFailures > 0 ? 1 : 0
    }).pipe(
      Effect.provide(services),
      // Library logs go to stderr (stdout is the conversation), warnings and worse unless
      // TETHER_LOG_LEVEL says otherwise. Every logger is replaced: `NodeRuntime.runMain`
      // installs a pretty one that writes to stdout.
      Effect.locally(FiberRef.currentLoggers, HashSet.make(Logger.withConsoleError(Logger.logfmtLogger))),
      Logger.withMinimumLogLevel(env.logLevel ?? LogLevel.Warning)
    )
  })

/** Prints a setup error (never the API key: errors carry no request headers). */
const describeSetupError = (error: { readonly _tag: string; readonly message: string }): string =>
  `error (${error._tag}): ${error.message}`

/**
 * What `tether agent` does once its options are parsed: runs, prints setup errors, sets the
 * exit code. `agentCommand.ts` loads this module when the command runs.
 *
 * @since 0.1.0
 * @category running
 */
export const main = (options: RunOptions) =>
  Effect.scoped(run(options)).pipe(
    Effect.catchAll((error) =>
      Effect.sync(() => {
        process.stderr.write(`${describeSetupError(error)}\n`)
        return 2
      })
    ),
    Effect.flatMap((code) =>
      Effect.sync(() => {
        process.exitCode = code
      })
    ),
    Effect.provide(NodeContext.layer)
  )
