/**
 * Part 7 — config decoding: `Config.parse` of a generated `mcp.json` with N stdio servers,
 * for N and 4N. Parsing and decoding must be linear: the time for 4N must stay near 4× the
 * time for N (a quadratic decoder gives 16×). Pure CPU, no child process.
 */
import { Either } from "effect"
import * as Config from "../../src/Config.js"
import { fmt, type PartResult, printTable, type RunOptions, type TableSpec, type Target } from "./common.js"

const documentOf = (n: number): string => {
  const servers: Record<string, unknown> = {}
  for (let i = 0; i < n; i++) {
    servers[`server${i}`] = { command: "node", args: ["server.js", String(i)], env: { LEVEL: "info" } }
  }
  return JSON.stringify({ mcpServers: servers }, null, 2)
}

const timeParse = (text: string): { readonly ms: number; readonly heapMiB: number } => {
  global.gc?.()
  const heapBefore = process.memoryUsage().heapUsed
  const start = performance.now()
  const result = Config.parse(text, { env: {} })
  const ms = performance.now() - start
  if (Either.isLeft(result)) throw new Error(result.left.message)
  return { ms, heapMiB: Math.max(0, process.memoryUsage().heapUsed - heapBefore) / 1024 / 1024 }
}

export const run = async (options: RunOptions): Promise<PartResult> => {
  const small = options.quick ? 2_500 : 10_000
  const large = small * 4
  timeParse(documentOf(500)) // warm-up
  const a = timeParse(documentOf(small))
  const b = timeParse(documentOf(large))
  const ratio = b.ms / a.ms
  const tables: Array<TableSpec> = []
  printTable(
    tables,
    "Part 7 — Config.parse of N stdio servers",
    ["servers", "ms", "heap MiB (approx.)"],
    [
      [String(small), fmt(a.ms, 0), fmt(a.heapMiB, 0)],
      [String(large), fmt(b.ms, 0), fmt(b.heapMiB, 0)]
    ]
  )
  const targets: Array<Target> = [
    {
      part: "7",
      name: `config parse time ${large} / ${small} servers`,
      target: "≤ 6× (linear is 4×, quadratic 16×)",
      value: `${fmt(ratio, 1)}×`,
      met: ratio <= 6
    }
  ]
  return { data: { small, large, smallMs: a.ms, largeMs: b.ms, ratio }, targets, tables, notes: [] }
}
