/**
 * `npm run bench [-- --quick] [-- --only 1,3]`: Tether side by side with the raw MCP SDK.
 *
 * 1. overhead   — tools/call echo: calls/s, p50, p99, 32-way calls/s, warnings
 * 2. recovery   — server killed, restarted after 1 s: READY → first successful call
 * 3. dead link  — server SIGSTOPped: time until Tether leaves Ready; a raw call in flight
 * 4. chaos soak — HTTP behind a fault proxy, a fault every 5 s, 50 calls/s per side
 * 5. scale      — N WebSocket connections in one process: memory per connection, connect-all
 * 6. pool       — 10,000 tenants through McpPool with idle eviction: open ≤ max, memory flat
 * 7. config     — Config.parse of 10,000 and 40,000 servers: linear time
 * 8. cli        — `tether --help` start time (× `node -e 0`) and peak RSS; a `tether call` one-shot
 * 9. proxy      — `tether proxy`: added latency vs direct (stdio); 100 sessions × 10 calls, memory/session
 *
 * Every server is a real child process on 127.0.0.1; every child is killed at the end,
 * on Ctrl-C and on errors. Results go to `.bench/results.json` (git-ignored).
 */
import { build, stop as stopEsbuild } from "esbuild"
import { createHash } from "node:crypto"
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { cpus, freemem, loadavg, totalmem } from "node:os"
import { join } from "node:path"
import { parseArgs } from "node:util"
import {
  BENCH_DIR,
  closeAllTether,
  descendants,
  describePids,
  errorText,
  FIXTURE,
  installWarningCounter,
  killAllChildren,
  markdownTable,
  type PartResult,
  type RunOptions,
  say,
  targetLine,
  WORKER,
  warningCounts
} from "./common.js"
import * as cli from "./cli.js"
import * as config from "./config.js"
import * as deadlink from "./deadlink.js"
import * as overhead from "./overhead.js"
import * as pool from "./pool.js"
import * as proxy from "./proxy.js"
import * as recovery from "./recovery.js"
import * as scale from "./scale.js"
import * as soak from "./soak.js"

const { values } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    only: { type: "string" }
  },
  strict: false
})
const options: RunOptions = { quick: values.quick === true }
const only =
  typeof values.only === "string" ? new Set(values.only.split(",").map((s) => s.trim())) : undefined

const parts: Array<{ id: string; name: string; run: (o: RunOptions) => Promise<PartResult> }> = [
  { id: "1", name: "overhead", run: overhead.run },
  { id: "2", name: "recovery", run: recovery.run },
  { id: "3", name: "deadlink", run: deadlink.run },
  { id: "4", name: "soak", run: soak.run },
  { id: "5", name: "scale", run: scale.run },
  { id: "6", name: "pool", run: pool.run },
  { id: "7", name: "config", run: config.run },
  { id: "8", name: "cli", run: cli.run },
  { id: "9", name: "proxy", run: proxy.run }
]

const version = (pkg: string): string => {
  try {
    return (
      JSON.parse(readFileSync(join("node_modules", pkg, "package.json"), "utf8")) as { version: string }
    ).version
  } catch {
    return "?"
  }
}

/** The commit checked out (read from .git without running git) and a hash of src/ as it is now. */
const sourceState = () => {
  let commit = "?"
  try {
    const head = readFileSync(".git/HEAD", "utf8").trim()
    if (head.startsWith("ref: ")) {
      const ref = head.slice(5)
      try {
        commit = readFileSync(join(".git", ref), "utf8").trim()
      } catch {
        const packed = readFileSync(".git/packed-refs", "utf8")
        commit =
          packed
            .split("\n")
            .find((l) => l.endsWith(` ${ref}`))
            ?.split(" ")[0] ?? "?"
      }
    } else commit = head
  } catch {
    // not a git checkout
  }
  const hash = createHash("sha256")
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) =>
      a.name.localeCompare(b.name)
    )) {
      const path = join(dir, entry.name)
      if (entry.isDirectory()) walk(path)
      else if (entry.name.endsWith(".ts")) hash.update(path).update(readFileSync(path))
    }
  }
  walk("src")
  return { commit, srcSha256: hash.digest("hex").slice(0, 16) }
}

