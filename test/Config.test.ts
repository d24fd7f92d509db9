import { FileSystem } from "@effect/platform"
import { NodeFileSystem } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Either, LogLevel, Redacted } from "effect"
import { inspect } from "node:util"
import * as Config from "../src/Config.js"
import type { InvalidConfig } from "../src/Errors.js"
import * as Resilience from "../src/Resilience.js"
import * as ServerSpec from "../src/ServerSpec.js"

const ok = (result: Either.Either<Config.TetherConfig, InvalidConfig>): Config.TetherConfig =>
  Either.match(result, {
    onLeft: (error) => expect.fail(`expected a valid config, got:\n${error.message}`),
    onRight: (config) => config
  })

const failure = <A>(result: Either.Either<A, InvalidConfig>): InvalidConfig =>
  Either.match(result, {
    onLeft: (error) => error,
    onRight: () => expect.fail("expected an InvalidConfig")
  })

const server = (config: Config.TetherConfig, name: string): Config.ServerConfig => {
  const found = config.servers.find((s) => s.name === name)
  return found ?? expect.fail(`no server ${name}`)
}

const reveal = (record: { readonly [k: string]: Redacted.Redacted<string> } | undefined) =>
  Object.fromEntries(Object.entries(record ?? {}).map(([k, v]) => [k, Redacted.value(v)]))

const claudeDesktop = `{
  // Claude Desktop / Cursor style, with Tether's additions.
  "namespaceSeparator": "__",
  "maxConnections": 50,
  "idleTimeToLive": "2 minutes",
  "resilience": { "call": { "timeout": "30 seconds" }, "reconnect": { "maxAttempts": 10 } },
  "mcpServers": {
    "files": {
      "command": "npx",
      "args": ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"],
      "env": { "LOG": "debug", "API_KEY": "\${FILES_KEY}" },
      "cwd": "/tmp"
    },
    "github": {
      "type": "http",
      "url": "https://api.githubcopilot.com/mcp/",
      "headers": { "Authorization": "Bearer \${GITHUB_TOKEN}" },
      "tools": { "create_issue": { "idempotent": false }, "search": { "idempotent": true } },
      "resilience": { "call": { "timeout": 5000 } }
    },
    "legacy": { "type": "sse", "url": "http://127.0.0.1:8001/sse", "lazy": true, "optional": true },
    "live": { "type": "websocket", "url": "wss://mcp.example.com/ws", "trustAnnotations": false },
  }
}`

const env = { FILES_KEY: "files-secret-123", GITHUB_TOKEN: "ghp_secret_456" }

