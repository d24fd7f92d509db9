/**
 * `tether proxy`: a real downstream SDK client (over real HTTP, or spawning the real CLI
 * over stdio) in front of real fixture servers that are killed, paused and restarted.
 */
import { HttpRouter, HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import {
  type CallToolResult,
  ElicitRequestSchema,
  LoggingMessageNotificationSchema,
  ToolListChangedNotificationSchema
} from "@modelcontextprotocol/sdk/types.js"
import { Context, Effect, Either, Layer, Redacted } from "effect"
import { readFileSync } from "node:fs"
import { createServer, request as httpRequest } from "node:http"
import * as Config from "../src/Config.js"
import * as McpPool from "../src/McpPool.js"
import * as Proxy from "../src/Proxy.js"
import type * as ServerSpec from "../src/ServerSpec.js"
import { myFixtureChildren, signal } from "./support/conn.js"
import * as FaultProxy from "./support/faultProxy.js"
import { EVERYTHING, readLog, spawnFixture, specFor, stdioSpec, tempLog } from "./support/fixture.js"

/** Fast failure detection, so fault tests take seconds. */
const FAST = {
  heartbeat: { interval: 300, timeout: 300, misses: 1 },
  reconnect: { initialDelay: 50, maxDelay: 300 },
  call: { timeout: 15_000 },
  closeGrace: 200
}

type Upstream = {
  readonly name: string
  readonly spec: ServerSpec.Encoded
  readonly prefix?: string
  readonly callTimeout?: number
}

/** An in-process proxy over a pool of real upstreams, served on a real HTTP port. */
const serveProxy = (upstreams: ReadonlyArray<Upstream>, http: Proxy.HttpOptions = {}) =>
  Effect.gen(function* () {
    const options: McpPool.Options = {
      servers: upstreams.map((u) => ({
        name: u.name,
        spec: u.spec as ServerSpec.ServerSpec,
        resilience: u.callTimeout === undefined ? FAST : { ...FAST, call: { timeout: u.callTimeout } },
        ...(u.prefix !== undefined ? { prefix: u.prefix } : {})
      }))
    }
    const app = Layer.unwrapScoped(
      Effect.map(Proxy.httpHandler(http), (handle) =>
        HttpServer.serve(HttpRouter.empty.pipe(HttpRouter.all("/mcp", handle)))
      )
    )
    const relay = Proxy.elicitationRelay()
    const context = yield* Layer.build(
      app.pipe(
        Layer.provideMerge(NodeHttpServer.layer(() => createServer(), { port: 0, host: "127.0.0.1" })),
        Layer.provideMerge(Proxy.layer({ prefixes: Proxy.prefixesOf(options), relay })),
        Layer.provideMerge(McpPool.layer({ ...options, elicitation: relay.handler }))
      )
    )
    const address = Context.get(context, HttpServer.HttpServer).address
    const port = address._tag === "TcpAddress" ? address.port : 0
    return { url: `http://127.0.0.1:${port}/mcp`, pool: Context.get(context, McpPool.McpPool) }
  })

/** A downstream SDK client over Streamable HTTP, closed with the scope. */
const httpClient = (url: string, headers: Record<string, string> = {}, setup?: (client: Client) => void) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } })
      const client = new Client(
        { name: "downstream", version: "1.0.0" },
        setup === undefined ? undefined : { capabilities: { elicitation: { form: {} } } }
      )
      setup?.(client)
      await client.connect(transport)
      return { client, transport }
    }),
    ({ client }) => Effect.promise(() => client.close())
  )

const text = (result: unknown): string =>
  ((result as CallToolResult).content ?? []).flatMap((c) => (c.type === "text" ? [c.text] : [])).join("\n")

const call = (client: Client, name: string, args: Record<string, unknown> = {}) =>
  Effect.promise(() => client.callTool({ name, arguments: args }) as Promise<CallToolResult>)

/** What a promise rejected with (undefined when it resolved). */
const rejection = (f: () => Promise<unknown>) =>
  Effect.promise(() =>
    f().then(
      () => undefined,
      (e: unknown) => e
    )
  )

const waitUntil = (check: () => boolean, what: string, ms = 20_000) =>
  Effect.gen(function* () {
    const until = Date.now() + ms
    while (!check()) {
      if (Date.now() > until) return yield* Effect.fail(new Error(`timed out waiting for ${what}`))
      yield* Effect.sleep("50 millis")
    }
  })