const startedAt = new Date()
const t0 = performance.now()
const results: Record<string, unknown> = {
  meta: {
    startedAt: startedAt.toISOString(),
    quick: options.quick,
    argv: process.argv.slice(2),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    nproc: cpus().length,
    cpu: cpus()[0]?.model,
    memoryTotalMiB: Math.round(totalmem() / 1024 / 1024),
    memoryFreeMiB: Math.round(freemem() / 1024 / 1024),
    loadAverageAtStart: loadavg(),
    source: sourceState(),
    versions: {
      tether: (JSON.parse(readFileSync("package.json", "utf8")) as { version: string }).version,
      sdk: version("@modelcontextprotocol/sdk"),
      effect: version("effect"),
      ws: version("ws"),
      tsx: version("tsx"),
      esbuild: version("esbuild")
    }
  },
  parts: {}
}
const partResults = results.parts as Record<string, unknown>
const allTargets: Array<PartResult["targets"][number]> = []
const leftAfterPart: Record<string, Array<string>> = {}

const writeResults = (status: string) => {
  try {
    mkdirSync(BENCH_DIR, { recursive: true })
    results.status = status
    results.durationSec = Math.round((performance.now() - t0) / 100) / 10
    results.warnings = warningCounts
    results.targets = allTargets
    results.childrenAliveAfterPart = leftAfterPart
    const text = `${JSON.stringify(results, null, 2)}\n`
    writeFileSync(join(BENCH_DIR, "results.json"), text)
    // results.json is the last run; each run also keeps its own copy.
    writeFileSync(join(BENCH_DIR, `results-${startedAt.toISOString().replace(/[:.]/g, "-")}.json`), text)
  } catch (e) {
    process.stderr.write(`could not write results: ${errorText(e)}\n`)
  }
}

/** The same tables as GitHub markdown (`.bench/results.md`), to paste into BENCHMARKS.md. */
const writeMarkdown = () => {
  const lines: Array<string> = [
    `# Bench results ${startedAt.toISOString()}${options.quick ? " (--quick)" : ""}`,
    ""
  ]
  for (const [name, part] of Object.entries(partResults)) {
    const p = part as Partial<PartResult> & { seconds?: number; error?: string; skipped?: string }
    lines.push(`## ${name}${p.seconds !== undefined ? ` (${p.seconds} s)` : ""}`, "")
    if (p.error !== undefined) lines.push(`failed: ${p.error}`, "")
    if (p.skipped !== undefined) lines.push(`skipped: ${p.skipped}`, "")
    for (const t of p.tables ?? []) lines.push(`**${t.title}**`, "", markdownTable(t.headers, t.rows), "")
    for (const n of p.notes ?? []) lines.push(`- ${n}`)
    lines.push("")
  }
  lines.push("## Targets", "")
  lines.push(
    markdownTable(
      ["part", "target", "goal", "value", "met"],
      allTargets.map((t) => [
        t.part,
        t.name,
        t.target,
        t.value + (t.note !== undefined ? ` (${t.note})` : ""),
        t.met === undefined ? "n/a" : t.met ? "met" : "**missed**"
      ])
    ),
    ""
  )
  writeFileSync(join(BENCH_DIR, "results.md"), `${lines.join("\n")}\n`)
}

let exiting = false
const abort = (why: string, code: number) => {
  if (exiting) return
  exiting = true
  process.stderr.write(`\nbench: ${why}; killing every child process\n`)
  killAllChildren()
  writeResults(`aborted: ${why}`)
  process.exit(code)
}
process.on("SIGINT", () => abort("interrupted (SIGINT)", 130))
process.on("SIGTERM", () => abort("terminated (SIGTERM)", 143))
process.on("SIGHUP", () => abort("hung up (SIGHUP)", 129))
process.on("uncaughtException", (e) => abort(`uncaught exception: ${e.stack ?? String(e)}`, 1))
let strayRejections = 0
process.on("unhandledRejection", (e) => {
  // A raw SDK promise we already stopped waiting for (time-boxed) may reject later.
  strayRejections += 1
  if (strayRejections <= 3) process.stderr.write(`(stray rejection, ignored: ${errorText(e)})\n`)
})
process.on("exit", () => killAllChildren())

