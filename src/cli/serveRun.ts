/**
 * What `tether serve` does once its options are parsed (`serve.ts` loads this module when the
 * command runs, so the gateway's code is not parsed for `tether --help`).
 *
 * @since 0.1.0
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as OAuth from "../Auth.js"
import { Effect, Layer, LogLevel, Logger, Stream } from "effect"
import * as Config from "../Config.js"
import * as ConnectionState from "../ConnectionState.js"
import * as Gateway from "../Gateway.js"
import * as McpPool from "../McpPool.js"
import * as Prometheus from "../Prometheus.js"
import { excerpt } from "../internal/redact.js"
import * as Auth from "./auth.js"
import { failListening, loadConfig } from "./common.js"
import * as Proxy from "../Proxy.js"
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

/** Log lines pass through the same redaction as error bodies: no URL password, no token. */
const redactMessage = (message: unknown): unknown =>
  typeof message === "string"
    ? excerpt(message, 4_000)
    : Array.isArray(message)
      ? message.map((m: unknown) => (typeof m === "string" ? excerpt(m, 4_000) : m))
      : message

/**
 * Pretty lines on a terminal; otherwise one JSON object a line on stdout, which is what
 * log collectors read. (`Logger.jsonLogger` only formats; it needs a console to print.)
 */
const loggerLayer = (tty: boolean) =>
  Logger.replace(
    Logger.prettyLoggerDefault,
    Logger.mapInput(
      tty ? Logger.prettyLoggerDefault : Logger.withConsoleLog(Logger.jsonLogger),
      redactMessage
    )
  )

/**
 * Runs the gateway until the process is told to stop. Expected failures (a bad config, an
 * empty API key, a port in use) are one line on stderr and exit 2, like every other command.
 *
 * @since 0.1.0
 * @category running
 */
export const run = (options: ServeOptions) =>
  Effect.gen(function* () {
    const env = yield* Config.envOverrides
    const key = yield* Auth.resolveApiKey(options, options)
    const loaded = yield* loadConfig(options.config)
    // OAuth servers read and renew the tokens `tether auth login` stored.
    const pool = McpPool.layer(loaded).pipe(
      Layer.provide(OAuth.layerDefault),
      Layer.provide(NodeContext.layer)
    )
    // The MCP endpoint of `tether proxy`, mounted at /mcp with the same key and body limit.
    const gateway = Layer.unwrapScoped(
      Effect.map(Proxy.httpHandler({ apiKey: key, maxBodyBytes: options.maxBody }), (mcp) =>
        Gateway.layer({
          host: options.host,
          port: options.port,
          apiKey: key,
          healthOpen: !options.protectHealth,
          maxBodyBytes: options.maxBody,
          waitReadyMs: options.waitReady,
          mcp
        })
      )
    ).pipe(Layer.provide(Proxy.layer({ prefixes: Proxy.prefixesOf(loaded) })))
    const app = Layer.mergeAll(gateway, Layer.scopedDiscard(logTransitions)).pipe(
      Layer.provide(Layer.merge(pool, Prometheus.layer))
    )
    return yield* Layer.launch(app).pipe(
      Effect.provide(loggerLayer(process.stdout.isTTY === true)),
      Logger.withMinimumLogLevel(env.logLevel ?? LogLevel.Info)
    )
  }).pipe(Effect.provide(NodeContext.layer), Effect.catchAll(failListening(options.host, options.port)))