describe("Config.parse: the standard mcpServers file", () => {
  it("decodes stdio, http, sse and websocket servers with Tether's settings", () => {
    const config = ok(Config.parse(claudeDesktop, { source: "mcp.json", env }))
    expect(config.source).toBe("mcp.json")
    expect(config.namespaceSeparator).toBe("__")
    expect(config.maxConnections).toBe(50)
    expect(config.idleTimeToLive).toBe(120_000)
    expect(config.servers.map((s) => [s.name, s.spec.type])).toEqual([
      ["files", "stdio"],
      ["github", "http"],
      ["legacy", "sse"],
      ["live", "websocket"]
    ])

    const files = server(config, "files")
    expect(files.spec).toMatchObject({
      type: "stdio",
      command: "npx",
      args: ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"],
      cwd: "/tmp"
    })
    expect(files.spec.type === "stdio" && reveal(files.spec.env)).toEqual({
      LOG: "debug",
      API_KEY: "files-secret-123"
    })

    const github = server(config, "github")
    expect(github.spec.type === "http" && github.spec.url).toBe("https://api.githubcopilot.com/mcp/")
    expect(github.spec.type === "http" && reveal(github.spec.headers)).toEqual({
      Authorization: "Bearer ghp_secret_456"
    })
    expect(github.tools).toEqual({ create_issue: { idempotent: false }, search: { idempotent: true } })

    expect([files.lazy, files.optional, files.trustAnnotations]).toEqual([false, false, true])
    const legacy = server(config, "legacy")
    expect([legacy.lazy, legacy.optional, legacy.trustAnnotations]).toEqual([true, true, true])
    expect(server(config, "live").trustAnnotations).toBe(false)
    expect(files.tools).toEqual({})
  })

  it("merges resilience: defaults < global block < per-server block", () => {
    const config = ok(Config.parse(claudeDesktop, { env }))
    const files = server(config, "files").resilience
    const github = server(config, "github").resilience
    expect(files.call.timeout).toBe(30_000)
    expect(files.reconnect.maxAttempts).toBe(10)
    expect(github.call.timeout).toBe(5_000)
    expect(github.reconnect.maxAttempts).toBe(10)
    // Untouched fields keep their defaults.
    expect(github.call.maxRetries).toBe(Resilience.defaultPolicy.call.maxRetries)
    expect(github.heartbeat).toEqual(Resilience.defaultPolicy.heartbeat)
  })

  it("puts env overrides between the global block and the per-server block", () => {
    const config = ok(
      Config.decode(
        {
          resilience: { call: { timeout: 1_000, maxRetries: 1 }, heartbeat: { interval: 7_000 } },
          mcpServers: {
            a: { command: "node" },
            b: { command: "node", resilience: { call: { timeout: "9 seconds" } } }
          }
        },
        { env: {}, overrides: { call: { timeout: 2_000 } } }
      )
    )
    const a = server(config, "a").resilience
    const b = server(config, "b").resilience
    expect([a.call.timeout, a.call.maxRetries, a.heartbeat.interval]).toEqual([2_000, 1, 7_000])
    expect([b.call.timeout, b.call.maxRetries, b.heartbeat.interval]).toEqual([9_000, 1, 7_000])
  })

  it("infers the transport and accepts the aliases of other hosts", () => {
    const config = ok(
      Config.decode(
        {
          mcpServers: {
            cmd: { command: "node", args: ["server.js"] },
            url: { url: "http://127.0.0.1:8000/mcp" },
            wsUrl: { url: "ws://127.0.0.1:8000/ws" },
            streamable: { transport: "streamable-http", url: "http://127.0.0.1:8000/mcp" },
            camel: { type: "streamableHttp", url: "http://127.0.0.1:8000/mcp" },
            ws: { type: "ws", url: "wss://example.com/ws" },
            upper: { type: "SSE", url: "http://127.0.0.1:8000/sse" },
            same: { type: "http", transport: "streamable-http", url: "http://127.0.0.1:8000/mcp" },
            explicit: { type: "stdio", command: "node" },
            off: { command: "never-started", disabled: true }
          }
        },
        { env: {} }
      )
    )
    expect(Object.fromEntries(config.servers.map((s) => [s.name, s.spec.type]))).toEqual({
      cmd: "stdio",
      url: "http",
      wsUrl: "websocket",
      streamable: "http",
      camel: "http",
      ws: "websocket",
      upper: "sse",
      same: "http",
      explicit: "stdio"
    })
    expect(server(config, "cmd").spec).toEqual({ type: "stdio", command: "node", args: ["server.js"] })
  })

  it("accepts VS Code's `servers` key, comments and trailing commas", () => {
    const config = ok(
      Config.parse(
        `/* .vscode/mcp.json */ { "servers": { "fs": { "type": "stdio", "command": "node", }, }, }`,
        { env: {} }
      )
    )
    expect(config.servers.map((s) => s.name)).toEqual(["fs"])
    expect(config.namespaceSeparator).toBe("__")
    expect(config.maxConnections).toBeUndefined()
    expect(config.idleTimeToLive).toBeUndefined()
    expect(config.source).toBe("(inline)")
  })

  it("toConnectionOptions gives what McpConnection.make takes", () => {
    const github = server(ok(Config.parse(claudeDesktop, { env })), "github")
    expect(Config.toConnectionOptions(github)).toEqual({
      name: "github",
      server: github.spec,
      resilience: github.resilience,
      tools: github.tools,
      trustAnnotations: true
    })
  })
})

