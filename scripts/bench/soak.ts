/**
 * Part 4 — chaos soak: one fixture HTTP server behind the TCP fault proxy, a fault every
 * 5 s (first at 2.5 s) rotating kill+restart (1 s down), a 502 window (2 s), a pause
 * (SIGSTOP 2 s, SIGCONT) and a connection reset. Two client processes run side by side
 * for the whole window, each at 50 calls/s open-loop: one through Tether (default policy),
 * one through a raw SDK `Client`. 80 % are idempotent `echo`, 20 % non-idempotent `count`
 * with a unique id; the fixture's `--log` file records every `count` id it ran, so
 * duplicates (an id run twice) and "reported failed but ran" are counted exactly.
 *
 * Each side runs in its own process so its RSS growth and warnings are its own.
 */
import * as v8 from "node:v8"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { Effect, Either, Exit, Scope } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as FaultProxy from "../../test/support/faultProxy.js"
import {
  BENCH_DIR,
  descendants,
  descendantsMatching,
  echoText,
  errorText,
  fmt,
  fullGc,
  installWarningCounter,
  memory,
  MiB,
  now,
  openRawWith,
  openTether,
  type PartResult,
  printTable,
  type RunOptions,
  say,
  setSide,
  sleep,
  startServer,
  type TableSpec,
  type Target,
  timeBox,
  track,
  WORKER,
  warningCounts
} from "./common.js"

const RATE = 50
const FAULT_EVERY_MS = 5_000
const FIRST_FAULT_MS = 2_500
const FAULTS = ["kill+restart", "502 window", "pause (SIGSTOP)", "reset"] as const

export interface SoakWorkerParams {
  readonly role: "soak"
  readonly side: "tether" | "raw"
  readonly url: string
  readonly durationMs: number
  readonly drainMs: number
  /** Load (echo only, same rate, no faults) before the measured window starts. */
  readonly warmupMs: number
  readonly idPrefix: string
}

interface CallRecord {
  readonly i: number
  readonly tool: "echo" | "count"
  readonly id: string
  readonly issuedAt: number
  outcome: string | undefined
  settledAt: number | undefined
  detail: string | undefined
}

export interface SoakWorkerResult {
  readonly side: "tether" | "raw"
  readonly issued: number
  readonly echo: { issued: number; ok: number; failures: Record<string, number> }
  readonly count: { issued: number; ok: number; outcomeUnknown: number; failures: Record<string, number> }
  /** count ids and how each call ended ("ok", "OutcomeUnknown", "<tag>", "pending"). */
  readonly countOutcomes: Record<string, string>
  readonly pendingAtEnd: number
  readonly pendingCallsStat: number | undefined
  /** After 25 calls: the process before it ever carried load. */
  readonly rssColdMiB: number
  readonly heapColdMiB: number
  /** V8 new-space size (the young generation grows with the allocation rate). */
  readonly newSpaceColdMiB: number
  readonly newSpaceStartMiB: number
  readonly newSpaceEndMiB: number
  readonly rssStartMiB: number
  readonly rssEndMiB: number
  readonly heapStartMiB: number
  readonly heapEndMiB: number
  readonly heapTotalStartMiB: number
  readonly heapTotalEndMiB: number
  readonly samples: ReadonlyArray<{
    atMs: number
    rssMiB: number
    heapUsedMiB: number
    heapTotalMiB: number
    unsettled: number
  }>
  /** Every call that did not succeed: when it was issued and settled (ms from GO), how, why. */
  readonly failures: ReadonlyArray<{
    i: number
    tool: string
    issuedMs: number
    settledMs: number | undefined
    outcome: string
    detail: string | undefined
  }>
  readonly warnings: number
  readonly warningKinds: Record<string, number>
  readonly childrenLeft: number
  readonly reconnects: number | undefined
  readonly drainMs: number
}

const newSpaceMiB = (): number =>
  (v8.getHeapSpaceStatistics().find((space) => space.space_name === "new_space")?.space_size ?? 0) / MiB

const tagOf = (e: unknown): string => {
  if (typeof e === "object" && e !== null && "_tag" in e && typeof e._tag === "string") return e._tag
  const text = errorText(e)
  return text.replace(/[0-9a-f]{8}-[0-9a-f-]{27}/g, "<uuid>").slice(0, 70)
}

