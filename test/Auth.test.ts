/**
 * OAuth 2.1 against a real authorization server (oidc-provider) in front of an MCP server
 * that accepts only its JWT access tokens, which live 2 s.
 */
import { describe, expect, it } from "@effect/vitest"
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js"
import { Effect, Fiber, Layer, Logger, LogLevel, Metric, Stream } from "effect"
import { NodeContext } from "@effect/platform-node"
import { spawn } from "node:child_process"
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Auth from "../src/Auth.js"
import * as Config from "../src/Config.js"
import * as McpConnection from "../src/McpConnection.js"
import * as Tether from "../src/Tether.js"
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

const spec = (world: OAuthWorld) => ({
  type: "http" as const,
  url: world.mcpUrl,
  auth: { type: "oauth" as const }
})

/** Logs in through the real authorization-code flow, the test acting as the browser. */
const login = (world: OAuthWorld) =>
  Auth.login({
    server: serverName,
    spec: { ...spec(world), auth: { type: "oauth", grantType: "authorization_code" } },
    onUrl: (url) => Effect.promise(() => browse(url))
  })

/** Logs in, then opens a connection on the same on-disk store. */
const loggedIn = (world: OAuthWorld, resilience?: McpConnection.McpConnection.Options["resilience"]) =>
  Effect.gen(function* () {
    const dir = storeDir()
    const store = Layer.provide(Auth.layerFile(dir), NodeContext.layer)
    yield* login(world).pipe(Effect.provide(store))
    const logs = makeLogs()
    const conn = yield* McpConnection.make({ name: serverName, server: spec(world), resilience }).pipe(
      Effect.provide(store),
      Effect.provide(logs.layer)
    )
    yield* conn.awaitReady({ timeout: "10 seconds" })
    return { conn, dir, logs, store }
  })

const refreshCount = (outcome: string) =>
  Metric.value(
    Metric.tagged(Metric.tagged(Metrics.tokenRefreshes, "server", serverName), "outcome", outcome)
  ).pipe(Effect.map((s) => s.count))

const text = (result: CallToolResult) => (result.content[0]?.type === "text" ? result.content[0].text : "")

const expectNoSecrets = (world: OAuthWorld, haystacks: ReadonlyArray<string>) => {
  expect(world.issued.size).toBeGreaterThan(0)
  for (const secret of world.issued) {
    for (const hay of haystacks) expect(hay.includes(secret)).toBe(false)
  }
}

