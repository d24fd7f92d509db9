/**
 * The call rule: a call runs at most once unless it is known safe to repeat, and no call
 * ever hangs. Real servers, a real fault proxy between client and server.
 */
import { describe, expect, it } from "@effect/vitest"
import { Clock, Duration, Effect, Either, Fiber, Option, TestClock } from "effect"
import * as McpConnection from "../src/McpConnection.js"
import {
  elapsedSince,
  recordTransitions,
  signal,
  stdioChild,
  waitForState,
  waitForTag
} from "./support/conn.js"
import * as FaultProxy from "./support/faultProxy.js"
import {
  type NetKind,
  freePort,
  readLog,
  specFor,
  spawnFixture,
  stdioSpec,
  tempLog
} from "./support/fixture.js"

const HEARTBEAT = { interval: 400, timeout: 300, misses: 2 } as const

/** Polls the fixture's log until `line` appears (real time). */
const waitForLine = (log: string, line: string, timeoutMs = 5_000) =>
  Effect.gen(function* () {
    const start = performance.now()
    while (!readLog(log).includes(line)) {
      if (elapsedSince(start) > timeoutMs)
        return yield* Effect.fail(new Error(`"${line}" not logged within ${timeoutMs} ms`))
      yield* Effect.sleep("5 millis")
    }
  })

/** A fixture behind the fault proxy: `cut` resets every TCP connection between them. */
const proxied = (kind: NetKind, resilience: McpConnection.McpConnection.Options["resilience"] = {}) =>
  Effect.gen(function* () {
    const log = tempLog()
    const fx = yield* spawnFixture(kind, { log })
    const proxy = yield* FaultProxy.make({ target: fx.port })
    const conn = yield* McpConnection.make({
      name: "fixture",
      server: specFor(kind, proxy.port),
      // Cuts come back to back here; back off from scratch each time to keep the test short.
      resilience: { heartbeat: HEARTBEAT, reconnect: { resetAfter: 50 }, ...resilience }
    })
    yield* conn.awaitReady()
    return { log, fx, proxy, conn, cut: proxy.reset }
  })

const counts = (log: string) => {
  const seen = new Map<string, number>()
  for (const line of readLog(log)) {
    if (line.startsWith("count ")) seen.set(line.slice(6), (seen.get(line.slice(6)) ?? 0) + 1)
  }
  return seen
}

const expectNothingPending = (conn: McpConnection.McpConnection) =>
  Effect.gen(function* () {
    expect((yield* conn.stats).pendingCalls).toBe(0)
  })

