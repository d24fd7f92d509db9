/**
 * Shared pieces of `npm run bench`: flags, statistics, the registry of every child process
 * (killed on exit, Ctrl-C and errors), fixture servers run as real child processes, Tether
 * connections opened from promise code, raw SDK clients, warning counting per side, tables.
 */
import { descendants as procDescendants } from "../../test/support/fixture.js"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js"
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js"
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { WebSocketClientTransport as SdkWebSocketClientTransport } from "@modelcontextprotocol/sdk/client/websocket.js"
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js"
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js"
import { Effect, Exit, Scope } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import { createServer } from "node:net"
import { resolve } from "node:path"
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"
import { z } from "zod"
import * as McpConnection from "../../src/McpConnection.js"
import type * as ServerSpec from "../../src/ServerSpec.js"

// ---------------------------------------------------------------------------
// Paths and flags
// ---------------------------------------------------------------------------

export const BENCH_DIR = resolve(".bench")
/** The fixture server, bundled by `main.ts` (a plain `node` start per spawn). */
export const FIXTURE = resolve(".bench/fixture-server.mjs")
/** The worker entry (soak and scale clients in their own processes), bundled by `main.ts`. */
export const WORKER = resolve(".bench/worker.mjs")

export type NetKind = "http" | "sse" | "ws"
export type Kind = "stdio" | NetKind

// ---------------------------------------------------------------------------
// Time and statistics
// ---------------------------------------------------------------------------

export const now = (): number => performance.now()
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, ms)))

export const sorted = (xs: ReadonlyArray<number>): Array<number> => [...xs].sort((a, b) => a - b)

/** Nearest-rank percentile (p in 0..100). */
export const percentile = (xs: ReadonlyArray<number>, p: number): number => {
  if (xs.length === 0) return Number.NaN
  const s = sorted(xs)
  const rank = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))
  return s[rank]!
}

export const median = (xs: ReadonlyArray<number>): number => {
  if (xs.length === 0) return Number.NaN
  const s = sorted(xs)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

export const round = (x: number, digits = 3): number => (Number.isFinite(x) ? Number(x.toFixed(digits)) : x)

/** A number for a table: thousands separators for big ones, a few digits for small ones. */
export const fmt = (x: number | undefined | null, digits?: number): string => {
  if (x === undefined || x === null || Number.isNaN(x)) return "–"
  if (!Number.isFinite(x)) return String(x)
  const d = digits ?? (Math.abs(x) >= 100 ? 0 : Math.abs(x) >= 10 ? 1 : Math.abs(x) >= 1 ? 2 : 3)
  return x.toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d })
}

/** Races a promise against a time box; never rejects. */
export interface Boxed<A> {
  readonly settled: boolean
  readonly ok: boolean
  readonly value?: A
  readonly error?: unknown
  readonly ms: number
}

export const timeBox = <A>(promise: Promise<A>, ms: number): Promise<Boxed<A>> => {
  const start = now()
  return new Promise((resolveBox) => {
    const timer = setTimeout(() => resolveBox({ settled: false, ok: false, ms: now() - start }), ms)
    promise.then(
      (value) => {
        clearTimeout(timer)
        resolveBox({ settled: true, ok: true, value, ms: now() - start })
      },
      (error: unknown) => {
        clearTimeout(timer)
        resolveBox({ settled: true, ok: false, error, ms: now() - start })
      }
    )
  })
}

/** Shortens the SDK's verbose HTTP errors ("Streamable HTTP error: Error POSTing to endpoint: {json}"). */
const shorten = (text: string): string => {
  const m = /^Streamable HTTP error: Error POSTing to endpoint: (.*)$/s.exec(text)
  if (m === null) return text
  try {
    const body = JSON.parse(m[1]!) as { error?: { code?: number; message?: string } }
    return `StreamableHTTPError: ${body.error?.message ?? m[1]!}${body.error?.code !== undefined ? ` (${body.error.code})` : ""}`
  } catch {
    return `StreamableHTTPError: ${m[1]!}`
  }
}

