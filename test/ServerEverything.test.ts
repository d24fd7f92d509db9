/**
 * Tether against a server we did not write: the reference
 * `@modelcontextprotocol/server-everything`, over stdio and Streamable HTTP.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { readdirSync, readFileSync } from "node:fs"
import * as McpConnection from "../src/McpConnection.js"
import { recordTransitions, waitForState } from "./support/conn.js"
import { EVERYTHING, spawnEverythingHttp } from "./support/fixture.js"

const echoText = (result: { content: ReadonlyArray<{ type: string; text?: string }> }) =>
  result.content.flatMap((c) => (c.type === "text" && c.text !== undefined ? [c.text] : [])).join("")

describe("server-everything", () => {
  it.scopedLive("over stdio: lists tools, calls echo, survives a kill of the child", () =>
    Effect.gen(function* () {
      const conn = yield* McpConnection.make({
        name: "everything",
        server: { type: "stdio", command: process.execPath, args: [EVERYTHING, "stdio"] }
      })
      const info = yield* conn.awaitReady({ timeout: "20 seconds" })
      expect(info.name).toMatch(/everything/i)
      const tools = (yield* conn.tools).map((t) => t.name)
      expect(tools).toContain("echo")
      expect(echoText(yield* conn.callTool("echo", { message: "hi" }))).toContain("hi")
      const resources = yield* conn.listResources()
      expect(resources.length).toBeGreaterThan(0)
      const prompts = yield* conn.listPrompts()
      expect(prompts.length).toBeGreaterThan(0)

      // Kill the child behind Tether's back: the next call still succeeds.
      const child = readdirSync("/proc")
        .filter((e) => /^\d+$/.test(e))
        .find((e) => {
          try {
            const stat = readFileSync(`/proc/${e}/stat`, "utf8")
            const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1])
            return ppid === process.pid && readFileSync(`/proc/${e}/cmdline`, "utf8").includes(EVERYTHING)
          } catch {
            return false
          }
        })
      expect(child).toBeDefined()
      process.kill(Number(child), "SIGKILL")
      yield* waitForState(conn, (s) => s._tag === "Ready" && s.generation === 2, "20 seconds")
      expect(echoText(yield* conn.callTool("echo", { message: "again" }))).toContain("again")
    })
  )

  it.scopedLive(
    "over Streamable HTTP: killed and restarted on the same port, reconnects with a new session",
    () =>
      Effect.gen(function* () {
        const server = yield* spawnEverythingHttp()
        const conn = yield* McpConnection.make({
          name: "everything",
          server: { type: "http", url: `http://127.0.0.1:${server.port}/mcp` }
        })
        yield* conn.awaitReady({ timeout: "20 seconds" })
        const transitions = yield* recordTransitions(conn)
        expect(echoText(yield* conn.callTool("echo", { message: "one" }))).toContain("one")
        yield* server.kill("SIGKILL")
        yield* server.start
        const result = yield* conn.callTool("echo", { message: "two" }, { timeout: "20 seconds" })
        expect(echoText(result)).toContain("two")
        const state = yield* conn.state
        expect(state._tag === "Ready" && state.generation).toBeGreaterThanOrEqual(2)
        expect(yield* transitions.tags).toContain("Reconnecting")
      })
  )
})
