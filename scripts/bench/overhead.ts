/**
 * Part 1 — overhead: `tools/call echo` through Tether and through a raw SDK `Client`, over
 * the same server kind, in interleaved blocks (Tether, raw, Tether, raw, …; a GC before
 * each block). Sequential calls/s, p50, p99, and 32-way concurrent calls/s.
 *
 * Tether's loops run inside one Effect fiber (`yield* conn.callTool(...)`), the way an
 * Effect program calls it; the raw loops are async/await.
 */
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js"
import { Effect } from "effect"
import type * as McpConnection from "../../src/McpConnection.js"
import { run as runBreakdown } from "./breakdown.js"
import {
  echoText,
  errorText,
  type FixtureServer,
  fmt,
  gcOnce,
  inMemoryEchoServer,
  inMemoryEchoTransport,
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
    inmemory: { seq: 2_000, conc: 10_000 },
    stdio: { seq: 1_000, conc: 5_000 },
    ws: { seq: 1_000, conc: 5_000 },
    http: { seq: 300, conc: 1_200 },
    sse: { seq: 300, conc: 1_200 }
  }
  const quickSizes: Record<OverheadKind, Sizes> = {
    inmemory: { seq: 500, conc: 2_000 },
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
  tether: SideStats
  raw: SideStats
  /** A second raw SDK client run exactly like the first: its ratio to it is pure noise. */
  control: SideStats
  /** Median over rounds of (Tether / raw) within the round. */
  ratioSeq: number
  ratioConc: number
  ratioSeqRounds: Array<number>
  ratioConcRounds: Array<number>
  /** The same for the control client: how far from 1.0 identical clients land. */
  controlSeq: number
  controlConc: number
  controlSeqRounds: Array<number>
  controlConcRounds: Array<number>
}