/** The client side of the soak, in its own process: READY, wait for GO, run, RESULT. */
export const worker = async (p: SoakWorkerParams, waitGo: () => Promise<void>): Promise<SoakWorkerResult> => {
  installWarningCounter()
  let call: (tool: "echo" | "count", args: Record<string, unknown>) => Promise<unknown>
  let pendingStat: () => Promise<number | undefined> = async () => undefined
  let reconnects: () => Promise<number | undefined> = async () => undefined
  let close: () => Promise<void>
  if (p.side === "tether") {
    const t = await openTether({ name: "soak", server: { type: "http", url: p.url } })
    await Effect.runPromise(t.conn.awaitReady({ timeout: 15_000 }))
    call = (tool, args) =>
      Effect.runPromise(t.conn.callTool(tool, args).pipe(Effect.either)).then((e) => {
        if (Either.isLeft(e)) throw e.left
        return e.right
      })
    pendingStat = () => Effect.runPromise(t.conn.stats).then((s) => s.pendingCalls)
    reconnects = () => Effect.runPromise(t.conn.stats).then((s) => s.reconnects)
    close = t.close
  } else {
    const r = await openRawWith(new StreamableHTTPClientTransport(new URL(p.url)))
    call = (tool, args) => r.client.callTool({ name: tool, arguments: args })
    close = r.close
  }
  setSide(p.side)
  for (let i = 0; i < 25; i++) await call("echo", { text: "warm" })
  await fullGc()
  const cold = memory()
  const newSpaceCold = newSpaceMiB()
  // Warm-up at the soak's rate (echo only, so the count log stays the soak's): V8 sizes its
  // young generation to the allocation rate once, and that is not growth over time.
  const warmT0 = now()
  const warming: Array<Promise<unknown>> = []
  for (let i = 0; now() - warmT0 < p.warmupMs; i++) {
    const due = warmT0 + (i * 1000) / RATE
    if (due > now()) await sleep(due - now())
    warming.push(call("echo", { text: `warm-${i}` }).catch(() => undefined))
  }
  await timeBox(Promise.all(warming), 10_000)
  await fullGc()
  const start = memory()
  const newSpaceStart = newSpaceMiB()
  await waitGo()

  const records: Array<CallRecord> = []
  const promises: Array<Promise<void>> = []
  const t0 = now()
  // Memory after a full GC at 25 %, 50 % and 75 % of the window (a leak keeps growing; a
  // one-time warm-up, such as V8's young generation growing to its working size, does not).
  const samples: Array<{
    atMs: number
    rssMiB: number
    heapUsedMiB: number
    heapTotalMiB: number
    unsettled: number
  }> = []
  const sampler = (async () => {
    for (const f of [0.25, 0.5, 0.75]) {
      await sleep(t0 + p.durationMs * f - now())
      await fullGc()
      const m = memory()
      samples.push({
        atMs: Math.round(now() - t0),
        rssMiB: m.rss / MiB,
        heapUsedMiB: m.heapUsed / MiB,
        heapTotalMiB: m.heapTotal / MiB,
        unsettled: records.filter((r) => r.outcome === undefined).length
      })
    }
  })()
  const total = Math.floor((p.durationMs / 1000) * RATE)
  for (let i = 0; i < total; i++) {
    const due = t0 + (i * 1000) / RATE
    if (due > now()) await sleep(due - now())
    if (now() - t0 > p.durationMs + 1_000) break
    const tool: "echo" | "count" = i % 5 === 4 ? "count" : "echo"
    const id = `${p.idPrefix}-${i}`
    const rec: CallRecord = {
      i,
      tool,
      id,
      issuedAt: now(),
      outcome: undefined,
      settledAt: undefined,
      detail: undefined
    }
    records.push(rec)
    const args = tool === "echo" ? { text: id } : { id }
    promises.push(
      call(tool, args).then(
        (result) => {
          rec.settledAt = now()
          rec.outcome = tool === "echo" && echoText(result) !== id ? "wrong echo" : "ok"
        },
        (e: unknown) => {
          rec.settledAt = now()
          rec.outcome = tagOf(e)
          rec.detail =
            typeof e === "object" && e !== null && "cause" in e && typeof e.cause === "string"
              ? e.cause.slice(0, 120)
              : errorText(e).slice(0, 120)
        }
      )
    )
  }
  await sampler
  const drainStart = now()
  await timeBox(Promise.all(promises), p.drainMs)
  const drainMs = now() - drainStart
  const pendingCallsStat = await pendingStat()
  const reconnectCount = await reconnects()
  await fullGc()
  const end = memory()
  const newSpaceEnd = newSpaceMiB()

  const echo = { issued: 0, ok: 0, failures: {} as Record<string, number> }
  const count = { issued: 0, ok: 0, outcomeUnknown: 0, failures: {} as Record<string, number> }
  const countOutcomes: Record<string, string> = {}
  for (const r of records) {
    const outcome = r.outcome ?? "pending"
    if (r.tool === "echo") {
      echo.issued += 1
      if (outcome === "ok") echo.ok += 1
      else echo.failures[outcome] = (echo.failures[outcome] ?? 0) + 1
    } else {
      count.issued += 1
      countOutcomes[r.id] = outcome
      if (outcome === "ok") count.ok += 1
      else if (outcome === "OutcomeUnknown") count.outcomeUnknown += 1
      else count.failures[outcome] = (count.failures[outcome] ?? 0) + 1
    }
  }
  const result: SoakWorkerResult = {
    side: p.side,
    issued: records.length,
    echo,
    count,
    countOutcomes,
    pendingAtEnd: records.filter((r) => r.outcome === undefined).length,
    pendingCallsStat,
    rssColdMiB: cold.rss / MiB,
    heapColdMiB: cold.heapUsed / MiB,
    newSpaceColdMiB: newSpaceCold,
    newSpaceStartMiB: newSpaceStart,
    newSpaceEndMiB: newSpaceEnd,
    rssStartMiB: start.rss / MiB,
    rssEndMiB: end.rss / MiB,
    heapStartMiB: start.heapUsed / MiB,
    heapEndMiB: end.heapUsed / MiB,
    heapTotalStartMiB: start.heapTotal / MiB,
    heapTotalEndMiB: end.heapTotal / MiB,
    samples,
    failures: records
      .filter((r) => r.outcome !== "ok")
      .map((r) => ({
        i: r.i,
        tool: r.tool,
        issuedMs: Math.round(r.issuedAt - t0),
        settledMs: r.settledAt === undefined ? undefined : Math.round(r.settledAt - t0),
        outcome: r.outcome ?? "pending",
        detail: r.detail
      })),
    warnings: warningCounts.tether + warningCounts.raw + warningCounts.none,
    warningKinds: warningCounts.byName,
    childrenLeft: 0,
    reconnects: reconnectCount,
    drainMs
  }
  await timeBox(close(), 5_000)
  return { ...result, childrenLeft: descendants().length }
}