describe("Config: ${VAR} interpolation", () => {
  it("fills env values, header values and url; ${VAR:-default} and ${env:VAR}", () => {
    const config = ok(
      Config.decode(
        {
          mcpServers: {
            api: {
              url: "https://${HOST}/mcp?region=${REGION:-eu}",
              headers: { "X-Api-Key": "${env:API_KEY}", "X-Empty": "${EMPTY:-fallback}" }
            },
            cmd: { command: "node", env: { PORT: "${PORT:-8080}", LITERAL: "no placeholders" } }
          }
        },
        { env: { HOST: "mcp.example.com", API_KEY: "k-789", EMPTY: "" } }
      )
    )
    const api = server(config, "api").spec
    expect(api.type === "http" && api.url).toBe("https://mcp.example.com/mcp?region=eu")
    expect(api.type === "http" && reveal(api.headers)).toEqual({
      "X-Api-Key": "k-789",
      "X-Empty": "fallback"
    })
    const cmd = server(config, "cmd").spec
    expect(cmd.type === "stdio" && reveal(cmd.env)).toEqual({ PORT: "8080", LITERAL: "no placeholders" })
  })

  it("an unset variable names the JSON path and the variable", () => {
    const error = failure(
      Config.decode(
        {
          mcpServers: {
            github: { url: "https://x/mcp", headers: { Authorization: "Bearer ${GITHUB_TOKEN}" } }
          }
        },
        { source: "mcp.json", env: {} }
      )
    )
    expect(error.message).toBe(
      "invalid config mcp.json:\n  - mcpServers.github.headers.Authorization: environment variable GITHUB_TOKEN is not set"
    )
    expect(error.path).toBe("mcpServers.github.headers.Authorization")
    expect(error.server).toBe("github")
  })

  it("keeps ${tenant.key} placeholders, then renderTenant fills them", () => {
    const config = ok(
      Config.decode(
        {
          mcpServers: {
            crm: {
              url: "https://${tenant.id}.crm.example.com:${tenant.port:-443}/mcp",
              headers: { Authorization: "Bearer ${tenant.token}", "X-Static": "${STATIC}" }
            },
            local: {
              command: "node",
              args: ["server.js", "--tenant=${tenant.id}"],
              cwd: "/data/${tenant.id}",
              env: { DB_PASSWORD: "${tenant.dbPassword}" }
            }
          }
        },
        { env: { STATIC: "s" } }
      )
    )
    const crm = server(config, "crm").spec
    expect(crm.type === "http" && crm.url).toBe(
      "https://${tenant.id}.crm.example.com:${tenant.port:-443}/mcp"
    )
    expect(crm.type === "http" && reveal(crm.headers)).toEqual({
      Authorization: "Bearer ${tenant.token}",
      "X-Static": "s"
    })

    const rendered = Either.getOrThrow(Config.renderTenant(crm, { id: "acme", token: "tenant-secret" }))
    expect(rendered.type === "http" && rendered.url).toBe("https://acme.crm.example.com:443/mcp")
    expect(rendered.type === "http" && rendered.headers?.["Authorization"]).toSatisfy(Redacted.isRedacted)
    expect(rendered.type === "http" && reveal(rendered.headers)).toEqual({
      Authorization: "Bearer tenant-secret",
      "X-Static": "s"
    })
    expect(JSON.stringify(rendered)).not.toContain("tenant-secret")

    const local = Either.getOrThrow(
      Config.renderTenant(server(config, "local").spec, { id: "acme", dbPassword: "pw" })
    )
    expect(local.type === "stdio" && [local.args, local.cwd, reveal(local.env)]).toEqual([
      ["server.js", "--tenant=acme"],
      "/data/acme",
      { DB_PASSWORD: "pw" }
    ])
  })

  it("renderTenant fails naming each missing value, and a URL the values broke", () => {
    const spec = Either.getOrThrow(
      ServerSpec.decodeEither({
        type: "http",
        url: "https://${tenant.id}.example.com/mcp",
        headers: { Authorization: "Bearer ${tenant.token}", "X-Org": "${tenant.org}" }
      })
    )
    expect(failure(Config.renderTenant(spec, { id: "acme" }, { server: "crm" })).message).toBe(
      [
        "invalid tenant values for server crm:",
        '  - mcpServers.crm.headers.Authorization: tenant value "token" is not set',
        '  - mcpServers.crm.headers["X-Org"]: tenant value "org" is not set'
      ].join("\n")
    )
    expect(failure(Config.renderTenant(spec, { id: "a b", token: "t", org: "o" })).issues).toEqual([
      'url: malformed URL "https://a b.example.com/mcp": expected an absolute http URL such as http://127.0.0.1:8000/mcp'
    ])
  })
})

