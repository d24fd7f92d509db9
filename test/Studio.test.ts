/**
 * Tether Studio end to end: a real studio process, a real runner process (`tether agent
 * --studio`) with a real MCP fixture server and a fake OpenAI-compatible model, and the page
 * in a real headless Chromium (Debian's `/usr/bin/chromium`, driven by playwright-core).
 * Studio and runner are killed (SIGKILL), paused (SIGSTOP) and restarted on the same port
 * and session; the page must tell the truth at every step, and the model's request log
 * must show every message ran at most once.
 *
 * Screenshots of each state go to `.studio-shots/` (git-ignored).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { type Browser, chromium, type Page } from "playwright-core"
import { WebSocket } from "ws"
import { afterAll, beforeAll } from "vitest"
import { type Fixture, freePort, readLog, specFor, spawnFixture, tempLog } from "./support/fixture.js"
import { brain, type LlmServer, startLlmServer } from "./support/llmServer.js"

const SHOTS = ".studio-shots"
/** The runner's heartbeat: the studio shows it offline after 2 silent intervals. */
const RUNNER_HEARTBEAT_MS = 500
const RUNNER_BOUND_MS = RUNNER_HEARTBEAT_MS * 2
/** Slack on top of a bound: the studio's 100 ms status tick and the push to the page. */
const SLACK_MS = 1_000
const PAGE_HEARTBEAT_MS = 500
const DELIVERY_TIMEOUT_MS = 6_000
const SESSION = "studio-e2e"

interface Proc {
  readonly child: ChildProcess
  readonly output: () => string
  readonly waitFor: (pattern: RegExp, timeoutMs: number) => Promise<void>
}

const procs = new Set<ChildProcess>()

const spawnTether = (args: ReadonlyArray<string>, env: Record<string, string> = {}): Proc => {
  const child = spawn(process.execPath, ["bin/tether.js", ...args], {
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, TETHER_CONFIG: "", TETHER_LOG_LEVEL: "Warning", ...env }
  })
  procs.add(child)
  let out = ""
  child.stdout?.on("data", (c: Buffer) => (out += c.toString()))
  child.stderr?.on("data", (c: Buffer) => (out += c.toString()))
  child.once("exit", () => procs.delete(child))
  return {
    child,
    output: () => out,
    waitFor: (pattern, timeoutMs) =>
      new Promise((resolve, reject) => {
        const started = Date.now()
        const check = () => {
          if (pattern.test(out)) return resolve()
          if (child.exitCode !== null || child.signalCode !== null) {
            return reject(new Error(`${args[0]} exited before ${pattern}: ${out}`))
          }
          if (Date.now() - started > timeoutMs)
            return reject(new Error(`no ${pattern} in ${timeoutMs} ms: ${out}`))
          setTimeout(check, 50)
        }
        check()
      })
  }
}

const killHard = (proc: Proc): Promise<void> =>
  new Promise((resolve) => {
    const { child } = proc
    if (child.exitCode !== null || child.signalCode !== null) return resolve()
    child.once("exit", () => resolve())
    try {
      process.kill(-child.pid!, "SIGKILL")
    } catch {
      child.kill("SIGKILL")
    }
  })

// --- the world ------------------------------------------------------------------------------
let scope: Scope.CloseableScope
let llm: LlmServer
let fixture: Fixture
let browser: Browser
let page: Page
let port: number
let dir: string
let fixtureLog: string
let studio: Proc
let runner: Proc

const startStudio = async () => {
  studio = spawnTether([
    "studio",
    "--port",
    String(port),
    "--heartbeat",
    String(PAGE_HEARTBEAT_MS),
    "--delivery-timeout",
    String(DELIVERY_TIMEOUT_MS)
  ])
  await studio.waitFor(/LISTENING/, 40_000)
  return Date.now()
}

const startRunner = async () => {
  runner = spawnTether(
    [
      "agent",
      "--config",
      join(dir, "mcp.json"),
      "--data-dir",
      join(dir, "data"),
      "--session",
      SESSION,
      "--studio",
      `ws://127.0.0.1:${port}`,
      "--studio-heartbeat",
      String(RUNNER_HEARTBEAT_MS)
    ],
    { TETHER_LLM_BASE_URL: llm.url, TETHER_LLM_MODEL: "studio-model", TETHER_LLM_API_KEY: "sk-test" }
  )
  await runner.waitFor(/waiting for the studio/, 40_000)
}

