/**
 * Part 8 — CLI start: `tether --help` (bin/tether.js → the esbuild bundle, plain Node) against
 * `node -e 0`, runs interleaved on the same machine, median of 5; the peak RSS of one run of
 * each; a `tether call` one-shot against the stdio fixture. The full run also times the old way
 * (the TypeScript sources through tsx) for comparison. Every run is a real child process.
 */
import { spawnSync } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import {
  FIXTURE,
  fmt,
  median,
  type PartResult,
  printTable,
  type RunOptions,
  type TableSpec,
  type Target
} from "./common.js"

/** Prints the process's peak RSS (KiB) on stderr as it exits. */
const RSS_PROBE =
  'data:text/javascript,process.on("exit",()=>process.stderr.write(`\\nmaxrss=${process.resourceUsage().maxRSS}\\n`))'

interface Timed {
  readonly ms: number
  readonly status: number | null
  readonly stdout: string
  readonly stderr: string
}

const time = (args: ReadonlyArray<string>, timeoutMs = 60_000): Timed => {
  const start = performance.now()
  const r = spawnSync(process.execPath, args, { encoding: "utf8", timeout: timeoutMs, killSignal: "SIGKILL" })
  return { ms: performance.now() - start, status: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "" }
}

const peakRssMB = (args: ReadonlyArray<string>): number => {
  const r = time(["--import", RSS_PROBE, ...args])
  const match = /maxrss=(\d+)/.exec(r.stderr)
  if (match === null) throw new Error(`no RSS reported by node ${args.join(" ")}: ${r.stderr.slice(-500)}`)
  return (Number(match[1]) * 1024) / 1e6
}

const ok = (what: string, r: Timed): Timed => {
  if (r.status !== 0) throw new Error(`${what} exited ${r.status}: ${r.stderr.slice(-500)}`)
  return r
}

export const run = async (options: RunOptions): Promise<PartResult> => {
  // The bundle as `npm run build` makes it (bin/tether.js would rebuild a stale one itself,
  // but that build must not be timed).
  ok("build:cli", time(["scripts/build.mjs", "--cli"], 300_000))
  const rounds = 5
  const variants: Array<{ readonly name: string; readonly args: ReadonlyArray<string> }> = [
    { name: "node -e 0", args: ["-e", "0"] },
    { name: "tether --help (bundle)", args: ["bin/tether.js", "--help"] },
    ...(options.quick
      ? []
      : [{ name: "tether --help (tsx, before)", args: ["--import", "tsx", "src/cli/main.ts", "--help"] }])
  ]
  for (const v of variants) ok(`${v.name} (warm-up)`, time(v.args))
  const samples = new Map<string, Array<number>>(variants.map((v) => [v.name, []]))
  let help = ""
  for (let i = 0; i < rounds; i++) {
    for (const v of variants) {
      const r = ok(v.name, time(v.args))
      samples.get(v.name)!.push(r.ms)
      if (v.name === "tether --help (bundle)") help = r.stdout
    }
  }
  const rss = new Map(variants.map((v) => [v.name, peakRssMB(v.args)]))

  // A one-shot call: config, pool, one stdio server, one tool call, exit.
  const dir = mkdtempSync(join(tmpdir(), "tether-bench-cli-"))
  const config = join(dir, "mcp.json")
  writeFileSync(
    config,
    JSON.stringify({
      mcpServers: { fixture: { command: process.execPath, args: [FIXTURE, "--transport", "stdio"] } }
    })
  )
  const callArgs = ["bin/tether.js", "call", "fixture", "echo", "--args", '{"text":"hi"}', "--config", config]
  const calls: Array<number> = []
  try {
    for (let i = 0; i < 3; i++) {
      const r = ok("tether call", time(callArgs))
      if (r.stdout.trim() !== "hi") throw new Error(`tether call printed ${JSON.stringify(r.stdout)}`)
      calls.push(r.ms)
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  const callRss = peakRssMB(callArgs)

  const medians = new Map([...samples].map(([name, xs]) => [name, median(xs)]))
  const base = medians.get("node -e 0")!
  const helpMs = medians.get("tether --help (bundle)")!
  const helpRss = rss.get("tether --help (bundle)")!
  const ratio = helpMs / base
  const ansi = help.includes("\u001b")
  const tables: Array<TableSpec> = []
  printTable(
    tables,
    `Part 8 — CLI start (median of ${rounds}, interleaved; peak RSS of one run)`,
    ["command", "median ms", "× node -e 0", "runs ms", "peak RSS MB"],
    [
      ...variants.map((v) => [
        v.name,
        fmt(medians.get(v.name)!, 0),
        fmt(medians.get(v.name)! / base, 1),
        samples
          .get(v.name)!
          .map((x) => fmt(x, 0))
          .join(" "),
        fmt(rss.get(v.name)!, 0)
      ]),
      [
        "tether call fixture echo (stdio)",
        fmt(median(calls), 0),
        fmt(median(calls) / base, 1),
        calls.map((x) => fmt(x, 0)).join(" "),
        fmt(callRss, 0)
      ]
    ]
  )
  const targets: Array<Target> = [
    {
      part: "8",
      name: "tether --help start vs node -e 0 (median of 5)",
      target: "≤ 8×",
      value: `${fmt(ratio, 1)}× (${fmt(helpMs, 0)} ms vs ${fmt(base, 0)} ms)`,
      met: ratio <= 8
    },
    {
      part: "8",
      name: "tether --help peak RSS",
      target: "≤ 120 MB",
      value: `${fmt(helpRss, 0)} MB`,
      met: helpRss <= 120
    },
    {
      part: "8",
      name: "tether --help without ANSI escapes when stdout is not a TTY",
      target: "none",
      value: ansi ? "escapes found" : "none",
      met: !ansi
    }
  ]
  return {
    data: {
      rounds,
      samplesMs: Object.fromEntries(samples),
      peakRssMB: Object.fromEntries(rss),
      callMs: calls,
      callPeakRssMB: callRss,
      ratio
    },
    targets,
    tables,
    notes: [
      "bin/tether.js from the clone (it also checks that the bundle is newer than src/, about a millisecond)."
    ]
  }
}
