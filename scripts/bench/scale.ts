/**
 * Part 5 — scale: N WebSocket connections from one client process to one fixture ws
 * server. Each round is a fresh client process (bundled worker) so its memory is its own:
 * baseline after imports and a full GC, connect all N (50 at a time, the same on both
 * sides), one echo on every connection at once, full GC, measure. Rounds alternate
 * Tether, raw, Tether, raw.
 *
 * The 10,000-tenant pool is part 6 (`pool.ts`).
 */
import { Effect } from "effect"
import {
  echoText,
  errorText,
  fmt,
  fullGc,
  installGlobalWebSocket,
  installWarningCounter,
  median,
  memory,
  now,
  openTether,
  type PartResult,
  printTable,
  type RunOptions,
  say,
  sleep,
  startServer,
  type TableSpec,
  type Target,
  timeBox,
  warningCounts
} from "./common.js"
import { spawnWorker } from "./soak.js"

const BATCH = 50

export interface ScaleWorkerParams {
  readonly role: "scale"
  readonly side: "tether" | "raw"
  readonly url: string
  readonly n: number
}

export interface ScaleWorkerResult {
  readonly side: "tether" | "raw"
  readonly n: number
  readonly connected: number
  readonly connectAllMs: number
  readonly echoAllMs: number
  readonly echoOk: number
  readonly heapPerConnKiB: number
  readonly rssPerConnKiB: number
  readonly heapDeltaMiB: number
  readonly rssDeltaMiB: number
  readonly warnings: number
  readonly errors: Array<string>
}

export const worker = async (p: ScaleWorkerParams): Promise<ScaleWorkerResult> => {
  installWarningCounter()
  const errors: Array<string> = []
  const { Client } = await import("@modelcontextprotocol/sdk/client/index.js")
  const { WebSocketClientTransport } = await import("@modelcontextprotocol/sdk/client/websocket.js")
  await installGlobalWebSocket()
  await fullGc()
  const base = memory()
  let connected = 0
  let echo: () => Promise<number>
  let closeAll: () => Promise<void>
  const t0 = now()
  if (p.side === "tether") {
    const handles: Array<Awaited<ReturnType<typeof openTether>>> = []
    for (let i = 0; i < p.n; i += BATCH) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(BATCH, p.n - i) }, (_, j) =>
          openTether({ name: `scale-${i + j}`, server: { type: "websocket", url: p.url } })
        )
      )
      handles.push(...batch)
      const ready = await Promise.all(
        batch.map((h) => Effect.runPromise(h.conn.awaitReady({ timeout: 30_000 }).pipe(Effect.either)))
      )
      for (const r of ready) {
        if (r._tag === "Right") connected += 1
        else if (errors.length < 5) errors.push(errorText(r.left))
      }
    }
    echo = async () => {
      const rs = await Promise.all(
        handles.map((h) =>
          Effect.runPromise(h.conn.callTool("echo", { text: "s" }, { timeout: 30_000 }).pipe(Effect.either))
        )
      )
      return rs.filter((r) => r._tag === "Right" && echoText(r.right) === "s").length
    }
    closeAll = async () => {
      await Promise.all(handles.map((h) => h.close()))
    }
  } else {
    const clients: Array<InstanceType<typeof Client>> = []
    // Kept, like Tether's per-connection catalog, so the heap figures compare like with like.
    const catalogs: Array<unknown> = []
    for (let i = 0; i < p.n; i += BATCH) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(BATCH, p.n - i) }, async () => {
          const client = new Client({ name: "raw-scale", version: "1.0.0" }, { capabilities: {} })
          client.onerror = () => {}
          try {
            await client.connect(new WebSocketClientTransport(new URL(p.url)))
            // The same work as Tether's connect, which lists the tools and keeps the
            // catalog: without it the raw side would be timed on `initialize` alone.
            const catalog = await client.listTools()
            catalogs.push(catalog.tools)
            return client
          } catch (e) {
            if (errors.length < 5) errors.push(errorText(e))
            return undefined
          }
        })
      )
      for (const c of batch) if (c !== undefined) clients.push(c)
    }
    connected = clients.length
    echo = async () => {
      const rs = await Promise.allSettled(
        clients.map((c) =>
          c.callTool({ name: "echo", arguments: { text: "s" } }, undefined, { timeout: 30_000 })
        )
      )
      return rs.filter((r) => r.status === "fulfilled" && echoText(r.value) === "s").length
    }
    closeAll = async () => {
      await Promise.all(clients.map((c) => c.close().catch(() => undefined)))
      catalogs.length = 0
    }
  }
  const connectAllMs = now() - t0
  const e0 = now()
  const echoOk = await echo()
  const echoAllMs = now() - e0
  await sleep(200)
  await fullGc()
  const after = memory()
  await timeBox(closeAll(), 10_000)
  const per = (bytes: number) => bytes / Math.max(1, connected) / 1024
  return {
    side: p.side,
    n: p.n,
    connected,
    connectAllMs,
    echoAllMs,
    echoOk,
    heapPerConnKiB: per(after.heapUsed - base.heapUsed),
    rssPerConnKiB: per(after.rss - base.rss),
    heapDeltaMiB: (after.heapUsed - base.heapUsed) / 1024 / 1024,
    rssDeltaMiB: (after.rss - base.rss) / 1024 / 1024,
    warnings: warningCounts.tether + warningCounts.raw + warningCounts.none,
    errors
  }
}

