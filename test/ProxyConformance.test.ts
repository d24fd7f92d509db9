/**
 * The official MCP server conformance suite (`@modelcontextprotocol/conformance@0.1.13`,
 * every active server scenario) against the reference server
 * `@modelcontextprotocol/server-everything` directly, and through `tether proxy --port`
 * with that server as its only upstream: the proxy must pass exactly the scenarios the
 * server passes. One scenario is about the HTTP front itself, not what it forwards:
 * `dns-rebinding-protection`, which the reference server fails (it accepts any Host) and
 * the proxy passes (it checks Host and Origin); it is compared on its own.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFile } from "node:child_process"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { spawnEverythingHttp, spawnServer } from "./support/fixture.js"

const FRONT_ONLY = "dns-rebinding-protection"

/** Runs every server scenario against `url`; the names of those that passed, and of all. */
const conformance = (url: string) =>
  Effect.promise(
    () =>
      new Promise<{ passed: ReadonlyArray<string>; all: ReadonlyArray<string>; out: string }>((done) => {
        execFile(
          process.execPath,
          [
            "node_modules/@modelcontextprotocol/conformance/dist/index.js",
            "server",
            "--url",
            url,
            "-o",
            mkdtempSync(join(tmpdir(), "tether-conformance-"))
          ],
          { timeout: 120_000, maxBuffer: 16 * 1024 * 1024 },
          (_error, stdout, stderr) => {
            const out = `${stdout}\n${stderr}`
            const rows = [...out.matchAll(/^([✓✗]) (\S+): \d+ passed, \d+ failed/gm)]
            done({
              passed: rows.filter((r) => r[1] === "✓").map((r) => r[2]!),
              all: rows.map((r) => r[2]!),
              out
            })
          }
        )
      })
  )

describe("MCP server conformance through tether proxy", () => {
  it.scopedLive(
    "the proxy passes exactly the scenarios the reference server passes",
    () =>
      Effect.gen(function* () {
        const everything = yield* spawnEverythingHttp()
        const dir = mkdtempSync(join(tmpdir(), "tether-proxy-"))
        const config = join(dir, "mcp.json")
        writeFileSync(
          config,
          JSON.stringify({ mcpServers: { everything: { url: `http://127.0.0.1:${everything.port}/mcp` } } })
        )
        const proxy = yield* spawnServer((port) => ({
          what: "tether proxy",
          args: [resolve("bin/tether.js"), "proxy", "--config", config, "--port", String(port)],
          ready: /LISTENING/,
          // The CLI runs from TypeScript through tsx: slow to start on a busy machine.
          startTimeoutMs: 60_000
        }))
        const direct = yield* conformance(`http://127.0.0.1:${everything.port}/mcp`)
        const proxied = yield* conformance(`http://127.0.0.1:${proxy.port}/mcp`)

        // Not vacuous: both runs saw every scenario, and the server passes a good share.
        expect(direct.all.length, direct.out).toBeGreaterThanOrEqual(30)
        expect(proxied.all).toEqual(direct.all)
        expect(direct.passed).toContain("tools-list")
        expect(direct.passed).toContain("resources-subscribe")

        const forwarded = (names: ReadonlyArray<string>) => names.filter((n) => n !== FRONT_ONLY)
        expect(forwarded(proxied.passed)).toEqual(forwarded(direct.passed))
        expect(proxied.passed).toContain(FRONT_ONLY)
      }),
    180_000
  )
})
