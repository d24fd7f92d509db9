/**
 * What the commands' code shares once their options are parsed: which mcp.json they load,
 * and how they end on an expected failure (one line on stderr, an exit code, no stack
 * trace). Loaded with the command that runs, not for `tether --help`.
 *
 * @since 0.1.0
 */
import type { FileSystem, HttpServerError } from "@effect/platform"
import { Console, Effect, Option } from "effect"
import * as Config from "../Config.js"
import type * as Errors from "../Errors.js"
import { excerpt } from "../internal/redact.js"
import { exitCodeOf, formatError } from "./format.js"

/**
 * Loads the mcp.json of `--config`, else `TETHER_CONFIG`, else `./mcp.json`.
 *
 * @since 0.1.0
 * @category config
 */
export const loadConfig = (
  config: Option.Option<string>
): Effect.Effect<Config.TetherConfig, Errors.InvalidConfig, FileSystem.FileSystem> =>
  Effect.flatMap(Config.envOverrides, (env) =>
    Config.load(Option.getOrElse(config, () => env.configPath ?? "./mcp.json"))
  )

/**
 * Sets the exit code the process ends with (it goes on until its work is done).
 *
 * @since 0.1.0
 * @category exit
 */
export const setExitCode = (code: number): Effect.Effect<void> =>
  Effect.sync(() => {
    process.exitCode = code
  })

/**
 * Prints `message` on stderr and sets the process's exit code.
 *
 * @since 0.1.0
 * @category exit
 */
export const exitWith = (message: string, code: number): Effect.Effect<void> =>
  Effect.zipRight(Console.error(message), setExitCode(code))

/**
 * Prints a Tether error for a human and sets its exit code (see `exitCodeOf`).
 *
 * @since 0.1.0
 * @category exit
 */
export const failWith = (error: Errors.TetherError): Effect.Effect<void> =>
  exitWith(formatError(error), exitCodeOf(error))

const codeOf = (cause: unknown): string | undefined =>
  typeof cause === "object" && cause !== null && "code" in cause && typeof cause.code === "string"
    ? cause.code
    : undefined

/**
 * One line for a listen failure, naming the address.
 *
 * @since 0.1.0
 * @category exit
 */
export const listenFailure = (error: HttpServerError.ServeError, host: string, port: number): string => {
  const where = `${host}:${port}`
  switch (codeOf(error.cause)) {
    case "EADDRINUSE":
      return `error (PortInUse): port ${port} on ${host} is already in use; stop what listens there or pick another --port`
    case "EACCES":
      return `error (PermissionDenied): not allowed to listen on ${where} (ports below 1024 need privileges); pick another --port`
    case "EADDRNOTAVAIL":
      return `error (AddressNotAvailable): ${host} is not an address of this machine; check --host`
    default:
      return `error (ListenFailed): could not listen on ${where}: ${excerpt(String(error.cause), 300)}`
  }
}

/**
 * Ends a command that listens: a listen failure or a usage error exits 2, any other Tether
 * error with its own exit code.
 *
 * @since 0.1.0
 * @category exit
 */
export const failListening =
  (host: string, port: number) =>
  (error: Errors.TetherError | HttpServerError.ServeError): Effect.Effect<void> =>
    error._tag === "ServeError" ? exitWith(listenFailure(error, host, port), 2) : failWith(error)
