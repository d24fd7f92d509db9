/**
 * `tether proxy` as a real process: driven over stdio by a real third-party client (the MCP
 * Inspector's CLI) and by the SDK's own client, and over Streamable HTTP in stateless mode
 * by one client alternating between two proxy processes.
 */
import { describe, expect, it } from "@effect/vitest"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js"
import { Effect } from "effect"
import { execFile } from "node:child_process"
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { type AddressInfo, createServer, type Server } from "node:net"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import {
  descendants,
  FIXTURE,
  readLog,
  spawnFixture,
  spawnServer,
  tempLog,
  urlFor
} from "./support/fixture.js"

const TETHER = resolve("bin/tether.js")
/** The inspector CLI reads its own package.json relative to the working directory. */
const INSPECTOR_DIR = resolve("node_modules/@modelcontextprotocol/inspector-cli/build")

const FAST = {
  heartbeat: { interval: 300, timeout: 300, misses: 1 },
  reconnect: { initialDelay: 50, maxDelay: 300 },
  closeGrace: 200
}

const writeConfig = (servers: Record<string, unknown>): string => {
  const file = join(mkdtempSync(join(tmpdir(), "tether-proxy-")), "mcp.json")
  writeFileSync(file, JSON.stringify({ resilience: FAST, mcpServers: servers }))
  return file
}

const stdioFixture = (log?: string) => ({
  command: process.execPath,
  args: [FIXTURE, "--transport", "stdio", ...(log !== undefined ? ["--log", log] : [])]
})

const text = (result: unknown): string =>
  ((result as CallToolResult).content ?? []).flatMap((c) => (c.type === "text" ? [c.text] : [])).join("\n")

const inspector = (args: ReadonlyArray<string>) =>
  new Promise<{ code: number | null; out: string; err: string }>((done) => {
    const child = execFile(
      process.execPath,
      ["index.js", process.execPath, TETHER, ...args],
      { cwd: INSPECTOR_DIR, timeout: 90_000 },
      (_e, out, err) => done({ code: child.exitCode, out, err })
    )
  })

const cmdline = (pid: number): string => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8")
  } catch {
    return ""
  }
}

describe("tether proxy over stdio", () => {
  it("the MCP Inspector CLI lists and calls tools through it (one server: names unprefixed)", async () => {
    const config = writeConfig({ solo: stdioFixture() })
    const [list, called] = await Promise.all([
      inspector(["proxy", "--config", config, "--method", "tools/list"]),
      inspector([
        "proxy",
        "--config",
        config,
        "--method",
        "tools/call",
        "--tool-name",
        "echo",
        "--tool-arg",
        "text=hello"
      ])
    ])
    expect(list.code, list.err).toBe(0)
    const names = (JSON.parse(list.out) as { tools: Array<{ name: string }> }).tools.map((t) => t.name)
    expect(names).toContain("echo")
    expect(names).toContain("count")
    expect(names.some((n) => n.includes("__"))).toBe(false)
    expect(called.code, called.err).toBe(0)
    expect(text(JSON.parse(called.out))).toBe("hello")
  }, 120_000)

  it.scopedLive(
    "an SDK client keeps its session across an upstream kill -9; closing stdin ends the proxy and its children",
    () =>
      Effect.gen(function* () {
        const log = tempLog()
        const config = writeConfig({ solo: stdioFixture(log) })
        const transport = new StdioClientTransport({
          command: process.execPath,
          args: [TETHER, "proxy", "--config", config],
          stderr: "pipe"
        })
        const client = new Client({ name: "sdk-downstream", version: "1.0.0" })
        yield* Effect.acquireRelease(
          Effect.promise(() => client.connect(transport)),
          () => Effect.promise(() => client.close())
        )
        const proxyPid = transport.pid!
        const call = (args: Record<string, unknown>) =>
          Effect.promise(() => client.callTool({ name: "echo", arguments: args }))
        expect(text(yield* call({ text: "before" }))).toBe("before")

        const upstream = descendants(proxyPid).filter((pid) => cmdline(pid).includes(FIXTURE))
        expect(upstream).toHaveLength(1)
        process.kill(upstream[0]!, "SIGKILL")
        expect(text(yield* call({ text: "after" }))).toBe("after")
        expect(readLog(log).filter((l) => l.startsWith("initialize"))).toHaveLength(2)
        const restarted = descendants(proxyPid).filter((pid) => cmdline(pid).includes(FIXTURE))
        expect(restarted).toHaveLength(1)
        expect(restarted[0]).not.toBe(upstream[0])

        yield* Effect.promise(() => client.close())
        const gone = yield* Effect.promise(async () => {
          const until = Date.now() + 15_000
          while (Date.now() < until) {
            const alive = [proxyPid, ...restarted].filter((pid) => cmdline(pid) !== "")
            if (alive.length === 0) return true
            await new Promise((r) => setTimeout(r, 100))
          }
          return false
        })
        expect(gone).toBe(true)
      }),
    90_000
  )
})