describe("no duplicated side effects", () => {
  const cutAfterReceipt = (kind: NetKind, tool: "count" | "count_idempotent", rounds: number) =>
    Effect.gen(function* () {
      const { conn, cut, log } = yield* proxied(kind)
      const outcomes: Array<{ id: string; tag: string }> = []
      for (let i = 0; i < rounds; i++) {
        const id = `${kind}-${tool}-${i}`
        // Every third call goes through untouched, the others are cut mid-call.
        const fiber = yield* Effect.fork(
          Effect.either(conn.callTool(tool, { id, holdMs: 150 }, { timeout: "20 seconds" }))
        )
        if (i % 3 !== 2) {
          yield* waitForLine(log, `count ${id}`)
          yield* cut
        }
        const result = yield* Fiber.join(fiber)
        outcomes.push({ id, tag: Either.isRight(result) ? "ok" : result.left._tag })
      }
      yield* expectNothingPending(conn)
      return { outcomes, seen: counts(log) }
    })

  it.scopedLive(
    "non-idempotent `count` cut 50 times after receipt, before the answer (HTTP): no id ever runs twice",
    () =>
      Effect.gen(function* () {
        const { outcomes, seen } = yield* cutAfterReceipt("http", "count", 50)
        for (const [, n] of seen) expect(n).toBe(1)
        for (const { id, tag } of outcomes) {
          if (tag === "ok") expect(seen.get(id)).toBe(1)
          else {
            expect(tag).toBe("OutcomeUnknown")
            expect(seen.get(id) ?? 0).toBeLessThanOrEqual(1)
          }
        }
        // The cut calls really were cut (not all of them raced to completion).
        expect(outcomes.filter((o) => o.tag === "OutcomeUnknown").length).toBeGreaterThanOrEqual(30)
        expect(outcomes.filter((o) => o.tag === "ok").length).toBeGreaterThanOrEqual(16)
      })
  )

  it.scopedLive("the same over WebSocket, 15 rounds", () =>
    Effect.gen(function* () {
      const { outcomes, seen } = yield* cutAfterReceipt("ws", "count", 15)
      for (const [, n] of seen) expect(n).toBe(1)
      expect(outcomes.filter((o) => o.tag === "OutcomeUnknown").length).toBeGreaterThanOrEqual(8)
      for (const o of outcomes) expect(["ok", "OutcomeUnknown"]).toContain(o.tag)
    })
  )

  it.scopedLive("OutcomeUnknown carries the server, the tool and the request id", () =>
    Effect.gen(function* () {
      const { conn, cut, log } = yield* proxied("http")
      const fiber = yield* Effect.fork(Effect.flip(conn.callTool("count", { id: "fields", holdMs: 200 })))
      yield* waitForLine(log, "count fields")
      yield* cut
      const error = yield* Fiber.join(fiber)
      expect(error._tag).toBe("OutcomeUnknown")
      if (error._tag === "OutcomeUnknown") {
        expect(error.server).toBe("fixture")
        expect(error.tool).toBe("count")
        expect(error.method).toBe("tools/call")
        expect(typeof error.requestId).toBe("number")
        expect(error.message).toContain("may or may not have run")
      }
    })
  )

  it.scopedLive("a tool annotated idempotentHint is retried after a cut and succeeds", () =>
    Effect.gen(function* () {
      const { outcomes } = yield* cutAfterReceipt("http", "count_idempotent", 12)
      expect(outcomes.map((o) => o.tag)).toEqual(outcomes.map(() => "ok"))
    })
  )

  it.scopedLive(
    "config overrides win over annotations, both ways; trustAnnotations: false ignores hints",
    () =>
      Effect.gen(function* () {
        const log = tempLog()
        const fx = yield* spawnFixture("http", { log })
        const proxy = yield* FaultProxy.make({ target: fx.port })
        const conn = yield* McpConnection.make({
          name: "fixture",
          server: specFor("http", proxy.port),
          tools: { count: { idempotent: true }, count_idempotent: { idempotent: false } }
        })
        yield* conn.awaitReady()
        const run = (tool: string, id: string) =>
          Effect.gen(function* () {
            const fiber = yield* Effect.fork(Effect.either(conn.callTool(tool, { id, holdMs: 150 })))
            yield* waitForLine(log, `count ${id}`)
            yield* proxy.reset
            const result = yield* Fiber.join(fiber)
            return Either.isRight(result) ? "ok" : result.left._tag
          })
        expect(yield* run("count", "override-true")).toBe("ok")
        expect(yield* run("count_idempotent", "override-false")).toBe("OutcomeUnknown")

        const untrusting = yield* McpConnection.make({
          name: "fixture2",
          server: specFor("http", proxy.port),
          trustAnnotations: false
        })
        yield* untrusting.awaitReady()
        const fiber = yield* Effect.fork(
          Effect.either(untrusting.callTool("count_idempotent", { id: "untrusted", holdMs: 150 }))
        )
        yield* waitForLine(log, "count untrusted")
        yield* proxy.reset
        const result = yield* Fiber.join(fiber)
        expect(Either.isLeft(result) && result.left._tag).toBe("OutcomeUnknown")
      })
  )

  it.scopedLive("over stdio: a child killed mid-call gives OutcomeUnknown, and the id ran once", () =>
    Effect.gen(function* () {
      const log = tempLog()
      const conn = yield* McpConnection.make({
        name: "fixture",
        server: stdioSpec({ log }),
        resilience: { heartbeat: HEARTBEAT }
      })
      yield* conn.awaitReady()
      for (let i = 0; i < 5; i++) {
        const id = `stdio-${i}`
        const fiber = yield* Effect.fork(Effect.either(conn.callTool("count", { id, holdMs: 300 })))
        yield* waitForLine(log, `count ${id}`)
        yield* Effect.flatMap(stdioChild, (pid) => signal(pid, "SIGKILL"))
        const result = yield* Fiber.join(fiber)
        expect(Either.isLeft(result) && result.left._tag).toBe("OutcomeUnknown")
        yield* conn.awaitReady()
      }
      for (const [, n] of counts(log)) expect(n).toBe(1)
      yield* expectNothingPending(conn)
    })
  )
})