const row = (status: string) =>
  `[data-testid="agent-row"][data-session="${SESSION}"][data-status="${status}"]`

/** Waits for a selector; returns the ms it took. */
const timeTo = async (selector: string, timeoutMs: number): Promise<number> => {
  const started = Date.now()
  await page.waitForSelector(selector, { timeout: timeoutMs, state: "attached" })
  return Date.now() - started
}

const linkText = () => page.textContent('[data-testid="studio-link"]')

const waitLink = async (pattern: RegExp, timeoutMs: number): Promise<number> => {
  const started = Date.now()
  await page.waitForFunction(
    (source) =>
      new RegExp(source).test(document.querySelector('[data-testid="studio-link"]')?.textContent ?? ""),
    pattern.source,
    { timeout: timeoutMs, polling: 50 }
  )
  return Date.now() - started
}

const send = async (text: string) => {
  await page.fill('[data-testid="chat-input"]', text)
  await page.click('[data-testid="chat-send"]')
}

const messages = (role: string) =>
  page.locator(`[data-testid="message"][data-role="${role}"]`).allTextContents()

const shot = (name: string) => page.screenshot({ path: join(SHOTS, `${name}.png`) })

/** Requests whose last message is this user text: each is one run of the turn's first step. */
const runsOf = (text: string) =>
  llm.requests.filter((r) => {
    const last = r.body.messages[r.body.messages.length - 1]
    return last?.role === "user" && last.content === text
  }).length

/** A page as a plain WebSocket client: sends one request, waits for its final `Result`. */
const sendRaw = (
  frame: {
    readonly _tag: "Send"
    readonly id: string
    readonly sessionId: string
    readonly text: string
  },
  at: number = port
) =>
  new Promise<{ readonly status: string; readonly reason: string }>((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${at}/page`)
    const timer = setTimeout(() => {
      ws.terminate()
      reject(new Error(`no final Result for ${frame.id}`))
    }, 20_000)
    ws.on("open", () => ws.send(JSON.stringify(frame)))
    ws.on("message", (data) => {
      const message = JSON.parse(String(data)) as {
        _tag: string
        id?: string
        status?: string
        reason?: string
      }
      if (message._tag === "Result" && message.id === frame.id && message.status !== "queued") {
        clearTimeout(timer)
        ws.close()
        resolve({ status: message.status ?? "", reason: message.reason ?? "" })
      }
    })
    ws.on("error", (e) => {
      clearTimeout(timer)
      reject(e)
    })
  })

const measured: Record<string, number> = {}

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true })
  scope = Effect.runSync(Scope.make())
  llm = await startLlmServer(brain)
  fixtureLog = tempLog()
  fixture = await Effect.runPromise(Scope.extend(spawnFixture("http", { log: fixtureLog }), scope))
  dir = mkdtempSync(join(tmpdir(), "tether-studio-"))
  writeFileSync(
    join(dir, "mcp.json"),
    JSON.stringify({ mcpServers: { local: specFor("http", fixture.port) } })
  )
  port = await Effect.runPromise(freePort)
  if (!existsSync("/usr/bin/chromium")) {
    // A clear failure, not a skip: the studio's contract is tested in a real browser.
    throw new Error(
      "test/Studio.test.ts needs Debian's Chromium at /usr/bin/chromium: apt-get install chromium"
    )
  }
  browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
  })
  page = await browser.newPage({ viewport: { width: 1100, height: 640 } })
  await Promise.all([startStudio(), startRunner()])
  await page.goto(`http://127.0.0.1:${port}/`)
}, 120_000)

afterAll(async () => {
  await browser?.close()
  for (const child of [...procs]) {
    if (child.signalCode === "SIGSTOP") child.kill("SIGCONT")
    await killHard({ child, output: () => "", waitFor: () => Promise.resolve() })
  }
  await llm?.close()
  if (scope !== undefined) await Effect.runPromise(Scope.close(scope, Exit.void))
  console.log(`studio e2e timings (ms): ${JSON.stringify(measured)}`)
}, 60_000)