export const errorText = (e: unknown): string => {
  if (e === undefined) return ""
  if (typeof e === "object" && e !== null) {
    const tag = "_tag" in e && typeof e._tag === "string" ? `${e._tag}: ` : ""
    const message = "message" in e && typeof e.message === "string" ? e.message : String(e)
    const code = "code" in e && typeof e.code === "number" && !tag ? ` [${e.code}]` : ""
    return shorten(`${tag}${message}`).slice(0, 200) + code
  }
  return String(e).slice(0, 200)
}

// ---------------------------------------------------------------------------
// Garbage collection and memory
// ---------------------------------------------------------------------------

setFlagsFromString("--expose-gc")
const gcFn = runInNewContext("gc") as () => void

/** A full GC (twice, so weak callbacks and finalizers have run). */
export const fullGc = async (): Promise<void> => {
  gcFn()
  await sleep(10)
  gcFn()
}

/** One GC without waiting (before each timed block: same starting heap for both sides). */
export const gcOnce = (): void => gcFn()

export const memory = (): { heapUsed: number; heapTotal: number; rss: number } => {
  const m = process.memoryUsage()
  return { heapUsed: m.heapUsed, heapTotal: m.heapTotal, rss: m.rss }
}

export const MiB = 1024 * 1024

// ---------------------------------------------------------------------------
// Warnings, counted per side
// ---------------------------------------------------------------------------

export type Side = "tether" | "raw" | "none"

export const warningCounts: Record<Side, number> & { byName: Record<string, number> } = {
  tether: 0,
  raw: 0,
  none: 0,
  byName: {}
}
let currentSide: Side = "none"

/** Attribute the warnings emitted from now on to `side`. */
export const setSide = (side: Side): void => {
  currentSide = side
}

/**
 * Replaces Node's default warning printer (thousands of MaxListenersExceededWarning lines
 * would bury the tables) with a counter per side; the totals are printed and saved.
 */
export const installWarningCounter = (): void => {
  process.removeAllListeners("warning")
  process.on("warning", (w) => {
    warningCounts[currentSide] += 1
    const key = `${currentSide}: ${w.name}: ${w.message.replace(/\d+/g, "N").slice(0, 120)}`
    warningCounts.byName[key] = (warningCounts.byName[key] ?? 0) + 1
  })
}

// ---------------------------------------------------------------------------
// Child processes: every one is registered and killed on the way out
// ---------------------------------------------------------------------------

const children = new Set<ChildProcess>()

export const track = (child: ChildProcess): ChildProcess => {
  children.add(child)
  child.once("exit", () => children.delete(child))
  return child
}

const signal = (pid: number, sig: NodeJS.Signals) => {
  try {
    process.kill(pid, sig)
  } catch {
    // ESRCH: already gone.
  }
}

/** tsx's own esbuild service (the TypeScript loader of this process) is not ours to count. */
const isLoader = (pid: number) => {
  const args = cmdline(pid)
  return args.some((a) => a.includes("esbuild")) && args.some((a) => a.startsWith("--service"))
}

/** Live descendants of `root` (from /proc), zombies and the tsx loader excluded. */
export const descendants = (root: number = process.pid): Array<number> => [...procDescendants(root, isLoader)]

const cmdline = (pid: number): Array<string> => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")
  } catch {
    return []
  }
}

const statFields = (pid: number): Array<string> => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  } catch {
    return []
  }
}

/** Direct children of this process that run the bundled fixture with `--transport stdio`. */
export const stdioFixtureChildren = (): Array<number> =>
  descendants().filter((pid) => {
    const args = cmdline(pid)
    if (!args.includes(FIXTURE) || !args.includes("stdio")) return false
    return Number(statFields(pid)[1]) === process.pid
  })

