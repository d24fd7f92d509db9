/**
 * A Tether-based client for the official MCP conformance suite
 * (`@modelcontextprotocol/conformance`). The suite runs this command with the test
 * server's URL as the last argument and the scenario in `MCP_CONFORMANCE_SCENARIO`.
 *
 *   npx conformance client --command "node --import tsx scripts/conformance-client.ts" --scenario tools_call
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Layer, Redacted } from "effect"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Auth from "../src/Auth.js"
import * as McpConnection from "../src/McpConnection.js"
import type * as ServerSpec from "../src/ServerSpec.js"

const url = process.argv[process.argv.length - 1] ?? ""
const scenario = process.env["MCP_CONFORMANCE_SCENARIO"] ?? "initialize"

/** What the auth scenarios hand the client (pre-registered credentials, a signing key). */
interface Context {
  readonly client_id?: string
  readonly client_secret?: string
  readonly private_key_pem?: string
  readonly signing_algorithm?: string
}
const context: Context = JSON.parse(process.env["MCP_CONFORMANCE_CONTEXT"] ?? "{}") as Context

/** The `auth` block a user would write in mcp.json for each kind of scenario. */
const oauth = (): ServerSpec.OAuth => {
  switch (scenario) {
    case "auth/client-credentials-jwt": {
      const file = join(mkdtempSync(join(tmpdir(), "tether-conformance-")), "key.pem")
      writeFileSync(file, context.private_key_pem ?? "", { mode: 0o600 })
      return {
        type: "oauth",
        grantType: "client_credentials",
        clientId: context.client_id ?? "",
        privateKeyFile: file,
        tokenEndpointAuthMethod: "private_key_jwt",
        ...(context.signing_algorithm === undefined ? {} : { signingAlgorithm: context.signing_algorithm })
      }
    }
    case "auth/client-credentials-basic":
      return {
        type: "oauth",
        grantType: "client_credentials",
        clientId: context.client_id ?? "",
        ...(context.client_secret === undefined
          ? {}
          : { clientSecret: Redacted.make(context.client_secret) }),
        tokenEndpointAuthMethod: "client_secret_basic"
      }
    case "auth/basic-cimd":
      return {
        type: "oauth",
        grantType: "authorization_code",
        clientMetadataUrl: "https://conformance-test.local/client-metadata.json"
      }
    default:
      return {
        type: "oauth",
        grantType: "authorization_code",
        ...(context.client_id === undefined ? {} : { clientId: context.client_id }),
        ...(context.client_secret === undefined ? {} : { clientSecret: Redacted.make(context.client_secret) })
      }
  }
}

/**
 * The "person" of the authorization-code scenarios: the suite's authorization endpoint
 * redirects at once, so following the URL to its redirect is the whole login.
 */
const headlessLogin = Layer.succeed(Auth.Authorizer, {
  redirectUrl: "http://127.0.0.1:33418/callback",
  authorize: async (authorizationUrl, state) => {
    const response = await fetch(authorizationUrl, { redirect: "manual" })
    const location = new URL(response.headers.get("location") ?? "", authorizationUrl)
    if (location.searchParams.get("state") !== state) throw new Error("state mismatch in the redirect")
    return location.searchParams.get("code") ?? ""
  }
})

const isAuth = scenario.startsWith("auth/")

const program = Effect.gen(function* () {
  const conn = yield* McpConnection.make({
    name: "conformance",
    server: isAuth ? { type: "http", url, auth: oauth() } : { type: "http", url },
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
      if (isAuth && tools.some((t) => t.name === "test-tool")) {
        const result = yield* conn.callTool("test-tool", {})
        yield* Console.log(JSON.stringify(result.content))
      }
      break
  }
}).pipe(Effect.scoped, Effect.provide(Auth.layerMemory), Effect.provide(headlessLogin))

NodeRuntime.runMain(program)