/** The stdio fixture children of `parent` whose log file is `log`. */
const stdioChildWithLog = (log: string) =>
  myFixtureChildren().filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").includes(log)
    } catch {
      return false
    }
  })

describe("Proxy: aggregation and forwarding (HTTP front, stdio upstreams)", () => {
  it.scopedLive(
    "prefixes names per server (config prefix wins), forwards results, isError, progress, errors, resources and prompts",
    () =>
      Effect.gen(function* () {
        const { url } = yield* serveProxy([
          { name: "a", spec: stdioSpec() },
          { name: "b", spec: stdioSpec(), prefix: "bee_" }
        ])
        const { client } = yield* httpClient(url)

        const tools = (yield* Effect.promise(() => client.listTools())).tools.map((t) => t.name)
        expect(tools).toContain("a__echo")
        expect(tools).toContain("bee_echo")
        expect(tools.filter((t) => t.endsWith("echo"))).toHaveLength(2)

        expect(text(yield* call(client, "a__echo", { text: "one" }))).toBe("one")
        expect(text(yield* call(client, "bee_echo", { text: "two" }))).toBe("two")

        const failed = yield* call(client, "bee_fail", { message: "nope" })
        expect(failed.isError).toBe(true)
        expect(text(failed)).toBe("nope")

        const progress: Array<number> = []
        const done = yield* Effect.promise(() =>
          client.callTool({ name: "a__progress", arguments: { steps: 3, ms: 20 } }, undefined, {
            onprogress: (p) => progress.push(p.progress)
          })
        )
        expect(text(done)).toBe("done 3")
        // The last one races the result in the SDK client itself (its notification handlers
        // run a microtask later than its response handler; a raw SDK client straight on the
        // fixture loses it too), so only the ones followed by a pause are certain.
        expect(progress.slice(0, 2)).toEqual([1, 2])

        const unknown = yield* rejection(() => client.callTool({ name: "zz__echo", arguments: {} }))
        expect(String(unknown)).toContain("-32602")
        expect(String(unknown)).toContain("unknown tool")

        const resources = (yield* Effect.promise(() => client.listResources())).resources
        expect(resources.map((r) => r.name).sort()).toEqual(["a__counter", "bee_counter"])
        const read = yield* Effect.promise(() => client.readResource({ uri: "fixture://counter" }))
        expect(read.contents[0]?.uri).toBe("fixture://counter")

        const prompts = (yield* Effect.promise(() => client.listPrompts())).prompts.map((p) => p.name).sort()
        expect(prompts).toEqual(["a__greet", "bee_greet"])
        const prompt = yield* Effect.promise(() =>
          client.getPrompt({ name: "bee_greet", arguments: { name: "Ada" } })
        )
        expect(JSON.stringify(prompt.messages)).toContain("Hello, Ada!")
      }),
    60_000
  )

  it.scopedLive(
    "an upstream elicitation is asked of the downstream client that declared the capability",
    () =>
      Effect.gen(function* () {
        const { url } = yield* serveProxy([{ name: "a", spec: stdioSpec() }])
        const asked: Array<string> = []
        const { client } = yield* httpClient(url, {}, (c) =>
          c.setRequestHandler(ElicitRequestSchema, async (request) => {
            asked.push(request.params.message)
            return { action: "accept", content: { name: "Ada", age: 36, verified: true } }
          })
        )
        const answer = JSON.parse(text(yield* call(client, "ask"))) as { action: string; content: unknown }
        expect(asked).toEqual(["Details, please"])
        expect(answer).toEqual({ action: "accept", content: { name: "Ada", age: 36, verified: true } })
        // A client without the capability is never asked: the server hears "decline".
        const plain = yield* httpClient(url)
        expect(JSON.parse(text(yield* call(plain.client, "ask")))).toMatchObject({ action: "decline" })
      })
  )

  it.scopedLive("upstream log messages reach the downstream session, named after their server", () =>
    Effect.gen(function* () {
      const { url } = yield* serveProxy([
        { name: "ev", spec: { type: "stdio", command: process.execPath, args: [EVERYTHING] } }
      ])
      const logs: Array<{ level: string; logger?: string | undefined }> = []
      const { client } = yield* httpClient(url)
      client.setNotificationHandler(LoggingMessageNotificationSchema, async (n) => {
        logs.push({ level: n.params.level, logger: n.params.logger })
      })
      // server-everything logs once at once, then every 5 s, once this is on.
      yield* call(client, "toggle-simulated-logging")
      yield* waitUntil(() => logs.length > 0, "a log message from the upstream", 15_000)
      expect(logs[0]?.logger).toBe("ev")
    })
  )

  it.scopedLive("a downstream cancellation cancels the upstream call", () =>
    Effect.gen(function* () {
      const log = tempLog()
      const { url } = yield* serveProxy([{ name: "a", spec: stdioSpec({ log }) }])
      const { client } = yield* httpClient(url)
      // Once the upstream is up, the call goes out at once (a call still waiting for the
      // first connect has nothing upstream to cancel).
      expect(text(yield* call(client, "echo", { text: "up" }))).toBe("up")
      const controller = new AbortController()
      const pending = client
        .callTool({ name: "slow", arguments: { ms: 10_000 } }, undefined, { signal: controller.signal })
        .then(
          () => "answered",
          () => "rejected"
        )
      yield* Effect.sleep("1 second")
      controller.abort()
      expect(yield* Effect.promise(() => pending)).toBe("rejected")
      yield* waitUntil(
        () => readLog(log).some((l) => l.startsWith("cancelled")),
        "the upstream to see the cancellation",
        5_000
      )
    })
  )
})