export const run = async (options: RunOptions): Promise<PartResult> => {
  const n = options.quick ? 200 : 1_000
  const rounds = options.quick ? 1 : 2
  const server = await startServer("ws")
  const url = `ws://127.0.0.1:${server.port}/`
  const results: Array<ScaleWorkerResult | { side: string; error: string }> = []
  try {
    for (let r = 0; r < rounds; r++) {
      for (const side of ["tether", "raw"] as const) {
        say(`  round ${r + 1}: ${side}, ${n} WebSocket connections…`)
        const w = spawnWorker({ role: "scale", side, url, n } satisfies ScaleWorkerParams, 120_000)
        w.child.stdin?.write("GO\n")
        try {
          results.push((await w.result) as ScaleWorkerResult)
        } catch (e) {
          results.push({ side, error: errorText(e) })
        }
        await timeBox(w.exited, 5_000)
      }
    }
  } finally {
    await server.kill()
  }
  const ok = (side: string) =>
    results.filter((r): r is ScaleWorkerResult => r.side === side && !("error" in r))
  const t = ok("tether")
  const raw = ok("raw")
  const m = (xs: Array<ScaleWorkerResult>, f: (r: ScaleWorkerResult) => number) => median(xs.map(f))
  const rowFor = (name: string, xs: Array<ScaleWorkerResult>) => [
    name,
    String(n),
    xs.map((x) => `${x.connected}`).join("/") || "–",
    fmt(
      m(xs, (x) => x.connectAllMs),
      0
    ),
    fmt(
      m(xs, (x) => x.echoAllMs),
      0
    ),
    fmt(
      m(xs, (x) => x.heapPerConnKiB),
      1
    ),
    fmt(
      m(xs, (x) => x.rssPerConnKiB),
      1
    ),
    String(xs.reduce((a, x) => a + x.warnings, 0))
  ]
  const tables: Array<TableSpec> = []
  const ratio = (f: (r: ScaleWorkerResult) => number) => m(t, f) / m(raw, f)
  printTable(
    tables,
    `Part 5 — scale: ${n} WebSocket connections in one process (${BATCH} at a time), medians of ${rounds} round(s) per side`,
    ["side", "N", "connected", "connect-all ms", "echo-all ms", "heap KiB/conn", "RSS KiB/conn", "warnings"],
    [
      rowFor("Tether", t),
      rowFor("raw SDK", raw),
      [
        "ratio Tether/raw",
        "",
        "",
        fmt(
          ratio((x) => x.connectAllMs),
          2
        ),
        fmt(
          ratio((x) => x.echoAllMs),
          2
        ),
        fmt(
          ratio((x) => x.heapPerConnKiB),
          2
        ),
        fmt(
          ratio((x) => x.rssPerConnKiB),
          2
        ),
        ""
      ]
    ]
  )
  const errs = results.flatMap((r) =>
    "error" in r ? [`${r.side}: ${r.error}`] : r.errors.map((e) => `${r.side}: ${e}`)
  )
  for (const e of errs.slice(0, 5)) say(`  error: ${e}`)
  const notes = [
    "Each round is a fresh process: memory per connection = (after − before) / connected, both after a full GC; the before-sample is taken after imports.",
    "Tether: McpConnection.make per connection (default policy: supervisor + heartbeat fibers each); its connect includes tools/list (the catalog is kept per connection). Raw: SDK Client + SDK WebSocketClientTransport on ws, connect then listTools (the catalog kept too), so both sides do the same work."
  ]
  for (const note of notes) say(`  note: ${note}`)
  const heapRatio = ratio((x) => x.heapPerConnKiB)
  const connectRatio = ratio((x) => x.connectAllMs)
  const targets: Array<Target> = [
    {
      part: "5",
      name: "all connections up",
      target: `${n}/${n} on both sides`,
      value: `Tether ${t.map((x) => x.connected).join("/") || "–"}, raw ${raw.map((x) => x.connected).join("/") || "–"}`,
      met: t.length === rounds && t.every((x) => x.connected === n && x.echoOk === n)
    },
    {
      part: "5",
      name: "heap per connection, Tether/raw",
      target: "≤ 1.5×",
      value: `${fmt(heapRatio, 2)}× (${fmt(
        m(t, (x) => x.heapPerConnKiB),
        1
      )} vs ${fmt(
        m(raw, (x) => x.heapPerConnKiB),
        1
      )} KiB)`,
      met: heapRatio <= 1.5
    },
    {
      part: "5",
      name: "connect-all time, Tether/raw (both list tools)",
      target: "≤ 1.3×",
      value: `${fmt(connectRatio, 2)}× (${fmt(
        m(t, (x) => x.connectAllMs),
        0
      )} vs ${fmt(
        m(raw, (x) => x.connectAllMs),
        0
      )} ms)`,
      met: connectRatio <= 1.3
    }
  ]
  return { data: { n, batch: BATCH, rounds, results }, targets, tables, notes }
}
