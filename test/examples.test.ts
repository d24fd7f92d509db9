/**
 * The example hosts (`examples/node-http.ts`, `examples/express.ts`) as real processes:
 * one Tether per process means one MCP session for any number of requests, a server
 * killed and restarted under load costs one re-initialize and no failed request, and
 * SIGTERM exits 0 with every child process reaped.
 */
import { Effect, Exit, Scope } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { describe, expect, it } from "vitest"
import { descendants, FIXTURE, readLog, spawnFixture, tempLog, urlFor } from "./support/fixture.js"

interface Host {
  readonly child: ChildProcess
  readonly base: string
  readonly output: () => string
}

/** Starts an example as `node --import tsx examples/NAME.ts`; resolves once it prints LISTENING. */
const startHost = (name: string, config: string): Promise<Host> =>
  new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", `examples/${name}.ts`], {
      cwd: resolve("."),
      env: { ...process.env, TETHER_CONFIG: config, PORT: "0" },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let out = ""
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`${name} did not start within 30 s:\n${out}`))
    }, 30_000)
    const onData = (chunk: Buffer) => {
      out += chunk.toString()
      const listening = /LISTENING (\d+)/.exec(out)
      if (listening !== null) {
        clearTimeout(timer)
        resolvePromise({ child, base: `http://127.0.0.1:${listening[1]}`, output: () => out })
      }
    }
    child.stdout.on("data", onData)
    child.stderr.on("data", onData)
    child.once("exit", (code) => {
      clearTimeout(timer)
      reject(new Error(`${name} exited with ${code} before listening:\n${out}`))
    })
  })

const waitExit = (child: ChildProcess, timeoutMs: number) =>
  new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolvePromise, reject) => {
    if (child.exitCode !== null || child.signalCode !== null)
      return resolvePromise({ code: child.exitCode, signal: child.signalCode })
    const timer = setTimeout(() => reject(new Error(`no exit within ${timeoutMs} ms`)), timeoutMs)
    child.once("exit", (code, signal) => {
      clearTimeout(timer)
      resolvePromise({ code, signal })
    })
  })

/** POST /call/SERVER/echo through the host; fails the test on anything but the echo. */
const echo = async (host: Host, text: string, server = "fixture") => {
  const response = await fetch(`${host.base}/call/${server}/echo`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ text }),
    signal: AbortSignal.timeout(30_000)
  })
  const body = (await response.json()) as { content?: ReadonlyArray<{ text?: string }> }
  expect({ status: response.status, text: body.content?.[0]?.text, body }).toMatchObject({
    status: 200,
    text
  })
}

const initializes = (log: string) => readLog(log).filter((l) => l.startsWith("initialize")).length

