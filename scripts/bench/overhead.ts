/**
 * Part 1 — overhead: `tools/call echo` through Tether and through a raw SDK `Client`, over
 * the same server kind, in interleaved blocks (Tether, raw, Tether, raw, …; a GC before
 * each block). Sequential calls/s, p50, p99, and 32-way concurrent calls/s.
 *
 * Tether's loops run inside one Effect fiber (`yield* conn.callTool(...)`), the way an
 * Effect program calls it; the raw loops are async/await.
 */
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js"
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js"
import { Effect } from "effect"
import { z } from "zod"
import type * as McpConnection from "../../src/McpConnection.js"
import {
  echoText,
  errorText,
  type FixtureServer,
  fmt,
  gcOnce,
  type Kind,
  median,
  now,
  openRaw,
  openRawWith,
  openTether,
  type PartResult,
  percentile,
  printTable,
  type RawHandle,
  round,
  type RunOptions,
  say,
  setSide,
  startServer,
  type TableSpec,
  type Target,
  type TetherHandle,
  tetherSpec,
  warningCounts
} from "./common.js"

type OverheadKind = "inmemory" | Kind

interface Sizes {
  readonly seq: number
  readonly conc: number
}

const WIDTH = 32

const sizes = (kind: OverheadKind, quick: boolean): Sizes => {
  const full: Record<OverheadKind, Sizes> = {
    inmemory: { seq: 4_000, conc: 20_000 },
    stdio: { seq: 2_000, conc: 10_000 },
    ws: { seq: 2_000, conc: 10_000 },
    http: { seq: 400, conc: 1_600 },
    sse: { seq: 400, conc: 1_600 }
  }
  const quickSizes: Record<OverheadKind, Sizes> = {
    inmemory: { seq: 1_000, conc: 4_000 },
    stdio: { seq: 200, conc: 800 },
    ws: { seq: 200, conc: 800 },
    http: { seq: 60, conc: 200 },
    sse: { seq: 60, conc: 200 }
  }
  return quick ? quickSizes[kind] : full[kind]
}

const targets: Record<OverheadKind, number> = { inmemory: 0.9, stdio: 0.97, ws: 0.97, http: 1.0, sse: 1.0 }

const label: Record<OverheadKind, string> = {
  inmemory: "InMemory",
  stdio: "stdio",
  http: "Streamable HTTP",
  sse: "SSE",
  ws: "WebSocket"
}

interface Block {
  readonly calls: number
  readonly elapsedMs: number
  readonly latencies?: Array<number>
}

/** What one side can do: a sequential block and a 32-way concurrent block. */
interface Runner {
  readonly seq: (n: number, capMs: number) => Promise<Block>
  readonly conc: (n: number, capMs: number) => Promise<Block>
}

const TEXT = "hello"

const t0 = now()
const debug = (what: string) => {
  if (process.env.BENCH_DEBUG !== undefined) say(`    [${((now() - t0) / 1000).toFixed(2)} s] ${what}`)
}

const checkEcho = (result: unknown) => {
  if (echoText(result) !== TEXT) throw new Error(`unexpected echo result: ${JSON.stringify(result)}`)
}

const rawRunner = (raw: RawHandle): Runner => {
  const call = async () => {
    checkEcho(await raw.client.callTool({ name: "echo", arguments: { text: TEXT } }))
  }
  return {
    seq: async (n, capMs) => {
      const latencies: Array<number> = []
      const start = now()
      for (let i = 0; i < n; i++) {
        const t = now()
        await call()
        latencies.push(now() - t)
        if (t - start > capMs) break
      }
      return { calls: latencies.length, elapsedMs: now() - start, latencies }
    },
    conc: async (n, capMs) => {
      let next = 0
      let done = 0
      const start = now()
      const worker = async () => {
        while (next < n && now() - start < capMs) {
          next += 1
          await call()
          done += 1
        }
      }
      await Promise.all(Array.from({ length: WIDTH }, worker))
      return { calls: done, elapsedMs: now() - start }
    }
  }
}

const tetherRunner = (conn: McpConnection.McpConnection): Runner => {
  const call = conn.callTool("echo", { text: TEXT }).pipe(Effect.map(checkEcho))
  return {
    seq: (n, capMs) =>
      Effect.runPromise(
        Effect.gen(function* () {
          const latencies: Array<number> = []
          const start = now()
          for (let i = 0; i < n; i++) {
            const t = now()
            yield* call
            latencies.push(now() - t)
            if (t - start > capMs) break
          }
          return { calls: latencies.length, elapsedMs: now() - start, latencies }
        })
      ),
    conc: (n, capMs) =>
      Effect.runPromise(
        Effect.gen(function* () {
          let next = 0
          let done = 0
          const start = now()
          const worker = Effect.gen(function* () {
            while (next < n && now() - start < capMs) {
              next += 1
              yield* call
              done += 1
            }
          })
          yield* Effect.all(
            Array.from({ length: WIDTH }, () => worker),
            { concurrency: "unbounded", discard: true }
          )
          return { calls: done, elapsedMs: now() - start }
        })
      )
  }
}