describe("Tether Studio (real browser, real processes)", () => {
  it("shows the agent online; a message typed in the page is answered, with the tool call shown", async () => {
    await timeTo(row("online"), 30_000)
    expect(await linkText()).toBe("connected")
    await page.waitForSelector('[data-testid="server-row"][data-server="local"][data-state="Ready"]', {
      timeout: 15_000
    })
    await send('call local__echo {"text":"hello-studio"}')
    await page.waitForSelector(
      '[data-testid="message"][data-role="assistant"]:has-text("tool said: hello-studio")',
      {
        timeout: 20_000
      }
    )
    const tools = await messages("tool")
    expect(tools).toHaveLength(1)
    expect(tools[0]).toContain("local__echo")
    expect(tools[0]).toContain("ok")
    expect(await messages("user")).toEqual(['call local__echo {"text":"hello-studio"}'])
    await timeTo(row("online"), 5_000)
    await shot("1-online")
  }, 90_000)

  it("a tool call cut by a server kill is marked OUTCOME UNKNOWN; the server's reconnect is counted", async () => {
    await send('call local__count {"id":"studio-c1","holdMs":4000}')
    await timeTo('[data-testid="message"][data-role="tool"][data-outcome="running"]', 20_000)
    // A turn is running: the agent is busy, not idle-online.
    await timeTo(row("busy"), 2_000)
    const started = Date.now()
    while (!readLog(fixtureLog).includes("count studio-c1")) {
      if (Date.now() - started > 10_000) throw new Error("the count never started")
      await new Promise((r) => setTimeout(r, 50))
    }
    await Effect.runPromise(fixture.kill())
    await Effect.runPromise(fixture.start)
    await page.waitForSelector('[data-testid="message"][data-role="tool"][data-outcome="unknown"]', {
      timeout: 20_000
    })
    const tool = (await messages("tool")).at(-1)
    expect(tool).toContain("OUTCOME UNKNOWN")
    await page.waitForSelector(
      '[data-testid="server-row"][data-server="local"][data-state="Ready"]:has-text("reconnects: 1")',
      {
        timeout: 20_000
      }
    )
    await page.waitForSelector(
      '[data-testid="message"][data-role="assistant"]:has-text("tool said: OUTCOME UNKNOWN")',
      {
        timeout: 20_000
      }
    )
    await shot("1b-outcome-unknown")
    // Not retried: it ran once.
    expect(readLog(fixtureLog).filter((l) => l === "count studio-c1")).toHaveLength(1)
  }, 90_000)

  it("studio killed: disconnected within 2 s, agents greyed; restarted: reconnects by itself, history back, context kept", async () => {
    await killHard(studio)
    measured.disconnected = await waitLink(/^(disconnected|reconnecting)$/, 2_000)
    // The last status is not shown as current while the studio is unreachable.
    await timeTo(row("unknown"), 1_000)
    expect(await page.getAttribute('[data-testid="agents"]', "class")).toContain("stale")
    await shot("2-studio-down")

    const listening = await startStudio()
    await waitLink(/^connected$/, 5_000)
    measured.pageReconnected = Date.now() - listening
    await timeTo(row("online"), Math.max(0, 5_000 - (Date.now() - listening)))
    measured.agentOnlineAfterRestart = Date.now() - listening
    expect(measured.agentOnlineAfterRestart).toBeLessThanOrEqual(5_000)
    // History is back, rebuilt from the runner (the studio has no disk).
    expect(await messages("user")).toEqual([
      'call local__echo {"text":"hello-studio"}',
      'call local__count {"id":"studio-c1","holdMs":4000}'
    ])
    expect(
      await page.locator('[data-testid="message"][data-role="tool"]').last().getAttribute("data-outcome")
    ).toBe("unknown")
    await shot("3-studio-back")

    await send("second question")
    await page.waitForSelector(
      '[data-testid="message"][data-role="assistant"]:has-text("you said: second question")',
      {
        timeout: 20_000
      }
    )
    // The answer shows before the turn is saved; online (not busy) means the turn ended, saved.
    await timeTo(row("online"), 10_000)
    const request = llm.requests.find((r) => r.body.messages.at(-1)?.content === "second question")
    expect(request?.body.messages.map((m) => m.content)).toContain('call local__echo {"text":"hello-studio"}')
    expect(runsOf("second question")).toBe(1)
  }, 90_000)

  it("runner killed: offline within its heartbeat bound; restarted with the same session: online, history intact", async () => {
    await killHard(runner)
    measured.offlineAfterKill = await timeTo(row("offline"), RUNNER_BOUND_MS + SLACK_MS)
    await shot("4-runner-killed")
    await startRunner()
    await timeTo(row("online"), 15_000)
    // The restarted runner loaded the session from disk: both earlier turns are shown.
    expect(await messages("user")).toEqual([
      'call local__echo {"text":"hello-studio"}',
      'call local__count {"id":"studio-c1","holdMs":4000}',
      "second question"
    ])
    expect((await messages("tool")).at(-1)).toContain("OUTCOME UNKNOWN")
    expect((await messages("assistant")).some((t) => t.includes("you said: second question"))).toBe(true)
  }, 90_000)

  it("runner paused (SIGSTOP): offline within its heartbeat bound; resumed (SIGCONT): online", async () => {
    runner.child.kill("SIGSTOP")
    measured.offlineAfterStop = await timeTo(row("offline"), RUNNER_BOUND_MS + SLACK_MS)
    await shot("5-runner-paused")
    runner.child.kill("SIGCONT")
    measured.onlineAfterCont = await timeTo(row("online"), 10_000)
  }, 60_000)

  it("studio paused (SIGSTOP): the page says disconnected within its heartbeat bound; resumed: connected, agent online", async () => {
    studio.child.kill("SIGSTOP")
    try {
      measured.disconnectedAfterStudioStop = await waitLink(
        /^(disconnected|reconnecting)$/,
        PAGE_HEARTBEAT_MS * 2 + SLACK_MS
      )
      await timeTo(row("unknown"), 1_000)
    } finally {
      studio.child.kill("SIGCONT")
    }
    measured.connectedAfterStudioCont = await waitLink(/^connected$/, 5_000)
    await timeTo(row("online"), 10_000)
  }, 60_000)

  it("a message sent while the studio is down is delivered once when it returns", async () => {
    await killHard(studio)
    await waitLink(/^(disconnected|reconnecting)$/, 2_000)
    await send("while the studio was down")
    await timeTo('[data-testid="message"][data-role="user"][data-delivery="pending"]', 2_000)
    await shot("6-pending")
    await startStudio()
    await page.waitForSelector(
      '[data-testid="message"][data-role="assistant"]:has-text("you said: while the studio was down")',
      { timeout: 20_000 }
    )
    // Shown once, ran once.
    expect((await messages("user")).filter((t) => t.includes("while the studio was down"))).toHaveLength(1)
    expect(runsOf("while the studio was down")).toBe(1)
    await shot("7-delivered")
  }, 90_000)

  it("Reset clears the session", async () => {
    await page.click('[data-testid="chat-reset"]')
    await page.waitForSelector('[data-testid="notice"]:has-text("session reset")', { timeout: 10_000 })
    expect(await messages("user")).toEqual([])
    await send("after the reset")
    await page.waitForSelector(
      '[data-testid="message"][data-role="assistant"]:has-text("you said: after the reset")',
      {
        timeout: 20_000
      }
    )
    const request = llm.requests.find((r) => r.body.messages.at(-1)?.content === "after the reset")
    expect(request?.body.messages.filter((m) => m.role === "user")).toHaveLength(1)
  }, 60_000)

  it("a message id sent again — to the same studio, or after studio and runner both restarted — never runs twice", async () => {
    const frame = { _tag: "Send", id: "dup-1", sessionId: SESSION, text: "exactly once please" } as const
    expect((await sendRaw(frame)).status).toBe("delivered")
    await page.waitForSelector(
      '[data-testid="message"][data-role="assistant"]:has-text("you said: exactly once please")',
      {
        timeout: 20_000
      }
    )
    expect((await sendRaw(frame)).status).toBe("delivered")
    // Both die; neither keeps anything in memory. The runner's id file still knows dup-1.
    await Promise.all([killHard(studio), killHard(runner)])
    await Promise.all([startStudio(), startRunner()])
    await timeTo(row("online"), 15_000)
    expect(await sendRaw(frame)).toMatchObject({ status: "delivered" })
    await new Promise((r) => setTimeout(r, 500))
    expect(runsOf("exactly once please")).toBe(1)
  }, 90_000)

  it("a message for an agent that does not come back is refused visibly, and never runs", async () => {
    await killHard(runner)
    await timeTo(row("offline"), RUNNER_BOUND_MS + SLACK_MS)
    await send("nobody is listening")
    await timeTo('[data-testid="message"][data-role="user"][data-delivery="queued"]', 2_000)
    measured.refused = await timeTo(
      '[data-testid="message"][data-role="user"][data-delivery="refused"]',
      DELIVERY_TIMEOUT_MS + SLACK_MS
    )
    await shot("8-refused")
    expect(runsOf("nobody is listening")).toBe(0)
    // And the health route says what the page says.
    const health = (await (await fetch(`http://127.0.0.1:${port}/health`)).json()) as {
      sessions: ReadonlyArray<{ session: string; status: string }>
    }
    expect(health.sessions).toContainEqual(expect.objectContaining({ session: SESSION, status: "offline" }))
  }, 60_000)
})

