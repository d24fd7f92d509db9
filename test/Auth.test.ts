/**
 * OAuth 2.1 against a real authorization server (oidc-provider) in front of an MCP server
 * that accepts only its JWT access tokens, which live 2 s.
 */
import { describe, expect, it } from "@effect/vitest"
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js"
import { Effect, Layer, Logger, LogLevel, Metric, Stream } from "effect"
import { NodeContext } from "@effect/platform-node"
import { mkdtempSync, readdirSync, readFileSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Auth from "../src/Auth.js"
import * as McpConnection from "../src/McpConnection.js"
import * as Metrics from "../src/Metrics.js"
import { browse, makeOAuthWorld, type OAuthWorld } from "./support/oauth.js"

const serverName = "remote"

/** Everything Tether logged, at every level. */
const makeLogs = () => {
  const lines: Array<string> = []
  const logger = Logger.make(({ annotations, message }) => {
    lines.push(`${JSON.stringify(message)} ${JSON.stringify([...annotations])}`)
  })
  return {
    lines,
    layer: Layer.merge(Logger.replace(Logger.defaultLogger, logger), Logger.minimumLogLevel(LogLevel.All))
  }
}

const storeDir = () => join(mkdtempSync(join(tmpdir(), "tether-auth-")), "auth")

const spec = (world: OAuthWorld) => ({ type: "http" as const, url: world.mcpUrl, auth: { type: "oauth" as const } })

/** Logs in through the real authorization-code flow, the test acting as the browser. */
const login = (world: OAuthWorld) =>
  Auth.login({
    server: serverName,
    spec: { ...spec(world), auth: { type: "oauth", grantType: "authorization_code" } },
    onUrl: (url) => Effect.promise(() => browse(url))
  })

const text = (result: CallToolResult) => (result.content[0]?.type === "text" ? result.content[0].text : "")

const expectNoSecrets = (world: OAuthWorld, haystacks: ReadonlyArray<string>) => {
  expect(world.issued.size).toBeGreaterThan(0)
  for (const secret of world.issued) {
    for (const hay of haystacks) expect(hay.includes(secret)).toBe(false)
  }
}

const filesUnder = (dir: string): ReadonlyArray<string> =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesUnder(join(dir, e.name)) : [join(dir, e.name)]
  )

describe("Auth (oidc-provider, 2 s access tokens)", () => {
  it.scopedLive(
    "logs in end to end, stores tokens 0600, connects with them; nothing secret in logs",
    () =>
      Effect.gen(function* () {
        const world = yield* makeOAuthWorld()
        const dir = storeDir()
        const logs = makeLogs()
        const result = yield* login(world).pipe(Effect.provide(Auth.layerFile(dir)), Effect.provide(NodeContext.layer))
        expect(result.expiresAt).toBeDefined()
        const files = filesUnder(dir)
        expect(files.some((f) => f.endsWith("tokens"))).toBe(true)
        for (const file of files) expect(statSync(file).mode & 0o777).toBe(0o600)
        expect(statSync(dir).mode & 0o777).toBe(0o700)

        const conn = yield* McpConnection.make({ name: serverName, server: spec(world) }).pipe(
          Effect.provide(Auth.layerFile(dir)),
          Effect.provide(NodeContext.layer),
          Effect.provide(logs.layer)
        )
        const info = yield* conn.awaitReady({ timeout: "10 seconds" })
        expect(info.name).toBe("oauth-fixture")
        const answer = yield* conn.callTool("echo", { text: "hi" })
        expect(text(answer)).toBe("hi")
        const stats = yield* conn.stats
        const state = yield* conn.state
        expectNoSecrets(world, [logs.lines.join("\n"), JSON.stringify(stats), JSON.stringify(state)])
        // Everything on disk that holds a secret is in the store.
        const stored = files.map((f) => readFileSync(f, "utf8")).join("\n")
        expect([...world.issued].some((s) => stored.includes(s))).toBe(true)
      }),
    30_000
  )

  it.scopedLive(
    "without stored tokens a connection fails with AuthorizationRequired naming the login command, no retry loop",
    () =>
      Effect.gen(function* () {
        const world = yield* makeOAuthWorld()
        const conn = yield* McpConnection.make({ name: serverName, server: spec(world) }).pipe(
          Effect.provide(Auth.layerMemory)
        )
        const failed = yield* conn.changes.pipe(
          Stream.filter((s) => s._tag === "Failed" || s._tag === "Reconnecting"),
          Stream.runHead,
          Effect.timeout("5 seconds")
        )
        expect(failed._tag === "Some" && failed.value._tag).toBe("Failed")
        const error = yield* Effect.flip(conn.callTool("echo", { text: "x" }))
        expect(error._tag).toBe("AuthorizationRequired")
        expect(error.message).toContain(`tether auth login ${serverName}`)
        expect(world.tokenRequests()).toBe(0)
        expect((yield* conn.stats).connectAttempts).toBe(1)
      }),
    20_000
  )
})

void Metric
void Metrics