describe("Config: secrets", () => {
  it("header and env values are Redacted in every printed form of the config", () => {
    const config = ok(Config.parse(claudeDesktop, { env }))
    const printed = [JSON.stringify(config), String(config.servers[0]?.spec), inspect(config, { depth: 10 })]
    for (const text of printed) {
      expect(text).not.toContain("files-secret-123")
      expect(text).not.toContain("ghp_secret_456")
    }
    const github = server(config, "github").spec
    expect(github.type === "http" && String(github.headers?.["Authorization"])).toBe("<redacted>")
  })

  it("error messages quote the URL as written, not with the secret filled in", () => {
    const error = failure(
      Config.decode(
        { mcpServers: { api: { type: "sse", url: "ftp://h/sse?key=${API_KEY}" } } },
        {
          env: { API_KEY: "key-secret-000" }
        }
      )
    )
    expect(error.issues).toEqual([
      'mcpServers.api.url: URL "ftp://h/sse?key=${API_KEY}" has protocol ftp:; a sse URL needs http: or https:'
    ])
    expect(error.message).not.toContain("key-secret-000")
  })
})

describe("Config: malformed files, every problem by path", () => {
  const parseError = (text: string) => failure(Config.parse(text, { source: "mcp.json", env: {} }))
  const decodeError = (input: unknown) => failure(Config.decode(input, { source: "mcp.json", env: {} }))

  it("not JSON: a missing comma, with file, line and column", () => {
    const error = parseError(
      `{\n  "mcpServers": {\n    "a": { "command": "x" }\n    "b": { "command": "y" }\n  }\n}`
    )
    expect(error.message).toBe(
      'invalid config mcp.json:\n  - mcp.json:4:5: not valid JSON: expected "," or "}" after a property value, found a string'
    )
  })

  it("not JSON: single quotes, bare words, an empty file, trailing garbage", () => {
    expect(parseError(`{ 'mcpServers': {} }`).issues).toEqual([
      `mcp.json:1:3: not valid JSON: expected a property name in double quotes or "}", found "'"`
    ])
    expect(parseError(`{\n  "mcpServers": {\n    "a": { "lazy": yes }\n  }\n}`).issues).toEqual([
      'mcp.json:3:20: not valid JSON: expected a value, found "yes"'
    ])
    expect(parseError("  \n").issues).toEqual(["mcp.json:2:1: not valid JSON: the file is empty"])
    expect(parseError(`{ "mcpServers": {} } }`).issues).toEqual([
      'mcp.json:1:22: not valid JSON: expected the end of the file after the JSON value, found "}"'
    ])
    expect(parseError(`{ "mcpServers": { "a": { "command": "x\ny" } } }`).issues).toEqual([
      "mcp.json:1:39: not valid JSON: line break inside a string (write it as \\n)"
    ])
    expect(parseError(`{ "mcpServers": {} /* unfinished`).issues).toEqual([
      "mcp.json:1:20: not valid JSON: unterminated /* comment"
    ])
  })

  it("a top level that is not an object", () => {
    expect(parseError(`[{ "command": "x" }]`).message).toBe(
      'invalid config mcp.json:\n  - expected an object with "mcpServers" at the top level, got an array'
    )
  })

  it("no mcpServers, or mcpServers not an object", () => {
    expect(decodeError({ mcp_servers: {} }).message).toBe(
      "invalid config mcp.json:\n  - mcpServers: is missing; expected an object of servers by name"
    )
    expect(decodeError({ mcpServers: [{ command: "x" }] }).message).toBe(
      "invalid config mcp.json:\n  - mcpServers: expected an object of servers by name, got an array"
    )
    expect(decodeError({ mcpServers: {}, servers: {} }).issues).toEqual([
      'servers: give the servers either in "mcpServers" or in "servers", not both'
    ])
  })

  it("a server with neither command nor url, with both, or not an object", () => {
    expect(decodeError({ mcpServers: { fs: { args: ["x"] } } }).message).toBe(
      'invalid config mcp.json:\n  - mcpServers.fs: needs "command" (stdio) or "url"'
    )
    expect(
      decodeError({ mcpServers: { fs: { command: "node", url: "http://127.0.0.1/mcp" } } }).issues
    ).toEqual([
      'mcpServers.fs: has both "command" and "url"; use "command" for a stdio server or "url" for a remote one'
    ])
    expect(decodeError({ mcpServers: { fs: "npx server" } }).issues).toEqual([
      'mcpServers.fs: expected an object with "command" or "url", got "npx server"'
    ])
  })

  it("unknown transports, conflicting type and transport, fields of the other transport", () => {
    expect(
      decodeError({
        mcpServers: {
          a: { type: "grpc", url: "http://127.0.0.1/mcp" },
          b: { type: 3, command: "x" },
          c: { type: "http", transport: "sse", url: "http://127.0.0.1/mcp" },
          d: { type: "stdio", url: "http://127.0.0.1/mcp" },
          e: { url: "http://127.0.0.1/mcp", env: { A: "1" }, cwd: "/" },
          f: { command: "x", headers: { A: "1" } }
        }
      }).issues
    ).toEqual([
      'mcpServers.a.type: unknown transport "grpc"; expected stdio, http, sse or websocket (or streamable-http, ws)',
      "mcpServers.b.type: expected a string, got 3",
      'mcpServers.c.transport: says "sse" but "type" says "http"; give one',
      'mcpServers.d.url: a stdio server does not take "url"',
      "mcpServers.d.command: is missing",
      'mcpServers.e.env: a http server does not take "env" (only stdio servers do)',
      'mcpServers.e.cwd: a http server does not take "cwd" (only stdio servers do)',
      'mcpServers.f.headers: a stdio server does not take "headers"'
    ])
  })

  it("bad URLs: malformed, wrong protocol for the transport", () => {
    expect(
      decodeError({
        mcpServers: {
          github: { url: "htp:/x" },
          local: { type: "http", url: "127.0.0.1:8000/mcp" },
          ws: { type: "websocket", url: "http://127.0.0.1/ws" }
        }
      }).message
    ).toBe(
      [
        "invalid config mcp.json:",
        '  - mcpServers.github.url: URL "htp:/x" has protocol htp:; a http URL needs http: or https:',
        '  - mcpServers.local.url: malformed URL "127.0.0.1:8000/mcp": expected an absolute http URL such as http://127.0.0.1:8000/mcp',
        '  - mcpServers.ws.url: URL "http://127.0.0.1/ws" has protocol http:; a websocket URL needs ws: or wss:'
      ].join("\n")
    )
    expect(decodeError({ mcpServers: { x: { url: "not a url" } } }).issues).toEqual([
      'mcpServers.x.url: malformed URL "not a url": expected an absolute http URL such as http://127.0.0.1:8000/mcp'
    ])
  })

  it("wrong types in a stdio server", () => {
    expect(
      decodeError({
        mcpServers: {
          fs: { command: "", args: "--root /tmp", env: { PORT: 8080 }, cwd: 1, lazy: "yes", optional: 1 }
        }
      }).issues
    ).toEqual([
      "mcpServers.fs.command: command must not be empty",
      'mcpServers.fs.args: expected an array of strings, got "--root /tmp"',
      "mcpServers.fs.env.PORT: expected a string, got 8080",
      "mcpServers.fs.cwd: expected a string, got 1",
      'mcpServers.fs.lazy: expected true or false, got "yes"',
      "mcpServers.fs.optional: expected true or false, got 1"
    ])
  })

  it("negative delays and other bad resilience settings, globally and per server", () => {
    expect(
      decodeError({
        resilience: { reconnect: { initialDelay: -100, jitter: 2 }, heartbeat: 5, retries: 3 },
        mcpServers: {
          a: {
            command: "x",
            resilience: {
              call: { timeout: true, maxRetries: 1.5 },
              reconnect: { maxDelay: "soon", backoff: 2 },
              connectTimeout: -1
            }
          }
        }
      }).message
    ).toBe(
      [
        "invalid config mcp.json:",
        "  - resilience.retries: unknown setting; expected one of reconnect, heartbeat, call, breaker, connectTimeout, closeGrace",
        "  - resilience.reconnect.initialDelay: expected a duration of 0 ms or more, got -100",
        "  - resilience.reconnect.jitter: jitter must be between 0 and 1, got 2",
        "  - resilience.heartbeat: expected an object, got 5",
        "  - mcpServers.a.resilience.reconnect.backoff: unknown setting; expected one of initialDelay, factor, maxDelay, fastFor, fastMaxDelay, jitter, maxAttempts, maxElapsed, resetAfter",
        '  - mcpServers.a.resilience.reconnect.maxDelay: "soon" is not a duration; use milliseconds or e.g. "5 seconds"',
        '  - mcpServers.a.resilience.call.timeout: expected milliseconds or a duration string such as "5 seconds", got true',
        "  - mcpServers.a.resilience.call.maxRetries: expected a whole number ≥ 0, got 1.5",
        "  - mcpServers.a.resilience.connectTimeout: expected a duration of 0 ms or more, got -1"
      ].join("\n")
    )
  })

  it("empty server names and names holding the namespace separator", () => {
    expect(decodeError({ mcpServers: { "": { command: "x" }, a__b: { command: "y" } } }).issues).toEqual([
      'mcpServers[""]: server name must not be empty',
      'mcpServers.a__b: server name must not contain the namespace separator "__"'
    ])
    expect(
      decodeError({
        namespaceSeparator: ".",
        mcpServers: { "a.b": { command: "y" }, a__b: { command: "y" } }
      }).issues
    ).toEqual(['mcpServers["a.b"]: server name must not contain the namespace separator "."'])
  })

  it("bad top-level settings", () => {
    expect(
      decodeError({ namespaceSeparator: "", maxConnections: 0, idleTimeToLive: "forever", mcpServers: {} })
        .issues
    ).toEqual([
      "namespaceSeparator: must not be empty",
      "maxConnections: expected a whole number of 1 or more, got 0",
      'idleTimeToLive: "forever" is not a duration; use milliseconds or e.g. "5 seconds"'
    ])
  })

  it("bad tool overrides", () => {
    expect(
      decodeError({
        mcpServers: {
          a: { command: "x", tools: { write: { idempotent: "no", retry: true }, read: true, "": {} } },
          b: { command: "x", tools: ["read"] }
        }
      }).issues
    ).toEqual([
      'mcpServers.a.tools.write.retry: unknown setting; expected "idempotent"',
      'mcpServers.a.tools.write.idempotent: expected true or false, got "no"',
      'mcpServers.a.tools.read: expected an object such as { "idempotent": true }, got true',
      'mcpServers.a.tools[""]: tool name must not be empty',
      "mcpServers.b.tools: expected an object of tools by name, got an array"
    ])
  })

  it("bad placeholders: unset variables, malformed, unclosed, VS Code inputs", () => {
    expect(
      decodeError({
        mcpServers: {
          api: {
            url: "http://localhost:${PORT}/mcp",
            headers: { A: "${1BAD}", B: "${OPEN", C: "${input:token}", D: "${X} ${Y} ${X}" }
          }
        }
      }).issues
    ).toEqual([
      "mcpServers.api.url: environment variable PORT is not set",
      'mcpServers.api.headers.A: malformed placeholder "${1BAD}"; use ${NAME}, ${NAME:-default} or ${tenant.key}',
      'mcpServers.api.headers.B: unclosed placeholder "${OPEN"; use ${NAME}, ${NAME:-default} or ${tenant.key}',
      'mcpServers.api.headers.C: VS Code input variables such as "${input:token}" are not supported; use ${NAME} from the environment',
      "mcpServers.api.headers.D: environment variable X is not set",
      "mcpServers.api.headers.D: environment variable Y is not set"
    ])
  })

  it("a key defined twice", () => {
    expect(
      parseError(`{\n  "mcpServers": {\n    "a": { "command": "x" },\n    "a": { "command": "y" }\n  }\n}`)
        .message
    ).toBe(
      "invalid config mcp.json:\n  - mcpServers.a: defined twice (lines 3 and 4); the second would silently replace the first"
    )
  })

  it("collects every problem across all servers, not just the first", () => {
    const error = parseError(`{
  "mcpServers": {
    "github": { "url": "htp:/x", "headers": { "Authorization": "Bearer \${GITHUB_TOKEN}" } },
    "fs": { "args": ["."] },
    "ok": { "command": "node" },
    "ws": { "transport": "websocket", "url": "ws://127.0.0.1/ws", "lazy": "no" }
  }
}`)
    expect(error.message).toBe(
      [
        "invalid config mcp.json:",
        "  - mcpServers.github.headers.Authorization: environment variable GITHUB_TOKEN is not set",
        '  - mcpServers.github.url: URL "htp:/x" has protocol htp:; a http URL needs http: or https:',
        '  - mcpServers.fs: needs "command" (stdio) or "url"',
        '  - mcpServers.ws.lazy: expected true or false, got "no"'
      ].join("\n")
    )
    expect(error.path).toBe("mcpServers.github.headers.Authorization")
    expect(error.server).toBeUndefined()
  })
})

