import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Either, Redacted } from "effect"
import * as Config from "../src/Config.js"
import type { InvalidConfig } from "../src/Errors.js"

const issues = (input: unknown, env: Record<string, string> = {}): ReadonlyArray<string> =>
  Either.match(Config.decode(input, { env }), {
    onLeft: (error: InvalidConfig) => error.issues ?? [],
    onRight: () => expect.fail("expected an InvalidConfig")
  })

describe("Config.fromObject: ${VAR} through the ConfigProvider", () => {
  const provider = (entries: ReadonlyArray<readonly [string, string]>) =>
    Effect.withConfigProvider(ConfigProvider.fromMap(new Map(entries)))

  it.effect("fills placeholders from the current ConfigProvider and applies TETHER_* overrides", () =>
    Effect.gen(function* () {
      const config = yield* Config.fromObject({
        mcpServers: {
          api: { url: "https://${HOST}/mcp", headers: { Authorization: "Bearer ${TOKEN}" } }
        }
      }).pipe(
        provider([
          ["HOST", "mcp.example.com"],
          ["TOKEN", "provider-secret"],
          ["TETHER_CALL_TIMEOUT_MS", "1234"]
        ])
      )
      const api = config.servers[0]
      expect(api?.spec.type === "http" && api.spec.url).toBe("https://mcp.example.com/mcp")
      expect(
        api?.spec.type === "http" && api.spec.headers?.["Authorization"] !== undefined
          ? Redacted.value(api.spec.headers["Authorization"])
          : undefined
      ).toBe("Bearer provider-secret")
      expect(api?.resilience.call.timeout).toBe(1234)
      expect(config.source).toBe("(inline)")
    })
  )

  it.effect("a variable the provider does not have is an error naming its path", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        Config.fromObject(
          { mcpServers: { a: { command: "node", env: { KEY: "${MISSING}" } } } },
          {
            source: "config object"
          }
        ).pipe(provider([]))
      )
      expect(error.message).toBe(
        "invalid config config object:\n  - mcpServers.a.env.KEY: environment variable MISSING is not set"
      )
    })
  )
})

describe("Config: one decode per entry, problems in a useful order", () => {
  it("a misspelt field is listed before the problems it causes", () => {
    expect(issues({ mcpServers: { x: { comand: "node", lazy: "no" } } })).toEqual([
      'mcpServers.x.comand: unknown field; did you mean "command"?',
      'mcpServers.x: needs "command" (stdio) or "url"',
      'mcpServers.x.lazy: expected true or false, got "no"'
    ])
  })

  it("an entry's placeholder problems come before its other problems", () => {
    expect(issues({ mcpServers: { x: { command: "", env: { A: "${NOPE}" } } } })).toEqual([
      "mcpServers.x.env.A: environment variable NOPE is not set",
      "mcpServers.x.command: command must not be empty"
    ])
  })

  it("an auth block lists its placeholder problems and its other problems together", () => {
    expect(
      issues({
        mcpServers: {
          x: {
            url: "http://127.0.0.1/mcp",
            auth: { type: "oauth", clientSecret: "${NOPE}", clientID: "c", grantType: "pw" }
          }
        }
      })
    ).toEqual([
      "mcpServers.x.auth.clientSecret: environment variable NOPE is not set",
      'mcpServers.x.auth.clientID: unknown field; did you mean "clientId"?',
      'mcpServers.x.auth.grantType: expected "authorization_code" or "client_credentials", got "pw"'
    ])
    expect(issues({ mcpServers: { x: { url: "http://127.0.0.1/mcp", auth: "token" } } })).toEqual([
      'mcpServers.x.auth: expected an object, got "token"'
    ])
  })

  it("a disabled entry has only its keys checked", () => {
    expect(issues({ mcpServers: { x: { disabled: true, url: 5, zzz: 1 }, y: { command: "node" } } })).toEqual(
      [
        "mcpServers.x.zzz: unknown field; expected one of type, transport, command, args, env, cwd, url, headers, auth, tools, resilience, disabled, lazy, optional, trustAnnotations, prefix, description, autoApprove, alwaysAllow"
      ]
    )
  })

  it("a tool named __proto__ keeps its override", () => {
    const config = Either.getOrThrow(
      Config.parse(
        `{ "mcpServers": { "a": { "command": "x", "tools": { "__proto__": { "idempotent": true } } } } }`,
        {
          env: {}
        }
      )
    )
    const tools = config.servers[0]?.tools ?? {}
    expect(Object.keys(tools)).toEqual(["__proto__"])
    expect(Object.getOwnPropertyDescriptor(tools, "__proto__")?.value).toEqual({ idempotent: true })
    expect(Object.getPrototypeOf(tools)).toBe(Object.prototype)
  })
})