describe("Tether Studio API key", () => {
  it("an empty key is refused; with a key (--api-key-file), runners need the bearer and the page takes it once as a cookie", async () => {
    // The key rules of `tether serve`: an empty key (an unset variable) is refused.
    const refused = spawnTether(["studio", "--port", "0"], { TETHER_API_KEY: "" })
    const refusedExit = new Promise<number | null>((resolve) => refused.child.once("exit", resolve))
    const keyPort = await Effect.runPromise(freePort)
    const keyFile = join(mkdtempSync(join(tmpdir(), "tether-studio-key-")), "key")
    writeFileSync(keyFile, "studio-secret\n")
    const keyed = spawnTether(["studio", "--port", String(keyPort), "--api-key-file", keyFile])
    try {
      expect(await refusedExit).toBe(2)
      expect(refused.output()).toContain("TETHER_API_KEY is empty")
      await keyed.waitFor(/LISTENING/, 40_000)
      const base = `http://127.0.0.1:${keyPort}`
      expect((await fetch(`${base}/health`)).status).toBe(200)
      const denied = await fetch(`${base}/`)
      expect(denied.status).toBe(401)
      expect(await denied.text()).not.toContain("studio-secret")
      expect((await fetch(`${base}/?key=wrong`, { redirect: "manual" })).status).toBe(401)
      const granted = await fetch(`${base}/?key=studio-secret`, { redirect: "manual" })
      expect(granted.status).toBe(303)
      const cookie = (granted.headers.get("set-cookie") ?? "").split(";")[0] ?? ""
      expect(granted.headers.get("set-cookie")).toContain("HttpOnly")
      expect((await fetch(`${base}/`, { headers: { cookie } })).status).toBe(200)

      const upgrade = (headers: Record<string, string>) =>
        new Promise<number>((resolve) => {
          const ws = new WebSocket(`ws://127.0.0.1:${keyPort}/runners`, { headers })
          ws.on("open", () => {
            ws.close()
            resolve(101)
          })
          ws.on("unexpected-response", (_req, res) => {
            resolve(res.statusCode ?? 0)
            ws.terminate()
          })
          ws.on("error", () => undefined)
        })
      expect(await upgrade({})).toBe(401)
      expect(await upgrade({ authorization: "Bearer wrong" })).toBe(401)
      expect(await upgrade({ authorization: "Bearer studio-secret" })).toBe(101)
    } finally {
      await killHard(keyed)
    }
  }, 60_000)
})