describe("Proxy: resilience (the downstream session survives upstream faults)", () => {
  it.scopedLive(
    "stdio upstream kill -9: same downstream session, idempotent calls succeed, list_changed after a reconnect that changed the catalogue",
    () =>
      Effect.gen(function* () {
        const log = tempLog()
        const { url } = yield* serveProxy([{ name: "a", spec: stdioSpec({ log }) }])
        const { client, transport } = yield* httpClient(url)
        let changes = 0
        client.setNotificationHandler(ToolListChangedNotificationSchema, async () => {
          changes += 1
        })
        const session = transport.sessionId
        expect(text(yield* call(client, "echo", { text: "before" }))).toBe("before")
        // The first catalogue may itself come as a list_changed (the session opened before
        // the upstream was up): count from once it has settled.
        yield* Effect.promise(() => client.listTools())
        yield* Effect.sleep("300 millis")
        const settled = changes

        // An upstream list_changed reaches the downstream client.
        expect(text(yield* call(client, "add_tool", { name: "extra" }))).toBe("added extra")
        yield* waitUntil(() => changes > settled, "tools/list_changed after add_tool")
        const afterAdd = changes
        expect((yield* Effect.promise(() => client.listTools())).tools.map((t) => t.name)).toContain("extra")

        // kill -9: the pool restarts the child; the new one has no "extra" tool.
        const [pid] = stdioChildWithLog(log)
        expect(pid).toBeDefined()
        yield* signal(pid!, "SIGKILL")
        expect(text(yield* call(client, "echo", { text: "after" }))).toBe("after")
        expect(transport.sessionId).toBe(session)
        yield* waitUntil(() => changes > afterAdd, "tools/list_changed after the reconnect dropped a tool")
        expect((yield* Effect.promise(() => client.listTools())).tools.map((t) => t.name)).not.toContain(
          "extra"
        )
        expect(readLog(log).filter((l) => l.startsWith("initialize"))).toHaveLength(2)
      }),
    60_000
  )

  it.scopedLive(
    "HTTP upstream kill -9 and restart, a 502 window, SIGSTOP: one downstream session, idempotent calls succeed",
    () =>
      Effect.gen(function* () {
        const upstream = yield* spawnFixture("http")
        const gate = yield* FaultProxy.make({ target: upstream.port })
        const { url } = yield* serveProxy([{ name: "h", spec: specFor("http", gate.port) }])
        const { client, transport } = yield* httpClient(url)
        const session = transport.sessionId
        expect(text(yield* call(client, "echo", { text: "0" }))).toBe("0")

        // kill -9, restart on the same port while a call waits.
        yield* upstream.kill("SIGKILL")
        const during = Effect.runPromise(call(client, "echo", { text: "1" }))
        yield* Effect.sleep("700 millis")
        yield* upstream.start
        expect(text(yield* Effect.promise(() => during))).toBe("1")

        // A gateway answering 502 for a while.
        yield* gate.statusWindow({ status: 502, durationMs: 1_500 })
        expect(text(yield* call(client, "echo", { text: "2" }))).toBe("2")

        // Half-open: the server stops answering; the heartbeat notices, calls wait it out.
        yield* upstream.pause
        const paused = Effect.runPromise(call(client, "echo", { text: "3" }))
        yield* Effect.sleep("1500 millis")
        yield* upstream.resume
        expect(text(yield* Effect.promise(() => paused))).toBe("3")

        expect(transport.sessionId).toBe(session)
      }),
    60_000
  )

  it.scopedLive(
    "a non-idempotent call cut after receipt is an isError result with OutcomeUnknown in _meta, and never runs twice",
    () =>
      Effect.gen(function* () {
        const log = tempLog()
        const upstream = yield* spawnFixture("http", { log })
        const gate = yield* FaultProxy.make({ target: upstream.port })
        const { url } = yield* serveProxy([{ name: "h", spec: specFor("http", gate.port) }])
        const { client } = yield* httpClient(url)
        const pending = Effect.runPromise(call(client, "count", { id: "once", holdMs: 1_000 }))
        yield* waitUntil(() => readLog(log).includes("count once"), "the upstream to receive the call")
        yield* gate.reset
        const result = yield* Effect.promise(() => pending)
        expect(result.isError).toBe(true)
        expect(text(result)).toContain("outcome of count")
        expect(text(result)).toContain("not retried")
        const meta = result._meta?.["tether/outcomeUnknown"] as Record<string, unknown>
        expect(meta["_tag"]).toBe("OutcomeUnknown")
        expect(meta["tool"]).toBe("count")
        // The connection comes back; the call is still recorded once.
        expect(text(yield* call(client, "echo", { text: "later" }))).toBe("later")
        expect(readLog(log).filter((l) => l === "count once")).toHaveLength(1)
      }),
    60_000
  )

  it.scopedLive(
    "a down upstream never hides the others; past the deadline a call is a clear JSON-RPC error",
    () =>
      Effect.gen(function* () {
        const down = yield* spawnFixture("http")
        const { url } = yield* serveProxy([
          { name: "up", spec: stdioSpec() },
          { name: "down", spec: specFor("http", down.port), callTimeout: 2_000 }
        ])
        const { client } = yield* httpClient(url)
        expect((yield* Effect.promise(() => client.listTools())).tools.map((t) => t.name)).toContain(
          "down__echo"
        )
        yield* down.kill("SIGKILL")
        const tools = (yield* Effect.promise(() => client.listTools())).tools
        expect(tools.map((t) => t.name)).toContain("up__echo")
        const marked = tools.find((t) => t.name === "down__echo")
        expect(marked?.description).toMatch(/\[tether: down is (reconnecting|unavailable)/)
        expect(text(yield* call(client, "up__echo", { text: "alive" }))).toBe("alive")
        const error = yield* rejection(() =>
          client.callTool({ name: "down__echo", arguments: { text: "x" } }, undefined, { timeout: 30_000 })
        )
        expect(String(error)).toMatch(/upstream server down is unavailable/)
      }),
    60_000
  )
})

describe("Proxy: the HTTP front", () => {
  it.scopedLive(
    "API key, Host and Origin checks (DNS rebinding), body limit",
    () =>
      Effect.gen(function* () {
        const { url } = yield* serveProxy([{ name: "a", spec: stdioSpec() }], {
          apiKey: Redacted.make("sekret"),
          maxBodyBytes: 2_000
        })
        const init = {
          jsonrpc: "2.0",
          id: 1,
          method: "initialize",
          params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "x", version: "1" } }
        }
        const post = (headers: Record<string, string>, body: string = JSON.stringify(init)) =>
          Effect.promise(() =>
            fetch(url, {
              method: "POST",
              headers: {
                "content-type": "application/json",
                accept: "application/json, text/event-stream",
                ...headers
              },
              body
            }).then(async (r) => ({ status: r.status, body: await r.text() }))
          )
        const auth = { authorization: "Bearer sekret" }
        expect((yield* post({})).status).toBe(401)
        expect((yield* post({ authorization: "Bearer wrong" })).status).toBe(401)
        expect((yield* post({ ...auth, origin: "http://evil.example" })).status).toBe(403)
        // fetch does not let a caller set Host: node:http does.
        const evilHost = yield* Effect.promise(
          () =>
            new Promise<number>((done, fail) => {
              const req = httpRequest(
                url,
                { method: "POST", headers: { ...auth, host: "evil.example:80" } },
                (res) => {
                  res.resume()
                  done(res.statusCode ?? 0)
                }
              )
              req.on("error", fail)
              req.end(JSON.stringify(init))
            })
        )
        expect(evilHost).toBe(403)
        expect((yield* post(auth, JSON.stringify({ ...init, pad: "x".repeat(3_000) }))).status).toBe(413)
        expect((yield* post(auth, "{not json")).status).toBe(400)
        expect((yield* post({ ...auth, origin: "http://localhost:1234" })).status).toBe(200)
        const { client } = yield* httpClient(url, auth)
        expect(text(yield* call(client, "echo", { text: "ok" }))).toBe("ok")
        // A session id the proxy never issued is 404, as the spec says.
        expect(
          (yield* post(
            { ...auth, "mcp-session-id": "nope" },
            JSON.stringify({ jsonrpc: "2.0", id: 2, method: "ping" })
          )).status
        ).toBe(404)
      }),
    60_000
  )

  it.scopedLive("a session idle past sessionIdleTimeout is closed: its id is then 404", () =>
    Effect.gen(function* () {
      const { url } = yield* serveProxy([{ name: "a", spec: stdioSpec() }], {
        sessionIdleTimeout: "1 second"
      })
      const { client, transport } = yield* httpClient(url)
      expect(text(yield* call(client, "echo", { text: "x" }))).toBe("x")
      const id = transport.sessionId!
      const ping = (sessionId: string) =>
        Effect.promise(() =>
          fetch(url, {
            method: "POST",
            headers: {
              "content-type": "application/json",
              accept: "application/json, text/event-stream",
              "mcp-session-id": sessionId,
              "mcp-protocol-version": "2025-06-18"
            },
            body: JSON.stringify({ jsonrpc: "2.0", id: 99, method: "ping" })
          }).then((r) => r.status)
        )
      expect(yield* ping(id)).toBe(200)
      yield* Effect.sleep("2500 millis")
      expect(yield* ping(id)).toBe(404)
    })
  )
})

