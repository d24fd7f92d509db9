/**
 * The official MCP client conformance suite (`@modelcontextprotocol/conformance@0.1.13`)
 * against Tether's conformance client. The 19 `auth/*` scenarios run in
 * ConformanceAuth.test.ts; results are listed in BENCHMARKS.md.
 */
import { describe, expect, it } from "@effect/vitest"
import { runScenario } from "./support/conformance.js"

const run = (scenario: string) =>
  runScenario(`${process.execPath} --import tsx scripts/conformance-client.ts`, scenario)

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