// ---------------------------------------------------------------------------
// Orchestrator (main process): server, proxy, faults, two client processes
// ---------------------------------------------------------------------------

interface WorkerProc {
  readonly child: ChildProcess
  readonly ready: Promise<void>
  readonly result: Promise<unknown>
  readonly exited: Promise<void>
}

/** Spawns the bundled worker with params; it prints READY, waits for GO on stdin, prints RESULT. */
let workerCount = 0

export const spawnWorker = (params: unknown, timeoutMs: number): WorkerProc => {
  workerCount += 1
  const resultFile = join(BENCH_DIR, `worker-${process.pid}-${workerCount}.json`)
  rmSync(resultFile, { force: true })
  const child = track(
    spawn(process.execPath, [WORKER, JSON.stringify(params), resultFile], { stdio: ["pipe", "pipe", "pipe"] })
  )
  const exited = new Promise<void>((r) => child.once("exit", () => r()))
  let out = ""
  let err = ""
  let onReady: () => void = () => {}
  let failReady: (e: Error) => void = () => {}
  const ready = new Promise<void>((res, rej) => {
    onReady = res
    failReady = rej
  })
  const result = new Promise<unknown>((res, rej) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      rej(new Error(`worker timed out after ${timeoutMs} ms: ${err.slice(-500)}`))
    }, timeoutMs)
    child.stdout?.on("data", (c: Buffer) => {
      out += c.toString()
      if (out.includes("READY\n")) onReady()
      if (out.includes("RESULT\n")) {
        clearTimeout(timer)
        try {
          res(JSON.parse(readFileSync(resultFile, "utf8")))
        } catch (e) {
          rej(e instanceof Error ? e : new Error(String(e)))
        }
        rmSync(resultFile, { force: true })
      }
    })
    child.stderr?.on("data", (c: Buffer) => {
      err = (err + c.toString()).slice(-4_000)
    })
    child.once("exit", (code) => {
      clearTimeout(timer)
      const e = new Error(`worker exited (${code}) without a result: ${err.slice(-800)}`)
      failReady(e)
      rej(e)
    })
  })
  result.catch(() => {})
  ready.catch(() => {})
  return { child, ready, result, exited }
}