/** An in-process server with the fixture's `echo` tool, for the InMemory transport. */
const inMemoryServer = () => {
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

interface SideStats {
  seqCallsPerSec: number
  seqBlocks: Array<number>
  p50Ms: number
  p99Ms: number
  concCallsPerSec: number
  concBlocks: Array<number>
  warnings: number
  errors: Array<string>
}

interface KindResult {
  kind: OverheadKind
  rawTransport: string
  tether: SideStats | { skipped: string }
  raw: SideStats
  ratioSeq: number | undefined
  ratioConc: number | undefined
}

const summarize = (
  seq: Array<Block>,
  conc: Array<Block>,
  warnings: number,
  errors: Array<string>
): SideStats => {
  const lat = seq.flatMap((b) => b.latencies ?? [])
  const seqBlocks = seq.map((b) => (b.calls / b.elapsedMs) * 1000)
  const concBlocks = conc.map((b) => (b.calls / b.elapsedMs) * 1000)
  return {
    seqCallsPerSec: round(median(seqBlocks), 1),
    seqBlocks: seqBlocks.map((x) => round(x, 1)),
    p50Ms: round(percentile(lat, 50), 4),
    p99Ms: round(percentile(lat, 99), 4),
    concCallsPerSec: round(median(concBlocks), 1),
    concBlocks: concBlocks.map((x) => round(x, 1)),
    warnings,
    errors
  }
}

const benchKind = async (kind: OverheadKind, options: RunOptions): Promise<KindResult> => {
  const { conc, seq } = sizes(kind, options.quick)
  const rounds = options.quick ? 2 : 6
  const capMs = options.quick ? 2_000 : 15_000
  let server: FixtureServer | undefined
  let tether: TetherHandle | undefined
  let raw: RawHandle | undefined
  let rawTransport = ""
  try {
    if (kind === "http" || kind === "ws" || kind === "sse") server = await startServer(kind)
    if (kind === "inmemory") {
      const [clientSide, serverSide] = InMemoryTransport.createLinkedPair()
      await inMemoryServer().connect(serverSide)
      raw = await openRawWith(clientSide)
      rawTransport = "InMemoryTransport.createLinkedPair()"
    } else {
      raw = await openRaw(kind, server?.port)
      rawTransport =
        kind === "ws"
          ? "SDK WebSocketClientTransport (global WebSocket = ws)"
          : kind === "stdio"
            ? "SDK StdioClientTransport"
            : kind === "http"
              ? "SDK StreamableHTTPClientTransport"
              : "SDK SSEClientTransport"
      tether = await openTether({ name: `overhead-${kind}`, server: tetherSpec(kind, server?.port) })
      await Effect.runPromise(tether.conn.awaitReady({ timeout: 15_000 }))
    }
    debug(`${kind} setup done`)
    const sides: Array<["tether" | "raw", Runner]> = [
      ...(tether !== undefined ? [["tether", tetherRunner(tether.conn)] as ["tether", Runner]] : []),
      ["raw", rawRunner(raw)]
    ]
    const blocks = {
      tether: { seq: [] as Array<Block>, conc: [] as Array<Block>, warnings: 0, errors: [] as Array<string> },
      raw: { seq: [] as Array<Block>, conc: [] as Array<Block>, warnings: 0, errors: [] as Array<string> }
    }
    // Warm-up (JIT, connection pools), not recorded.
    for (const [side, runner] of sides) {
      setSide(side)
      await runner.seq(Math.ceil(seq / 4), capMs)
      await runner.conc(Math.ceil(conc / 4), capMs)
      setSide("none")
    }
    debug(`${kind} warm-up done`)
    const warnedBefore = { tether: warningCounts.tether, raw: warningCounts.raw }
    for (let r = 0; r < rounds; r++) {
      for (const [side, runner] of sides) {
        const b = blocks[side]
        try {
          gcOnce()
          setSide(side)
          b.seq.push(await runner.seq(seq, capMs))
          setSide("none")
          gcOnce()
          setSide(side)
          b.conc.push(await runner.conc(conc, capMs))
        } catch (e) {
          b.errors.push(errorText(e))
        } finally {
          setSide("none")
        }
      }
    }
    debug(`${kind} rounds done`)
    // Warnings are emitted on process.nextTick: let them land before reading the counters.
    await new Promise((r) => setImmediate(r))
    blocks.tether.warnings = warningCounts.tether - warnedBefore.tether
    blocks.raw.warnings = warningCounts.raw - warnedBefore.raw
    const rawStats = summarize(blocks.raw.seq, blocks.raw.conc, blocks.raw.warnings, blocks.raw.errors)
    if (tether === undefined) {
      return {
        kind,
        rawTransport,
        tether: {
          skipped:
            "Tether has no InMemory transport: ServerSpec is stdio | http | sse | websocket and there is no public way to hand McpConnection a Transport"
        },
        raw: rawStats,
        ratioSeq: undefined,
        ratioConc: undefined
      }
    }
    const t = summarize(blocks.tether.seq, blocks.tether.conc, blocks.tether.warnings, blocks.tether.errors)
    return {
      kind,
      rawTransport,
      tether: t,
      raw: rawStats,
      ratioSeq: round(t.seqCallsPerSec / rawStats.seqCallsPerSec, 3),
      ratioConc: round(t.concCallsPerSec / rawStats.concCallsPerSec, 3)
    }
  } finally {
    await tether?.close()
    debug(`${kind} tether closed`)
    await raw?.close()
    await server?.kill()
    debug(`${kind} closed`)
  }
}

export const run = async (options: RunOptions): Promise<PartResult> => {
  const kinds: Array<OverheadKind> = ["inmemory", "stdio", "http", "ws"]
  const results: Array<KindResult> = []
  for (const kind of kinds) {
    const started = now()
    results.push(await benchKind(kind, options))
    say(`  overhead: ${label[kind]} (${((now() - started) / 1000).toFixed(1)} s)`)
  }
  const tables: Array<TableSpec> = []
  const rows: Array<Array<string>> = []
  for (const r of results) {
    const sideRow = (name: string, s: SideStats | { skipped: string }) =>
      "skipped" in s
        ? [label[r.kind], name, "skipped", "", "", "", "", ""]
        : [
            label[r.kind],
            name,
            fmt(s.seqCallsPerSec, 0),
            fmt(s.p50Ms, 3),
            fmt(s.p99Ms, 3),
            fmt(s.concCallsPerSec, 0),
            String(s.warnings),
            s.errors.length > 0 ? `${s.errors.length} error(s)` : ""
          ]
    rows.push(sideRow("Tether", r.tether))
    rows.push(sideRow("raw SDK", r.raw))
    rows.push([
      label[r.kind],
      "ratio Tether/raw",
      r.ratioSeq === undefined ? "–" : fmt(r.ratioSeq, 3),
      "",
      "",
      r.ratioConc === undefined ? "–" : fmt(r.ratioConc, 3),
      "",
      ""
    ])
  }
  printTable(
    tables,
    `Part 1 — overhead: tools/call echo, medians of ${options.quick ? 2 : 6} interleaved blocks per side`,
    ["transport", "side", "seq calls/s", "p50 ms", "p99 ms", "32-way calls/s", "warnings", "errors"],
    rows
  )
  const notes = [
    "InMemory: Tether skipped — it has no InMemory transport (ServerSpec is stdio | http | sse | websocket, and McpConnection takes no Transport); the raw SDK number is printed for reference.",
    "Raw WebSocket client: the SDK's own WebSocketClientTransport with globalThis.WebSocket = ws.WebSocket (set for the raw client only; Tether uses ws directly).",
    "Tether loops run inside one Effect fiber (yield* conn.callTool); raw loops are async/await. Default Tether policy.",
    "Warnings: Node's default printer is replaced by a counter; each warning is attributed to the side whose block was running."
  ]
  for (const n of notes) say(`  note: ${n}`)
  const t: Array<Target> = []
  for (const r of results) {
    const target = targets[r.kind]
    if (r.ratioSeq === undefined || r.ratioConc === undefined) {
      t.push({
        part: "1",
        name: `${label[r.kind]} throughput ratio`,
        target: `≥ ${target}`,
        value: "not measured",
        met: undefined,
        note: "Tether has no InMemory transport"
      })
      continue
    }
    t.push({
      part: "1",
      name: `${label[r.kind]} sequential throughput ratio`,
      target: `≥ ${target}`,
      value: fmt(r.ratioSeq, 3),
      met: r.ratioSeq >= target
    })
    t.push({
      part: "1",
      name: `${label[r.kind]} 32-way throughput ratio`,
      target: `≥ ${target}`,
      value: fmt(r.ratioConc, 3),
      met: r.ratioConc >= target
    })
    const tw = "skipped" in r.tether ? 0 : r.tether.warnings
    t.push({
      part: "1",
      name: `${label[r.kind]} warnings (Tether)`,
      target: "0",
      value: `${tw} (raw: ${r.raw.warnings})`,
      met: tw === 0
    })
  }
  return { data: results, targets: t, tables, notes }
}
