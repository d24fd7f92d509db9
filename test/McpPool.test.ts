import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Fiber, Redacted, TestClock } from "effect"
import * as McpConnection from "../src/McpConnection.js"
import * as McpPool from "../src/McpPool.js"
import * as ServerSpec from "../src/ServerSpec.js"
import { elapsedSince } from "./support/conn.js"
import { freePort, readLog, specFor, spawnFixture, stdioSpec, tempLog } from "./support/fixture.js"

const spec = (input: ServerSpec.Encoded) => Either.getOrThrow(ServerSpec.decodeEither(input))

const textOf = (result: { content: ReadonlyArray<{ type: string; text?: string }> }) =>
  result.content.flatMap((c) => (c.type === "text" && c.text !== undefined ? [c.text] : [])).join("")

describe("McpPool", () => {
  it.scopedLive("one broken and one slow server never block calls to a healthy one", () =>
    Effect.gen(function* () {
      const deadPort = yield* freePort
      const slow = yield* spawnFixture("http")
      const pool = yield* McpPool.make({
        servers: [
          { name: "good", spec: spec(stdioSpec()) },
          { name: "dead", spec: spec({ type: "http", url: `http://127.0.0.1:${deadPort}/mcp` }) },
          { name: "slow", spec: spec(specFor("http", slow.port)) }
        ]
      })
      yield* Effect.flatMap(pool.connection("slow"), (c) => c.awaitReady()).pipe(Effect.scoped)
      yield* slow.pause
      const deadCall = yield* Effect.fork(
        pool.callTool("dead", "echo", { text: "x" }, { timeout: "3 seconds" })
      )
      const slowCall = yield* Effect.fork(
        pool.callTool("slow", "echo", { text: "x" }, { timeout: "3 seconds" })
      )
      const start = performance.now()
      for (let i = 0; i < 20; i++) {
        expect(textOf(yield* pool.callTool("good", "echo", { text: `ok${i}` }))).toBe(`ok${i}`)
      }
      expect(elapsedSince(start)).toBeLessThan(2_000)
      const deadResult = yield* Effect.either(Fiber.join(deadCall))
      expect(Either.isLeft(deadResult) && deadResult.left.message).toContain("ConnectFailed")
      expect(Either.isLeft(yield* Effect.either(Fiber.join(slowCall)))).toBe(true)
      yield* slow.resume
      const status = yield* pool.status
      expect(status.find((s) => s.server === "good")?.state).toBe("Ready")
      expect(status.find((s) => s.server === "dead")?.state).toMatch(/Reconnecting|Failed/)
      expect(status.find((s) => s.server === "dead")?.connectAttempts).toBeGreaterThan(1)
    })
  )

  it.scopedLive(
    "aggregates a namespaced catalogue, refreshed on tools/list_changed; calls by namespaced name",
    () =>
      Effect.gen(function* () {
        const pool = yield* McpPool.make({
          servers: [
            { name: "a", spec: spec(stdioSpec()) },
            { name: "b", spec: spec(stdioSpec()) }
          ],
          namespaceSeparator: "."
        })
        const names = (yield* pool.tools()).map((e) => e.name)
        expect(names).toEqual(expect.arrayContaining(["a.echo", "b.echo", "a.count", "b.fail"]))
        expect(textOf(yield* pool.call("b.echo", { text: "via b" }))).toBe("via b")
        yield* pool.callTool("a", "add_tool", { name: "fresh" })
        let after: ReadonlyArray<string> = []
        for (let i = 0; i < 50 && !after.includes("a.fresh"); i++) {
          yield* Effect.sleep("20 millis")
          after = (yield* pool.tools()).map((e) => e.name)
        }
        expect(after).toContain("a.fresh")
        expect(after).not.toContain("b.fresh")
        const unknownServer = yield* Effect.flip(pool.call("zzz.echo", {}))
        expect(unknownServer._tag).toBe("UnknownServer")
        const unknownTool = yield* Effect.flip(pool.callTool("a", "nope", {}))
        expect(unknownTool._tag).toBe("UnknownTool")
        expect(unknownTool.message).toContain('server a has no tool "nope"')
      })
  )

  it.scopedLive("lazy servers stay Idle until first used", () =>
    Effect.gen(function* () {
      const log = tempLog()
      const pool = yield* McpPool.make({
        servers: [{ name: "lazy", spec: spec(stdioSpec({ log })), lazy: true }]
      })
      yield* Effect.sleep("300 millis")
      expect((yield* pool.status)[0]?.state).toBe("Idle")
      expect(readLog(log)).toEqual([])
      expect(textOf(yield* pool.callTool("lazy", "echo", { text: "wake" }))).toBe("wake")
      const status = (yield* pool.status)[0]
      expect(status?.state).toBe("Ready")
      expect(status?.connectAttempts).toBe(1)
    })
  )

  it.scopedLive("the pool's elicitation handler answers for its connections", () =>
    Effect.gen(function* () {
      const pool = yield* McpPool.make({
        servers: [{ name: "asker", spec: spec(stdioSpec()) }],
        elicitation: McpConnection.acceptWithDefaults
      })
      const answer = JSON.parse(textOf(yield* pool.callTool("asker", "ask", {})))
      expect(answer).toEqual({ action: "accept", content: { name: "John Doe", age: 30, verified: true } })
    })
  )

  it.scopedLive("tenants get their own connections; one tenant's headers never reach another's", () =>
    Effect.gen(function* () {
      const fx = yield* spawnFixture("http")
      const pool = yield* McpPool.make({
        servers: [
          {
            name: "api",
            spec: spec({
              type: "http",
              url: `http://127.0.0.1:${fx.port}/mcp`,
              headers: { "x-tenant": "${tenant.id}", authorization: "Bearer ${tenant.token}" }
            })
          }
        ]
      })
      const a = pool.forTenant({ id: "alice", values: { token: "token-a" } })
      const b = pool.forTenant({ id: "bob", values: { token: "token-b" } })
      const whoA = JSON.parse(textOf(yield* a.callTool("api", "whoami", {})))
      const whoB = JSON.parse(textOf(yield* b.callTool("api", "whoami", {})))
      expect(whoA).toMatchObject({ tenant: "alice", authorization: "Bearer token-a" })
      expect(whoB).toMatchObject({ tenant: "bob", authorization: "Bearer token-b" })
      expect(whoA.session).not.toBe(whoB.session)
      // Many interleaved calls: each always on its own tenant's session.
      const plan: ReadonlyArray<readonly [string, McpPool.Calls]> = Array.from({ length: 20 }, (_, i) =>
        i % 2 === 0 ? (["alice", a] as const) : (["bob", b] as const)
      )
      const results = yield* Effect.forEach(
        plan,
        ([id, calls]) =>
          Effect.map(calls.callTool("api", "whoami", {}), (r) => [id, JSON.parse(textOf(r))] as const),
        { concurrency: 8 }
      )
      for (const [id, who] of results) {
        expect(who.tenant).toBe(id)
        expect(who.session).toBe(id === "alice" ? whoA.session : whoB.session)
      }
      // The default tenant cannot use a server that needs tenant values.
      const noTenant = yield* Effect.flip(pool.callTool("api", "whoami", {}))
      expect(noTenant._tag).toBe("InvalidConfig")
      const statuses = yield* pool.statusAll
      expect(
        statuses
          .filter((s) => s.tenant !== undefined)
          .map((s) => s.tenant)
          .sort()
      ).toEqual(["alice", "bob"])
      // A missing tenant value is a config error naming it.
      const missing = yield* Effect.flip(pool.forTenant({ id: "carol" }).callTool("api", "whoami", {}))
      expect(missing._tag).toBe("InvalidConfig")
      expect(missing.message).toContain("token")
    })
  )

  // Runs on the TestClock: the idle TTL elapses by `TestClock.adjust`, not by a real sleep.
  it.scoped("idle tenant connections close after idleTimeToLive; at most maxConnections are open", () =>
    Effect.gen(function* () {
      const pool = yield* McpPool.make({
        servers: [{ name: "s", spec: spec(stdioSpec()) }],
        idleTimeToLive: "1500 millis",
        maxConnections: 2
      })
      const t1 = pool.forTenant({ id: "t1" })
      const t2 = pool.forTenant({ id: "t2" })
      const t3 = pool.forTenant({ id: "t3" })
      yield* t1.callTool("s", "echo", { text: "1" })
      yield* t2.callTool("s", "echo", { text: "2" })
      expect((yield* pool.statusAll).filter((s) => s.tenant !== undefined)).toHaveLength(2)
      const over = yield* Effect.flip(t3.callTool("s", "echo", { text: "3" }))
      expect(over._tag).toBe("Overloaded")
      yield* TestClock.adjust("1499 millis")
      yield* Effect.yieldNow()
      expect((yield* pool.statusAll).filter((s) => s.tenant !== undefined)).toHaveLength(2)
      yield* TestClock.adjust("2 millis")
      // The connections close in the background (their children exit in real time).
      const open = () => Effect.map(pool.statusAll, (all) => all.filter((s) => s.tenant !== undefined).length)
      for (let i = 0; i < 500 && (yield* open()) > 0; i++) {
        yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 10)))
      }
      expect(yield* open()).toBe(0)
      expect(textOf(yield* t3.callTool("s", "echo", { text: "3" }))).toBe("3")
    })
  )

  it.scoped("a bad server spec fails the whole pool before anything starts", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        McpPool.make({
          servers: [
            { name: "ok", spec: spec(stdioSpec()) },
            { name: "bad", spec: { type: "http", url: "nope", headers: { a: Redacted.make("b") } } as never }
          ]
        })
      )
      expect(error._tag).toBe("InvalidConfig")
      expect(error.message).toContain("mcpServers.bad.url")
    })
  )
})
