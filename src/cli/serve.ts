/**
 * `tether serve`: the HTTP gateway (see `Gateway.ts`) as a long-running process.
 * SIGINT/SIGTERM close it gracefully: the server stops, transports close, children are reaped.
 *
 * @since 0.1.0
 */
import { Command, Options } from "@effect/cli"
import { NodeContext } from "@effect/platform-node"
import { Config as EffectConfig, Effect, Layer, LogLevel, Logger, Option, Redacted, Stream } from "effect"
import * as Config from "../Config.js"
import * as ConnectionState from "../ConnectionState.js"
import * as Gateway from "../Gateway.js"
import * as McpPool from "../McpPool.js"
import * as Prometheus from "../Prometheus.js"
import * as SharedOptions from "./options.js"

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
 * @since 0.1.0
 * @category commands
 */
export const serve = Command.make(
  "serve",
  {
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
  },
  ({ apiKey, config, host, maxBody, port, protectHealth }) =>
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
).pipe(
  Command.withDescription("Serve the configured MCP tools as HTTP, with /health, /metrics and /openapi.json")
)
