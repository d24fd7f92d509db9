import { describe, expect, it } from "@effect/vitest"
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js"
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js"
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js"
import { Effect, Fiber, Metric, Option, Stream, Tracer } from "effect"
import { z } from "zod"
import * as Metrics from "../src/Metrics.js"
import * as McpConnection from "../src/McpConnection.js"
import {
  elapsedSince,
  myFixtureChildren,
  recordTransitions,
  signal,
  stdioChild,
  waitForState,
  waitForTag
} from "./support/conn.js"
import {
  type Fixture,
  type NetKind,
  readLog,
  specFor,
  spawnFixture,
  stdioSpec,
  tempLog
} from "./support/fixture.js"

type Kind = "stdio" | NetKind

/** Polls the fixture's event log until `line` appears (real time, bounded). */
const waitForLine = (log: string, line: string, timeoutMs = 5_000) =>
  waitUntil(
    Effect.sync(() => readLog(log).includes(line)),
    (found) => found,
    timeoutMs
  )

/** Polls `self` every 5 ms until `predicate` holds; fails after `timeoutMs`. */
const waitUntil = <A, E>(self: Effect.Effect<A, E>, predicate: (a: A) => boolean, timeoutMs = 5_000) =>
  Effect.gen(function* () {
    const start = performance.now()
    for (;;) {
      const a = yield* self
      if (predicate(a)) return a
      if (elapsedSince(start) > timeoutMs)
        return yield* Effect.fail(new Error(`condition not met within ${timeoutMs} ms`))
      yield* Effect.sleep("5 millis")
    }
  })

const HEARTBEAT = { interval: 400, timeout: 300, misses: 2 } as const
const DETECT_BOUND_MS = HEARTBEAT.interval + HEARTBEAT.timeout * HEARTBEAT.misses

interface Harness {
  readonly conn: McpConnection.McpConnection
  /** Kill the server with SIGKILL (stdio: Tether restarts it; network: we restart it). */
  readonly killAndRestart: Effect.Effect<void, Error>
  readonly kill: Effect.Effect<void, Error>
  readonly restart: Effect.Effect<void, Error>
  readonly pause: Effect.Effect<void, Error>
  readonly resume: Effect.Effect<void, Error>
  readonly log: string
}

const harness = (kind: Kind, resilience: McpConnection.McpConnection.Options["resilience"] = {}) =>
  Effect.gen(function* () {
    const log = tempLog()
    const options = { heartbeat: HEARTBEAT, ...resilience }
    if (kind === "stdio") {
      const conn = yield* McpConnection.make({
        name: "fixture",
        server: stdioSpec({ log }),
        resilience: options
      })
      yield* conn.awaitReady()
      let paused: number | undefined
      const kill = Effect.flatMap(stdioChild, (pid) => signal(pid, "SIGKILL"))
      return {
        conn,
        log,
        kill,
        killAndRestart: kill,
        restart: Effect.void,
        pause: Effect.flatMap(stdioChild, (pid) => {
          paused = pid
          return signal(pid, "SIGSTOP")
        }),
        resume: Effect.suspend(() => (paused === undefined ? Effect.void : signal(paused, "SIGCONT")))
      } satisfies Harness
    }
    const fx: Fixture = yield* spawnFixture(kind, { log })
    const conn = yield* McpConnection.make({
      name: "fixture",
      server: specFor(kind, fx.port),
      resilience: options
    })
    yield* conn.awaitReady()
    return {
      conn,
      log,
      kill: fx.kill("SIGKILL"),
      killAndRestart: fx
        .kill("SIGKILL")
        .pipe(Effect.zipRight(Effect.sleep("300 millis")), Effect.zipRight(fx.start)),
      restart: fx.start,
      pause: fx.pause,
      resume: fx.resume
    } satisfies Harness
  })

const kinds: ReadonlyArray<Kind> = ["stdio", "http", "sse", "ws"]

