/**
 * The official MCP client conformance suite (`@modelcontextprotocol/conformance@0.1.13`)
 * against Tether's conformance client. The 19 `auth/*` scenarios run in
 * ConformanceAuth.test.ts; results are listed in BENCHMARKS.md.
 */
import { describe, expect, it } from "@effect/vitest"
import { execFile } from "node:child_process"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

const run = (scenario: string) =>
  new Promise<{ code: number | null; out: string }>((resolve) => {
    const child = execFile(
      process.execPath,
      [
        "node_modules/@modelcontextprotocol/conformance/dist/index.js",
        "client",
        "--command",
        `${process.execPath} --import tsx scripts/conformance-client.ts`,
        "--scenario",
        scenario,
        "-o",
        mkdtempSync(join(tmpdir(), "tether-conformance-"))
      ],
      { timeout: 60_000 },
      (_error, stdout, stderr) => resolve({ code: child.exitCode, out: `${stdout}\n${stderr}` })
    )
  })

describe("MCP client conformance", () => {
  it.each(["initialize", "tools_call", "sse-retry", "elicitation-sep1034-client-defaults"])(
    "passes the %s scenario",
    async (scenario) => {
      const { code, out } = await run(scenario)
      expect(out).toContain("OVERALL: PASSED")
      expect(out).not.toMatch(/\bFAILURE\b/)
      expect(code).toBe(0)
    },
    90_000
  )
})
