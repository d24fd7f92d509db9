import { describe, expect, it } from "@effect/vitest"
import { Clock, Duration, Effect, Either, ScheduleDecision, ScheduleIntervals, TestClock } from "effect"
import * as McpConnection from "../src/McpConnection.js"
import * as Resilience from "../src/Resilience.js"
import { waitForState } from "./support/conn.js"
import { signal, stdioChild } from "./support/conn.js"
import { freePort, stdioSpec } from "./support/fixture.js"

const policyOf = (input: Resilience.PolicyInput) => Either.getOrThrow(Resilience.merge(input))

/** Steps a schedule by hand: each delay it picks, advancing `now` by that delay. */
const delaysOf = (reconnect: Resilience.Policy["reconnect"], max: number, gapBetweenFailures = 0) =>
  Effect.gen(function* () {
    const schedule = Resilience.reconnectSchedule(reconnect)
    let state: unknown = schedule.initial
    let now = 1_000_000
    const delays: Array<number> = []
    for (let i = 0; i < max; i++) {
      const [next, , decision] = yield* schedule.step(now, undefined, state)
      state = next
      if (ScheduleDecision.isDone(decision)) break
      const delay = ScheduleIntervals.start(decision.intervals) - now
      delays.push(delay)
      now += delay + gapBetweenFailures
    }
    return delays
  })