describe("Config.envOverrides", () => {
  const withEnv = (entries: ReadonlyArray<readonly [string, string]>) =>
    Effect.withConfigProvider(ConfigProvider.fromMap(new Map(entries)))

  it.effect("reads the TETHER_* variables", () =>
    Effect.gen(function* () {
      const env = yield* Config.envOverrides.pipe(
        withEnv([
          ["TETHER_CONFIG", "/etc/tether/mcp.json"],
          ["TETHER_LOG_LEVEL", "debug"],
          ["TETHER_RECONNECT_MAX_ATTEMPTS", "5"],
          ["TETHER_RECONNECT_INITIAL_DELAY_MS", "250"],
          ["TETHER_RECONNECT_MAX_DELAY_MS", "4000"],
          ["TETHER_HEARTBEAT_INTERVAL_MS", "15000"],
          ["TETHER_HEARTBEAT_TIMEOUT_MS", "2000"],
          ["TETHER_CALL_TIMEOUT_MS", "30000"],
          ["TETHER_TOOL_MAX_RETRIES", "0"]
        ])
      )
      expect(env.configPath).toBe("/etc/tether/mcp.json")
      expect(env.logLevel).toBe(LogLevel.Debug)
      expect(env.resilience).toEqual({
        reconnect: { maxAttempts: 5, initialDelay: 250, maxDelay: 4000 },
        heartbeat: { interval: 15000, timeout: 2000 },
        call: { timeout: 30000, maxRetries: 0 }
      })
    })
  )

  it.effect("unset and blank variables give no overrides", () =>
    Effect.gen(function* () {
      const env = yield* Config.envOverrides.pipe(withEnv([["TETHER_CALL_TIMEOUT_MS", "  "]]))
      expect(env).toEqual({ configPath: undefined, logLevel: undefined, resilience: {} })
    })
  )

  it.effect("a bad value fails naming the variable", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        Config.envOverrides.pipe(
          withEnv([
            ["TETHER_CALL_TIMEOUT_MS", "abc"],
            ["TETHER_LOG_LEVEL", "loud"],
            ["TETHER_TOOL_MAX_RETRIES", "-1"]
          ])
        )
      )
      expect(error._tag).toBe("InvalidConfig")
      expect(error.message).toBe(
        [
          "invalid environment:",
          '  - TETHER_LOG_LEVEL: unknown log level "loud"; expected one of all, trace, debug, info, warning, error, fatal, none',
          '  - TETHER_CALL_TIMEOUT_MS: expected a whole number of milliseconds (0 or more), got "abc"',
          '  - TETHER_TOOL_MAX_RETRIES: expected a whole number of retries (0 or more), got "-1"'
        ].join("\n")
      )
      expect(error.path).toBe("TETHER_LOG_LEVEL")
    })
  )
})

