/**
 * The resilience policy of a connection, as plain data (a Schema, so it can come from
 * `mcp.json` or env vars), and the Effect `Schedule` built from it.
 *
 * Durations are milliseconds. JSON may give a number (`250`) or a duration string
 * (`"250 millis"`, `"5 seconds"`).
 *
 * @since 0.1.0
 */
import { Duration, type Either, Option, ParseResult, Schedule, Schema } from "effect"
import { globalValue } from "effect/GlobalValue"
import type { InvalidConfig } from "./Errors.js"
import { decodeOrInvalid } from "./internal/schemaIssues.js"

const DurationString = Schema.transformOrFail(Schema.String, Schema.Number, {
  strict: true,
  decode: (s, _, ast) =>
    Option.match(Duration.decodeUnknown(s.trim()), {
      onNone: () =>
        ParseResult.fail(
          new ParseResult.Type(
            ast,
            s,
            `${JSON.stringify(s)} is not a duration; use milliseconds or e.g. "5 seconds"`
          )
        ),
      onSome: (d) => ParseResult.succeed(Duration.toMillis(d))
    }),
  encode: (n) => ParseResult.succeed(`${n} millis`)
})

/**
 * Milliseconds, from a number or a duration string such as `"5 seconds"`; never negative.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Millis = Schema.Union(Schema.Number, DurationString).pipe(
  Schema.filter((n) => (Number.isFinite(n) && n >= 0) || `expected a duration of 0 ms or more, got ${n}`)
)

const Count = (min: number) =>
  Schema.Number.pipe(
    Schema.filter((n) => (Number.isInteger(n) && n >= min) || `expected a whole number ≥ ${min}, got ${n}`)
  )

const withDefault = <S extends Schema.Schema.Any>(schema: S, value: Schema.Schema.Type<S>) =>
  Schema.optionalWith(schema, { default: () => value })

/**
 * How the supervisor reconnects: the first retry is immediate, then exponential from
 * `initialDelay` by `factor`, capped at `fastMaxDelay` for the first `fastFor` of an outage
 * (most outages are a restart or a short gateway blip: they end within seconds, and a
 * retry comes at most `fastMaxDelay` after the server is back) and at `maxDelay` after
 * that (no fast phase when `initialDelay` is above `fastMaxDelay`); each delay shortened by a random part of up to `jitter` (0–1); bounded by
 * `maxAttempts` and/or `maxElapsed` (null = unbounded); the count starts again once a
 * connection has stayed up for `resetAfter`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Reconnect = Schema.Struct({
  initialDelay: withDefault(Millis, 100),
  factor: withDefault(
    Schema.Number.pipe(Schema.filter((n) => n >= 1 || `factor must be ≥ 1, got ${n}`)),
    1.5
  ),
  maxDelay: withDefault(Millis, 2_000),
  fastFor: withDefault(Millis, 10_000),
  fastMaxDelay: withDefault(Millis, 400),
  jitter: withDefault(
    Schema.Number.pipe(
      Schema.filter((n) => (n >= 0 && n <= 1) || `jitter must be between 0 and 1, got ${n}`)
    ),
    0.2
  ),
  maxAttempts: withDefault(Schema.NullOr(Count(0)), null),
  maxElapsed: withDefault(Schema.NullOr(Millis), 300_000),
  resetAfter: withDefault(Millis, 5_000)
})

/**
 * Dead-link detection: after `interval` without any message from the server, send a
 * `ping`; a ping not answered within `timeout`, `misses` times in a row, closes the link.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Heartbeat = Schema.Struct({
  enabled: withDefault(Schema.Boolean, true),
  interval: withDefault(Millis, 10_000),
  timeout: withDefault(Millis, 3_000),
  misses: withDefault(Count(1), 2)
})

/**
 * Per-call limits: the total deadline, how many retries a call may use, and how many
 * calls may wait for a reconnect at once (the excess fails with `Overloaded`).
 *
 * @since 0.1.0
 * @category schemas
 */
export const Call = Schema.Struct({
  timeout: withDefault(Millis, 60_000),
  maxRetries: withDefault(Count(0), 2),
  maxQueued: withDefault(Count(0), 1_000)
})

/**
 * The circuit breaker. After the reconnect schedule is exhausted, calls fail fast for
 * `cooldown`; then the next call is a probe (one connect attempt decides). After
 * `failureThreshold` consecutive failed calls on a live link, calls fail fast while the
 * server is probed with `ping` on the reconnect schedule; the first answer closes the
 * circuit, and the link is never torn down for it (only a failed probe or the heartbeat
 * does that). A call that timed out on a deadline of its own shorter than `minTimeout`
 * is not counted: its caller's deadline, not the server, was short.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Breaker = Schema.Struct({
  failureThreshold: withDefault(Count(1), 5),
  cooldown: withDefault(Millis, 5_000),
  minTimeout: withDefault(Millis, 50)
})

const defaults = <A, I>(schema: Schema.Schema<A, I>): A => Schema.decodeUnknownSync(schema)({})

/**
 * The whole policy. Every field has a default; JSON may give any subset.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Policy = Schema.Struct({
  reconnect: withDefault(Reconnect, defaults(Reconnect)),
  heartbeat: withDefault(Heartbeat, defaults(Heartbeat)),
  call: withDefault(Call, defaults(Call)),
  breaker: withDefault(Breaker, defaults(Breaker)),
  connectTimeout: withDefault(Millis, 10_000),
  closeGrace: withDefault(Millis, 2_000)
})

/**
 * @since 0.1.0
 * @category models
 */
export type Policy = typeof Policy.Type

/**
 * What a user may write: any subset, at any depth.
 *
 * @since 0.1.0
 * @category models
 */