const main = async () => {
  installWarningCounter()
  mkdirSync(BENCH_DIR, { recursive: true })
  // Self-contained bundles (dependencies inlined and tree-shaken): a fixture restart or a
  // worker start costs a third of what resolving hundreds of ESM files from node_modules does.
  const common = {
    bundle: true,
    platform: "node" as const,
    format: "esm" as const,
    logLevel: "warning" as const,
    banner: {
      js: "import { createRequire as __benchRequire } from 'node:module'; const require = __benchRequire(import.meta.url);"
    }
  }
  await build({ ...common, entryPoints: ["scripts/fixture-server.ts"], outfile: FIXTURE })
  await build({ ...common, entryPoints: ["scripts/bench/worker.ts"], outfile: WORKER })
  // esbuild keeps a service process alive; stop it so the leftover-process checks see only ours.
  await stopEsbuild()
  const meta = results.meta as Record<string, unknown>
  say(
    `Tether bench${options.quick ? " (--quick)" : ""}: node ${process.version}, ${meta.nproc} CPUs (${String(meta.cpu)}), ${String(meta.memoryTotalMiB)} MiB RAM`
  )
  say(`versions: ${JSON.stringify(meta.versions)}`)
  // Every part runs alone: running part 3 during part 4's soak saved 6 s under --quick but
  // pushed heartbeat detection past its bound by CPU contention alone.
  const groups: Array<Array<(typeof parts)[number]>> = parts.map((p) => [p])
  const runPart = async (part: (typeof parts)[number]) => {
    const started = performance.now()
    const load = loadavg()[0]!
    say(`\n=== Part ${part.id}: ${part.name} (load average ${load.toFixed(2)}) ===`)
    try {
      const r = await part.run(options)
      partResults[part.name] = {
        ...r,
        seconds: Math.round((performance.now() - started) / 100) / 10,
        loadAverage: { start: load, end: loadavg()[0] }
      }
      allTargets.push(...r.targets)
    } catch (e) {
      say(`  part ${part.id} failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`)
      partResults[part.name] = { error: errorText(e) }
    }
    say(
      `  (part ${part.id}: ${((performance.now() - started) / 1000).toFixed(1)} s, load average ${loadavg()[0]!.toFixed(2)})`
    )
  }
  for (const group of groups) {
    const selected = group.filter((part) => only === undefined || only.has(part.id) || only.has(part.name))
    if (selected.length === 0) continue
    if (selected.length > 1)
      say(`\n(--quick: parts ${selected.map((p) => p.id).join(" and ")} run at the same time)`)
    await Promise.all(selected.map(runPart))
    await closeAllTether()
    const leftover = descendants()
    const name = selected.map((p) => p.name).join("+")
    if (leftover.length > 0) {
      say(`  child processes alive after ${name}: ${describePids(leftover).join("; ")}`)
      leftAfterPart[name] = describePids(leftover)
    }
    writeResults("running")
  }
  await closeAllTether()
  // Whatever a part left running is a leak: count it before killing it.
  const left = descendants()
  const leftDescribed = describePids(left)
  killAllChildren()
  say("\n=== Targets ===")
  for (const t of allTargets) say(targetLine(t))
  say(
    `\nwarnings: tether ${warningCounts.tether}, raw ${warningCounts.raw}, outside blocks ${warningCounts.none}`
  )
  if (left.length > 0) say(`child processes still alive at the end: ${leftDescribed.join("; ")}`)
  results.childrenLeftAtEnd = leftDescribed
  writeResults("done")
  writeMarkdown()
  say(`\nresults: .bench/results.json (${((performance.now() - t0) / 1000).toFixed(1)} s)`)
}

main().then(
  () => process.exit(0),
  (e: unknown) => abort(`error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`, 1)
)