describe("tether proxy --stateless", () => {
  it.scopedLive(
    "two proxy processes serve one client alternately (no session id)",
    () =>
      Effect.gen(function* () {
        const log = tempLog()
        const upstream = yield* spawnFixture("http", { log })
        const config = writeConfig({ h: { type: "http", url: urlFor("http", upstream.port) } })
        const proxies = yield* Effect.all(
          [0, 1].map(() =>
            spawnServer((port) => ({
              what: "tether proxy --stateless",
              args: [TETHER, "proxy", "--config", config, "--port", String(port), "--stateless"],
              ready: /LISTENING/,
              // The CLI runs from TypeScript through tsx: slow to start on a busy machine.
              startTimeoutMs: 60_000
            }))
          ),
          { concurrency: 2 }
        )
        const ports = proxies.map((p) => p.port)
        const served = [0, 0]
        let turn = 0
        // Every request goes to the other process than the one before.
        const alternate: typeof fetch = (input, init) => {
          const i = turn++ % 2
          served[i]! += 1
          const url = new URL(input instanceof Request ? input.url : String(input))
          url.port = String(ports[i])
          return fetch(url, init)
        }
        const transport = new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${ports[0]}/mcp`), {
          fetch: alternate
        })
        const client = new Client({ name: "balanced", version: "1.0.0" })
        yield* Effect.acquireRelease(
          Effect.promise(() => client.connect(transport)),
          () => Effect.promise(() => client.close())
        )
        expect(transport.sessionId).toBeUndefined()
        for (let i = 0; i < 4; i++) {
          const tools = yield* Effect.promise(() => client.listTools())
          expect(tools.tools.map((t) => t.name)).toContain("echo")
          const result = yield* Effect.promise(() =>
            client.callTool({ name: "count", arguments: { id: `c${i}` } })
          )
          expect(result.isError).toBeFalsy()
        }
        expect(served[0]).toBeGreaterThanOrEqual(4)
        expect(served[1]).toBeGreaterThanOrEqual(4)
        expect(readLog(log).filter((l) => l.startsWith("count"))).toEqual([
          "count c0",
          "count c1",
          "count c2",
          "count c3"
        ])
      }),
    120_000
  )
})

describe("tether serve mounts the proxy at /mcp", () => {
  it.scopedLive(
    "an MCP client and a REST client use one gateway; /mcp takes the same API key",
    () =>
      Effect.gen(function* () {
        const config = writeConfig({ solo: stdioFixture() })
        const gateway = yield* spawnServer((port) => ({
          what: "tether serve",
          args: [TETHER, "serve", "--config", config, "--port", String(port), "--api-key", "k-123"],
          env: { TETHER_API_KEY: "" },
          ready: /LISTENING/,
          // The CLI runs from TypeScript through tsx: slow to start on a busy machine.
          startTimeoutMs: 60_000
        }))
        const base = `http://127.0.0.1:${gateway.port}`
        const unauthorized = yield* Effect.promise(() =>
          fetch(`${base}/mcp`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: "{}"
          })
        )
        expect(unauthorized.status).toBe(401)
        const transport = new StreamableHTTPClientTransport(new URL(`${base}/mcp`), {
          requestInit: { headers: { authorization: "Bearer k-123" } }
        })
        const client = new Client({ name: "downstream", version: "1.0.0" })
        yield* Effect.acquireRelease(
          Effect.promise(() => client.connect(transport)),
          () => Effect.promise(() => client.close())
        )
        expect(transport.sessionId).toBeDefined()
        expect(
          text(yield* Effect.promise(() => client.callTool({ name: "echo", arguments: { text: "mcp" } })))
        ).toBe("mcp")
        const rest = yield* Effect.promise(() =>
          fetch(`${base}/solo/echo`, {
            method: "POST",
            headers: { "content-type": "application/json", authorization: "Bearer k-123" },
            body: JSON.stringify({ text: "rest" })
          }).then((r) => r.json() as Promise<unknown>)
        )
        expect(text(rest)).toBe("rest")
        // SIGTERM closes the gateway gracefully: its stdio server goes with it.
        const pid = gateway.pid()!
        const children = descendants(pid).filter((p) => cmdline(p).includes(FIXTURE))
        expect(children).toHaveLength(1)
        yield* Effect.promise(() => client.close())
        yield* gateway.kill("SIGTERM")
        yield* Effect.sleep("500 millis")
        expect(children.filter((p) => cmdline(p) !== "")).toEqual([])
      }),
    90_000
  )
})

