/**
 * The official MCP client conformance suite (`@modelcontextprotocol/conformance@0.1.13`)
 * against Tether's conformance client. The 19 `auth/*` scenarios run in
 * ConformanceAuth.test.ts; results are listed in BENCHMARKS.md.
 */
import { describe, it } from "@effect/vitest"
import { expectPasses } from "./support/conformance.js"

describe("MCP client conformance", () => {
  it.each(["initialize", "tools_call", "sse-retry", "elicitation-sep1034-client-defaults"])(
    "passes the %s scenario",
    (scenario) => expectPasses(`${process.execPath} --import tsx scripts/conformance-client.ts`, scenario),
    90_000
  )
})
