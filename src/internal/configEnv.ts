/**
 * The `TETHER_*` environment variables, read through the current `ConfigProvider`.
 *
 * @internal
 */
import { Config as EffectConfig, Effect, Either, LogLevel, Option } from "effect"
import type { EnvOverrides } from "../Config.js"
import type { InvalidConfig } from "../Errors.js"
import type * as Resilience from "../Resilience.js"
import { invalid, type Issue } from "./schemaIssues.js"

/** An optional variable read through the current `ConfigProvider`; blank counts as unset. */
const variable = (name: string): Effect.Effect<Option.Option<string>, Issue> =>
  EffectConfig.option(EffectConfig.string(name)).pipe(
    Effect.map(Option.map((s) => s.trim())),
    Effect.map(Option.filter((s) => s.length > 0)),
    Effect.mapError((error): Issue => ({ path: name, message: `cannot be read: ${String(error)}` }))
  )

const wholeNumber =
  (what: string) =>
  (name: string, raw: string): Either.Either<number, Issue> =>
    /^\d+$/.test(raw) && Number.isSafeInteger(Number(raw))
      ? Either.right(Number(raw))
      : Either.left({
          path: name,
          message: `expected a whole number of ${what} (0 or more), got ${JSON.stringify(raw)}`
        })

const LOG_LEVELS: ReadonlyArray<LogLevel.LogLevel> = LogLevel.allLevels

const logLevel = (name: string, raw: string): Either.Either<LogLevel.LogLevel, Issue> => {
  const wanted = raw.toLowerCase()
  const level = LOG_LEVELS.find((l) => l._tag.toLowerCase() === wanted || l.label.toLowerCase() === wanted)
  return level === undefined
    ? Either.left({
        path: name,
        message: `unknown log level ${JSON.stringify(raw)}; expected one of ${LOG_LEVELS.map((l) => l._tag.toLowerCase()).join(", ")}`
      })
    : Either.right(level)
}

const RESILIENCE_VARIABLES: ReadonlyArray<readonly [string, string, string, string]> = [
  ["TETHER_RECONNECT_MAX_ATTEMPTS", "reconnect", "maxAttempts", "attempts"],
  ["TETHER_RECONNECT_INITIAL_DELAY_MS", "reconnect", "initialDelay", "milliseconds"],
  ["TETHER_RECONNECT_MAX_DELAY_MS", "reconnect", "maxDelay", "milliseconds"],
  ["TETHER_HEARTBEAT_INTERVAL_MS", "heartbeat", "interval", "milliseconds"],
  ["TETHER_HEARTBEAT_TIMEOUT_MS", "heartbeat", "timeout", "milliseconds"],
  ["TETHER_CALL_TIMEOUT_MS", "call", "timeout", "milliseconds"],
  ["TETHER_TOOL_MAX_RETRIES", "call", "maxRetries", "retries"]
]

/** @internal The `TETHER_*` variables, read through the current `ConfigProvider`. */
export const envOverrides: Effect.Effect<EnvOverrides, InvalidConfig> = Effect.gen(function* () {
  const issues: Array<Issue> = []
  const read = <A>(
    name: string,
    decode: (name: string, raw: string) => Either.Either<A, Issue>
  ): Effect.Effect<A | undefined> =>
    variable(name).pipe(
      Effect.flatMap(
        Option.match({
          onNone: () => Either.right(undefined),
          onSome: (raw) => decode(name, raw)
        })
      ),
      Effect.catchAll((issue) =>
        Effect.sync(() => {
          issues.push(issue)
          return undefined
        })
      )
    )

  const configPath = yield* read("TETHER_CONFIG", (_, raw) => Either.right(raw))
  const level = yield* read("TETHER_LOG_LEVEL", logLevel)
  const resilience: Record<string, Record<string, number>> = {}
  for (const [name, group, key, what] of RESILIENCE_VARIABLES) {
    const value = yield* read(name, wholeNumber(what))
    if (value !== undefined) resilience[group] = { ...resilience[group], [key]: value }
  }
  if (issues.length > 0) return yield* Either.left(invalid("invalid environment", issues))
  return {
    configPath,
    logLevel: level,
    // Each value is a whole number ≥ 0, valid for the field it sets.
    resilience: resilience as Resilience.PolicyInput
  }
})