/** Runs `node bin/tether.js …`; `onLine` sees stdout as it comes. Killed (group) after 60 s. */
const tether = (
  args: ReadonlyArray<string>,
  env: Record<string, string>,
  onLine: (line: string) => void = () => {}
) =>
  Effect.async<{ code: number | null; out: string }>((resume) => {
    const child = spawn(process.execPath, ["bin/tether.js", ...args], {
      env: { ...process.env, ...env },
      detached: true,
      stdio: ["ignore", "pipe", "pipe"]
    })
    let out = ""
    child.stdout.on("data", (chunk: Buffer) => {
      out += chunk.toString()
      for (const line of chunk.toString().split("\n")) onLine(line)
    })
    child.stderr.on("data", (chunk: Buffer) => (out += chunk.toString()))
    const timer = setTimeout(() => {
      if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL")
    }, 60_000)
    child.once("close", (code) => {
      clearTimeout(timer)
      resume(Effect.succeed({ code, out }))
    })
    return Effect.sync(() => {
      clearTimeout(timer)
      if (child.exitCode === null && child.pid !== undefined) process.kill(-child.pid, "SIGKILL")
    })
  })

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
        const result = yield* login(world).pipe(
          Effect.provide(Auth.layerFile(dir)),
          Effect.provide(NodeContext.layer)
        )
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

  it.scopedLive(
    "50 concurrent calls that meet an expired token cause exactly one refresh, and all succeed",
    () =>
      Effect.gen(function* () {
        const world = yield* makeOAuthWorld()
        const { conn } = yield* loggedIn(world, { heartbeat: { enabled: false } })
        yield* conn.callTool("echo", { text: "warm" })
        // Nothing runs while the 2 s token expires.
        yield* Effect.sleep("2300 millis")
        const before = world.tokenRequests()
        const results = yield* Effect.forEach(
          Array.from({ length: 50 }, (_, i) => i),
          (i) => conn.callTool("echo", { text: `c${i}` }),
          { concurrency: "unbounded" }
        )
        expect(results.map(text)).toEqual(Array.from({ length: 50 }, (_, i) => `c${i}`))
        expect(world.tokenRequests() - before).toBe(1)
      }),
    30_000
  )

  it.scopedLive(
    "a 401 on a live session refreshes once and re-sends the refused call (not idempotent: still run once)",
    () =>
      Effect.gen(function* () {
        const world = yield* makeOAuthWorld({ accessTokenTtl: 60 })
        const { conn } = yield* loggedIn(world, { heartbeat: { enabled: false } })
        yield* conn.callTool("append", { text: "a" })
        const before = { tokens: world.tokenRequests(), executed: world.executed(), refused: world.refused() }
        const ok = yield* refreshCount("ok")
        // The resource server stops accepting the token it has seen (e.g. key rotation).
        world.rejectIssued()
        const result = yield* conn.callTool("append", { text: "b" })
        expect(text(result)).toBe("appended b")
        expect(world.refused() - before.refused).toBe(1)
        expect(world.tokenRequests() - before.tokens).toBe(1)
        expect(world.executed() - before.executed).toBe(1)
        expect((yield* refreshCount("ok")) - ok).toBe(1)
        expect((yield* conn.state)._tag).toBe("Ready")
      }),
    30_000
  )

  it.scopedLive(
    "revoking the grant ends in Failed(AuthorizationRequired) within 2 s, ≤ 3 token requests, tokens cleared",
    () =>
      Effect.gen(function* () {
        const world = yield* makeOAuthWorld()
        const { conn, dir, logs } = yield* loggedIn(world)
        yield* conn.callTool("echo", { text: "before" })
        const invalidGrants = yield* refreshCount("invalid_grant")
        yield* Effect.promise(() => world.revokeAll())
        const revokedAt = Date.now()
        const after = world.tokenRequests()
        // Calls keep coming: none may start a storm against the authorization server.
        const caller = yield* Effect.forkScoped(
          Effect.forever(
            Effect.zipRight(Effect.either(conn.callTool("echo", { text: "x" })), Effect.sleep("50 millis"))
          )
        )
        const failed = yield* conn.changes.pipe(
          Stream.filter((s) => s._tag === "Failed"),
          Stream.runHead,
          Effect.timeout("2 seconds")
        )
        expect(Date.now() - revokedAt).toBeLessThan(2_000)
        expect(failed._tag === "Some" && failed.value._tag === "Failed" && failed.value.lastError._tag).toBe(
          "AuthorizationRequired"
        )
        const error = yield* Effect.flip(conn.callTool("echo", { text: "y" }))
        expect(error._tag).toBe("AuthorizationRequired")
        expect(error.message).toContain(`tether auth login ${serverName}`)
        // Keep calling past the breaker's cooldown: the probe must not refresh again.
        yield* Effect.sleep("1500 millis")
        yield* Fiber.interrupt(caller)
        expect(world.tokenRequests() - after).toBeLessThanOrEqual(3)
        expect((yield* refreshCount("invalid_grant")) - invalidGrants).toBe(1)
        const status = yield* Auth.status(serverName, {
          ...spec(world),
          auth: { type: "oauth", grantType: "authorization_code" }
        }).pipe(Effect.provide(Layer.provide(Auth.layerFile(dir), NodeContext.layer)))
        expect(status.loggedIn).toBe(false)
        expectNoSecrets(world, [logs.lines.join("\n"), error.message, JSON.stringify(yield* conn.stats)])
      }),
    30_000
  )

  it.scopedLive(
    "a 429 with Retry-After from the token endpoint is waited out, calls still succeed",
    () =>
      Effect.gen(function* () {
        const world = yield* makeOAuthWorld()
        const { conn } = yield* loggedIn(world, { heartbeat: { enabled: false } })
        yield* conn.callTool("echo", { text: "warm" })
        const before = world.tokenTimes.length
        world.rateLimit(1, 1)
        const limited = yield* refreshCount("rate_limited")
        // Calls every 50 ms across the expiry: the first refresh is refused with 429.
        const results = yield* Effect.forEach(
          Array.from({ length: 60 }, (_, i) => i),
          (i) => Effect.zipRight(Effect.sleep("50 millis"), conn.callTool("echo", { text: `r${i}` })),
          { concurrency: 1 }
        )
        expect(results.map(text)).toEqual(Array.from({ length: 60 }, (_, i) => `r${i}`))
        const times = world.tokenTimes.slice(before)
        expect(times.length).toBeGreaterThanOrEqual(2)
        // The second token request waited for Retry-After (1 s).
        expect((times[1] ?? 0) - (times[0] ?? 0)).toBeGreaterThanOrEqual(1_000)
        expect((yield* refreshCount("rate_limited")) - limited).toBe(1)
      }),
    30_000
  )

  it.scopedLive(
    "client_credentials from config: a `${VAR}` secret, tokens fetched and renewed without a person",
    () =>
      Effect.gen(function* () {
        const world = yield* makeOAuthWorld()
        const config = yield* Config.decode(
          {
            mcpServers: {
              machine: {
                url: world.mcpUrl,
                auth: {
                  type: "oauth",
                  grantType: "client_credentials",
                  clientId: "machine",
                  clientSecret: "${TETHER_TEST_MACHINE_SECRET}",
                  scope: "mcp"
                }
              }
            }
          },
          { env: { TETHER_TEST_MACHINE_SECRET: "machine-secret-0123456789abcdef0123456789" } }
        )
        const server = config.servers[0]
        expect(server?.spec.type === "http" && server.spec.auth?.grantType).toBe("client_credentials")
        expect(JSON.stringify(config)).not.toContain("machine-secret")
        const logs = makeLogs()
        const conn = yield* McpConnection.make({ name: "machine", server: server!.spec }).pipe(
          Effect.provide(Auth.layerMemory),
          Effect.provide(logs.layer)
        )
        yield* conn.awaitReady({ timeout: "10 seconds" })
        for (let i = 0; i < 10; i++) {
          yield* conn.callTool("echo", { text: `m${i}` })
          yield* Effect.sleep("300 millis")
        }
        // 3 s of calls with 2 s tokens: the first token plus one or two renewals.
        expect(world.tokenRequests()).toBeGreaterThanOrEqual(2)
        expect(world.tokenRequests()).toBeLessThanOrEqual(3)
        expectNoSecrets(world, [logs.lines.join("\n"), JSON.stringify(yield* conn.stats)])
      }),
    30_000
  )

  it("config: `auth` is a known field of http/sse servers; bad values name their path; websocket refuses it", () => {
    const decode = (server: Record<string, unknown>, env: Record<string, string> = {}) =>
      Config.decode({ mcpServers: { s: server } }, { env })
    const ok = decode(
      { url: "http://127.0.0.1:1/mcp", auth: { type: "oauth", clientId: "c", clientSecret: "${SECRET_X}" } },
      { SECRET_X: "s3cr3t-value" }
    )
    expect(ok._tag).toBe("Right")
    if (ok._tag === "Right") {
      const spec = ok.right.servers[0]?.spec
      expect(spec?.type === "http" && spec.auth?.grantType).toBe("authorization_code")
      expect(JSON.stringify(ok.right)).not.toContain("s3cr3t-value")
    }
    const badGrant = decode({ url: "http://127.0.0.1:1/mcp", auth: { type: "oauth", grantType: "password" } })
    expect(badGrant._tag === "Left" && badGrant.left.message).toMatch(/mcpServers\.s\.auth\.grantType/)
    const ws = decode({ url: "ws://127.0.0.1:1/", auth: { type: "oauth" } })
    expect(ws._tag === "Left" && ws.left.message).toMatch(
      /mcpServers\.s\.auth.*websocket server does not take "auth"/
    )
    const typo = decode({ url: "http://127.0.0.1:1/mcp", auth: { type: "oauth", clientID: "c" } })
    expect(typo._tag === "Left" && typo.left.message).toMatch(
      /mcpServers\.s\.auth\.clientID: unknown field; did you mean "clientId"/
    )
    const unset = decode({
      url: "http://127.0.0.1:1/mcp",
      auth: { type: "oauth", clientSecret: "${NOPE_UNSET}" }
    })
    expect(unset._tag === "Left" && unset.left.message).toMatch(/auth\.clientSecret.*NOPE_UNSET is not set/)
  })

  it.scopedLive(
    "CLI: auth login prints the URL and stores tokens; call uses them; status never shows a token; logout forgets",
    () =>
      Effect.gen(function* () {
        const world = yield* makeOAuthWorld({ accessTokenTtl: 60 })
        const home = mkdtempSync(join(tmpdir(), "tether-cli-auth-"))
        const config = join(home, "mcp.json")
        writeFileSync(
          config,
          JSON.stringify({ mcpServers: { remote: { url: world.mcpUrl, auth: { type: "oauth" } } } })
        )
        const env = { TETHER_DATA_DIR: join(home, "data") }
        const browsing: Array<Promise<void>> = []
        const login = yield* tether(
          ["auth", "login", "remote", "--no-browser", "--config", config],
          env,
          (line) => {
            const url = /^\s+(http:\/\/127\.0\.0\.1:\d+\/auth\?\S+)/.exec(line)?.[1]
            if (url !== undefined) browsing.push(browse(url))
          }
        )
        yield* Effect.promise(() => Promise.all(browsing))
        expect(login.out).toContain("Logged in to remote")
        expect(login.code).toBe(0)
        const call = yield* tether(
          ["call", "remote", "echo", "--args", '{"text":"via cli"}', "--config", config],
          env
        )
        expect(call.out).toContain("via cli")
        expect(call.code).toBe(0)
        const status = yield* tether(["auth", "status", "--json", "--config", config], env)
        expect(JSON.parse(status.out)).toMatchObject([
          { server: "remote", loggedIn: true, refreshable: true }
        ])
        const logout = yield* tether(["auth", "logout", "remote", "--config", config], env)
        expect(logout.code).toBe(0)
        const after = yield* tether(["auth", "status", "--json", "--config", config], env)
        expect(JSON.parse(after.out)).toMatchObject([{ server: "remote", loggedIn: false }])
        const needs = yield* tether(
          ["call", "remote", "echo", "--args", '{"text":"x"}', "--config", config],
          env
        )
        expect(needs.out).toContain("tether auth login remote")
        expect(needs.code).not.toBe(0)
        // Nothing secret in any output, nor on disk outside the token store.
        expectNoSecrets(world, [login.out, call.out, status.out, logout.out, after.out, needs.out])
        const outside = filesUnder(home).filter((f) => !f.startsWith(join(home, "data", "auth")))
        expectNoSecrets(
          world,
          outside.map((f) => readFileSync(f, "utf8"))
        )
      }),
    120_000
  )

  it.scopedLive(
    "Promise API: Tether.start uses the tokens a login stored under the data dir",
    () =>
      Effect.gen(function* () {
        const world = yield* makeOAuthWorld({ accessTokenTtl: 60 })
        const data = mkdtempSync(join(tmpdir(), "tether-promise-auth-"))
        yield* login(world).pipe(
          Effect.provide(Layer.provide(Auth.layerFile(join(data, "auth")), NodeContext.layer))
        )
        const previous = process.env["TETHER_DATA_DIR"]
        process.env["TETHER_DATA_DIR"] = data
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => {
            if (previous === undefined) delete process.env["TETHER_DATA_DIR"]
            else process.env["TETHER_DATA_DIR"] = previous
          })
        )
        const tether = yield* Effect.acquireRelease(
          Effect.promise(() =>
            Tether.start({
              config: { mcpServers: { remote: { url: world.mcpUrl, auth: { type: "oauth" } } } }
            })
          ),
          (t) => Effect.promise(() => t.close())
        )
        const result = yield* Effect.promise(() => tether.call("remote__echo", { text: "promise" }))
        expect(text(result)).toBe("promise")
      }),
    30_000
  )

  it.scopedLive(
    "two connections to one server over one store (a pool's tenants) share the renewal: one refresh, no invalid_grant",
    () =>
      Effect.gen(function* () {
        const world = yield* makeOAuthWorld()
        const store = yield* Effect.provide(Auth.TokenStore, Auth.layerMemory)
        yield* login(world).pipe(Effect.provideService(Auth.TokenStore, store))
        const open = (name: string) =>
          McpConnection.make({
            name: serverName,
            server: spec(world),
            resilience: { heartbeat: { enabled: false } }
          }).pipe(
            Effect.provideService(Auth.TokenStore, store),
            Effect.tap((c) => c.awaitReady({ timeout: "10 seconds" })),
            Effect.withSpan(name)
          )
        const a = yield* open("a")
        const b = yield* open("b")
        yield* Effect.sleep("2300 millis")
        const before = world.tokenRequests()
        const results = yield* Effect.all(
          [a.callTool("echo", { text: "a" }), b.callTool("echo", { text: "b" })],
          { concurrency: "unbounded" }
        )
        expect(results.map(text)).toEqual(["a", "b"])
        expect(world.tokenRequests() - before).toBe(1)
      }),
    30_000
  )
})