describe.each(kinds)("McpConnection over %s", (kind) => {
  it.scopedLive("connects, lists and calls; tool errors are ToolFailed", () =>
    Effect.gen(function* () {
      const h = yield* harness(kind)
      const conn = h.conn
      const tools = yield* conn.tools
      expect(tools.map((t) => t.name)).toEqual(expect.arrayContaining(["echo", "slow", "count", "fail"]))
      const result = yield* conn.callTool("echo", { text: "hello" })
      expect(result.content).toEqual([{ type: "text", text: "hello" }])
      const failed = yield* Effect.flip(conn.callTool("fail", { message: "nope" }))
      expect(failed._tag).toBe("ToolFailed")
      expect(failed.message).toContain("nope")
      const resource = yield* conn.readResource("fixture://counter")
      expect(resource.contents[0]?.uri).toBe("fixture://counter")
      const prompt = yield* conn.getPrompt("greet", { name: "Ada" })
      expect(JSON.stringify(prompt.messages)).toContain("Hello, Ada!")
      const unknown = yield* Effect.flip(conn.callTool("no_such_tool", {}))
      expect(["ProtocolError", "ToolFailed"]).toContain(unknown._tag)
      // ping is a real round trip: its time fits inside the wall time around it, and a
      // server that cannot answer makes it fail instead of returning a number.
      const before = performance.now()
      const rtt = yield* conn.ping()
      expect(rtt).toBeLessThanOrEqual(elapsedSince(before) + 1)
      expect((yield* conn.stats).pendingCalls).toBe(0)
      yield* h.pause
      const unanswered = yield* Effect.flip(conn.ping({ timeout: "200 millis" }))
      yield* h.resume
      expect(unanswered._tag).toBe("RequestTimeout")
    })
  )

  it.scopedLive("kill -9 and restart: Ready → Reconnecting → Ready, next call succeeds untouched", () =>
    Effect.gen(function* () {
      const h = yield* harness(kind)
      const transitions = yield* recordTransitions(h.conn)
      yield* h.killAndRestart
      yield* waitForTag(h.conn, "Reconnecting", "5 seconds").pipe(Effect.either)
      const result = yield* h.conn.callTool("echo", { text: "after restart" })
      expect(result.content).toEqual([{ type: "text", text: "after restart" }])
      const tags = yield* transitions.tags
      expect(tags.slice(0, 3)).toEqual(["Ready", "Reconnecting", "Ready"])
      const ready = yield* h.conn.state
      expect(ready._tag === "Ready" && ready.generation).toBe(2)
      expect((yield* h.conn.stats).reconnects).toBe(1)
      // The session was rebuilt: a fresh initialize, and the catalogue is there again.
      expect(readLog(h.log).filter((l) => l.startsWith("initialize")).length).toBe(2)
      expect((yield* h.conn.tools).length).toBeGreaterThan(3)
    })
  )

  it.scopedLive(
    "SIGSTOP is detected by the heartbeat within interval + timeout × misses; SIGCONT recovers",
    () =>
      Effect.gen(function* () {
        const h = yield* harness(kind)
        yield* Effect.sleep("50 millis")
        const start = performance.now()
        yield* h.pause
        const left = yield* waitForState(h.conn, (s) => s._tag !== "Ready", "10 seconds")
        const detectedMs = elapsedSince(start)
        expect(left._tag).toBe("Reconnecting")
        expect(left._tag === "Reconnecting" && left.lastError._tag).toBe("HeartbeatMissed")
        // Bound plus scheduling slack for a loaded 2-core machine.
        expect(detectedMs).toBeLessThan(DETECT_BOUND_MS + 400)
        yield* h.resume
        const result = yield* h.conn.callTool("echo", { text: "resumed" }, { timeout: "15 seconds" })
        expect(result.content).toEqual([{ type: "text", text: "resumed" }])
      })
  )

  it.scopedLive("a call in flight when the server dies settles within 1 s", () =>
    Effect.gen(function* () {
      const h = yield* harness(kind, { call: { maxRetries: 0 } })
      // `slow` is read-only, so with no retries left it surfaces the link error itself.
      const slow = yield* Effect.fork(Effect.either(h.conn.callTool("slow", { ms: 10_000 })))
      // `count` is not idempotent: after the link dies its outcome is unknown.
      const count = yield* Effect.fork(
        Effect.either(h.conn.callTool("count", { id: "inflight-1", holdMs: 10_000 }))
      )
      yield* waitForLine(h.log, "count inflight-1")
      yield* waitUntil(h.conn.stats, (s) => s.pendingCalls === 2)
      const start = performance.now()
      yield* h.kill
      const slowResult = yield* Fiber.join(slow)
      const countResult = yield* Fiber.join(count)
      const settledMs = elapsedSince(start)
      expect(settledMs).toBeLessThan(1_000)
      expect(slowResult._tag === "Left" && slowResult.left._tag).toBe("ConnectionLost")
      expect(countResult._tag === "Left" && countResult.left._tag).toBe("OutcomeUnknown")
      expect(readLog(h.log)).toContain("count inflight-1")
      yield* h.restart
      yield* h.conn.awaitReady({ timeout: "10 seconds" })
      expect((yield* h.conn.stats).pendingCalls).toBe(0)
    })
  )

  it.scopedLive("a call made while the server is down waits for the reconnect", () =>
    Effect.gen(function* () {
      const h = yield* harness(kind)
      yield* h.kill
      const call = yield* Effect.fork(h.conn.callTool("echo", { text: "queued" }, { timeout: "15 seconds" }))
      // Restart only once the call is really waiting (a stdio server is restarted by Tether
      // itself, so there the call may already be done).
      yield* waitUntil(
        Effect.zip(h.conn.stats, Fiber.poll(call)),
        ([s, done]) => s.pendingCalls === 1 || Option.isSome(done)
      )
      yield* h.restart
      const result = yield* Fiber.join(call)
      expect(result.content).toEqual([{ type: "text", text: "queued" }])
    })
  )
})