describe("chaos", () => {
  it.scopedLive(
    "20 calls/s of an idempotent tool through kill, pause and 502 windows: every call succeeds in its deadline",
    () =>
      Effect.gen(function* () {
        const log = tempLog()
        const fx = yield* spawnFixture("http", { log })
        const proxy = yield* FaultProxy.make({ target: fx.port })
        const conn = yield* McpConnection.make({
          name: "fixture",
          server: specFor("http", proxy.port),
          resilience: { heartbeat: HEARTBEAT, connectTimeout: 2_000 }
        })
        yield* conn.awaitReady()
        const results: Array<string> = []
        const deadline = Duration.seconds(10)
        const load = yield* Effect.gen(function* () {
          const fibers: Array<Fiber.RuntimeFiber<void>> = []
          for (let i = 0; i < 240; i++) {
            const fiber = yield* Effect.fork(
              conn.callTool("echo", { text: `c${i}` }, { timeout: deadline }).pipe(
                Effect.match({
                  onSuccess: () => void results.push("ok"),
                  onFailure: (e) => void results.push(`${e._tag}: ${e.message}`)
                })
              )
            )
            fibers.push(fiber)
            yield* Effect.sleep("50 millis")
          }
          yield* Fiber.joinAll(fibers)
        }).pipe(Effect.fork)

        yield* Effect.sleep("1500 millis")
        yield* fx.kill("SIGKILL")
        yield* Effect.sleep("700 millis")
        yield* fx.start
        yield* Effect.sleep("2 seconds")
        yield* fx.pause
        yield* Effect.sleep("1500 millis")
        yield* fx.resume
        yield* Effect.sleep("2 seconds")
        yield* proxy.statusWindow({ status: 502, durationMs: 1_500, retryAfterSeconds: 1 })
        yield* Effect.sleep("2500 millis")
        yield* proxy.reset
        yield* Fiber.join(load)

        const failures = results.filter((r) => r !== "ok")
        expect(failures).toEqual([])
        expect(results).toHaveLength(240)
        expect((yield* conn.stats).reconnects).toBeGreaterThanOrEqual(3)
        yield* expectNothingPending(conn)
      }),
    { timeout: 40_000 }
  )
})