/**
 * The stdio fixture children Tether spawned: Tether starts each in its own process group
 * (pgid = pid); the SDK's StdioClientTransport does not.
 */
export const tetherStdioChildren = (): Array<number> =>
  stdioFixtureChildren().filter((pid) => Number(statFields(pid)[2]) === pid)

/** Descendants whose command line contains `needle` (e.g. one part's log file or worker). */
export const descendantsMatching = (needle: string): Array<number> =>
  descendants().filter((pid) => cmdline(pid).some((a) => a.includes(needle)))

/** "pid: command line" of each pid (for reports of leftover processes). */
export const describePids = (pids: ReadonlyArray<number>): Array<string> =>
  pids.map((pid) => {
    const state = statFields(pid)[0] ?? "?"
    return `${pid} [${state}]: ${cmdline(pid).join(" ").trim().slice(0, 160)}`
  })

/** Kills every process this run started: registered children first, then any descendant. */
export const killAllChildren = (): void => {
  for (const child of children) {
    if (child.pid !== undefined) {
      signal(child.pid, "SIGCONT")
      signal(child.pid, "SIGKILL")
    }
  }
  for (const pid of descendants()) {
    signal(pid, "SIGCONT")
    signal(pid, "SIGKILL")
  }
}

export const freePort = (): Promise<number> =>
  new Promise((resolvePort, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolvePort(port))
    })
  })

// ---------------------------------------------------------------------------
// Fixture servers (real child processes)
// ---------------------------------------------------------------------------

export interface FixtureServer {
  readonly kind: NetKind
  readonly port: number
  readonly pid: () => number | undefined
  /** performance.now() when the last start printed READY. */
  readonly readyAt: () => number
  /** SIGKILL (after SIGCONT) and wait for the exit. */
  readonly kill: () => Promise<void>
  /** Start again on the same port; resolves with performance.now() at READY. */
  readonly start: () => Promise<number>
  readonly pause: () => void
  readonly resume: () => void
}

const launch = (args: ReadonlyArray<string>, what: string): Promise<{ child: ChildProcess; at: number }> =>
  new Promise((resolveLaunch, reject) => {
    const child = track(spawn(process.execPath, [...args], { stdio: ["ignore", "pipe", "pipe"] }))
    let out = ""
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`${what} did not start within 15 s: ${out}`))
    }, 15_000)
    const onData = (chunk: Buffer) => {
      out += chunk.toString()
      if (/READY \d+/.test(out)) {
        const at = now()
        clearTimeout(timer)
        child.stdout?.removeListener("data", onData)
        child.stderr?.removeListener("data", onData)
        child.stdout?.resume()
        child.stderr?.resume()
        resolveLaunch({ child, at })
      }
    }
    child.stdout?.on("data", onData)
    child.stderr?.on("data", onData)
    child.once("exit", (code, sig) => {
      clearTimeout(timer)
      reject(new Error(`${what} exited (${code ?? sig}) before READY: ${out.slice(0, 500)}`))
    })
  })

const waitExit = (child: ChildProcess): Promise<void> =>
  child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise((r) => child.once("exit", () => r()))

/** Spawns the fixture over a network transport on 127.0.0.1 (a free port unless given). */
export const startServer = async (
  kind: NetKind,
  options: { readonly port?: number; readonly log?: string } = {}
): Promise<FixtureServer> => {
  const port = options.port ?? (await freePort())
  const args = [
    FIXTURE,
    "--transport",
    kind,
    "--host",
    "127.0.0.1",
    "--port",
    String(port),
    ...(options.log !== undefined ? ["--log", options.log] : [])
  ]
  let current = await launch(args, `fixture ${kind}`)
  const server: FixtureServer = {
    kind,
    port,
    pid: () => current.child.pid,
    readyAt: () => current.at,
    kill: async () => {
      const child = current.child
      if (child.pid !== undefined) {
        signal(child.pid, "SIGCONT")
        signal(child.pid, "SIGKILL")
      }
      await waitExit(child)
    },
    start: async () => {
      current = await launch(args, `fixture ${kind}`)
      return current.at
    },
    pause: () => {
      const pid = current.child.pid
      if (pid !== undefined) signal(pid, "SIGSTOP")
    },
    resume: () => {
      const pid = current.child.pid
      if (pid !== undefined) signal(pid, "SIGCONT")
    }
  }
  return server
}

