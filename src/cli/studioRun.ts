/**
 * What `tether studio` runs, and how `tether agent --studio` attaches (loaded only then).
 *
 * @since 0.1.0
 */
import type { FileSystem } from "@effect/platform"
import { NodeContext } from "@effect/platform-node"
import { Config as EffectConfig, Effect, Layer, LogLevel, Logger, Option, Redacted, type Scope } from "effect"
import { homedir } from "node:os"
import { join } from "node:path"
import type * as Agent from "../agent/Agent.js"
import * as Config from "../Config.js"
import * as Studio from "../Studio.js"
import * as Auth from "./auth.js"
import { exitWith, listenFailure } from "./common.js"
import { formatError } from "./format.js"
import type { AgentStudioOptions, StudioOptions } from "./studio.js"

const expandHome = (path: string) =>
  path === "~" ? homedir() : path.startsWith("~/") ? join(homedir(), path.slice(2)) : path

/** The runner's key: `--studio-api-key`, else `TETHER_API_KEY`; an empty one is none. */
const resolveRunnerKey = (option: Option.Option<Redacted.Redacted<string>>) =>
  Effect.gen(function* () {
    const envKey = yield* EffectConfig.option(EffectConfig.redacted("TETHER_API_KEY")).pipe(Effect.orDie)
    return Option.orElse(option, () => envKey).pipe(
      Option.filter((k) => Redacted.value(k).length > 0),
      Option.getOrUndefined
    )
  })

/**
 * Runs the studio until SIGINT/SIGTERM.
 *
 * @since 0.1.0
 * @category running
 */
export const run = (options: StudioOptions) =>
  Effect.gen(function* () {
    const env = yield* Config.envOverrides
    if (options.heartbeat < 50 || options.deliveryTimeout < 0) {
      return yield* exitWith("error: --heartbeat must be 50 ms or more, --delivery-timeout 0 or more", 2)
    }
    // The same key rules as `tether serve` (an empty key is refused; none beyond loopback warns).
    const key = yield* Auth.resolveApiKey(options, options)
    const app = Studio.layer({
      host: options.host,
      port: options.port,
      pageHeartbeatMs: options.heartbeat,
      deliveryTimeoutMs: options.deliveryTimeout,
      apiKey: key,
      dataDir: Option.map(options.dataDir, expandHome).pipe(Option.getOrUndefined)
    })
    return yield* Layer.launch(app).pipe(Logger.withMinimumLogLevel(env.logLevel ?? LogLevel.Info))
  }).pipe(
    Effect.provide(NodeContext.layer),
    Effect.catchAll((error) =>
      exitWith(
        error._tag === "ServeError"
          ? listenFailure(error, options.host, options.port)
          : error._tag === "InvalidConfig"
            ? formatError(error)
            : `error (${error._tag}): ${error.message}`,
        2
      )
    )
  )

/**
 * Attaches the agent to the studio when `--studio` is given, for the scope's life. Returns
 * whether it did. Message ids are kept under `<data-dir>/studio/`.
 *
 * @since 0.1.0
 * @category running
 */
export const attachStudio = (
  agent: Agent.Agent,
  options: AgentStudioOptions & { readonly dataDir: string }
): Effect.Effect<boolean, never, Scope.Scope | FileSystem.FileSystem> =>
  Effect.gen(function* () {
    if (Option.isNone(options.studio)) return false
    const apiKey = yield* resolveRunnerKey(options.studioApiKey)
    yield* Studio.attach(agent, {
      url: options.studio.value,
      heartbeatMs: Math.max(50, options.studioHeartbeat),
      apiKey,
      idsFile: join(expandHome(options.dataDir), "studio", `${agent.sessionId}.ids.json`)
    })
    return true
  })