describe("Resilience.reconnectSchedule", () => {
  it.effect("first retry immediate, then exponential by factor, capped, bounded by maxAttempts", () =>
    Effect.gen(function* () {
      const { reconnect } = policyOf({
        reconnect: {
          initialDelay: 1000,
          factor: 2,
          maxDelay: 5000,
          fastFor: 0,
          jitter: 0,
          maxAttempts: 6,
          maxElapsed: null
        }
      })
      expect(yield* delaysOf(reconnect, 20)).toEqual([0, 1000, 2000, 4000, 5000, 5000])
    })
  )

  it.effect("maxElapsed bounds the total time spent retrying", () =>
    Effect.gen(function* () {
      const { reconnect } = policyOf({
        reconnect: {
          initialDelay: 1000,
          factor: 2,
          maxDelay: 5000,
          fastFor: 0,
          jitter: 0,
          maxAttempts: null,
          maxElapsed: 10_000
        }
      })
      const delays = yield* delaysOf(reconnect, 50)
      // 0 + 1000 + 2000 + 4000 = 7000 elapsed; the next step at 12000 > 10000 is refused.
      expect(delays).toEqual([0, 1000, 2000, 4000, 5000])
      expect(delays.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(10_000 + 5_000)
    })
  )

  it.effect("jitter only shortens a delay, within [1 - jitter, 1] of it", () =>
    Effect.gen(function* () {
      const { reconnect } = policyOf({
        reconnect: {
          initialDelay: 1000,
          factor: 2,
          maxDelay: 8000,
          fastFor: 0,
          jitter: 0.5,
          maxAttempts: 40,
          maxElapsed: null
        }
      })
      const delays = yield* delaysOf(reconnect, 40)
      const nominal = (n: number) => (n === 0 ? 0 : Math.min(8000, 1000 * 2 ** (n - 1)))
      delays.forEach((d, n) => {
        expect(d).toBeLessThanOrEqual(nominal(n) + 1)
        expect(d).toBeGreaterThanOrEqual(nominal(n) * 0.5 - 1)
      })
      // Not all equal to the nominal delay: jitter does something.
      expect(delays.some((d, n) => n > 0 && Math.abs(d - nominal(n)) > 1)).toBe(true)
    })
  )

  it.effect(
    "defaults: delays stay at or under fastMaxDelay for the first fastFor, then grow to maxDelay",
    () =>
      Effect.gen(function* () {
        const { reconnect } = policyOf({ reconnect: { jitter: 0 } })
        expect(reconnect.fastFor).toBe(10_000)
        expect(reconnect.fastMaxDelay).toBe(400)
        const delays = yield* delaysOf(reconnect, 60)
        expect(delays.slice(0, 6)).toEqual([0, 100, 150, 225, 337.5, 400])
        let elapsed = 0
        const fast: Array<number> = []
        const slow: Array<number> = []
        for (const d of delays) {
          ;(elapsed < 10_000 ? fast : slow).push(d)
          elapsed += d
        }
        expect(Math.max(...fast)).toBe(400)
        // The first retry decided after 10 s of outage: the cap is maxDelay again.
        expect(slow[0]).toBe(2000)
        expect(slow.every((d) => d === 2000)).toBe(true)
      })
  )

  it.effect("no fast phase when initialDelay is above fastMaxDelay: the policy's own backoff stands", () =>
    Effect.gen(function* () {
      const { reconnect } = policyOf({
        reconnect: {
          initialDelay: 1000,
          factor: 2,
          maxDelay: 5000,
          jitter: 0,
          maxAttempts: 5,
          maxElapsed: null
        }
      })
      expect(reconnect.fastFor).toBe(10_000)
      expect(yield* delaysOf(reconnect, 20)).toEqual([0, 1000, 2000, 4000, 5000])
    })
  )

  it.effect("is not reset by elapsed time alone: a long outage keeps its bounds", () =>
    Effect.gen(function* () {
      const { reconnect } = policyOf({
        reconnect: {
          initialDelay: 1000,
          factor: 2,
          maxDelay: 5000,
          fastFor: 0,
          jitter: 0,
          maxAttempts: 4,
          maxElapsed: null,
          resetAfter: 3000
        }
      })
      // Failures 2 minutes apart still count towards maxAttempts (Effect's resetAfter would not).
      expect(yield* delaysOf(reconnect, 10, 120_000)).toEqual([0, 1000, 2000, 4000])
    })
  )
})

describe("Resilience.Policy", () => {
  it("has defaults for every field", () => {
    const p = Resilience.defaultPolicy
    expect(p.reconnect.initialDelay).toBe(100)
    expect(p.heartbeat.enabled).toBe(true)
    expect(p.call.maxRetries).toBe(2)
    expect(p.connectTimeout).toBe(10_000)
  })

  it("accepts ms numbers and duration strings, merging partial input over defaults", () => {
    const p = policyOf({ heartbeat: { interval: "5 seconds" as unknown as number }, call: { timeout: 1500 } })
    expect(p.heartbeat.interval).toBe(5000)
    expect(p.heartbeat.timeout).toBe(Resilience.defaultPolicy.heartbeat.timeout)
    expect(p.call.timeout).toBe(1500)
  })

  it("rejects bad values naming every path", () => {
    const result = Resilience.decode({
      reconnect: { initialDelay: -1, factor: 0.5, jitter: 2 },
      heartbeat: { misses: 0, interval: "soon" }
    })
    expect(Either.isLeft(result)).toBe(true)
    if (Either.isLeft(result)) {
      const issues = result.left.issues ?? []
      expect(issues.some((i) => i.startsWith("resilience.reconnect.initialDelay:"))).toBe(true)
      expect(issues.some((i) => i.startsWith("resilience.reconnect.factor:"))).toBe(true)
      expect(issues.some((i) => i.startsWith("resilience.reconnect.jitter:"))).toBe(true)
      expect(issues.some((i) => i.startsWith("resilience.heartbeat.misses:"))).toBe(true)
      expect(issues.some((i) => i.includes('"soon" is not a duration'))).toBe(true)
    }
  })
})

describe("McpConnection supervisor on TestClock", () => {
  it.scoped(
    "waits exactly the policy's delays between attempts, then Failed; the breaker then fails fast until the cooldown",
    () =>
      Effect.gen(function* () {
        const port = yield* freePort
        const conn = yield* McpConnection.make({
          name: "down",
          server: { type: "http", url: `http://127.0.0.1:${port}/mcp` },
          resilience: {
            reconnect: {
              initialDelay: 1000,
              factor: 2,
              maxDelay: 5000,
              fastFor: 0,
              jitter: 0,
              maxAttempts: 5,
              maxElapsed: null
            },
            heartbeat: { enabled: false },
            breaker: { cooldown: 30_000 }
          }
        })
        const waited: Array<number> = []
        for (let attempt = 2; attempt <= 6; attempt++) {
          const state = yield* waitForState(conn, (s) => s._tag === "Reconnecting" && s.attempt === attempt)
          const now = yield* Clock.currentTimeMillis
          if (state._tag !== "Reconnecting") throw new Error("unreachable")
          expect(state.lastError._tag).toBe("ConnectFailed")
          waited.push(state.nextRetryAt - now)
          yield* TestClock.adjust(Duration.millis(state.nextRetryAt - now))
        }
        expect(waited).toEqual([0, 1000, 2000, 4000, 5000])
        const failed = yield* waitForState(conn, (s) => s._tag === "Failed")
        expect(failed._tag === "Failed" && failed.lastError._tag).toBe("ConnectFailed")
        expect((yield* conn.stats).connectAttempts).toBe(6)

        // Circuit open: a call fails at once, without a new attempt.
        const fast = yield* Effect.flip(conn.callTool("echo", { text: "x" }))
        expect(fast._tag).toBe("ServerUnavailable")
        expect((yield* conn.stats).connectAttempts).toBe(6)

        // Cooldown over: the next call is the probe. One attempt ("half-open") decides, and
        // a failed probe opens the circuit again for another cooldown.
        yield* TestClock.adjust("30 seconds")
        const probeAt = yield* Clock.currentTimeMillis
        const probe = yield* Effect.flip(conn.callTool("echo", { text: "x" }, { timeout: "1 hour" }))
        expect(probe._tag).toBe("ServerUnavailable")
        expect((yield* conn.stats).connectAttempts).toBe(7)
        const reopened = yield* conn.state
        expect(reopened._tag === "Failed" && reopened.since).toBe(probeAt)
        expect(reopened._tag === "Failed" && reopened.retryAt).toBe(probeAt + 30_000)

        // A manual reconnect runs the whole schedule again.
        yield* conn.reconnect
        yield* waitForState(conn, (s) => s._tag === "Reconnecting" && s.attempt === 2)
        expect((yield* conn.stats).connectAttempts).toBeGreaterThanOrEqual(8)
      })
  )

  it.scoped("backs off on quick successive losses and starts over after a stable period (resetAfter)", () =>
    Effect.gen(function* () {
      const conn = yield* McpConnection.make({
        name: "fixture",
        server: stdioSpec(),
        resilience: {
          reconnect: { initialDelay: 1000, factor: 2, jitter: 0, resetAfter: 60_000, fastFor: 0 },
          heartbeat: { enabled: false }
        }
      })
      const lose = (generation: number) =>
        Effect.gen(function* () {
          yield* waitForState(conn, (s) => s._tag === "Ready" && s.generation === generation)
          yield* Effect.flatMap(stdioChild, (pid) => signal(pid, "SIGKILL"))
          const state = yield* waitForState(conn, (s) => s._tag === "Reconnecting")
          if (state._tag !== "Reconnecting") throw new Error("unreachable")
          const delay = state.nextRetryAt - (yield* Clock.currentTimeMillis)
          yield* TestClock.adjust(Duration.millis(delay))
          return delay
        })
      expect(yield* lose(1)).toBe(0)
      expect(yield* lose(2)).toBe(1000)
      expect(yield* lose(3)).toBe(2000)
      yield* waitForState(conn, (s) => s._tag === "Ready" && s.generation === 4)
      yield* TestClock.adjust("61 seconds")
      expect(yield* lose(4)).toBe(0)
      yield* waitForState(conn, (s) => s._tag === "Ready" && s.generation === 5)
    })
  )

  it.scoped("a permanent error goes to Failed without retries", () =>
    Effect.gen(function* () {
      const conn = yield* McpConnection.make({
        name: "ghost",
        server: { type: "stdio", command: "/nonexistent/tether-server" }
      })
      const failed = yield* waitForState(conn, (s) => s._tag === "Failed")
      expect(failed._tag === "Failed" && failed.lastError._tag).toBe("SpawnFailed")
      expect((yield* conn.stats).connectAttempts).toBe(1)
    })
  )
})