describe("deadlines and cancellation", () => {
  it.scoped("a call waiting for a reconnect fails at its deadline, never later (TestClock)", () =>
    Effect.gen(function* () {
      const port = yield* freePort
      const conn = yield* McpConnection.make({
        name: "down",
        server: { type: "http", url: `http://127.0.0.1:${port}/mcp` },
        resilience: { heartbeat: { enabled: false }, reconnect: { maxElapsed: null } }
      })
      yield* waitForTag(conn, "Reconnecting")
      const start = yield* Clock.currentTimeMillis
      const call = yield* Effect.fork(
        Effect.flip(conn.callTool("echo", { text: "x" }, { timeout: "5 seconds" }))
      )
      yield* TestClock.adjust("4999 millis")
      expect(call.unsafePoll()).toBeNull()
      yield* TestClock.adjust("1 millis")
      const error = yield* Fiber.join(call)
      expect(error._tag).toBe("RequestTimeout")
      expect(error.message).toContain("ConnectFailed")
      expect((yield* Clock.currentTimeMillis) - start).toBe(5000)
      yield* expectNothingPending(conn)
    })
  )

  it.scopedLive("a timed-out call sends notifications/cancelled, and the server sees it", () =>
    Effect.gen(function* () {
      const log = tempLog()
      const conn = yield* McpConnection.make({ name: "fixture", server: stdioSpec({ log }) })
      yield* conn.awaitReady()
      const error = yield* Effect.flip(conn.callTool("slow", { ms: 5_000 }, { timeout: "300 millis" }))
      expect(error._tag).toBe("RequestTimeout")
      const start = performance.now()
      while (!readLog(log).some((l) => l.startsWith("cancelled ")) && elapsedSince(start) < 3_000) {
        yield* Effect.sleep("10 millis")
      }
      expect(readLog(log).some((l) => l.startsWith("cancelled "))).toBe(true)

      // Interrupting the caller's fiber cancels too.
      const fiber = yield* Effect.fork(conn.callTool("slow", { ms: 5_000 }))
      yield* Effect.sleep("200 millis")
      yield* Fiber.interrupt(fiber)
      const begin = performance.now()
      while (
        readLog(log).filter((l) => l.startsWith("cancelled ")).length < 2 &&
        elapsedSince(begin) < 3_000
      ) {
        yield* Effect.sleep("10 millis")
      }
      expect(readLog(log).filter((l) => l.startsWith("cancelled "))).toHaveLength(2)
      yield* expectNothingPending(conn)
    })
  )

  it.scopedLive("progress pushes the idle timeout back but never the total deadline", () =>
    Effect.gen(function* () {
      const conn = yield* McpConnection.make({ name: "fixture", server: stdioSpec() })
      yield* conn.awaitReady()
      const seen: Array<number> = []
      // 6 steps of 150 ms each = 900 ms, idle limit 400 ms: progress keeps it alive.
      const ok = yield* conn.callTool(
        "progress",
        { steps: 6, ms: 150 },
        { idleTimeout: "400 millis", onProgress: (p) => void seen.push(p.progress) }
      )
      expect(ok.content).toEqual([{ type: "text", text: "done 6" }])
      // The SDK delivers notifications asynchronously: the last one may lose the race
      // with the result it precedes.
      expect(seen.slice(0, 5)).toEqual([1, 2, 3, 4, 5])
      // Without progress, the idle limit fires.
      const start = performance.now()
      const idle = yield* Effect.flip(conn.callTool("slow", { ms: 3_000 }, { idleTimeout: "300 millis" }))
      expect(idle._tag).toBe("RequestTimeout")
      expect(idle.message).toContain("no progress for 300 ms")
      expect(elapsedSince(start)).toBeLessThan(2_500)
      // Progress does not move the total deadline.
      const total = yield* Effect.flip(
        conn.callTool(
          "progress",
          { steps: 10, ms: 150 },
          { idleTimeout: "400 millis", timeout: "600 millis" }
        )
      )
      expect(total._tag).toBe("RequestTimeout")
      yield* expectNothingPending(conn)
    })
  )
})

