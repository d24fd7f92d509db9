/**
 * How a listening command (`tether serve`, and others that take `SharedOptions.auth`)
 * turns `--api-key`, `--api-key-file`, `--no-auth` and `TETHER_API_KEY` into its API key.
 * Loaded when the command runs, not for `--help`.
 *
 * @since 0.1.0
 */
import { FileSystem } from "@effect/platform"
import { Config as EffectConfig, Console, Effect, Option, Redacted } from "effect"
import * as Errors from "../Errors.js"

/**
 * What `SharedOptions.auth` parses to.
 *
 * @since 0.1.0
 * @category models
 */
export interface AuthInput {
  readonly apiKey: Option.Option<Redacted.Redacted<string>>
  readonly apiKeyFile: Option.Option<string>
  readonly noAuth: boolean
}

/**
 * Whether `host` only accepts connections from this machine.
 *
 * @since 0.1.0
 * @category utils
 */
export const isLoopback = (host: string): boolean => {
  const h = host.replace(/^\[(.*)\]$/, "$1").toLowerCase()
  return h === "localhost" || h === "::1" || /^127(\.\d{1,3}){3}$/.test(h)
}

const usage = (path: string, message: string) => new Errors.InvalidConfig({ path, message })

/**
 * The API key a listening command uses: `--api-key`, else `--api-key-file`, else
 * `TETHER_API_KEY`; `undefined` when there is none. An empty key (an unset variable
 * expanded to `""`) is refused unless `--no-auth` says "no key" on purpose, and giving a
 * key together with `--no-auth` is refused too. Serving a non-loopback `host` without a
 * key prints a warning on stderr.
 *
 * @since 0.1.0
 * @category utils
 */
export const resolveApiKey = (
  input: AuthInput,
  bind: { readonly host: string }
): Effect.Effect<Redacted.Redacted<string> | undefined, Errors.InvalidConfig, FileSystem.FileSystem> =>
  Effect.gen(function* () {
    if (Option.isSome(input.apiKey) && Option.isSome(input.apiKeyFile)) {
      return yield* usage("--api-key-file", "give --api-key or --api-key-file, not both")
    }
    if (input.noAuth && (Option.isSome(input.apiKey) || Option.isSome(input.apiKeyFile))) {
      return yield* usage(
        "--no-auth",
        `--no-auth contradicts ${Option.isSome(input.apiKey) ? "--api-key" : "--api-key-file"}; give one of them`
      )
    }
    const key = input.noAuth ? undefined : yield* keyFrom(input)
    if (key === undefined && !isLoopback(bind.host)) {
      yield* Console.error(
        `WARNING: listening on ${bind.host} without an API key: anyone who can reach this address can call every tool. ` +
          `Use --api-key-file FILE (or --api-key), or bind 127.0.0.1.`
      )
    }
    return key
  })

const empty = (from: string) =>
  usage(
    from,
    `${from} is empty (an unset variable?): give a key, --api-key-file FILE, or --no-auth to serve without one`
  )

const keyFrom = (input: AuthInput) =>
  Effect.gen(function* () {
    if (Option.isSome(input.apiKey)) {
      const key = input.apiKey.value
      if (Redacted.value(key).trim() === "") return yield* empty("--api-key")
      return key
    }
    if (Option.isSome(input.apiKeyFile)) {
      const path = input.apiKeyFile.value
      const fs = yield* FileSystem.FileSystem
      const text = yield* fs
        .readFileString(path)
        .pipe(
          Effect.mapError((e) =>
            usage("--api-key-file", `could not read the API key file ${path}: ${e.message}`)
          )
        )
      // A trailing newline is what `echo key > file` writes; it is not part of the key.
      const key = text.trim()
      if (key === "") return yield* usage("--api-key-file", `the API key file ${path} is empty`)
      return Redacted.make(key)
    }
    const env = yield* EffectConfig.option(EffectConfig.redacted("TETHER_API_KEY")).pipe(Effect.orDie)
    if (Option.isNone(env)) return undefined
    if (Redacted.value(env.value).trim() === "") return yield* empty("TETHER_API_KEY")
    return env.value
  })