describe("Proxy: subscriptions and config", () => {
  it.scopedLive(
    "a downstream subscription goes upstream once, is restored after an upstream kill -9, and is dropped with the last subscriber",
    () =>
      Effect.gen(function* () {
        const log = tempLog()
        const { url } = yield* serveProxy([{ name: "a", spec: stdioSpec({ log }) }])
        const first = yield* httpClient(url)
        const second = yield* httpClient(url)
        yield* Effect.promise(() => first.client.subscribeResource({ uri: "fixture://counter" }))
        yield* Effect.promise(() => second.client.subscribeResource({ uri: "fixture://counter" }))
        expect(readLog(log).filter((l) => l === "subscribe fixture://counter")).toHaveLength(1)
        const [pid] = stdioChildWithLog(log)
        yield* signal(pid!, "SIGKILL")
        expect(text(yield* call(first.client, "echo", { text: "back" }))).toBe("back")
        yield* waitUntil(
          () => readLog(log).filter((l) => l === "subscribe fixture://counter").length === 2,
          "the subscription to be restored upstream"
        )
        yield* Effect.promise(() => first.client.unsubscribeResource({ uri: "fixture://counter" }))
        expect(readLog(log).filter((l) => l.startsWith("unsubscribe"))).toHaveLength(0)
        yield* Effect.promise(() => second.client.unsubscribeResource({ uri: "fixture://counter" }))
        expect(readLog(log).filter((l) => l.startsWith("unsubscribe"))).toEqual([
          "unsubscribe fixture://counter"
        ])
      }),
    60_000
  )

  it("a server's prefix comes from mcp.json; a bad one is rejected with its path", () => {
    const good = Config.parse(
      JSON.stringify({ mcpServers: { gh: { command: "x", prefix: "gh_" }, fs: { command: "y" } } })
    )
    expect(Either.isRight(good) && Proxy.prefixesOf(good.right)).toEqual({ gh: "gh_" })
    const bad = Config.parse(JSON.stringify({ mcpServers: { gh: { command: "x", prefix: "a b" } } }))
    expect(Either.isLeft(bad) && bad.left.message).toContain("mcpServers.gh.prefix")
  })
})
