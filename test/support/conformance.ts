/**
 * Runs one scenario of the official MCP client conformance suite
 * (`@modelcontextprotocol/conformance`) against a client command.
 */
import { expect } from "@effect/vitest"
import { execFile } from "node:child_process"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

export const runScenario = (client: string, scenario: string) =>
  new Promise<{ code: number | null; out: string }>((resolve) => {
    const child = execFile(
      process.execPath,
      [
        "node_modules/@modelcontextprotocol/conformance/dist/index.js",
        "client",
        "--command",
        client,
        "--scenario",
        scenario,
        "-o",
        mkdtempSync(join(tmpdir(), "tether-conformance-"))
      ],
      { timeout: 60_000 },
      (_error, stdout, stderr) => resolve({ code: child.exitCode, out: `${stdout}\n${stderr}` })
    )
  })

/** Runs the scenario and checks that the suite passed it: no failed check, exit code 0. */
export const expectPasses = async (client: string, scenario: string) => {
  const { code, out } = await runScenario(client, scenario)
  expect(out).toContain("OVERALL: PASSED")
  expect(out).not.toMatch(/\bFAILURE\b/)
  expect(code).toBe(0)
}
