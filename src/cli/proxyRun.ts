/**
 * What `tether proxy` does once its options are parsed. Logs go to stderr: stdout carries
 * the protocol in stdio mode.
 *
 * @since 0.1.0
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { FileSystem } from "@effect/platform"
import { Config as EffectConfig, Console, Effect, Layer, LogLevel, Logger, Option, Redacted } from "effect"
import * as Config from "../Config.js"
import * as Errors from "../Errors.js"
import * as McpPool from "../McpPool.js"
import * as Proxy from "../Proxy.js"
import { exitCodeOf, formatError } from "./format.js"
import type { ProxyOptions } from "./proxy.js"

/**
 * The API key from `--api-key`, else `--api-key-file` (first line), else `TETHER_API_KEY`;
 * blank means none. Separate so `tether serve` and `tether proxy` can share one reading.
 *
 * @since 0.1.0
 * @category options
 */
export const resolveApiKey = (
  flag: Option.Option<Redacted.Redacted<string>>,
  file: Option.Option<string>
): Effect.Effect<Redacted.Redacted<string> | undefined, Errors.InvalidConfig, FileSystem.FileSystem> =>
  Effect.gen(function* () {
    if (Option.isSome(flag)) return nonBlank(flag.value)
    if (Option.isSome(file)) {
      const fs = yield* FileSystem.FileSystem
      const text = yield* fs.readFileString(file.value).pipe(
        Effect.mapError(
          (e) =>
            new Errors.InvalidConfig({
              path: "--api-key-file",
              message: `could not read the API key file ${file.value}: ${e.message}`
            })
        )
      )
      const key = nonBlank(Redacted.make(text.split(/\r?\n/)[0]!.trim()))
      if (key === undefined) {
        return yield* new Errors.InvalidConfig({
          path: "--api-key-file",
          message: `the API key file ${file.value} is empty`
        })
      }
      return key
    }
    const env = yield* EffectConfig.option(EffectConfig.redacted("TETHER_API_KEY")).pipe(Effect.orDie)
    return Option.isSome(env) ? nonBlank(env.value) : undefined
  })

const nonBlank = (key: Redacted.Redacted<string>) => (Redacted.value(key).trim().length > 0 ? key : undefined)

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
  port,
  stateless
}: ProxyOptions) =>
  Effect.gen(function* () {
    const env = yield* Config.envOverrides
    const path = Option.getOrElse(config, () => env.configPath ?? "./mcp.json")
    const loaded = yield* Config.load(path)
    // Upstream elicitation requests are asked of the downstream client.
    const relay = Proxy.elicitationRelay()
    const core = Proxy.layer({ prefixes: Proxy.prefixesOf(loaded), relay }).pipe(
      Layer.provide(McpPool.layer({ ...loaded, elicitation: relay.handler }))
    )
    // stdout is the protocol in stdio mode: every log line goes to stderr.
    const logger = Logger.replace(Logger.defaultLogger, Logger.withConsoleError(Logger.logfmtLogger))
    const serve = Option.isNone(port)
      ? // Until the client closes stdin; then the pool closes and its children are reaped.
        Proxy.serveStdio.pipe(Effect.provide(core))
      : Effect.flatMap(resolveApiKey(apiKey, apiKeyFile), (key) =>
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