const isAlive = (pid: number) => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    return !stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")
  } catch {
    return false
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe.each(["node-http", "express"])("examples/%s.ts", (name) => {
  it("one session for 150 requests; a server restart under load; SIGTERM exits 0, no orphans", async () => {
    const scope = Effect.runSync(Scope.make())
    let host: Host | undefined
    try {
      const log = tempLog()
      const fixture = await Effect.runPromise(Scope.extend(spawnFixture("http", { log }), scope))
      const config = join(mkdtempSync(join(tmpdir(), "tether-test-")), "mcp.json")
      writeFileSync(
        config,
        JSON.stringify({
          mcpServers: {
            fixture: { url: urlFor("http", fixture.port) },
            // A stdio server too, so there is a child process that SIGTERM must reap.
            local: { command: process.execPath, args: [FIXTURE, "--transport", "stdio"] }
          }
        })
      )
      host = await startHost(name, config)
      const h = host

      const tools = (await (await fetch(`${h.base}/tools`)).json()) as ReadonlyArray<{ name: string }>
      expect(tools.map((t) => t.name)).toContain("fixture__echo")

      // 100 sequential, then 50 concurrent requests: all on the one session.
      for (let i = 0; i < 100; i++) await echo(h, `seq ${i}`)
      await Promise.all(Array.from({ length: 50 }, (_, i) => echo(h, `par ${i}`)))
      expect(initializes(log)).toBe(1)

      // kill -9 the server in the middle of a batch, restart it on the same port: every
      // request still succeeds, and the host re-initializes exactly once.
      let done = 0
      let restart: Promise<void> | undefined
      let outage: { from: number; to: number } | undefined
      const spans: Array<{ from: number; to: number }> = []
      const queue = Array.from({ length: 60 }, (_, i) => `restart ${i}`)
      const worker = async () => {
        for (let text = queue.shift(); text !== undefined; text = queue.shift()) {
          const from = performance.now()
          await echo(h, text)
          spans.push({ from, to: performance.now() })
          done += 1
          if (done === 15 && restart === undefined) {
            restart = (async () => {
              const from = performance.now()
              await Effect.runPromise(fixture.kill("SIGKILL"))
              await sleep(300)
              await Effect.runPromise(fixture.start)
              outage = { from, to: performance.now() }
            })()
          }
        }
      }
      await Promise.all(Array.from({ length: 6 }, worker))
      await restart
      expect(spans).toHaveLength(60)
      // Some requests were in flight across the outage (they waited for the reconnect).
      expect(spans.filter((s) => s.from < outage!.to && s.to > outage!.from).length).toBeGreaterThan(0)
      expect(initializes(log)).toBe(2)

      const status = (await (await fetch(`${h.base}/status`)).json()) as ReadonlyArray<{
        server: string
        state: string
        reconnects: number
      }>
      expect(status.find((s) => s.server === "fixture")).toMatchObject({ state: "Ready" })
      expect(status.find((s) => s.server === "fixture")?.reconnects).toBeGreaterThanOrEqual(1)

      // SIGTERM: exit 0, and the stdio server (and every other child) is gone.
      await echo(h, "local", "local")
      const children = descendants(h.child.pid!)
      const cmdline = (pid: number) => {
        try {
          return readFileSync(`/proc/${pid}/cmdline`, "utf8")
        } catch {
          return ""
        }
      }
      expect(children.filter((pid) => cmdline(pid).includes(FIXTURE))).toHaveLength(1)
      h.child.kill("SIGTERM")
      expect(await waitExit(h.child, 15_000)).toEqual({ code: 0, signal: null })
      const deadline = Date.now() + 5_000
      while (children.some(isAlive) && Date.now() < deadline) await sleep(50)
      expect(children.filter(isAlive)).toEqual([])
    } catch (error) {
      if (host !== undefined) console.error(`${name} output:\n${host.output()}`)
      throw error
    } finally {
      if (host !== undefined && host.child.exitCode === null && host.child.signalCode === null) {
        for (const pid of descendants(host.child.pid!)) {
          try {
            process.kill(pid, "SIGKILL")
          } catch {
            // already gone
          }
        }
        host.child.kill("SIGKILL")
        await waitExit(host.child, 5_000).catch(() => undefined)
      }
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }
  }, 120_000)
})

describe("examples/in-memory.ts", () => {
  it("calls an in-process server over a custom transport and answers its elicitation", async () => {
    const result = await new Promise<{ code: number | null; out: string }>((resolvePromise) => {
      const child = spawn(process.execPath, ["--import", "tsx", "examples/in-memory.ts"], {
        cwd: resolve("."),
        stdio: ["ignore", "pipe", "pipe"]
      })
      let out = ""
      child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()))
      child.stderr.on("data", (chunk: Buffer) => (out += chunk.toString()))
      const timer = setTimeout(() => child.kill("SIGKILL"), 30_000)
      child.on("exit", (code) => {
        clearTimeout(timer)
        resolvePromise({ code, out })
      })
    })
    expect(result.out).toContain("hello Tether")
    expect(result.out).toContain('signed up: {"plan":"free"}')
    expect(result.code).toBe(0)
  }, 60_000)
})

describe("npm run demo", () => {
  it("runs to its summary and leaves no tether-agent-demo-* folder in the temp dir", async () => {
    const temp = mkdtempSync(join(tmpdir(), "tether-demo-tmp-"))
    const child = spawn("npm", ["run", "--silent", "demo"], {
      cwd: resolve("."),
      env: { ...process.env, TMPDIR: temp },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true
    })
    let out = ""
    child.stdout.on("data", (c: Buffer) => (out += c.toString()))
    child.stderr.on("data", (c: Buffer) => (out += c.toString()))
    try {
      const exit = await waitExit(child, 150_000)
      expect(exit, out).toEqual({ code: 0, signal: null })
      expect(out).toContain("Summary")
      expect(out).toContain("(removed at exit)")
      expect(readdirSync(temp).filter((n) => n.startsWith("tether-agent-demo-"))).toEqual([])
    } finally {
      if (child.exitCode === null && child.pid !== undefined) process.kill(-child.pid, "SIGKILL")
      rmSync(temp, { recursive: true, force: true })
    }
  }, 180_000)
})