describe("McpConnection over Streamable HTTP sessions", () => {
  it.scopedLive("a 404 on the known session id re-initializes a new session and the call goes through", () =>
    Effect.gen(function* () {
      const log = tempLog()
      const fx = yield* spawnFixture("http", { log })
      const conn = yield* McpConnection.make({ name: "fixture", server: specFor("http", fx.port) })
      yield* conn.awaitReady()
      yield* conn.callTool("expire_sessions", {})
      yield* waitForLine(log, "sessions expired")
      // Not idempotent, yet safe to send again: a 404 proves the server never took it.
      const result = yield* conn.callTool("count", { id: "after-expiry" })
      expect(result.content).toEqual([{ type: "text", text: "1" }])
      const state = yield* conn.state
      expect(state._tag === "Ready" && state.generation).toBe(2)
      expect(readLog(log).filter((l) => l === "count after-expiry")).toHaveLength(1)
      expect(readLog(log).filter((l) => l.startsWith("initialize"))).toHaveLength(2)
    })
  )
})

describe("McpConnection lifecycle", () => {
  it.live("closing the scope reaps the stdio child and its group; state ends Closed", () =>
    Effect.gen(function* () {
      const before = myFixtureChildren().length
      const states = yield* Effect.scoped(
        Effect.gen(function* () {
          const conn = yield* McpConnection.make({ name: "fixture", server: stdioSpec() })
          yield* conn.awaitReady()
          expect(myFixtureChildren().length).toBe(before + 1)
          return conn
        })
      ).pipe(Effect.flatMap((conn) => conn.state))
      expect(states._tag).toBe("Closed")
      expect(myFixtureChildren().length).toBe(before)
    })
  )

  it.live("a child that ignores SIGTERM is SIGKILLed after the grace period", () =>
    Effect.gen(function* () {
      const start = performance.now()
      yield* Effect.scoped(
        Effect.gen(function* () {
          const conn = yield* McpConnection.make({
            name: "stubborn",
            server: {
              type: "stdio",
              command: process.execPath,
              args: ["-e", "process.on('SIGTERM',()=>{});process.stdin.resume();setInterval(()=>{},1000)"]
            },
            resilience: { closeGrace: 300, connectTimeout: 500, reconnect: { maxAttempts: 0 } }
          })
          yield* waitForTag(conn, "Failed", "5 seconds")
        })
      )
      expect(elapsedSince(start)).toBeLessThan(5_000)
      const left = myFixtureChildren()
      expect(left).toEqual([])
    })
  )

  it.live("manual reconnect opens a new session", () =>
    Effect.gen(function* () {
      yield* Effect.scoped(
        Effect.gen(function* () {
          const conn = yield* McpConnection.make({ name: "fixture", server: stdioSpec() })
          yield* conn.awaitReady()
          yield* conn.reconnect
          const state = yield* waitForState(conn, (s) => s._tag === "Ready" && s.generation === 2)
          expect(state._tag).toBe("Ready")
          expect((yield* conn.callTool("echo", { text: "x" })).content).toEqual([{ type: "text", text: "x" }])
        })
      )
      expect(myFixtureChildren()).toEqual([])
    })
  )

  it.live("a reconnect asked for while still connecting is carried out once Ready", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const conn = yield* McpConnection.make({ name: "fixture", server: stdioSpec() })
        expect((yield* conn.state)._tag).toBe("Connecting")
        yield* conn.reconnect
        const state = yield* waitForState(conn, (s) => s._tag === "Ready" && s.generation === 2)
        expect(state._tag).toBe("Ready")
        expect((yield* conn.stats).reconnects).toBe(1)
      })
    )
  )

  it.live("subscriptions and the log level are restored after a reconnect", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const log = tempLog()
        const conn = yield* McpConnection.make({ name: "fixture", server: stdioSpec({ log }) })
        yield* conn.awaitReady()
        yield* conn.subscribe("fixture://counter")
        yield* conn.setLogLevel("debug")
        yield* Effect.flatMap(stdioChild, (pid) => signal(pid, "SIGKILL"))
        yield* waitForState(conn, (s) => s._tag === "Ready" && s.generation === 2)
        const lines = readLog(log)
        expect(lines.filter((l) => l === "subscribe fixture://counter")).toHaveLength(2)
        expect(lines.filter((l) => l === "setLevel debug")).toHaveLength(2)
        yield* conn.unsubscribe("fixture://counter")
        yield* conn.reconnect
        yield* waitForState(conn, (s) => s._tag === "Ready" && s.generation === 3)
        expect(readLog(log).filter((l) => l === "subscribe fixture://counter")).toHaveLength(2)
      })
    )
  )

  it.live("tools/list_changed refreshes the catalogue", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const conn = yield* McpConnection.make({ name: "fixture", server: stdioSpec() })
        yield* conn.awaitReady()
        // Waits on the catalogue's own change stream, not on a sleep.
        const refreshed = yield* conn.toolChanges.pipe(
          Stream.map((tools) => tools.map((t) => t.name)),
          Stream.filter((names) => names.includes("late_tool")),
          Stream.runHead,
          Effect.timeout("5 seconds"),
          Effect.fork
        )
        yield* conn.callTool("add_tool", { name: "late_tool" })
        const names = yield* Fiber.join(refreshed)
        expect(Option.getOrElse(names, () => [])).toContain("late_tool")
        expect((yield* conn.tools).map((t) => t.name)).toContain("late_tool")
      })
    )
  )
})