describe("Config.load", () => {
  const provider = (entries: ReadonlyArray<readonly [string, string]>) =>
    Effect.withConfigProvider(ConfigProvider.fromMap(new Map(entries)))

  it.scoped("reads a real file, fills ${VAR} from the ConfigProvider, applies TETHER_* overrides", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* fs.makeTempDirectoryScoped()
      const path = `${dir}/mcp.json`
      yield* fs.writeFileString(
        path,
        JSON.stringify({
          resilience: { call: { timeout: 1_000 } },
          mcpServers: {
            api: { url: "https://example.com/mcp", headers: { Authorization: "Bearer ${TOKEN}" } },
            own: { command: "node", resilience: { call: { timeout: 3_000 } } }
          }
        })
      )
      const config = yield* Config.load(path).pipe(
        provider([
          ["TOKEN", "load-secret"],
          ["TETHER_CALL_TIMEOUT_MS", "2000"]
        ])
      )
      expect(config.source).toBe(path)
      const api = server(config, "api")
      expect(api.spec.type === "http" && reveal(api.spec.headers)).toEqual({
        Authorization: "Bearer load-secret"
      })
      expect(api.resilience.call.timeout).toBe(2_000)
      expect(server(config, "own").resilience.call.timeout).toBe(3_000)
    }).pipe(Effect.provide(NodeFileSystem.layer))
  )

  it.scoped("a bad file names the file and every problem", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* fs.makeTempDirectoryScoped()
      const path = `${dir}/mcp.json`
      yield* fs.writeFileString(path, `{ "mcpServers": { "a": { "url": "https://x/\${MISSING}" } } }`)
      const error = yield* Effect.flip(Config.load(path).pipe(provider([])))
      expect(error.message).toBe(
        `invalid config ${path}:\n  - mcpServers.a.url: environment variable MISSING is not set`
      )
      yield* fs.writeFileString(path, `{ "mcpServers": { "a": { "command": "x" }, } `)
      const syntax = yield* Effect.flip(Config.load(path).pipe(provider([])))
      expect(syntax.issues).toEqual([
        `${path}:1:46: not valid JSON: expected "," or "}" after a property value, found the end of the file`
      ])
    }).pipe(Effect.provide(NodeFileSystem.layer))
  )

  it.effect("a missing file", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(Config.load("./no-such-dir/mcp.json"))
      expect(error.message).toBe("config file ./no-such-dir/mcp.json not found")
      expect(error.issues).toEqual(["config file ./no-such-dir/mcp.json not found"])
    }).pipe(Effect.provide(NodeFileSystem.layer))
  )

  it.effect("a bad TETHER_* variable fails the load", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const path = yield* fs.makeTempFileScoped({ suffix: ".json" })
      yield* fs.writeFileString(path, `{ "mcpServers": {} }`)
      const error = yield* Effect.flip(
        Config.load(path).pipe(provider([["TETHER_HEARTBEAT_TIMEOUT_MS", "3s"]]))
      )
      expect(error.issues).toEqual([
        'TETHER_HEARTBEAT_TIMEOUT_MS: expected a whole number of milliseconds (0 or more), got "3s"'
      ])
    }).pipe(Effect.scoped, Effect.provide(NodeFileSystem.layer))
  )
})

