/**
 * What `tether proxy` does once its options are parsed. Logs go to stderr: stdout carries
 * the protocol in stdio mode.
 *
 * @since 0.1.0
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { Effect, Layer, LogLevel, Logger, Option } from "effect"
import * as Config from "../Config.js"
import * as McpPool from "../McpPool.js"
import * as Proxy from "../Proxy.js"
import * as Auth from "./auth.js"
import { exitWith, failWith, listenFailure, loadConfig } from "./common.js"
import type { ProxyOptions } from "./proxy.js"

/**
 * Serves until stdin closes (stdio) or the process is told to stop (HTTP).
 *
 * @since 0.1.0
 * @category running
 */
export const run = (options: ProxyOptions) =>
  Effect.gen(function* () {
    const env = yield* Config.envOverrides
    const loaded = yield* loadConfig(options.config)
    // Upstream elicitation, sampling and roots requests are asked of the downstream client.
    const relay = Proxy.relay()
    const core = Proxy.layer({ prefixes: Proxy.prefixesOf(loaded), relay }).pipe(
      Layer.provide(McpPool.layer({ ...loaded, ...relay.handlers }))
    )
    // stdout is the protocol in stdio mode: every log line goes to stderr.
    const logger = Logger.replace(Logger.defaultLogger, Logger.withConsoleError(Logger.logfmtLogger))
    const port = options.port
    const serve = Option.isNone(port)
      ? // Until the client closes stdin; then the pool closes and its children are reaped.
        Proxy.serveStdio.pipe(Effect.provide(core))
      : Effect.flatMap(Auth.resolveApiKey(options, options), (key) =>
          Layer.launch(
            Proxy.layerHttp({
              host: options.host,
              port: port.value,
              apiKey: key,
              maxBodyBytes: options.maxBody,
              allowedHosts: options.allowedHost,
              allowedOrigins: options.allowedOrigin,
              stateless: options.stateless
            }).pipe(Layer.provide(core))
          )
        )
    return yield* serve.pipe(
      Effect.provide(logger),
      Logger.withMinimumLogLevel(env.logLevel ?? LogLevel.Warning)
    )
  }).pipe(
    // A bad config or API key file is a usage error, and so is a port that cannot be
    // listened on: said plainly in one line (stderr), exit code 2.
    Effect.catchTags({
      InvalidConfig: failWith,
      ServeError: (error) =>
        exitWith(
          listenFailure(
            error,
            options.host,
            Option.getOrElse(options.port, () => 0)
          ),
          2
        )
    }),
    Effect.provide(NodeContext.layer)
  )