describe("Retry-After", () => {
  it.scopedLive(
    "a 503 with Retry-After: 2 delays the reconnect (and the waiting call) at least that long",
    () =>
      Effect.gen(function* () {
        const { conn, proxy } = yield* proxied("http")
        const start = performance.now()
        // A short window: without Retry-After Tether would be back within ~100 ms.
        yield* proxy.statusWindow({ status: 503, durationMs: 300, retryAfterSeconds: 2 })
        const result = yield* conn.callTool("echo", { text: "after" }, { timeout: "15 seconds" })
        expect(result.content).toEqual([{ type: "text", text: "after" }])
        expect(elapsedSince(start)).toBeGreaterThanOrEqual(1_900)
        const stats = yield* conn.stats
        expect(stats.lastError?._tag).toBe("HttpUnavailable")
        if (stats.lastError?._tag === "HttpUnavailable") expect(stats.lastError.retryAfterMs).toBe(2_000)
      })
  )

  it.scopedLive("the same for a WebSocket upgrade answered 503 with Retry-After", () =>
    Effect.gen(function* () {
      const { conn, proxy } = yield* proxied("ws")
      const start = performance.now()
      yield* proxy.statusWindow({ status: 503, durationMs: 300, retryAfterSeconds: 2 })
      yield* waitForTag(conn, "Reconnecting")
      const result = yield* conn.callTool("echo", { text: "after" }, { timeout: "15 seconds" })
      expect(result.content).toEqual([{ type: "text", text: "after" }])
      expect(elapsedSince(start)).toBeGreaterThanOrEqual(1_900)
    })
  )
})

describe("circuit breaker", () => {
  it.scopedLive(
    "after the schedule is exhausted, calls fail fast with ServerUnavailable and no connect attempt",
    () =>
      Effect.gen(function* () {
        const port = yield* freePort
        const conn = yield* McpConnection.make({
          name: "down",
          server: { type: "http", url: `http://127.0.0.1:${port}/mcp` },
          resilience: {
            reconnect: { maxAttempts: 2, initialDelay: 10 },
            breaker: { cooldown: 60_000 },
            heartbeat: { enabled: false }
          }
        })
        yield* waitForTag(conn, "Failed")
        const attempts = (yield* conn.stats).connectAttempts
        const durations: Array<number> = []
        for (let i = 0; i < 50; i++) {
          const start = performance.now()
          const error = yield* Effect.flip(conn.callTool("echo", { text: "x" }))
          durations.push(elapsedSince(start))
          expect(error._tag).toBe("ServerUnavailable")
        }
        durations.sort((a, b) => a - b)
        // Fail fast: the median call is far under 5 ms (generous bound for a loaded CI machine).
        expect(durations[25]).toBeLessThan(5)
        expect((yield* conn.stats).connectAttempts).toBe(attempts)
        yield* expectNothingPending(conn)
      })
  )

  it.scopedLive(
    "consecutive call failures on a Ready link open the circuit; after the cooldown one probe closes it",
    () =>
      Effect.gen(function* () {
        const conn = yield* McpConnection.make({
          name: "fixture",
          server: stdioSpec(),
          resilience: { breaker: { failureThreshold: 3, cooldown: 500 }, call: { maxRetries: 0 } }
        })
        yield* conn.awaitReady()
        for (let i = 0; i < 3; i++) {
          const error = yield* Effect.flip(conn.callTool("slow", { ms: 2_000 }, { timeout: "100 millis" }))
          expect(error._tag).toBe("RequestTimeout")
        }
        const open = yield* waitForTag(conn, "Failed", "2 seconds")
        expect(open._tag === "Failed" && open.lastError._tag).toBe("RequestTimeout")
        expect((yield* Effect.flip(conn.callTool("echo", { text: "x" })))._tag).toBe("ServerUnavailable")
        yield* Effect.sleep("600 millis")
        const probe = yield* conn.callTool("echo", { text: "probe" }, { timeout: "10 seconds" })
        expect(probe.content).toEqual([{ type: "text", text: "probe" }])
        expect((yield* conn.state)._tag).toBe("Ready")
        yield* expectNothingPending(conn)
      })
  )
})