describe("McpConnection over a custom transport (InMemory)", () => {
  /**
   * In-process servers, one per session. Each client side records how Tether ended it
   * first, politely (`close`) or not (`kill`), and may fail the sends of one tool after
   * handing them over (`failSendsOf`) with a connection reset.
   */
  const inMemory = (failSendsOf?: string) => {
    const servers: Array<McpServer> = []
    const ends: Array<{ how: "close" | "kill" | undefined }> = []
    const clients: Array<InMemoryTransport> = []
    let counted = 0
    const transport = () => {
      const [client, server] = InMemoryTransport.createLinkedPair()
      const mcp = new McpServer({ name: "in-memory", version: "1.0.0" })
      mcp.registerTool(
        "echo",
        { inputSchema: { text: z.string() }, annotations: { readOnlyHint: true } },
        ({ text }) => ({ content: [{ type: "text" as const, text: `${text} #${servers.length}` }] })
      )
      mcp.registerTool("count", {}, () => {
        counted += 1
        return { content: [{ type: "text" as const, text: String(counted) }] }
      })
      servers.push(mcp)
      void mcp.connect(server)
      const end: { how: "close" | "kill" | undefined } = { how: undefined }
      ends.push(end)
      clients.push(client)
      const send = client.send.bind(client)
      return Object.assign(client, {
        send: async (message: JSONRPCMessage) => {
          await send(message)
          if (
            "method" in message &&
            message.method === "tools/call" &&
            message.params?.name === failSendsOf
          ) {
            throw Object.assign(new Error("socket hang up"), { code: "ECONNRESET" })
          }
        },
        close: async () => {
          end.how ??= "close"
          await InMemoryTransport.prototype.close.call(client)
        },
        kill: async () => {
          end.how ??= "kill"
          await InMemoryTransport.prototype.close.call(client)
        }
      })
    }
    return {
      servers,
      ends,
      clients,
      counted: () => counted,
      spec: { type: "custom" as const, label: "in-memory", transport }
    }
  }

  it.live("a manual reconnect closes the old transport politely; a lost one is killed", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { clients, ends, spec } = inMemory()
        const conn = yield* McpConnection.make({ name: "mem", server: spec })
        yield* conn.awaitReady()
        yield* conn.reconnect
        yield* waitForState(conn, (s) => s._tag === "Ready" && s.generation === 2)
        expect(ends[0]!.how).toBe("close")
        // The transport reports itself closed, as a dropped connection does.
        clients[1]!.onclose?.()
        yield* waitForState(conn, (s) => s._tag === "Ready" && s.generation === 3)
        expect(ends[1]!.how).toBe("kill")
      })
    )
  )

  it.live("a send that fails after handing the request over is OutcomeUnknown, not retried", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const mem = inMemory("count")
        const conn = yield* McpConnection.make({ name: "mem", server: mem.spec })
        yield* conn.awaitReady()
        const error = yield* Effect.flip(conn.callTool("count", {}))
        expect(error._tag).toBe("OutcomeUnknown")
        yield* Effect.sleep("100 millis")
        expect(mem.counted()).toBe(1)
      })
    )
  )

  it.live("a transport factory that throws → SpawnFailed, Failed after one attempt", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const conn = yield* McpConnection.make({
          name: "mem",
          server: {
            type: "custom",
            label: "broken",
            transport: () => {
              throw new Error("no transport today")
            }
          }
        })
        const failed = yield* waitForState(conn, (s) => s._tag === "Failed")
        expect(failed._tag === "Failed" && failed.lastError._tag).toBe("SpawnFailed")
        expect(failed._tag === "Failed" && failed.lastError.message).toContain("no transport today")
        expect((yield* conn.stats).connectAttempts).toBe(1)
      })
    )
  )

  it.live("connects, calls, and after the server side closes builds a new transport", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { servers, spec } = inMemory()
        const conn = yield* McpConnection.make({ name: "mem", server: spec })
        yield* conn.awaitReady()
        expect((yield* conn.tools).map((t) => t.name)).toEqual(["echo", "count"])
        expect((yield* conn.callTool("echo", { text: "a" })).content).toEqual([
          { type: "text", text: "a #1" }
        ])
        yield* Effect.promise(() => servers[0]!.close())
        yield* waitForTag(conn, "Reconnecting", 2_000)
        const again = yield* conn.callTool("echo", { text: "b" }, { timeout: "5 seconds" })
        expect(again.content).toEqual([{ type: "text", text: "b #2" }])
        expect(servers).toHaveLength(2)
      })
    )
  )

  it.scoped("a transport that is not a function → InvalidConfig naming the field", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        McpConnection.make({
          name: "mem",
          server: {
            type: "custom",
            transport: 42
          } as unknown as McpConnection.McpConnection.Options["server"]
        })
      )
      expect(error._tag).toBe("InvalidConfig")
      expect(error.message).toMatch(/transport/)
    })
  )
})

