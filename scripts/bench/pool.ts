/**
 * Part 6 — pool: 10,000 distinct tenants (500 with --quick) through one `McpPool` with
 * idle eviction. One fixture WebSocket server; the pool has one server `s` whose headers
 * hold `${tenant.id}`, so every tenant gets its own connection. The pool runs in a fresh
 * worker process (its memory is its own). Tenants go through
 * `forTenant({ id }).callTool("s", "echo", …)` CONCURRENCY at a time; a call failing with
 * `Overloaded` (the pool is at `maxConnections`) is retried after a short sleep and
 * counted. `pool.statusAll` (open tenant connections) is sampled every few milliseconds;
 * heap and RSS after a full GC at every tenth of the run and after a final idle wait.
 */
import { Duration, Effect, Either, Exit, Scope } from "effect"
import * as McpPool from "../../src/McpPool.js"
import * as ServerSpec from "../../src/ServerSpec.js"
import {
  echoText,
  errorText,
  fmt,
  fullGc,
  installWarningCounter,
  memory,
  MiB,
  now,
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

const CONCURRENCY = 50
const MAX_CONNECTIONS = 200
const IDLE_TTL_MS = 2_000
const OVERLOADED_SLEEP_MS = 20
const SAMPLE_EVERY_MS = 10
/** Flat: heap used may grow at most this much per tenant served in the second half. */
const FLAT_BYTES_PER_TENANT = 1024

export interface PoolWorkerParams {
  readonly role: "pool"
  readonly url: string
  readonly tenants: number
  /** Stop starting new tenants after this long (the count bound is `tenants`). */
  readonly timeLimitMs: number
}

export interface MemorySample {
  readonly label: string
  readonly tenantsDone: number
  readonly atMs: number
  readonly heapUsedMiB: number
  readonly heapTotalMiB: number
  readonly rssMiB: number
  readonly openTenantConnections: number
}

export interface PoolWorkerResult {
  readonly tenants: number
  readonly started: number
  readonly ok: number
  readonly failed: number
  readonly overloadedRetries: number
  readonly tenantsOverloaded: number
  readonly maxOpen: number
  readonly statusSamples: number
  readonly openAfterIdle: number
  readonly driveMs: number
  readonly totalMs: number
  readonly callP50Ms: number
  readonly callP99Ms: number
  readonly memory: Array<MemorySample>
  readonly warnings: number
  readonly errors: Array<string>
  readonly timedOut: boolean
}

const percentileOf = (xs: Array<number>, p: number) => {
  if (xs.length === 0) return Number.NaN
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!
}

export const worker = async (p: PoolWorkerParams): Promise<PoolWorkerResult> => {
  installWarningCounter()
  const t0 = now()
  const errors: Array<string> = []
  const spec = Either.getOrThrow(
    ServerSpec.decodeEither({ type: "websocket", url: p.url, headers: { "x-tenant": "${tenant.id}" } })
  )
  const scope = Effect.runSync(Scope.make())
  const pool = await Effect.runPromise(
    McpPool.make({
      servers: [{ name: "s", spec }],
      maxConnections: MAX_CONNECTIONS,
      idleTimeToLive: Duration.millis(IDLE_TTL_MS)
    }).pipe(Scope.extend(scope))
  )
  const openTenants = () =>
    Effect.runPromise(Effect.map(pool.statusAll, (all) => all.filter((s) => s.tenant !== undefined).length))

  let maxOpen = 0
  let statusSamples = 0
  let sampling = true
  const sampler = (async () => {
    while (sampling) {
      const n = await openTenants()
      statusSamples += 1
      if (n > maxOpen) maxOpen = n
      await sleep(SAMPLE_EVERY_MS)
    }
  })()

  const samples: Array<MemorySample> = []
  const sample = async (label: string, tenantsDone: number) => {
    await fullGc()
    const m = memory()
    const open = await openTenants()
    if (open > maxOpen) maxOpen = open
    samples.push({
      label,
      tenantsDone,
      atMs: now() - t0,
      heapUsedMiB: m.heapUsed / MiB,
      heapTotalMiB: m.heapTotal / MiB,
      rssMiB: m.rss / MiB,
      openTenantConnections: open
    })
  }
  await sample("start", 0)

  const milestones = new Set(Array.from({ length: 10 }, (_, i) => Math.round(((i + 1) * p.tenants) / 10)))
  let next = 0
  let done = 0
  let ok = 0
  let failed = 0
  let overloadedRetries = 0
  let tenantsOverloaded = 0
  let timedOut = false
  const latencies: Array<number> = []
  const driveStart = now()
  const deadline = driveStart + p.timeLimitMs
  const lane = async () => {
    while (next < p.tenants) {
      if (now() > deadline) {
        timedOut = true
        return
      }
      const i = next++
      const id = `tenant-${i}`
      const calls = pool.forTenant({ id })
      let overloaded = false
      const c0 = now()
      for (;;) {
        const r = await Effect.runPromise(
          Effect.either(calls.callTool("s", "echo", { text: id }, { timeout: 30_000 }))
        )
        if (Either.isRight(r)) {
          if (echoText(r.right) === id) ok += 1
          else {
            failed += 1
            if (errors.length < 5) errors.push(`${id}: wrong answer`)
          }
          break
        }
        if (r.left._tag === "Overloaded" && now() < deadline) {
          overloadedRetries += 1
          overloaded = true
          await sleep(OVERLOADED_SLEEP_MS)
          continue
        }
        failed += 1
        if (errors.length < 5) errors.push(`${id}: ${errorText(r.left)}`)
        break
      }
      latencies.push(now() - c0)
      if (overloaded) tenantsOverloaded += 1
      done += 1
      if (milestones.has(done)) await sample(`${Math.round((done / p.tenants) * 100)} %`, done)
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, lane))
  const driveMs = now() - driveStart
  if (!milestones.has(done)) await sample(`stopped at ${done}`, done)

  // Idle wait: every tenant connection should be evicted after idleTimeToLive.
  const idleUntil = now() + 5_000
  while (now() < idleUntil && (await openTenants()) > 0) await sleep(50)
  await sleep(100)
  const openAfterIdle = await openTenants()
  await sample("after idle wait", done)
  sampling = false
  await sampler

  await timeBox(Effect.runPromise(Scope.close(scope, Exit.void)), 10_000)
  return {
    tenants: p.tenants,
    started: next,
    ok,
    failed,
    overloadedRetries,
    tenantsOverloaded,
    maxOpen,
    statusSamples,
    openAfterIdle,
    driveMs,
    totalMs: now() - t0,
    callP50Ms: percentileOf(latencies, 50),
    callP99Ms: percentileOf(latencies, 99),
    memory: samples,
    warnings: warningCounts.tether + warningCounts.raw + warningCounts.none,
    errors,
    timedOut
  }
}

export const run = async (options: RunOptions): Promise<PartResult> => {
  // --quick: 500 tenants (1,000 pushed the whole --quick run past 60 s).
  const tenants = options.quick ? 500 : 10_000
  const timeLimitMs = options.quick ? 30_000 : 300_000
  const server = await startServer("ws")
  const url = `ws://127.0.0.1:${server.port}/`
  let result: PoolWorkerResult | undefined
  let error: string | undefined
  try {
    say(
      `  ${tenants} tenants, ${CONCURRENCY} at a time, maxConnections ${MAX_CONNECTIONS}, idleTimeToLive ${IDLE_TTL_MS} ms…`
    )
    const w = spawnWorker(
      { role: "pool", url, tenants, timeLimitMs } satisfies PoolWorkerParams,
      timeLimitMs + 60_000
    )
    try {
      result = (await w.result) as PoolWorkerResult
    } catch (e) {
      error = errorText(e)
      say(`  pool worker failed: ${error}`)
    }
    await timeBox(w.exited, 5_000)
  } finally {
    await server.kill()
  }
  const tables: Array<TableSpec> = []
  if (result === undefined) {
    return {
      data: { tenants, error },
      targets: [
        {
          part: "6",
          name: "pool: open connections ≤ max",
          target: `≤ ${MAX_CONNECTIONS}`,
          value: "–",
          met: false,
          note: error ?? "?"
        },
        { part: "6", name: "pool: memory flat", target: "flat", value: "–", met: false, note: error ?? "?" }
      ],
      tables,
      notes: [`failed: ${error ?? "?"}`]
    }
  }
  const r = result
  printTable(
    tables,
    `Part 6 — pool: ${fmt(tenants, 0)} tenants, ${CONCURRENCY} at a time, maxConnections ${MAX_CONNECTIONS}, idleTimeToLive ${IDLE_TTL_MS} ms`,
    [
      "tenants ok",
      "failed",
      "max open",
      "open after idle",
      "Overloaded retries",
      "tenants retried",
      "drive s",
      "tenants/s",
      "call p50 ms",
      "call p99 ms",
      "warnings"
    ],
    [
      [
        `${fmt(r.ok, 0)}/${fmt(tenants, 0)}`,
        String(r.failed),
        String(r.maxOpen),
        String(r.openAfterIdle),
        fmt(r.overloadedRetries, 0),
        fmt(r.tenantsOverloaded, 0),
        fmt(r.driveMs / 1000, 1),
        fmt((r.ok + r.failed) / (r.driveMs / 1000), 0),
        fmt(r.callP50Ms, 1),
        fmt(r.callP99Ms, 1),
        String(r.warnings)
      ]
    ]
  )
  const pick = (label: string) => r.memory.find((m) => m.label === label)
  const shown = ["start", "10 %", "50 %", "100 %", "after idle wait"]
  const rows = r.memory.filter((m) => shown.includes(m.label) || m.label.startsWith("stopped"))
  printTable(
    tables,
    "Part 6 — pool memory after a full GC (MiB)",
    ["at", "tenants done", "s", "open", "heap used", "heap total", "RSS"],
    rows.map((m) => [
      m.label,
      fmt(m.tenantsDone, 0),
      fmt(m.atMs / 1000, 1),
      String(m.openTenantConnections),
      fmt(m.heapUsedMiB, 1),
      fmt(m.heapTotalMiB, 1),
      fmt(m.rssMiB, 1)
    ])
  )
  for (const e of r.errors) say(`  error: ${e}`)
  const half = pick("50 %")
  const full = pick("100 %")
  const idle = pick("after idle wait")
  const secondHalfTenants = full !== undefined && half !== undefined ? full.tenantsDone - half.tenantsDone : 0
  const heapGrowth =
    full !== undefined && half !== undefined ? full.heapUsedMiB - half.heapUsedMiB : Number.NaN
  const rssGrowth = full !== undefined && half !== undefined ? full.rssMiB - half.rssMiB : Number.NaN
  const idleGrowth =
    idle !== undefined && half !== undefined ? idle.heapUsedMiB - half.heapUsedMiB : Number.NaN
  const limitMiB = (secondHalfTenants * FLAT_BYTES_PER_TENANT) / MiB
  const flat = Number.isFinite(heapGrowth) && heapGrowth < limitMiB && idleGrowth < limitMiB
  const notes = [
    `One fixture WebSocket server; the pool's one server has headers { "x-tenant": "\${tenant.id}" }, so each tenant gets its own connection (connect + initialize + tools/list). The pool runs in a fresh worker process.`,
    `A call failing with Overloaded (the pool at maxConnections) sleeps ${OVERLOADED_SLEEP_MS} ms and retries. pool.statusAll is sampled every ~${SAMPLE_EVERY_MS} ms (${fmt(r.statusSamples, 0)} samples) and at every memory sample; "max open" is the largest count of open tenant connections seen.`,
    `Memory flat: heap used may grow at most ${FLAT_BYTES_PER_TENANT} B per tenant over the second half (50 % → 100 %) and from 50 % to after the idle wait.`,
    `Total ${fmt(r.totalMs / 1000, 1)} s in the worker (drive ${fmt(r.driveMs / 1000, 1)} s).${r.timedOut ? " Stopped by the time limit." : ""}`
  ]
  for (const note of notes) say(`  note: ${note}`)
  const targets: Array<Target> = [
    {
      part: "6",
      name: "pool: open connections ≤ max",
      target: `≤ ${MAX_CONNECTIONS}`,
      value: `max ${r.maxOpen} open; ${fmt(r.ok, 0)}/${fmt(tenants, 0)} tenants ok; ${r.openAfterIdle} open after idle`,
      met: r.maxOpen <= MAX_CONNECTIONS && r.ok === tenants && r.openAfterIdle === 0
    },
    {
      part: "6",
      name: "pool: memory flat",
      target: `2nd-half heap growth < ${fmt(limitMiB, 1)} MiB`,
      value: `heap used ${[pick("10 %"), half, full, idle].map((m) => fmt(m?.heapUsedMiB, 1)).join(" / ")} MiB, RSS ${[pick("10 %"), half, full, idle].map((m) => fmt(m?.rssMiB, 1)).join(" / ")} MiB (10 % / 50 % / 100 % / idle); 2nd half heap ${heapGrowth >= 0 ? "+" : ""}${fmt(heapGrowth, 1)}, RSS ${rssGrowth >= 0 ? "+" : ""}${fmt(rssGrowth, 1)} MiB`,
      met: flat
    }
  ]
  return {
    data: {
      tenants,
      concurrency: CONCURRENCY,
      maxConnections: MAX_CONNECTIONS,
      idleTimeToLiveMs: IDLE_TTL_MS,
      result: r
    },
    targets,
    tables,
    notes
  }
}