describe("circuit breaker: what opens it, what it answers, how it closes", () => {
  it.scopedLive(
    "a gateway answering 502 for 2 s on live keep-alive sockets: sent calls are OutcomeUnknown, refused ones ServerUnavailable, and calls work again within 500 ms of the heal",
    () =>
      Effect.gen(function* () {
        const log = tempLog()
        const fx = yield* spawnFixture("http", { log })
        const proxy = yield* FaultProxy.make({ target: fx.port, http: true })
        const conn = yield* McpConnection.make({ name: "fixture", server: specFor("http", proxy.port) })
        yield* conn.awaitReady()

        // A read-only call cut by a 502 blip is retried within its deadline and succeeds;
        // a non-idempotent one cut the same way is OutcomeUnknown (it may have run).
        const blip = <A, E>(call: Effect.Effect<A, E>) =>
          Effect.gen(function* () {
            const before = yield* proxy.statusAnswers
            yield* proxy.setStatus({ status: 502, keepSockets: true })
            const fiber = yield* Effect.fork(Effect.either(call))
            // The gateway answers the call's first attempt with a 502, then heals.
            while ((yield* proxy.statusAnswers) === before && Option.isNone(yield* Fiber.poll(fiber))) {
              yield* Effect.sleep("2 millis")
            }
            yield* proxy.clearStatus
            expect(yield* proxy.statusAnswers).toBeGreaterThan(before)
            return yield* Fiber.join(fiber)
          })
        const safe = yield* blip(conn.callTool("count_idempotent", { id: "blip" }, { timeout: "5 seconds" }))
        expect(Either.isRight(safe)).toBe(true)
        const unsafe = yield* blip(conn.callTool("count", { id: "blip-unsafe" }))
        expect(Either.isLeft(unsafe) && unsafe.left._tag).toBe("OutcomeUnknown")
        yield* conn.callTool("echo", { text: "between" })

        yield* proxy.setStatus({ status: 502, keepSockets: true })
        const windowStart = performance.now()
        const tags: Array<string> = []
        let refusal: unknown
        for (let i = 0; elapsedSince(windowStart) < 2_000; i++) {
          const error = yield* Effect.flip(conn.callTool("count", { id: `w${i}` }, { timeout: "3 seconds" }))
          tags.push(error._tag)
          if (error._tag === "ServerUnavailable") refusal = error
          yield* Effect.sleep("20 millis")
        }
        yield* proxy.clearStatus
        const healedAt = performance.now()
        let recovered: number | undefined
        while (recovered === undefined && elapsedSince(healedAt) < 3_000) {
          const result = yield* Effect.either(conn.callTool("echo", { text: "back" }))
          if (Either.isRight(result)) recovered = elapsedSince(healedAt)
          else yield* Effect.sleep("10 millis")
        }

        // The first failures were really sent (502 after the POST): OutcomeUnknown. Once the
        // circuit opened, every call is refused with ServerUnavailable, never another call's error.
        const firstRefused = tags.indexOf("ServerUnavailable")
        expect(firstRefused).toBeGreaterThanOrEqual(1)
        expect(tags.slice(0, firstRefused).every((t) => t === "OutcomeUnknown")).toBe(true)
        expect(tags.slice(firstRefused).every((t) => t === "ServerUnavailable")).toBe(true)
        expect(tags.length - firstRefused).toBeGreaterThanOrEqual(10)
        const refused = refusal as { retryAt?: number; cause?: { _tag?: string } }
        expect(typeof refused.retryAt).toBe("number")
        expect(refused.cause?._tag).toBe("HttpUnavailable")
        expect(recovered).toBeDefined()
        expect(recovered!).toBeLessThan(500)
        // The link was never torn down: one session all along, nothing ran twice.
        expect((yield* conn.stats).reconnects).toBe(0)
        expect(readLog(log).filter((l) => l.startsWith("initialize "))).toHaveLength(1)
        for (const [, n] of counts(log)) expect(n).toBe(1)
        yield* expectNothingPending(conn)
      }),
    { timeout: 20_000 }
  )

  it.scopedLive(
    "a caller's own 20 ms deadline does not count; opening the circuit never kills a live stdio server",
    () =>
      Effect.gen(function* () {
        const conn = yield* McpConnection.make({ name: "fixture", server: stdioSpec() })
        yield* conn.awaitReady()
        const pid = yield* stdioChild
        const transitions = yield* recordTransitions(conn)
        const counter = (id: string) =>
          conn
            .callTool("count", { id })
            .pipe(Effect.map((r) => (r.content[0]?.type === "text" ? r.content[0].text : "")))
        expect(yield* counter("a")).toBe("1")
        for (let i = 0; i < 8; i++) {
          const error = yield* Effect.flip(conn.callTool("slow", { ms: 300 }, { timeout: "20 millis" }))
          expect(error._tag).toBe("RequestTimeout")
        }
        // The server's state survived (a respawn would count from 1 again), and the circuit never opened.
        expect(yield* counter("b")).toBe("2")
        expect(yield* transitions.tags).toEqual(["Ready"])

        // Deadlines long enough to count do open it; the link stays, and a probe closes it.
        for (let i = 0; i < 5; i++) {
          yield* Effect.flip(conn.callTool("slow", { ms: 2_000 }, { timeout: "100 millis" }))
        }
        // Opened by the fifth failure (the transitions below show it), closed by a probe.
        yield* waitForTag(conn, "Ready", "5 seconds")
        expect(yield* counter("c")).toBe("3")
        expect(yield* stdioChild).toBe(pid)
        expect((yield* conn.stats).reconnects).toBe(0)
        expect(yield* transitions.tags).toEqual(["Ready", "Failed", "Ready"])
      }),
    { timeout: 20_000 }
  )

  it.scopedLive(
    "250 failed calls later, an error message is one line of cause, under 1 KB, the cause kept as data",
    () =>
      Effect.gen(function* () {
        const port = yield* freePort
        const conn = yield* McpConnection.make({
          name: "down",
          server: { type: "http", url: `http://127.0.0.1:${port}/mcp` },
          resilience: { heartbeat: { enabled: false }, reconnect: { maxDelay: 50, fastMaxDelay: 50 } }
        })
        yield* waitForTag(conn, "Reconnecting")
        let last: unknown
        for (let i = 0; i < 250; i++) {
          last = yield* Effect.flip(conn.callTool("echo", { text: "x" }, { timeout: "4 millis" }))
        }
        const error = last as { _tag: string; message: string; cause?: { _tag?: string } }
        expect(error._tag).toBe("RequestTimeout")
        expect(error.message.length).toBeLessThanOrEqual(1024)
        expect(error.message.split("last connection error").length).toBe(2)
        expect(error.cause?._tag).toBe("ConnectFailed")
        const stats = yield* conn.stats
        expect(stats.errors).toBeGreaterThanOrEqual(250)
        expect(stats.lastError!.message.length).toBeLessThanOrEqual(1024)
        expect(stats.lastError!.message.split("last connection error").length).toBeLessThanOrEqual(2)
      })
  )
})

