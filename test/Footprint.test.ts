/**
 * What was made lighter per connection (a shared heartbeat ticker, the state history, the
 * state gauges' label arrays) behaves as what it replaced.
 */
import { describe, expect, it } from "@effect/vitest"
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js"
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js"
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js"
import { Chunk, Deferred, Effect, Exit, Fiber, Metric, Scope, Stream, TestClock } from "effect"
import * as McpConnection from "../src/McpConnection.js"
import * as Metrics from "../src/Metrics.js"
import * as Cell from "../src/internal/cell.js"
import { tryPromiseWithin } from "../src/internal/deadline.js"
import { stdioSpec } from "./support/fixture.js"

const HEARTBEAT = { interval: 1_000, timeout: 300, misses: 2 } as const

/**
 * An in-process server, one per session. `mute` swallows the client's pings (a half-open
 * link: everything else still flows); `pings` counts the pings the client sent.
 */
const inMemoryServer = () => {
  const stats = { pings: 0, mute: false }
  const transport = () => {
    const [client, server] = InMemoryTransport.createLinkedPair()
    void new McpServer({ name: "heartbeat", version: "1.0.0" }).connect(server)
    const send = client.send.bind(client)
    return Object.assign(client, {
      send: async (message: JSONRPCMessage) => {
        if ("method" in message && message.method === "ping") {
          stats.pings += 1
          if (stats.mute) return
        }
        await send(message)
      }
    })
  }
  return { stats, spec: { type: "custom" as const, label: "in-memory", transport } }
}

describe("heartbeat shared by many connections", () => {
  it.scoped(
    "each idle session is pinged at its interval; only the silent one is declared dead, at interval + timeout × misses (TestClock)",
    () =>
      Effect.gen(function* () {
        const servers = [inMemoryServer(), inMemoryServer(), inMemoryServer()]
        const conns = yield* Effect.forEach(servers, (server, i) =>
          McpConnection.make({
            name: `heartbeat-${i}`,
            server: server.spec,
            resilience: { heartbeat: HEARTBEAT, reconnect: { maxElapsed: null } }
          })
        )
        yield* Effect.forEach(conns, (conn) => conn.awaitReady())
        servers[1]!.stats.mute = true

        yield* TestClock.adjust("999 millis")
        expect(servers.map((s) => s.stats.pings)).toEqual([0, 0, 0])
        yield* TestClock.adjust("1 millis")
        expect(servers.map((s) => s.stats.pings)).toEqual([1, 1, 1])

        // The silent one: a second ping after the first timed out, and still Ready until
        // the second times out too.
        yield* TestClock.adjust("599 millis")
        expect(servers[1]!.stats.pings).toBe(2)
        expect((yield* conns[1]!.stats).reconnects).toBe(0)
        yield* TestClock.adjust("1 millis")
        const dead = yield* conns[1]!.stats
        expect(dead.lastError?._tag).toBe("HeartbeatMissed")
        yield* conns[1]!.awaitReady()
        expect((yield* conns[1]!.stats).reconnects).toBe(1)

        // The answered ones were rescheduled from their pong: next ping at 2,000 ms.
        for (const i of [0, 2]) {
          expect((yield* conns[i]!.stats).reconnects).toBe(0)
          expect((yield* conns[i]!.state)._tag).toBe("Ready")
        }
        yield* TestClock.adjust("399 millis")
        expect([servers[0]!.stats.pings, servers[2]!.stats.pings]).toEqual([1, 1])
        yield* TestClock.adjust("1 millis")
        expect([servers[0]!.stats.pings, servers[2]!.stats.pings]).toEqual([2, 2])
      })
  )

  it.live("when the last watched connection closes, no heartbeat timer is left behind", () =>
    Effect.gen(function* () {
      const timers = () => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length
      const before = timers()
      const scope = yield* Scope.make()
      const conns = yield* Effect.forEach([inMemoryServer(), inMemoryServer()], (server, i) =>
        McpConnection.make({
          name: `closing-${i}`,
          server: server.spec,
          resilience: { heartbeat: { interval: 60_000 } }
        }).pipe(Scope.extend(scope))
      )
      yield* Effect.forEach(conns, (conn) => conn.awaitReady())
      expect(timers()).toBeGreaterThan(before)
      yield* Scope.close(scope, Exit.void)
      const start = performance.now()
      while (timers() > before && performance.now() - start < 2_000) yield* Effect.sleep("10 millis")
      expect(timers()).toBe(before)
    })
  )
})