/** Per-round ratios side / raw (rounds are paired: same time, same machine state). */
const pairedRatios = (side: Array<Block>, raw: Array<Block>): Array<number> =>
  side.flatMap((b, i) => {
    const r = raw[i]
    return r === undefined || r.calls === 0 || b.calls === 0
      ? []
      : [round(b.calls / b.elapsedMs / (r.calls / r.elapsedMs), 3)]
  })

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
  const rounds = options.quick ? 2 : 10
  const capMs = options.quick ? 2_000 : 15_000
  let server: FixtureServer | undefined
  let tether: TetherHandle | undefined
  let raw: RawHandle | undefined
  let control: RawHandle | undefined
  let rawTransport = ""
  try {
    if (kind === "http" || kind === "ws" || kind === "sse") server = await startServer(kind)
    if (kind === "inmemory") {
      // Each side gets its own in-process server; Tether's factory makes one per session.
      const pair = async () => {
        const [clientSide, serverSide] = InMemoryTransport.createLinkedPair()
        await inMemoryEchoServer().connect(serverSide)
        return clientSide
      }
      raw = await openRawWith(await pair())
      control = await openRawWith(await pair())
      rawTransport = "InMemoryTransport.createLinkedPair()"
      tether = await openTether({
        name: "overhead-inmemory",
        server: {
          type: "custom",
          label: "in-memory",
          transport: inMemoryEchoTransport
        }
      })
    } else {
      raw = await openRaw(kind, server?.port)
      control = await openRaw(kind, server?.port)
      rawTransport =
        kind === "ws"
          ? "SDK WebSocketClientTransport (global WebSocket = ws)"
          : kind === "stdio"
            ? "SDK StdioClientTransport"
            : kind === "http"
              ? "SDK StreamableHTTPClientTransport"
              : "SDK SSEClientTransport"
      tether = await openTether({ name: `overhead-${kind}`, server: tetherSpec(kind, server?.port) })
    }
    await Effect.runPromise(tether.conn.awaitReady({ timeout: 15_000 }))
    debug(`${kind} setup done`)
    type Who = "tether" | "raw" | "control"
    const sides: Array<[Who, Runner]> = [
      ["tether", tetherRunner(tether.conn)],
      ["raw", rawRunner(raw)],
      ["control", rawRunner(control)]
    ]
    const fresh = () => ({
      seq: [] as Array<Block>,
      conc: [] as Array<Block>,
      warnings: 0,
      errors: [] as Array<string>
    })
    const blocks = { tether: fresh(), raw: fresh(), control: fresh() }
    // The control client's warnings count for the raw SDK.
    const sideOf = (who: Who) => (who === "tether" ? "tether" : "raw")
    // Warm-up (JIT, connection pools), not recorded.
    for (const [who, runner] of sides) {
      setSide(sideOf(who))
      await runner.seq(Math.ceil(seq / 4), capMs)
      await runner.conc(Math.ceil(conc / 4), capMs)
      setSide("none")
    }
    debug(`${kind} warm-up done`)
    const warnedBefore = { tether: warningCounts.tether, raw: warningCounts.raw }
    for (let r = 0; r < rounds; r++) {
      // Rotate who goes first so that no side always follows the same one.
      const order = [...sides.slice(r % sides.length), ...sides.slice(0, r % sides.length)]
      for (const [who, runner] of order) {
        const b = blocks[who]
        try {
          gcOnce()
          setSide(sideOf(who))
          b.seq.push(await runner.seq(seq, capMs))
          setSide("none")
          gcOnce()
          setSide(sideOf(who))
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
    const rawWarnings = warningCounts.raw - warnedBefore.raw
    const summary = (who: Who, warnings: number) =>
      summarize(blocks[who].seq, blocks[who].conc, warnings, blocks[who].errors)
    const ratioSeqRounds = pairedRatios(blocks.tether.seq, blocks.raw.seq)
    const ratioConcRounds = pairedRatios(blocks.tether.conc, blocks.raw.conc)
    const controlSeqRounds = pairedRatios(blocks.control.seq, blocks.raw.seq)
    const controlConcRounds = pairedRatios(blocks.control.conc, blocks.raw.conc)
    return {
      kind,
      rawTransport,
      tether: summary("tether", warningCounts.tether - warnedBefore.tether),
      raw: summary("raw", rawWarnings),
      control: summary("control", 0),
      ratioSeq: round(median(ratioSeqRounds), 3),
      ratioConc: round(median(ratioConcRounds), 3),
      ratioSeqRounds,
      ratioConcRounds,
      controlSeq: round(median(controlSeqRounds), 3),
      controlConc: round(median(controlConcRounds), 3),
      controlSeqRounds,
      controlConcRounds
    }
  } finally {
    await tether?.close()
    debug(`${kind} tether closed`)
    await raw?.close()
    await control?.close()
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
  const range = (xs: Array<number>) =>
    xs.length === 0 ? "" : `${fmt(Math.min(...xs), 2)}–${fmt(Math.max(...xs), 2)}`
  for (const r of results) {
    const sideRow = (name: string, s: SideStats) => [
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
      "**ratio Tether/raw**",
      `**${fmt(r.ratioSeq, 3)}** (${range(r.ratioSeqRounds)})`,
      "",
      "",
      `**${fmt(r.ratioConc, 3)}** (${range(r.ratioConcRounds)})`,
      "",
      ""
    ])
    rows.push([
      label[r.kind],
      "control: raw/raw",
      `${fmt(r.controlSeq, 3)} (${range(r.controlSeqRounds)})`,
      "",
      "",
      `${fmt(r.controlConc, 3)} (${range(r.controlConcRounds)})`,
      "",
      ""
    ])
  }
  const rounds = options.quick ? 2 : 10
  printTable(
    tables,
    `Part 1 — overhead: tools/call echo, ${rounds} interleaved rounds; ratios are medians of per-round ratios (min–max)`,
    ["transport", "side", "seq calls/s", "p50 ms", "p99 ms", "32-way calls/s", "warnings", "errors"],
    rows
  )
  const breakdown = await runBreakdown(options.quick, tables)
  const notes = [
    "Breakdown: each layer adds one thing to the one above it; the two Effect rows are Effect's own cost of running a call in a fiber (what any Effect program pays), the last row adds Tether's call path. CPU time counts the in-process server too.",
    "Ratios: each round runs Tether, the raw SDK and a second raw SDK client (the control) one after the other, in a rotating order; a ratio is taken within each round and the median over rounds is reported. The control row is raw SDK against raw SDK: how far from 1.0 two identical clients land on this machine.",
    "InMemory: Tether uses a `custom` server spec whose factory returns the SDK's InMemoryTransport (a new linked pair and McpServer per session).",
    "Raw WebSocket client: the SDK's own WebSocketClientTransport with globalThis.WebSocket = ws.WebSocket (set for the raw client only; Tether uses ws directly).",
    "Tether loops run inside one Effect fiber (yield* conn.callTool); raw loops are async/await. Default Tether policy.",
    "Warnings: Node's default printer is replaced by a counter; each warning is attributed to the side whose block was running (the control counts for the raw SDK)."
  ]
  for (const n of notes) say(`  note: ${n}`)
  const t: Array<Target> = []
  for (const r of results) {
    const target = targets[r.kind]
    const noise = (rounds: Array<number>) => `control raw/raw ${range(rounds)}`
    t.push({
      part: "1",
      name: `${label[r.kind]} sequential throughput ratio`,
      target: `≥ ${target}`,
      value: `${fmt(r.ratioSeq, 3)} (${noise(r.controlSeqRounds)})`,
      met: r.ratioSeq >= target
    })
    t.push({
      part: "1",
      name: `${label[r.kind]} 32-way throughput ratio`,
      target: `≥ ${target}`,
      value: `${fmt(r.ratioConc, 3)} (${noise(r.controlConcRounds)})`,
      met: r.ratioConc >= target
    })
    t.push({
      part: "1",
      name: `${label[r.kind]} warnings (Tether)`,
      target: "0",
      value: `${r.tether.warnings} (raw: ${r.raw.warnings})`,
      met: r.tether.warnings === 0
    })
  }
  return { data: { kinds: results, breakdown }, targets: t, tables, notes }
}