describe("McpConnection elicitation", () => {
  it.live("acceptWithDefaults answers a form with the requested schema's defaults", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const conn = yield* McpConnection.make({
          name: "elicit",
          server: stdioSpec(),
          elicitation: McpConnection.acceptWithDefaults
        })
        yield* conn.awaitReady()
        const result = yield* conn.callTool("ask", {})
        const text = result.content[0]?.type === "text" ? result.content[0].text : ""
        expect(JSON.parse(text)).toEqual({
          action: "accept",
          content: { name: "John Doe", age: 30, verified: true }
        })
      })
    )
  )

  it.live("a custom handler sees the request; without one the server's elicitation fails", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const seen: Array<string> = []
        const conn = yield* McpConnection.make({
          name: "elicit",
          server: stdioSpec(),
          elicitation: (request) => {
            seen.push(request.message)
            return Effect.succeed({ action: "decline" as const })
          }
        })
        yield* conn.awaitReady()
        const declined = yield* conn.callTool("ask", {})
        expect(declined.content).toEqual([{ type: "text", text: JSON.stringify({ action: "decline" }) }])
        expect(seen).toEqual(["Details, please"])

        const failing = yield* McpConnection.make({
          name: "failing",
          server: stdioSpec(),
          elicitation: () => Effect.fail(new Error("nobody at the keyboard"))
        })
        yield* failing.awaitReady()
        const unanswered = yield* Effect.flip(failing.callTool("ask", {}))
        expect(unanswered._tag).toBe("ToolFailed")
        expect(unanswered.message).toContain("elicitation not answered: nobody at the keyboard")

        const plain = yield* McpConnection.make({ name: "plain", server: stdioSpec() })
        yield* plain.awaitReady()
        const refused = yield* Effect.flip(plain.callTool("ask", {}))
        expect(refused._tag).toBe("ToolFailed")
        expect(refused.message).toMatch(/elicitation/i)
      })
    )
  )
})