describe("tether proxy options", () => {
  it.scopedLive(
    "--api-key-file guards /mcp with the file's key; a bad config exits 2 naming the path",
    () =>
      Effect.gen(function* () {
        const dir = mkdtempSync(join(tmpdir(), "tether-proxy-key-"))
        const keyFile = join(dir, "key")
        writeFileSync(keyFile, "from-file\n")
        const config = writeConfig({ solo: stdioFixture() })
        const proxy = yield* spawnServer((port) => ({
          what: "tether proxy --api-key-file",
          args: [TETHER, "proxy", "--config", config, "--port", String(port), "--api-key-file", keyFile],
          env: { TETHER_API_KEY: "" },
          ready: /LISTENING/,
          startTimeoutMs: 60_000
        }))
        const url = `http://127.0.0.1:${proxy.port}/mcp`
        const denied = yield* Effect.promise(() =>
          fetch(url, { method: "POST", headers: { authorization: "Bearer ignored" }, body: "{}" })
        )
        expect(denied.status).toBe(401)
        const transport = new StreamableHTTPClientTransport(new URL(url), {
          requestInit: { headers: { authorization: "Bearer from-file" } }
        })
        const client = new Client({ name: "keyed", version: "1.0.0" })
        yield* Effect.acquireRelease(
          Effect.promise(() => client.connect(transport)),
          () => Effect.promise(() => client.close())
        )
        expect(
          text(yield* Effect.promise(() => client.callTool({ name: "echo", arguments: { text: "k" } })))
        ).toBe("k")

        const bad = join(dir, "bad.json")
        writeFileSync(bad, JSON.stringify({ mcpServers: { x: { url: 5 } } }))
        const run = yield* Effect.promise(
          () =>
            new Promise<{ code: number | null; err: string }>((done) => {
              const child = execFile(
                process.execPath,
                [TETHER, "proxy", "--config", bad],
                { timeout: 60_000 },
                (_e, _out, err) => done({ code: child.exitCode, err })
              )
            })
        )
        expect(run.code).toBe(2)
        expect(run.err).toContain("mcpServers.x.url")
      }),
    90_000
  )
})

describe("tether proxy --port on a busy port", () => {
  it.scopedLive(
    "exits 2 with one line naming the port, no stack trace (as tether serve does)",
    () =>
      Effect.gen(function* () {
        const busy = yield* Effect.acquireRelease(
          Effect.promise(
            () =>
              new Promise<Server>((done) => {
                const server = createServer()
                server.listen(0, "127.0.0.1", () => done(server))
              })
          ),
          (server) => Effect.promise(() => new Promise<void>((done) => server.close(() => done())))
        )
        const port = (busy.address() as AddressInfo).port
        const config = writeConfig({ solo: stdioFixture() })
        const run = yield* Effect.promise(
          () =>
            new Promise<{ code: number | null; err: string }>((done) => {
              const child = execFile(
                process.execPath,
                [TETHER, "proxy", "--config", config, "--port", String(port), "--no-auth"],
                { timeout: 60_000 },
                (_e, _out, err) => done({ code: child.exitCode, err })
              )
            })
        )
        expect(run.code, run.err).toBe(2)
        const lines = run.err.split("\n").filter((l) => l.trim() !== "")
        expect(lines).toEqual([
          `error (PortInUse): port ${port} on 127.0.0.1 is already in use; stop what listens there or pick another --port`
        ])
      }),
    90_000
  )
})
