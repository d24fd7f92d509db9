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
import type { AgentStudioOptions, StudioOptions } from "./studio.js"

const expandHome = (path: string) =>
  path === "~" ? homedir() : path.startsWith("~/") ? join(homedir(), path.slice(2)) : path

const isLoopback = (host: string) => host === "127.0.0.1" || host === "::1" || host === "localhost"

/** The key from the option, else `TETHER_API_KEY`; an empty one is none. */
const resolveKey = (option: Option.Option<Redacted.Redacted<string>>) =>
  Effect.gen(function* () {
    const envKey = yield* EffectConfig.option(EffectConfig.redacted("TETHER_API_KEY")).pipe(Effect.orDie)
    return Option.orElse(option, () => envKey).pipe(
      Option.filter((k) => Redacted.value(k).length > 0),
      Option.getOrUndefined
    )
  })

const usage = (message: string) =>
  Effect.sync(() => {
    process.stderr.write(`error: ${message}\n`)
    process.exitCode = 2
  })

/**
 * Runs the studio until SIGINT/SIGTERM.
 *
 * @since 0.1.0
 * @category running
 */
export const run = ({ apiKey, dataDir, deliveryTimeout, heartbeat, host, port }: StudioOptions) =>
  Effect.gen(function* () {
    const env = yield* Config.envOverrides
    const key = yield* resolveKey(apiKey)
    if (key === undefined && !isLoopback(host)) {
      return yield* usage(
        `--host ${host} is reachable beyond this machine; give --api-key (or TETHER_API_KEY)`
      )
    }
    if (heartbeat < 50 || deliveryTimeout < 0) {
      return yield* usage("--heartbeat must be 50 ms or more, --delivery-timeout 0 or more")
    }
    const app = Studio.layer({
      host,
      port,
      pageHeartbeatMs: heartbeat,
      deliveryTimeoutMs: deliveryTimeout,
      apiKey: key,
      dataDir: Option.map(dataDir, expandHome).pipe(Option.getOrUndefined)
    }).pipe(Layer.provide(NodeContext.layer))
    return yield* Layer.launch(app).pipe(Logger.withMinimumLogLevel(env.logLevel ?? LogLevel.Info))
  })

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
    const apiKey = yield* resolveKey(options.studioApiKey)
    yield* Studio.attach(agent, {
      url: options.studio.value,
      heartbeatMs: Math.max(50, options.studioHeartbeat),
      apiKey,
      idsFile: join(expandHome(options.dataDir), "studio", `${agent.sessionId}.ids.json`)
    })
    return true
  })