export const urlFor = (kind: NetKind, port: number): string =>
  kind === "http"
    ? `http://127.0.0.1:${port}/mcp`
    : kind === "sse"
      ? `http://127.0.0.1:${port}/sse`
      : `ws://127.0.0.1:${port}/`

export const stdioArgs = (log?: string): Array<string> => [
  FIXTURE,
  "--transport",
  "stdio",
  ...(log !== undefined ? ["--log", log] : [])
]

/** Tether's spec for a server kind (stdio: Tether spawns the fixture itself). */
export const tetherSpec = (kind: Kind, port?: number): ServerSpec.Encoded =>
  kind === "stdio"
    ? { type: "stdio", command: process.execPath, args: stdioArgs() }
    : kind === "ws"
      ? { type: "websocket", url: urlFor("ws", port!) }
      : { type: kind, url: urlFor(kind, port!) }

// ---------------------------------------------------------------------------
// Tether connections from promise code
// ---------------------------------------------------------------------------

export interface TetherHandle {
  readonly conn: McpConnection.McpConnection
  readonly close: () => Promise<void>
}

const openScopes = new Set<Scope.CloseableScope>()

export const openTether = async (options: McpConnection.McpConnection.Options): Promise<TetherHandle> => {
  const scope = Effect.runSync(Scope.make())
  openScopes.add(scope)
  const conn = await Effect.runPromise(McpConnection.make(options).pipe(Scope.extend(scope)))
  return {
    conn,
    close: async () => {
      if (!openScopes.delete(scope)) return
      await timeBox(Effect.runPromise(Scope.close(scope, Exit.void)), 10_000)
    }
  }
}

/** Closes every Tether connection still open (error paths). */
export const closeAllTether = async (): Promise<void> => {
  const scopes = [...openScopes]
  openScopes.clear()
  await timeBox(Promise.all(scopes.map((s) => Effect.runPromise(Scope.close(s, Exit.void)))), 5_000)
}

export const runTether = <A, E>(effect: Effect.Effect<A, E>): Promise<A> => Effect.runPromise(effect)

// ---------------------------------------------------------------------------
// In-process server (part 1's InMemory rows)
// ---------------------------------------------------------------------------

/** An in-process SDK server with the fixture's read-only `echo` tool. */
export const inMemoryEchoServer = (): McpServer => {
  const server = new McpServer({ name: "bench-inmemory", version: "1.0.0" })
  server.registerTool(
    "echo",
    {
      description: "Echoes its input",
      inputSchema: { text: z.string() },
      annotations: { readOnlyHint: true }
    },
    async ({ text }) => ({ content: [{ type: "text", text }] })
  )
  return server
}

/** A new linked pair with its own echo server on the far side; the client side is returned. */
export const inMemoryEchoTransport = (): InMemoryTransport => {
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair()
  void inMemoryEchoServer().connect(serverSide)
  return clientSide
}

// ---------------------------------------------------------------------------
// Raw SDK clients
// ---------------------------------------------------------------------------

let globalWebSocketInstalled = false

/**
 * The SDK's WebSocketClientTransport uses the global `WebSocket`, which Node 20 lacks:
 * the raw side gets `ws`'s (Tether uses `ws` directly and never reads the global).
 */
export const installGlobalWebSocket = async (): Promise<void> => {
  if (globalWebSocketInstalled) return
  globalWebSocketInstalled = true
  const { WebSocket } = await import("ws")
  ;(globalThis as unknown as { WebSocket: unknown }).WebSocket = WebSocket
}

