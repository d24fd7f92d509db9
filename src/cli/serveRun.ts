/**
 * What `tether serve` does once its options are parsed (`serve.ts` loads this module when the
 * command runs, so the gateway's code is not parsed for `tether --help`).
 *
 * @since 0.1.0
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { Config as EffectConfig, Effect, Layer, LogLevel, Logger, Option, Redacted, Stream } from "effect"
import * as Config from "../Config.js"
import * as ConnectionState from "../ConnectionState.js"
import * as Gateway from "../Gateway.js"
import * as McpPool from "../McpPool.js"
import * as Prometheus from "../Prometheus.js"
import type { ServeOptions } from "./serve.js"

/** Logs every default connection's state changes at Info (operators read these). */
const logTransitions = Effect.gen(function* () {
  const pool = yield* McpPool.McpPool
  for (const server of pool.servers) {
    yield* Effect.scoped(pool.connection(server)).pipe(
      Effect.flatMap((conn) =>
        conn.changes.pipe(
          Stream.runForEach((s) => Effect.logInfo(`${server}: ${ConnectionState.describe(s)}`)),
          Effect.annotateLogs("server", server)
        )
      ),
      Effect.catchAll((e) => Effect.logWarning(`${server}: ${e.message}`)),
      Effect.forkScoped
    )
  }
})

/**
 * Runs the gateway until the process is told to stop.
 *
 * @since 0.1.0
 * @category running
 */
export const run = ({ apiKey, config, host, maxBody, port, protectHealth }: ServeOptions) =>
  Effect.gen(function* () {
    const env = yield* Config.envOverrides
    const envKey = yield* EffectConfig.option(EffectConfig.redacted("TETHER_API_KEY")).pipe(Effect.orDie)
    const key = Option.orElse(apiKey, () => envKey).pipe(
      Option.filter((k) => Redacted.value(k).length > 0),
      Option.getOrUndefined
    )
    const path = Option.getOrElse(config, () => env.configPath ?? "./mcp.json")
    const pool = McpPool.layerFromFile(path).pipe(Layer.provide(NodeContext.layer))
    const app = Layer.mergeAll(
      Gateway.layer({ host, port, apiKey: key, healthOpen: !protectHealth, maxBodyBytes: maxBody }),
      Layer.scopedDiscard(logTransitions)
    ).pipe(Layer.provide(Layer.merge(pool, Prometheus.layer)))
    // Machines read the logs when stdout is not a terminal: one JSON object a line.
    const logger = process.stdout.isTTY
      ? Layer.empty
      : Logger.replace(Logger.prettyLoggerDefault, Logger.jsonLogger)
    return yield* Layer.launch(app).pipe(
      Effect.provide(logger),
      Logger.withMinimumLogLevel(env.logLevel ?? LogLevel.Info)
    )
  })