export type PolicyInput = {
  readonly [K in keyof Policy]?: Policy[K] extends object
    ? { readonly [J in keyof Policy[K]]?: Policy[K][J] }
    : Policy[K]
}

/**
 * The default policy.
 *
 * @since 0.1.0
 * @category constructors
 */
export const defaultPolicy: Policy = defaults(Policy)

/**
 * Decodes a (partial) policy, filling defaults, or fails naming every wrong field.
 *
 * @since 0.1.0
 * @category constructors
 */
export const decode = (input: unknown, path = "resilience"): Either.Either<Policy, InvalidConfig> =>
  decodeOrInvalid(Policy, input ?? {}, { what: "resilience policy", path })

/**
 * Merges partial policies left to right (later wins) over the defaults, then validates.
 *
 * @since 0.1.0
 * @category constructors
 */
export const merge = (
  ...inputs: ReadonlyArray<PolicyInput | undefined>
): Either.Either<Policy, InvalidConfig> => {
  const merged: Record<string, unknown> = {}
  for (const input of inputs) {
    if (input === undefined) continue
    for (const [key, value] of Object.entries(input)) {
      const prev = merged[key]
      merged[key] =
        typeof value === "object" && value !== null && typeof prev === "object" && prev !== null
          ? { ...prev, ...value }
          : value
    }
  }
  return decode(merged)
}

/**
 * The reconnect schedule of a policy: immediate first retry, then capped, jittered
 * exponential backoff, bounded by attempts and/or elapsed time. Its output is the delay
 * it chose.
 *
 * `resetAfter` is not part of the schedule: Effect's `Schedule.resetAfter` restarts a
 * schedule once its *total* elapsed time passes the duration, which during a long outage
 * would restart the backoff at 0 ms and void `maxAttempts`/`maxElapsed`. The supervisor
 * instead starts the schedule over when a session has stayed up for `resetAfter`.
 *
 * @since 0.1.0
 * @category schedules
 */
export const reconnectSchedule = (
  policy: Policy["reconnect"]
): Schedule.Schedule<Duration.Duration, unknown> =>
  memo(`reconnect:${JSON.stringify(policy)}`, () => buildReconnect(policy))

/**
 * The retry schedule of one call: the first retry immediate, then `reconnect.initialDelay`
 * × `reconnect.factor`ⁿ capped at `reconnect.maxDelay`, at most `call.maxRetries` retries.
 * No jitter and no fast phase: a call has few retries, all within its own deadline (the
 * caller bounds them by time; a server's `Retry-After` can only lengthen a delay).
 *
 * @since 0.1.0
 * @category schedules
 */
export const retrySchedule = (policy: Policy): Schedule.Schedule<Duration.Duration, unknown> =>
  memo(`retry:${JSON.stringify([policy.reconnect, policy.call.maxRetries])}`, () => {
    const { factor, initialDelay, maxDelay } = policy.reconnect
    return Schedule.forever.pipe(
      Schedule.addDelay((n) =>
        Duration.millis(n === 0 ? 0 : Math.min(maxDelay, initialDelay * factor ** (n - 1)))
      ),
      Schedule.delays,
      Schedule.intersect(Schedule.recurs(policy.call.maxRetries)),
      Schedule.map(([d]) => d)
    )
  })

// A schedule is an immutable value: connections with the same policy (a pool's tenants)
// share one instead of building several objects each. Bounded: policies come from
// configuration, but a program could make them up freely.
const schedules = globalValue(
  Symbol.for("tether/Resilience/schedules"),
  () => new Map<string, Schedule.Schedule<Duration.Duration, unknown>>()
)

const memo = (
  key: string,
  build: () => Schedule.Schedule<Duration.Duration, unknown>
): Schedule.Schedule<Duration.Duration, unknown> => {
  let schedule = schedules.get(key)
  if (schedule === undefined) {
    schedule = build()
    if (schedules.size >= 64) schedules.clear()
    schedules.set(key, schedule)
  }
  return schedule
}

const buildReconnect = (policy: Policy["reconnect"]): Schedule.Schedule<Duration.Duration, unknown> => {
  const { factor, fastFor, fastMaxDelay, initialDelay, jitter, maxAttempts, maxDelay, maxElapsed } = policy
  // A policy that asks for slower first retries than the fast phase allows keeps its own
  // backoff: the fast phase only shortens the default kind of schedule, never overrides it.
  const fastCap = initialDelay > fastMaxDelay ? maxDelay : Math.min(fastMaxDelay, maxDelay)
  // `elapsed` is the schedule's own clock (so TestClock drives it): time since the first
  // retry of this outage, or of this run of outages when none lasted `resetAfter`.
  const backoff = Schedule.intersect(Schedule.forever, Schedule.elapsed).pipe(
    Schedule.addDelay(([n, elapsed]) =>
      Duration.millis(
        n === 0
          ? 0
          : Math.min(
              Duration.toMillis(elapsed) < fastFor ? fastCap : maxDelay,
              initialDelay * factor ** (n - 1)
            )
      )
    )
  )
  // Jitter only shortens a delay ([1 - jitter, 1] × d): the cap stays a real cap, and
  // clients that reach the cap together still spread out.
  const jittered = jitter > 0 ? Schedule.jitteredWith(backoff, { min: 1 - jitter, max: 1 }) : backoff
  const delays = Schedule.delays(jittered)
  const byAttempts =
    maxAttempts === null
      ? delays
      : delays.pipe(
          Schedule.intersect(Schedule.recurs(maxAttempts)),
          Schedule.map(([d]) => d)
        )
  return maxElapsed === null ? byAttempts : Schedule.upTo(byAttempts, Duration.millis(maxElapsed))
}