describe("Config: unknown fields (the Schema of the file decides what is known)", () => {
  const parseError = (text: string) => failure(Config.parse(text, { source: "mcp.json", env: {} }))

  it("a misspelt server field is rejected with its JSON path and a suggestion", () => {
    const error = parseError(
      `{ "mcpServers": { "files": { "command": "node", "optinal": true, "zzz": 1 } }, "maxConection": 5 }`
    )
    expect(error.issues).toEqual([
      'maxConection: unknown field; did you mean "maxConnections"?',
      'mcpServers.files.optinal: unknown field; did you mean "optional"?',
      "mcpServers.files.zzz: unknown field; expected one of type, transport, command, args, env, cwd, url, headers, auth, tools, resilience, disabled, lazy, optional, trustAnnotations, prefix, description, autoApprove, alwaysAllow"
    ])
    expect(error.server).toBeUndefined()
  })

  it("a misspelt resilience setting gets a suggestion too", () => {
    expect(
      parseError(`{ "mcpServers": { "a": { "command": "x", "resilience": { "cal": { "timout": 5 } } } } }`)
        .issues
    ).toEqual(['mcpServers.a.resilience.cal: unknown setting; did you mean "call"?'])
  })

  it("every field the Schema declares is accepted, including other hosts' ignored ones", () => {
    const config = ok(
      Config.parse(
        JSON.stringify({
          $schema: "https://example.com/mcp.schema.json",
          inputs: [],
          mcpServers: {
            a: {
              command: "node",
              description: "files",
              autoApprove: ["read"],
              alwaysAllow: [],
              lazy: true,
              optional: true,
              trustAnnotations: false,
              disabled: false
            }
          }
        }),
        { env: {} }
      )
    )
    expect(server(config, "a").optional).toBe(true)
  })

  it('"__proto__" as a server name is reserved, whatever the separator', () => {
    for (const separator of ["__", "."]) {
      const error = parseError(
        `{ "namespaceSeparator": "${separator}", "mcpServers": { "__proto__": { "command": "node" } } }`
      )
      expect(error.issues).toEqual([
        'mcpServers.__proto__: server name "__proto__" is reserved; choose another name'
      ])
    }
  })
})

describe("Config: decoding is linear in the number of servers", () => {
  // Quadratic parsing took ~18 s for 4,000 servers (minutes for 20,000); linear takes well
  // under a second. The bound is the test timeout, generous for a loaded 2-core machine;
  // the exact figures are in `npm run bench -- --only 7`.
  it("parses and decodes 20,000 servers", { timeout: 30_000 }, () => {
    const servers: Record<string, unknown> = {}
    for (let i = 0; i < 20_000; i++) servers[`s${i}`] = { command: "node", args: [String(i)] }
    const config = ok(Config.parse(JSON.stringify({ mcpServers: servers }, null, 2), { env: {} }))
    expect(config.servers.length).toBe(20_000)
    expect(config.servers[19_999]?.name).toBe("s19999")
  })
})
