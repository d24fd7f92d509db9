/**
 * What `tether proxy` does once its options are parsed. Logs go to stderr: stdout carries
 * the protocol in stdio mode.
 *
 * @since 0.1.0
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { Console, Effect, Layer, LogLevel, Logger, Option } from "effect"
import * as Config from "../Config.js"
import * as McpPool from "../McpPool.js"
import * as Proxy from "../Proxy.js"
import * as Auth from "./auth.js"
import { exitCodeOf, formatError } from "./format.js"
import type { ProxyOptions } from "./proxy.js"

/**
 * Serves until stdin closes (stdio) or the process is told to stop (HTTP).
 *
 * @since 0.1.0
 * @category running
 */
export const run = ({
  allowedHost,
  allowedOrigin,
  apiKey,
  apiKeyFile,
  config,
  host,
  maxBody,
  noAuth,
  port,
  stateless
}: ProxyOptions) =>
  Effect.gen(function* () {
    const env = yield* Config.envOverrides
    const path = Option.getOrElse(config, () => env.configPath ?? "./mcp.json")
    const loaded = yield* Config.load(path)
    // Upstream elicitation, sampling and roots requests are asked of the downstream client.
    const relay = Proxy.relay()
    const core = Proxy.layer({ prefixes: Proxy.prefixesOf(loaded), relay }).pipe(
      Layer.provide(McpPool.layer({ ...loaded, ...relay.handlers }))
    )
    // stdout is the protocol in stdio mode: every log line goes to stderr.
    const logger = Logger.replace(Logger.defaultLogger, Logger.withConsoleError(Logger.logfmtLogger))
    const serve = Option.isNone(port)
      ? // Until the client closes stdin; then the pool closes and its children are reaped.
        Proxy.serveStdio.pipe(Effect.provide(core))
      : Effect.flatMap(Auth.resolveApiKey({ apiKey, apiKeyFile, noAuth }, { host }), (key) =>
          Layer.launch(
            Proxy.layerHttp({
              host,
              port: port.value,
              apiKey: key,
              maxBodyBytes: maxBody,
              allowedHosts: allowedHost,
              allowedOrigins: allowedOrigin,
              stateless
            }).pipe(Layer.provide(core))
          )
        )
    return yield* serve.pipe(
      Effect.provide(logger),
      Logger.withMinimumLogLevel(env.logLevel ?? LogLevel.Warning)
    )
  }).pipe(
    // A bad config or API key file is a usage error: said plainly (stderr), exit code 2.
    Effect.catchTag("InvalidConfig", (error) =>
      Effect.zipRight(
        Console.error(formatError(error)),
        Effect.sync(() => {
          process.exitCode = exitCodeOf(error)
        })
      )
    ),
    Effect.provide(NodeContext.layer)
  )