describe("backpressure", () => {
  it.scopedLive("calls waiting for a reconnect are bounded; the excess fails at once with Overloaded", () =>
    Effect.gen(function* () {
      const fx = yield* spawnFixture("http")
      const conn = yield* McpConnection.make({
        name: "fixture",
        server: specFor("http", fx.port),
        resilience: { call: { maxQueued: 5 }, heartbeat: HEARTBEAT }
      })
      yield* conn.awaitReady()
      yield* fx.kill("SIGKILL")
      yield* waitForState(conn, (s) => s._tag === "Reconnecting")
      const fibers = yield* Effect.forEach(
        Array.from({ length: 12 }, (_, i) => i),
        (i) =>
          Effect.fork(Effect.either(conn.callTool("echo", { text: `q${i}` }, { timeout: "20 seconds" }))),
        { concurrency: "unbounded" }
      )
      yield* Effect.sleep("100 millis")
      yield* fx.start
      const results = yield* Fiber.joinAll(fibers)
      const tags = results.map((r) => (Either.isRight(r) ? "ok" : r.left._tag))
      expect(tags.filter((t) => t === "ok")).toHaveLength(5)
      expect(tags.filter((t) => t === "Overloaded")).toHaveLength(7)
      yield* expectNothingPending(conn)
    })
  )
})