export interface RawHandle {
  readonly client: Client
  readonly transport: Transport
  /** The stdio child's pid (stdio only). */
  readonly pid: () => number | undefined
  readonly close: () => Promise<void>
}

export const openRawWith = async (transport: Transport, pid: () => number | undefined = () => undefined) => {
  const client = new Client({ name: "raw-sdk-bench", version: "1.0.0" }, { capabilities: {} })
  client.onerror = () => {}
  await client.connect(transport)
  const handle: RawHandle = {
    client,
    transport,
    pid,
    close: async () => {
      const p = pid()
      const boxed = await timeBox(client.close(), 5_000)
      if (!boxed.settled && p !== undefined) signal(p, "SIGKILL")
    }
  }
  return handle
}

/** A raw SDK `Client` over the SDK's own transport for `kind`. */
export const openRaw = async (kind: Kind, port?: number): Promise<RawHandle> => {
  switch (kind) {
    case "stdio": {
      const transport = new StdioClientTransport({
        command: process.execPath,
        args: stdioArgs(),
        stderr: "ignore"
      })
      return openRawWith(transport, () => transport.pid ?? undefined)
    }
    case "http":
      return openRawWith(new StreamableHTTPClientTransport(new URL(urlFor("http", port!))))
    case "sse":
      return openRawWith(new SSEClientTransport(new URL(urlFor("sse", port!))))
    case "ws":
      await installGlobalWebSocket()
      return openRawWith(new SdkWebSocketClientTransport(new URL(urlFor("ws", port!))))
  }
}

// ---------------------------------------------------------------------------
// Results and output
// ---------------------------------------------------------------------------

export const say = (line = ""): void => {
  process.stdout.write(`${line}\n`)
}

export const table = (headers: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)))
  const line = (cells: ReadonlyArray<string>) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ")
  return [line(headers), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n")
}

/** The same table as GitHub markdown (BENCHMARKS.md is written from these). */
export const markdownTable = (
  headers: ReadonlyArray<string>,
  rows: ReadonlyArray<ReadonlyArray<string>>
): string =>
  [
    `| ${headers.join(" | ")} |`,
    `|${headers.map((_, i) => (i === 0 ? "---" : "---:")).join("|")}|`,
    ...rows.map((r) => `| ${r.join(" | ")} |`)
  ].join("\n")

export interface Target {
  readonly part: string
  readonly name: string
  readonly target: string
  readonly value: string
  /** undefined: not measurable in this run (e.g. skipped). */
  readonly met: boolean | undefined
  readonly note?: string
}

export interface TableSpec {
  readonly title: string
  readonly headers: Array<string>
  readonly rows: Array<Array<string>>
}

export interface PartResult {
  readonly data: unknown
  readonly targets: ReadonlyArray<Target>
  /** Tables as printed, for BENCHMARKS.md. */
  readonly tables: Array<TableSpec>
  readonly notes: ReadonlyArray<string>
}

export interface RunOptions {
  readonly quick: boolean
}

export const printTable = (
  tables: Array<TableSpec>,
  title: string,
  headers: Array<string>,
  rows: Array<Array<string>>
): void => {
  tables.push({ title, headers, rows })
  say(`\n${title}`)
  say(table(headers, rows))
}

export const targetLine = (t: Target): string =>
  `  [${t.met === undefined ? "n/a " : t.met ? "MET " : "MISS"}] ${t.part} ${t.name}: ${t.value} (target ${t.target})${t.note !== undefined ? ` — ${t.note}` : ""}`

/** A text result of an echo call (checks the answer). */
export const echoText = (result: unknown): string | undefined => {
  const r = result as CallToolResult
  const first = r.content?.[0]
  return first !== undefined && first.type === "text" ? first.text : undefined
}
