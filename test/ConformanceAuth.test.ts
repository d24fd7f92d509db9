/**
 * The 19 `auth/*` client scenarios of the official MCP conformance suite
 * (`@modelcontextprotocol/conformance@0.1.13`) against Tether's conformance client, which
 * configures each server the way a user would in mcp.json (`"auth": { "type": "oauth" }`,
 * pre-registered credentials, client credentials with a secret or a private key JWT).
 * In their own file so they run beside the rest of the suite.
 */
import { beforeAll, describe, expect, it } from "@effect/vitest"
import { build } from "esbuild"
import { expectPasses } from "./support/conformance.js"

const scenarios = [
  "auth/metadata-default",
  "auth/metadata-var1",
  "auth/metadata-var2",
  "auth/metadata-var3",
  "auth/basic-cimd",
  "auth/scope-from-www-authenticate",
  "auth/scope-from-scopes-supported",
  "auth/scope-omitted-when-undefined",
  "auth/scope-step-up",
  "auth/scope-retry-limit",
  "auth/token-endpoint-auth-basic",
  "auth/token-endpoint-auth-post",
  "auth/token-endpoint-auth-none",
  "auth/resource-mismatch",
  "auth/pre-registration",
  "auth/2025-03-26-oauth-metadata-backcompat",
  "auth/2025-03-26-oauth-endpoint-fallback",
  "auth/client-credentials-jwt",
  "auth/client-credentials-basic"
]

// Bundled once: 19 runs of a plain `node` instead of 19 TypeScript compiles of the sources.
const CLIENT = ".fixtures/conformance-client.mjs"

describe("MCP client conformance: auth", () => {
  beforeAll(async () => {
    await build({
      entryPoints: ["scripts/conformance-client.ts"],
      bundle: true,
      platform: "node",
      format: "esm",
      packages: "external",
      outfile: CLIENT,
      logLevel: "warning"
    })
  })

  it("covers every auth scenario of the suite", () => {
    expect(scenarios).toHaveLength(19)
  })

  it.each(scenarios)(
    "passes %s",
    (scenario) => expectPasses(`${process.execPath} ${CLIENT}`, scenario),
    90_000
  )
})