describe("Tether Studio protocol (a raw runner)", () => {
  /** A runner speaking the wire protocol by hand; frames it got are kept in order. */
  const rawRunner = (url: string) =>
    new Promise<{ readonly ws: WebSocket; readonly frames: Array<{ _tag: string; reason?: string }> }>(
      (resolve, reject) => {
        const ws = new WebSocket(url)
        const frames: Array<{ _tag: string; reason?: string }> = []
        ws.on("message", (data) => frames.push(JSON.parse(String(data)) as { _tag: string }))
        ws.on("open", () => resolve({ ws, frames }))
        ws.on("error", reject)
      }
    )
  const register = (sessionId: string, heartbeatMs: number, runnerId = `raw-${sessionId}`) =>
    JSON.stringify({
      _tag: "Register",
      runnerId,
      heartbeatMs,
      misses: 2,
      sessions: [{ sessionId, model: "raw", transcript: { seq: 0, busy: false, items: [], servers: [] } }]
    })
  const statusOf = async (base: string, sessionId: string) => {
    const health = (await (await fetch(`${base}/health`)).json()) as {
      sessions: ReadonlyArray<{ session: string; status: string }>
    }
    return health.sessions.find((s) => s.session === sessionId)?.status
  }
  const until = async (what: string, check: () => Promise<boolean> | boolean, timeoutMs: number) => {
    const started = Date.now()
    while (!(await check())) {
      if (Date.now() - started > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`)
      await new Promise((r) => setTimeout(r, 25))
    }
    return Date.now() - started
  }

  it("gaps ask for a resync; silence turns offline and closes the link; --data-dir sessions come back unknown; an unconfirmed message is never re-sent to a new runner", async () => {
    const rawPort = await Effect.runPromise(freePort)
    const dataDir = mkdtempSync(join(tmpdir(), "tether-studio-data-"))
    const args = ["studio", "--port", String(rawPort), "--data-dir", dataDir]
    const base = `http://127.0.0.1:${rawPort}`
    let proc = spawnTether(args)
    try {
      await proc.waitFor(/LISTENING/, 40_000)
      const { frames, ws } = await rawRunner(`ws://127.0.0.1:${rawPort}/runners`)
      ws.send(register("raw-1", 300))
      await until("online", async () => (await statusOf(base, "raw-1")) === "online", 5_000)
      // Event 5 after a snapshot at 0: the studio asks for a fresh snapshot.
      ws.send(
        JSON.stringify({
          _tag: "Event",
          sessionId: "raw-1",
          event: { _tag: "SessionReset", seq: 5, at: 0, sessionId: "raw-1" }
        })
      )
      await until("a Resync", () => frames.some((f) => f._tag === "Resync"), 5_000)
      // The raw runner never pings: offline within 2 × 300 ms (+ the 100 ms tick), link closed.
      const closed = new Promise<void>((resolve) => ws.once("close", () => resolve()))
      const offlineAfter = await until(
        "offline",
        async () => (await statusOf(base, "raw-1")) === "offline",
        2_000
      )
      measured.rawOffline = offlineAfter
      await closed

      // Restarted with the same --data-dir: the session is listed, as unknown, until it registers.
      await killHard(proc)
      proc = spawnTether(args)
      await proc.waitFor(/LISTENING/, 40_000)
      expect(await statusOf(base, "raw-1")).toBe("unknown")
      const again = await rawRunner(`ws://127.0.0.1:${rawPort}/runners`)
      again.ws.send(register("raw-1", 5_000))
      await until("online again", async () => (await statusOf(base, "raw-1")) === "online", 5_000)
      again.ws.close()

      // Given to a runner that went away before confirming: never given to another runner.
      const first = await rawRunner(`ws://127.0.0.1:${rawPort}/runners`)
      first.ws.send(register("raw-2", 5_000, "runner-a"))
      await until("raw-2 online", async () => (await statusOf(base, "raw-2")) === "online", 5_000)
      const result = sendRaw({ _tag: "Send", id: "u-1", sessionId: "raw-2", text: "anyone?" }, rawPort)
      await until("the Deliver", () => first.frames.some((f) => f._tag === "Deliver"), 5_000)
      first.ws.terminate()
      await until("raw-2 offline", async () => (await statusOf(base, "raw-2")) === "offline", 5_000)
      const second = await rawRunner(`ws://127.0.0.1:${rawPort}/runners`)
      second.ws.send(register("raw-2", 5_000, "runner-b"))
      expect(await result).toMatchObject({ status: "unconfirmed" })
      await new Promise((r) => setTimeout(r, 200))
      expect(second.frames.some((f) => f._tag === "Deliver")).toBe(false)
      second.ws.close()
    } finally {
      await killHard(proc)
    }
  }, 90_000)
})
