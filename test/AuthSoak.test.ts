/**
 * The OAuth soak, in its own file so it runs beside the other tests instead of after
 * them: 60 s at 20 calls/s against oidc-provider with 2 s access tokens.
 */
import { describe, expect, it } from "@effect/vitest"
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js"
import { NodeContext } from "@effect/platform-node"
import { Effect, Layer, Logger, LogLevel } from "effect"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Auth from "../src/Auth.js"
import * as McpConnection from "../src/McpConnection.js"
import { browse, makeOAuthWorld } from "./support/oauth.js"

const text = (result: CallToolResult) => (result.content[0]?.type === "text" ? result.content[0].text : "")

describe("Auth soak", () => {
  it.scopedLive(
    "soak: 60 s at 20 calls/s with 2 s tokens loses no idempotent call; token requests ≤ 1.2× lifetimes",
    () =>
      Effect.gen(function* () {
        const world = yield* makeOAuthWorld()
        const store = Layer.provide(
          Auth.layerFile(join(mkdtempSync(join(tmpdir(), "tether-soak-")), "auth")),
          NodeContext.layer
        )
        const spec = { type: "http" as const, url: world.mcpUrl, auth: { type: "oauth" as const } }
        yield* Auth.login({ server: "remote", spec, onUrl: (url) => Effect.promise(() => browse(url)) }).pipe(
          Effect.provide(store)
        )
        const lines: Array<string> = []
        const logger = Logger.make(({ message }) => void lines.push(JSON.stringify(message)))
        const conn = yield* McpConnection.make({ name: "remote", server: spec }).pipe(
          Effect.provide(store),
          Effect.provide(
            Layer.merge(Logger.replace(Logger.defaultLogger, logger), Logger.minimumLogLevel(LogLevel.All))
          )
        )
        yield* conn.awaitReady({ timeout: "10 seconds" })
        const start = Date.now()
        const before = world.tokenRequests()
        const calls = 1_200
        let failures = 0
        // 20 calls/s, each on its own fiber so a slow one does not lower the rate.
        yield* Effect.forEach(
          Array.from({ length: calls }, (_, i) => i),
          (i) =>
            Effect.zipRight(
              Effect.sleep(`${i * 50} millis`),
              conn.callTool("echo", { text: `s${i}` }).pipe(
                Effect.map((r) => {
                  if (text(r) !== `s${i}`) failures += 1
                }),
                Effect.catchAll(() => Effect.sync(() => (failures += 1)))
              )
            ),
          { concurrency: "unbounded", discard: true }
        )
        const elapsed = Date.now() - start
        console.log(
          `soak: ${calls} calls in ${elapsed} ms, ${world.tokenRequests() - before} token requests for ${(elapsed / 2_000).toFixed(1)} lifetimes, ${world.refused()} refused with 401, ${failures} failed`
        )
        expect(failures).toBe(0)
        expect(world.executed()).toBeGreaterThanOrEqual(calls)
        const lifetimes = elapsed / 2_000
        expect(world.tokenRequests() - before).toBeLessThanOrEqual(Math.ceil(1.2 * lifetimes))
        const logged = lines.join("\n")
        for (const secret of world.issued) expect(logged.includes(secret)).toBe(false)
      }),
    90_000
  )
})