const countLog = (file: string): Map<string, number> => {
  const counts = new Map<string, number>()
  let text = ""
  try {
    text = readFileSync(file, "utf8")
  } catch {
    return counts
  }
  for (const line of text.split("\n")) {
    if (!line.startsWith("count ")) continue
    const id = line.slice(6)
    counts.set(id, (counts.get(id) ?? 0) + 1)
  }
  return counts
}

export const run = async (options: RunOptions): Promise<PartResult> => {
  const durationMs = options.quick ? 10_000 : 60_000
  const drainMs = options.quick ? 5_000 : 15_000
  const warmupMs = options.quick ? 2_000 : 10_000
  const dir = mkdtempSync(join(tmpdir(), "tether-bench-"))
  const log = join(dir, "events.log")
  const scope = Effect.runSync(Scope.make())
  const server = await startServer("http", { log })
  const faults: Array<{ atMs: number; fault: string; error?: string }> = []
  const workers: Array<WorkerProc> = []
  try {
    const proxy = await Effect.runPromise(FaultProxy.make({ target: server.port }).pipe(Scope.extend(scope)))
    const url = `http://127.0.0.1:${proxy.port}/mcp`
    const stamp = Date.now().toString(36)
    const timeout = warmupMs + durationMs + drainMs + 30_000
    const sides = ["tether", "raw"] as const
    for (const side of sides) {
      workers.push(
        spawnWorker(
          {
            role: "soak",
            side,
            url,
            durationMs,
            drainMs,
            warmupMs,
            idPrefix: `${side}-${stamp}`
          } satisfies SoakWorkerParams,
          timeout
        )
      )
    }
    await Promise.all(
      workers.map((w) =>
        timeBox(w.ready, 20_000 + warmupMs).then((b) => {
          if (!b.ok)
            throw b.settled ? b.error : new Error(`soak worker not ready within ${20 + warmupMs / 1000} s`)
        })
      )
    )
    say(`  ${durationMs / 1000} s at ${RATE} calls/s per side, a fault every ${FAULT_EVERY_MS / 1000} s…`)
    for (const w of workers) w.child.stdin?.write("GO\n")
    const t0 = now()
    for (let k = 0; FIRST_FAULT_MS + k * FAULT_EVERY_MS < durationMs && k < 100; k++) {
      const at = t0 + FIRST_FAULT_MS + k * FAULT_EVERY_MS
      await sleep(at - now())
      const fault = FAULTS[k % FAULTS.length]!
      const entry: { atMs: number; fault: string; error?: string } = { atMs: Math.round(now() - t0), fault }
      faults.push(entry)
      try {
        switch (fault) {
          case "kill+restart":
            await server.kill()
            await sleep(1_000)
            await server.start()
            break
          case "502 window":
            await Effect.runPromise(proxy.statusWindow({ status: 502, durationMs: 2_000 }))
            break
          case "pause (SIGSTOP)":
            server.pause()
            await sleep(2_000)
            server.resume()
            break
          case "reset":
            await Effect.runPromise(proxy.reset)
            break
        }
      } catch (e) {
        entry.error = errorText(e)
      }
    }
    const [tether, raw] = (await Promise.all(workers.map((w) => w.result))) as [
      SoakWorkerResult,
      SoakWorkerResult
    ]
    const counts = countLog(log)
    const sideSummary = (r: SoakWorkerResult) => {
      let duplicates = 0
      let failedButRan = 0
      let okButNotRun = 0
      for (const [id, outcome] of Object.entries(r.countOutcomes)) {
        const ran = counts.get(id) ?? 0
        if (ran > 1) duplicates += 1
        if (outcome !== "ok" && outcome !== "OutcomeUnknown" && outcome !== "pending" && ran > 0)
          failedButRan += 1
        if (outcome === "ok" && ran === 0) okButNotRun += 1
      }
      const mid = r.samples[1]
      return {
        rssGrowthSecondHalfMiB: mid === undefined ? Number.NaN : r.rssEndMiB - mid.rssMiB,
        idempotentSuccessPct: (r.echo.ok / Math.max(1, r.echo.issued)) * 100,
        duplicates,
        failedButRan,
        okButNotRun,
        rssGrowthMiB: r.rssEndMiB - r.rssStartMiB,
        rssGrowthFromColdMiB: r.rssEndMiB - r.rssColdMiB,
        heapGrowthMiB: r.heapEndMiB - r.heapStartMiB
      }
    }
    const ts = sideSummary(tether)
    const rs = sideSummary(raw)
    await timeBox(Promise.all(workers.map((w) => w.exited)), 5_000)
    await server.kill()
    await timeBox(Effect.runPromise(Scope.close(scope, Exit.void)), 5_000)
    const left = [...descendantsMatching(log), ...descendantsMatching('"role":"soak"')]
    const tables: Array<TableSpec> = []
    const fails = (f: Record<string, number>) =>
      Object.entries(f)
        .sort((a, b) => b[1] - a[1])
        .slice(0, 3)
        .map(([k, v]) => `${v}× ${k.slice(0, 40)}`)
        .join("; ")
    const row = (name: string, r: SoakWorkerResult, s: ReturnType<typeof sideSummary>) => [
      name,
      `${fmt(s.idempotentSuccessPct, 2)} % (${r.echo.ok}/${r.echo.issued})`,
      String(r.count.ok),
      String(r.count.outcomeUnknown),
      String(Object.values(r.count.failures).reduce((a, b) => a + b, 0)),
      String(s.duplicates),
      String(s.failedButRan),
      `${r.pendingAtEnd}${r.pendingCallsStat !== undefined ? ` (stats ${r.pendingCallsStat})` : ""}`,
      String(r.childrenLeft),
      fmt(s.rssGrowthMiB, 1),
      fmt(s.rssGrowthSecondHalfMiB, 1),
      `${fmt(s.rssGrowthFromColdMiB, 1)} (new space ${fmt(r.newSpaceColdMiB, 1)} → ${fmt(r.newSpaceEndMiB, 1)})`,
      fmt(s.heapGrowthMiB, 1),
      String(r.warnings)
    ]
    printTable(
      tables,
      `Part 4 — chaos soak: ${durationMs / 1000} s, ${RATE} calls/s per side, HTTP via fault proxy, faults: ${faults.map((f) => `${(f.atMs / 1000).toFixed(1)}s ${f.fault}`).join(", ")}`,
      [
        "side",
        "idempotent ok",
        "count ok",
        "OutcomeUnknown",
        "count other err",
        "duplicates",
        "failed-but-ran",
        "pending at end",
        "children left",
        "RSS growth MiB",
        "2nd half MiB",
        "from cold MiB",
        "heap growth MiB",
        "warnings"
      ],
      [row("Tether", tether, ts), row("raw SDK", raw, rs)]
    )
    say(`  Tether echo failures: ${fails(tether.echo.failures) || "none"}`)
    say(`  Tether count failures: ${fails(tether.count.failures) || "none"}`)
    say(`  raw echo failures: ${fails(raw.echo.failures) || "none"}`)
    say(`  raw count failures: ${fails(raw.count.failures) || "none"}`)
    say(`  soak processes left after teardown (server, workers): ${left.length}`)
    for (const [name, r] of [
      ["Tether", tether],
      ["raw", raw]
    ] as const) {
      // Non-ok calls grouped by outcome and by the fault window they were issued in.
      const byFault = new Map<string, number>()
      for (const f of r.failures) {
        const fault = [...faults].reverse().find((x) => x.atMs <= f.issuedMs)
        const key = `${f.tool} ${f.outcome}${f.detail !== undefined && f.outcome === "OutcomeUnknown" ? ` (${f.detail.slice(0, 50)})` : ""} — issued after ${fault === undefined ? "start" : `${fault.fault} @${(fault.atMs / 1000).toFixed(1)}s`}`
        byFault.set(key, (byFault.get(key) ?? 0) + 1)
      }
      for (const [k, v] of [...byFault].sort((a, b) => b[1] - a[1]).slice(0, 8))
        say(`  ${name} non-ok: ${v}× ${k}`)
    }
    for (const [name, r] of [
      ["Tether", tether],
      ["raw", raw]
    ] as const) {
      say(
        `  ${name} memory after GC (MiB): cold rss ${fmt(r.rssColdMiB, 1)} heap ${fmt(r.heapColdMiB, 1)}; start rss ${fmt(r.rssStartMiB, 1)} heap ${fmt(r.heapStartMiB, 1)}/${fmt(r.heapTotalStartMiB, 1)}; ` +
          r.samples
            .map(
              (x) =>
                `${(x.atMs / 1000).toFixed(0)} s rss ${fmt(x.rssMiB, 1)} heap ${fmt(x.heapUsedMiB, 1)}/${fmt(x.heapTotalMiB, 1)}`
            )
            .join("; ") +
          `; end rss ${fmt(r.rssEndMiB, 1)} heap ${fmt(r.heapEndMiB, 1)}/${fmt(r.heapTotalEndMiB, 1)} (used/total)`
      )
    }
    const notes = [
      `Each side is its own process (bundled worker). Memory is read after a full GC: 'cold' after 25 calls, 'start' after a further ${warmupMs / 1000} s warm-up at ${RATE} echo calls/s without faults, 'end' after the drain. RSS growth = end − start (the target); '2nd half' = end − the sample at 50 % of the window (a leak keeps growing there); 'from cold' = end − cold, which also holds V8's one-time sizing of its young generation to the allocation rate (new space before → after, MiB).`,
      `After the window, calls get up to ${drainMs / 1000} s to settle; 'pending at end' counts calls still unsettled then (Tether also reports stats.pendingCalls).`,
      "duplicates: count ids the server ran twice (from the fixture's --log); failed-but-ran: count calls reported as a plain failure (not OutcomeUnknown) although the server ran them.",
      "Default Tether policy; raw client: SDK StreamableHTTPClientTransport with default options."
    ]
    for (const n of notes) say(`  note: ${n}`)
    const targets: Array<Target> = [
      {
        part: "4",
        name: "idempotent success",
        target: "100 %",
        value: `${fmt(ts.idempotentSuccessPct, 2)} % (raw ${fmt(rs.idempotentSuccessPct, 2)} %)`,
        met: tether.echo.ok === tether.echo.issued
      },
      {
        part: "4",
        name: "non-idempotent duplicates",
        target: "0",
        value: `${ts.duplicates} (ok ${tether.count.ok}, OutcomeUnknown ${tether.count.outcomeUnknown}; raw duplicates ${rs.duplicates})`,
        met: ts.duplicates === 0
      },
      {
        part: "4",
        name: "calls pending at end",
        target: "0",
        value: `${tether.pendingAtEnd} (stats.pendingCalls ${tether.pendingCallsStat}; raw ${raw.pendingAtEnd})`,
        met: tether.pendingAtEnd === 0 && tether.pendingCallsStat === 0
      },
      {
        part: "4",
        name: "child processes left",
        target: "0",
        value: `${tether.childrenLeft} in the Tether client, ${left.length} soak processes after teardown`,
        met: tether.childrenLeft === 0 && left.length === 0
      },
      {
        part: "4",
        name: "RSS growth over the soak (after a warm-up at the same rate)",
        target: "< 20 MB",
        value: `${fmt((ts.rssGrowthMiB * MiB) / 1e6, 1)} MB = ${fmt(ts.rssGrowthMiB, 1)} MiB (raw ${fmt((rs.rssGrowthMiB * MiB) / 1e6, 1)} MB); 2nd half ${fmt(ts.rssGrowthSecondHalfMiB, 1)} MiB; JS heap used ${ts.heapGrowthMiB >= 0 ? "+" : ""}${fmt(ts.heapGrowthMiB, 1)} MiB; from cold ${fmt(ts.rssGrowthFromColdMiB, 1)} MiB (raw ${fmt(rs.rssGrowthFromColdMiB, 1)} MiB)`,
        met: ts.rssGrowthMiB * MiB < 20_000_000
      }
    ]
    return {
      data: {
        durationMs,
        rate: RATE,
        drainMs,
        faults,
        tether: { ...tether, ...ts },
        raw: { ...raw, ...rs },
        childrenLeftAfterTeardown: left.length
      },
      targets,
      tables,
      notes
    }
  } finally {
    for (const w of workers) if (w.child.exitCode === null) w.child.kill("SIGKILL")
    await server.kill()
    await timeBox(Effect.runPromise(Scope.close(scope, Exit.void)), 5_000)
    rmSync(dir, { recursive: true, force: true })
  }
}
