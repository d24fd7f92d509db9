/**
 * A Tether-based client for the official MCP conformance suite
 * (`@modelcontextprotocol/conformance`). The suite runs this command with the test
 * server's URL as the last argument and the scenario in `MCP_CONFORMANCE_SCENARIO`.
 *
 *   npx conformance client --command "node --import tsx scripts/conformance-client.ts" --scenario tools_call
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect } from "effect"
import * as McpConnection from "../src/McpConnection.js"

const url = process.argv[process.argv.length - 1] ?? ""
const scenario = process.env["MCP_CONFORMANCE_SCENARIO"] ?? "initialize"

const program = Effect.gen(function* () {
  const conn = yield* McpConnection.make({
    name: "conformance",
    server: { type: "http", url },
    // The suite's servers are short-lived and single-purpose: fail fast instead of retrying.
    resilience: { reconnect: { maxAttempts: 2 }, call: { timeout: 20_000 } },
    // Unattended: accept every form, the SDK filling the schema's defaults (SEP-1034).
    elicitation: McpConnection.acceptWithDefaults
  })
  const info = yield* conn.awaitReady({ timeout: "20 seconds" })
  yield* Console.log(`connected to ${info.name} ${info.version} (${info.protocolVersion ?? "?"})`)
  const tools = yield* conn.tools
  yield* Console.log(`tools: ${tools.map((t) => t.name).join(", ") || "(none)"}`)
  switch (scenario) {
    case "tools_call": {
      const result = yield* conn.callTool("add_numbers", { a: 2, b: 3 })
      yield* Console.log(JSON.stringify(result.content))
      break
    }
    case "sse-retry": {
      // The server closes the call's SSE stream early; the answer comes after a reconnect
      // with Last-Event-ID, after the server's `retry` delay.
      const result = yield* conn.callTool("test_reconnection", {}, { idempotent: true })
      yield* Console.log(JSON.stringify(result.content))
      break
    }
    case "elicitation-sep1034-client-defaults": {
      const result = yield* conn.callTool("test_client_elicitation_defaults", {})
      yield* Console.log(JSON.stringify(result.content))
      break
    }
    default:
      break
  }
}).pipe(Effect.scoped)

NodeRuntime.runMain(program)