describe("Cell (the history behind changes)", () => {
  it.effect("changes gives the current value, then every set in order, to a slow watcher too", () =>
    Effect.gen(function* () {
      const cell = new Cell.Cell(0)
      cell.unsafeSet(1)
      const started = yield* Deferred.make<void>()
      const watcher = yield* cell.changes.pipe(
        Stream.tap(() => Deferred.succeed(started, undefined)),
        Stream.take(4),
        Stream.runCollect,
        Effect.fork
      )
      yield* Deferred.await(started)
      cell.unsafeSet(2)
      cell.unsafeSet(3)
      cell.unsafeSet(4)
      expect(Chunk.toReadonlyArray(yield* Fiber.join(watcher))).toEqual([1, 2, 3, 4])
      expect(cell.value).toBe(4)
    })
  )

  it.effect("next is at once when a value already followed; an interrupted wait leaves no waiter", () =>
    Effect.gen(function* () {
      const cell = new Cell.Cell("a")
      const start = cell.current
      cell.unsafeSet("b")
      expect((yield* Cell.next(start)).value).toBe("b")
      const waiting = yield* Effect.fork(Cell.next(cell.current))
      yield* Effect.yieldNow()
      expect(cell.current.waiters?.length).toBe(1)
      yield* Fiber.interrupt(waiting)
      expect(cell.current.waiters?.length ?? 0).toBe(0)
    })
  )
})

describe("state gauges", () => {
  const gauge = (server: string, state: string, extra: Record<string, string> = {}) => {
    let metric = Metrics.connectionState.pipe(Metric.tagged("server", server), Metric.tagged("state", state))
    for (const [k, v] of Object.entries(extra)) metric = metric.pipe(Metric.tagged(k, v))
    return Metric.value(metric).pipe(Effect.map((s) => s.value))
  }

  it.scoped("1 for the current state, 0 for the others, with fiber-level metric labels too", () =>
    Effect.gen(function* () {
      const plain = yield* McpConnection.make({ name: "gauges-plain", server: inMemoryServer().spec })
      yield* plain.awaitReady()
      const labelled = yield* McpConnection.make({
        name: "gauges-tagged",
        server: inMemoryServer().spec
      }).pipe(Effect.tagMetrics("region", "eu"))
      yield* labelled.awaitReady()
      const states = ["Connecting", "Ready", "Reconnecting", "Failed", "Closed"]
      expect(yield* Effect.forEach(states, (s) => gauge("gauges-plain", s))).toEqual([0, 1, 0, 0, 0])
      expect(yield* Effect.forEach(states, (s) => gauge("gauges-tagged", s, { region: "eu" }))).toEqual([
        0, 1, 0, 0, 0
      ])
      const circuit = yield* Metric.value(Metrics.circuitOpen.pipe(Metric.tagged("server", "gauges-plain")))
      expect(circuit.value).toBe(0)
    })
  )
})

describe("fibers started for the server", () => {
  it.live("a server request's handler still running when the connection closes is interrupted", () =>
    Effect.gen(function* () {
      const started = yield* Deferred.make<void>()
      const interrupted = yield* Deferred.make<void>()
      const scope = yield* Scope.make()
      const conn = yield* McpConnection.make({
        name: "elicit",
        server: stdioSpec(),
        elicitation: () =>
          Deferred.succeed(started, undefined).pipe(
            Effect.zipRight(Effect.never),
            Effect.onInterrupt(() => Deferred.succeed(interrupted, undefined))
          )
      }).pipe(Scope.extend(scope))
      yield* conn.awaitReady()
      yield* Effect.forkDaemon(Effect.either(conn.callTool("ask", {})))
      yield* Deferred.await(started)
      yield* Scope.close(scope, Exit.void)
      yield* Deferred.await(interrupted).pipe(Effect.timeout("5 seconds"))
    })
  )
})

describe("a promise within a deadline", () => {
  const hanging = (seen: { aborted: boolean }) => (signal: AbortSignal) =>
    new Promise<never>(() => signal.addEventListener("abort", () => (seen.aborted = true)))
  const options = (seen: { aborted: boolean }) => ({
    try: hanging(seen),
    catch: (e: unknown) => String(e),
    timeoutMs: 1_000,
    onTimeout: () => "timed out"
  })

  it.live("on the live Clock: the value, the rejection, or the timeout (the request aborted)", () =>
    Effect.gen(function* () {
      const ok = yield* tryPromiseWithin({ ...options({ aborted: false }), try: () => Promise.resolve(1) })
      expect(ok).toBe(1)
      const rejected = yield* Effect.flip(
        tryPromiseWithin({ ...options({ aborted: false }), try: () => Promise.reject(new Error("no")) })
      )
      expect(rejected).toBe("Error: no")
      const seen = { aborted: false }
      const start = performance.now()
      const late = yield* Effect.flip(tryPromiseWithin({ ...options(seen), timeoutMs: 50 }))
      expect(late).toBe("timed out")
      expect(seen.aborted).toBe(true)
      expect(performance.now() - start).toBeGreaterThanOrEqual(45)
    })
  )

  it.effect("on a TestClock: times out exactly at the deadline; an interrupted request is aborted", () =>
    Effect.gen(function* () {
      const seen = { aborted: false }
      const fiber = yield* Effect.fork(Effect.flip(tryPromiseWithin(options(seen))))
      yield* TestClock.adjust("999 millis")
      expect(fiber.unsafePoll()).toBeNull()
      yield* TestClock.adjust("1 millis")
      expect(yield* Fiber.join(fiber)).toBe("timed out")
      expect(seen.aborted).toBe(true)

      const interrupted = { aborted: false }
      const other = yield* Effect.fork(tryPromiseWithin(options(interrupted)))
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(other)
      expect(interrupted.aborted).toBe(true)
    })
  )
})