describe("McpConnection observability", () => {
  it.live("with a tracer installed every call is a span with its server, tool and outcome", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const native = yield* Effect.tracer
        const spans: Array<Tracer.Span> = []
        const recording = Tracer.make({
          span: (...args) => {
            const span = native.span(...args)
            spans.push(span)
            return span
          },
          context: (f) => f()
        })
        const conn = yield* McpConnection.make({ name: "traced", server: stdioSpec() })
        yield* conn.awaitReady()
        yield* conn.callTool("echo", { text: "hi" }).pipe(Effect.withTracer(recording))
        yield* Effect.flip(conn.callTool("fail", { message: "nope" })).pipe(Effect.withTracer(recording))
        const calls = spans.filter((s) => s.name === "McpConnection.callTool")
        expect(calls.map((s) => s.attributes.get("tool"))).toEqual(["echo", "fail"])
        expect(calls.every((s) => s.attributes.get("server") === "traced")).toBe(true)
        const exits = calls.map((s) => (s.status._tag === "Ended" ? s.status.exit._tag : "open"))
        expect(exits).toEqual(["Success", "Failure"])
      })
    )
  )

  it.live("calls are counted by server, tool and outcome; pending calls return to 0", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const conn = yield* McpConnection.make({ name: "counted", server: stdioSpec() })
        yield* conn.awaitReady()
        const count = (tool: string, outcome: string) =>
          Metric.value(
            Metrics.calls.pipe(
              Metric.tagged("server", "counted"),
              Metric.tagged("tool", tool),
              Metric.tagged("outcome", outcome)
            )
          ).pipe(Effect.map((state) => state.count))
        yield* Effect.all([conn.callTool("echo", { text: "a" }), conn.callTool("echo", { text: "b" })], {
          concurrency: 2
        })
        yield* Effect.flip(conn.callTool("fail", { message: "nope" }))
        expect(yield* count("echo", "ok")).toBe(2)
        expect(yield* count("fail", "tool_error")).toBe(1)
        const durations = yield* Metric.value(
          Metrics.callSeconds.pipe(Metric.tagged("server", "counted"), Metric.tagged("tool", "echo"))
        )
        expect(durations.count).toBe(2)
        expect((yield* conn.stats).pendingCalls).toBe(0)
      })
    )
  )
})

describe("McpConnection bad specs", () => {
  it.scoped("unknown transport type → InvalidConfig naming it", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        McpConnection.make({ name: "x", server: { type: "carrier-pigeon" } as never })
      )
      expect(error._tag).toBe("InvalidConfig")
      expect(error.message).toContain('unknown transport type "carrier-pigeon"')
    })
  )

  it.scoped("missing command → InvalidConfig naming the field", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(McpConnection.make({ name: "x", server: { type: "stdio" } as never }))
      expect(error._tag).toBe("InvalidConfig")
      expect(error.message).toMatch(/command/)
    })
  )

  it.scoped("malformed URL → InvalidConfig with the URL", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        McpConnection.make({ name: "x", server: { type: "http", url: "not a url" } })
      )
      expect(error._tag).toBe("InvalidConfig")
      expect(error.message).toContain('malformed URL "not a url"')
      const wrong = yield* Effect.flip(
        McpConnection.make({ name: "x", server: { type: "websocket", url: "http://127.0.0.1:1/" } })
      )
      expect(wrong.message).toContain("needs ws: or wss:")
    })
  )

  it.scoped("a negative delay in the policy → InvalidConfig naming the path", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        McpConnection.make({
          name: "x",
          server: stdioSpec(),
          resilience: { reconnect: { initialDelay: -5 } }
        })
      )
      expect(error._tag).toBe("InvalidConfig")
      expect(error.message).toContain("resilience.reconnect.initialDelay")
    })
  )

  it.live("command not found → SpawnFailed at once, no retry loop", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const conn = yield* McpConnection.make({
          name: "ghost",
          server: { type: "stdio", command: "tether-no-such-command-xyz" }
        })
        const state = yield* waitForTag(conn, "Failed", "5 seconds")
        expect(state._tag === "Failed" && state.lastError._tag).toBe("SpawnFailed")
        expect(state._tag === "Failed" && state.lastError.message).toContain("command not found")
        const error = yield* Effect.flip(conn.callTool("echo", { text: "x" }))
        expect(error._tag).toBe("SpawnFailed")
        expect((yield* conn.stats).connectAttempts).toBe(1)
      })
    )
  )
})
