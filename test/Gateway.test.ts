/**
 * `tether serve` as a real child process in front of real upstream servers (a stdio
 * fixture it spawns itself, and Streamable HTTP fixtures we kill and restart).
 */
import { Validator } from "@seriousme/openapi-schema-validator"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import { closeSync, mkdtempSync, openSync, readFileSync, writeFileSync } from "node:fs"
import { createServer as createHttpServer, request as httpRequest } from "node:http"
import { createServer as createNetServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { type Fixture, FIXTURE, readLog, spawnFixture, tempLog } from "./support/fixture.js"

const KEY = "test-key-123"

interface Gateway {
  readonly base: string
  readonly child: ChildProcess
  readonly output: () => string
}

const startGateway = (configPath: string, extra: ReadonlyArray<string> = []): Promise<Gateway> =>
  new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ["bin/tether.js", "serve", "--config", configPath, "--port", "0", ...extra],
      {
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...process.env, TETHER_API_KEY: "" }
      }
    )
    let out = ""
    const timer = setTimeout(() => reject(new Error(`gateway did not start: ${out}`)), 20_000)
    const onData = (chunk: Buffer) => {
      out += chunk.toString()
      const match = /LISTENING (\S+)/.exec(out)
      if (match !== null) {
        clearTimeout(timer)
        resolve({ base: `http://${match[1]}`, child, output: () => out })
      }
    }
    child.stdout.on("data", onData)
    child.stderr.on("data", onData)
    child.once("exit", (code) => {
      clearTimeout(timer)
      reject(new Error(`gateway exited with ${code}: ${out}`))
    })
  })

const stop = (child: ChildProcess) =>
  new Promise<number | null>((resolve) => {
    if (child.exitCode !== null) return resolve(child.exitCode)
    child.once("exit", (code) => resolve(code))
    child.kill("SIGTERM")
  })

const auth = { authorization: `Bearer ${KEY}` }

const post = (base: string, path: string, body: string, headers: Record<string, string> = auth) =>
  fetch(`${base}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body
  })

const waitFor = async (check: () => Promise<boolean>, timeoutMs = 15_000) => {
  const start = Date.now()
  while (!(await check())) {
    if (Date.now() - start > timeoutMs) throw new Error("condition not reached")
    await new Promise((r) => setTimeout(r, 100))
  }
}

describe("tether serve", () => {
  const scope = Effect.runSync(Scope.make())
  let http: Fixture
  let fragile: Fixture
  let gateway: Gateway
  let httpLog: string

  beforeAll(async () => {
    httpLog = tempLog()
    http = await Effect.runPromise(spawnFixture("http", { log: httpLog }).pipe(Scope.extend(scope)))
    fragile = await Effect.runPromise(spawnFixture("http").pipe(Scope.extend(scope)))
    const dir = mkdtempSync(join(tmpdir(), "tether-gw-"))
    const config = join(dir, "mcp.json")
    writeFileSync(
      config,
      JSON.stringify({
        mcpServers: {
          local: { command: process.execPath, args: [FIXTURE, "--transport", "stdio"] },
          remote: {
            url: `http://127.0.0.1:${http.port}/mcp`,
            resilience: { heartbeat: { interval: 300, timeout: 300 } }
          },
          fragile: {
            url: `http://127.0.0.1:${fragile.port}/mcp`,
            optional: true,
            resilience: {
              reconnect: { maxAttempts: 1 },
              breaker: { cooldown: 60_000 },
              heartbeat: { interval: 300, timeout: 300 }
            }
          }
        }
      })
    )
    gateway = await startGateway(config, ["--api-key", KEY, "--max-body", "2048"])
    await waitFor(async () => (await fetch(`${gateway.base}/health`)).status === 200)
  }, 60_000)

  afterAll(async () => {
    if (gateway !== undefined) expect(await stop(gateway.child)).toBe(0)
    await Effect.runPromise(Scope.close(scope, Exit.void))
  })

  it("calls a tool: arguments as the JSON body, the result as JSON", async () => {
    const res = await post(gateway.base, "/local/echo", JSON.stringify({ text: "hi" }))
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ content: [{ type: "text", text: "hi" }] })
    const remote = await post(gateway.base, "/remote/echo", JSON.stringify({ text: "there" }))
    expect(await remote.json()).toEqual({ content: [{ type: "text", text: "there" }] })
  })

  it("maps errors: tool error 200, bad args 422, unknown 404, malformed 400, oversize 413, timeout 504", async () => {
    const failed = await post(gateway.base, "/local/fail", JSON.stringify({ message: "boom" }))
    expect(failed.status).toBe(200)
    expect(await failed.json()).toEqual({ content: [{ type: "text", text: "boom" }], isError: true })

    const bad = await post(gateway.base, "/local/echo", JSON.stringify({ text: 42 }))
    expect(bad.status).toBe(422)
    expect(((await bad.json()) as { error: { tag: string; message: string } }).error.message).toContain(
      "text"
    )

    const notObject = await post(gateway.base, "/local/echo", "[1,2]")
    expect(notObject.status).toBe(422)

    const unknownServer = await post(gateway.base, "/nope/echo", "{}")
    expect(unknownServer.status).toBe(404)
    expect(((await unknownServer.json()) as { error: { tag: string } }).error.tag).toBe("UnknownServer")

    const unknownTool = await post(gateway.base, "/local/nope", "{}")
    expect(unknownTool.status).toBe(404)
    expect(((await unknownTool.json()) as { error: { tag: string } }).error.tag).toBe("UnknownTool")

    const malformed = await post(gateway.base, "/local/echo", '{"text": ')
    expect(malformed.status).toBe(400)
    expect(((await malformed.json()) as { error: { message: string } }).error.message).toContain(
      "not valid JSON"
    )

    const oversize = await post(gateway.base, "/local/echo", JSON.stringify({ text: "x".repeat(5_000) }))
    expect(oversize.status).toBe(413)

    const slow = await post(gateway.base, "/local/slow", JSON.stringify({ ms: 3_000 }), {
      ...auth,
      "x-tether-timeout-ms": "300"
    })
    expect(slow.status).toBe(504)

    // The server keeps serving after all of that.
    const after = await post(gateway.base, "/local/echo", JSON.stringify({ text: "still here" }))
    expect(after.status).toBe(200)
  })

  it("OutcomeUnknown is a 502 that says the call may have run", async () => {
    const call = post(gateway.base, "/remote/count", JSON.stringify({ id: "gw-1", holdMs: 3_000 }))
    await waitFor(async () => readLog(httpLog).includes("count gw-1"), 5_000)
    await Effect.runPromise(http.kill("SIGKILL"))
    const res = await call
    expect(res.status).toBe(502)
    const body = (await res.json()) as { error: { tag: string; may_have_run: boolean } }
    expect(body.error.tag).toBe("OutcomeUnknown")
    expect(body.error.may_have_run).toBe(true)
    await Effect.runPromise(http.start)
    await waitFor(async () => (await fetch(`${gateway.base}/health`)).status === 200)
  })

  it("/health is 503 naming a required server that is down, and 200 again after it is back", async () => {
    await Effect.runPromise(http.kill("SIGKILL"))
    await waitFor(async () => (await fetch(`${gateway.base}/health`)).status === 503)
    const down = (await (await fetch(`${gateway.base}/health`)).json()) as {
      unavailable: Array<string>
      servers: Record<string, { status: string; reconnect_attempts: number; last_error: string | null }>
    }
    expect(down.unavailable).toEqual(["remote"])
    expect(down.servers["remote"]?.status).not.toBe("ready")
    expect(down.servers["remote"]?.last_error).not.toBeNull()
    await waitFor(async () => {
      const h = (await (await fetch(`${gateway.base}/health`)).json()) as typeof down
      return (h.servers["remote"]?.reconnect_attempts ?? 0) >= 2
    })
    await Effect.runPromise(http.start)
    await waitFor(async () => (await fetch(`${gateway.base}/health`)).status === 200)
    const up = (await (await fetch(`${gateway.base}/health`)).json()) as typeof down
    expect(up.servers["remote"]?.status).toBe("ready")
    expect(Object.keys(up.servers["remote"] ?? {})).toEqual(
      expect.arrayContaining([
        "status",
        "error_count",
        "reconnect_attempts",
        "last_error",
        "last_check",
        "since"
      ])
    )
  })

  it("an optional server that gave up answers 503 with Retry-After, and does not fail /health", async () => {
    await Effect.runPromise(fragile.kill("SIGKILL"))
    await waitFor(async () => {
      const h = (await (await fetch(`${gateway.base}/health`)).json()) as {
        servers: Record<string, { status: string }>
      }
      return h.servers["fragile"]?.status === "failed"
    })
    expect((await fetch(`${gateway.base}/health`)).status).toBe(200)
    const res = await post(gateway.base, "/fragile/echo", JSON.stringify({ text: "x" }))
    expect(res.status).toBe(503)
    expect(Number(res.headers.get("retry-after"))).toBeGreaterThanOrEqual(1)
    expect(((await res.json()) as { error: { tag: string } }).error.tag).toBe("ServerUnavailable")
  })

  it("admin reconnect drops the session and connects again", async () => {
    const before = readLog(httpLog).filter((l) => l.startsWith("initialize")).length
    const res = await post(gateway.base, "/admin/servers/remote/reconnect", "")
    expect(res.status).toBe(202)
    await waitFor(
      async () => readLog(httpLog).filter((l) => l.startsWith("initialize")).length === before + 1
    )
    expect((await post(gateway.base, "/remote/echo", JSON.stringify({ text: "again" }))).status).toBe(200)
    expect((await post(gateway.base, "/admin/servers/nope/reconnect", "")).status).toBe(404)
  })

  it("the API key guards everything but /health; 401 carries WWW-Authenticate", async () => {
    for (const [method, path] of [
      ["POST", "/local/echo"],
      ["GET", "/metrics"],
      ["GET", "/openapi.json"],
      ["GET", "/docs"],
      ["POST", "/admin/servers/local/reconnect"],
      ["GET", "/no/such/route"]
    ] as const) {
      for (const headers of [{}, { authorization: "Bearer wrong" }, { authorization: `Basic ${KEY}` }]) {
        const res = await fetch(`${gateway.base}${path}`, {
          method,
          headers,
          ...(method === "POST" ? { body: "{}" } : {})
        })
        expect(res.status, `${method} ${path}`).toBe(401)
        expect(res.headers.get("www-authenticate")).toContain("Bearer")
      }
    }
    expect((await fetch(`${gateway.base}/health`)).status).toBe(200)
  })

  it("/openapi.json is a valid OpenAPI 3.x document listing every tool; /docs renders", async () => {
    const doc = (await (await fetch(`${gateway.base}/openapi.json`, { headers: auth })).json()) as {
      openapi: string
      paths: Record<string, { post?: { requestBody?: unknown } }>
    }
    const result = await new Validator().validate(doc as unknown as Parameters<Validator["validate"]>[0])
    expect(result.errors ?? []).toEqual([])
    expect(result.valid).toBe(true)
    expect(doc.openapi).toMatch(/^3\./)
    for (const tool of ["echo", "slow", "count", "fail"]) {
      expect(doc.paths[`/local/${tool}`]?.post?.requestBody).toBeDefined()
      expect(doc.paths[`/remote/${tool}`]?.post?.requestBody).toBeDefined()
    }
    const docs = await fetch(`${gateway.base}/docs`, { headers: auth })
    expect(docs.status).toBe(200)
    expect(await docs.text()).toContain("POST /local/echo")
  })

  it("/metrics is Prometheus text with per-server and per-tool series and no tenant labels", async () => {
    const text = await (await fetch(`${gateway.base}/metrics`, { headers: auth })).text()
    expect(text).toMatch(/tether_calls_total\{server="local",tool="echo",outcome="ok"[^}]*\} \d+/)
    expect(text).toMatch(/tether_calls_total\{server="local",tool="fail",outcome="tool_error"[^}]*\} \d+/)
    expect(text).toMatch(/tether_connection_state\{server="remote",state="Ready"[^}]*\} 1/)
    expect(text).toMatch(/tether_reconnects_total\{server="remote",reason="[A-Za-z]+"[^}]*\} \d+/)
    expect(text).toMatch(/tether_call_duration_seconds_bucket\{server="local",tool="echo"/)
    expect(text).toMatch(/tether_connect_attempts_total\{server="fragile",outcome="error"/)
    expect(text).not.toMatch(/tenant|session_id|request_id/)
    // No secret ever reaches the logs.
    expect(gateway.output()).not.toContain(KEY)
  })
})

/** Free loopback port (nothing listens there after this resolves). */
const freeTcpPort = () =>
  new Promise<number>((resolvePort) => {
    const server = createNetServer().listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() => resolvePort(typeof address === "object" && address !== null ? address.port : 0))
    })
  })

/** `tether serve` with stdout and stderr redirected to a file (not a TTY, not a pipe). */
const startGatewayToFile = async (
  configPath: string,
  extra: ReadonlyArray<string>
): Promise<Gateway & { readonly logFile: string }> => {
  const logFile = join(mkdtempSync(join(tmpdir(), "tether-gw-log-")), "out.log")
  const fd = openSync(logFile, "w")
  const child = spawn(
    process.execPath,
    ["bin/tether.js", "serve", "--config", configPath, "--port", "0", ...extra],
    { stdio: ["ignore", fd, fd], env: { ...process.env, TETHER_API_KEY: "" } }
  )
  closeSync(fd)
  const output = () => readFileSync(logFile, "utf8")
  const started = Date.now()
  while (!/LISTENING (\S+)/.test(output())) {
    if (child.exitCode !== null) throw new Error(`gateway exited with ${child.exitCode}: ${output()}`)
    if (Date.now() - started > 20_000) {
      child.kill("SIGKILL")
      throw new Error(`gateway did not start: ${output()}`)
    }
    await new Promise((r) => setTimeout(r, 50))
  }
  return { base: `http://${/LISTENING (\S+)/.exec(output())![1]}`, child, output, logFile }
}

/** POSTs a chunked body (no content-length) of `chunks` × 1 KiB; resolves with the status. */
const postChunked = (base: string, path: string, chunks: number, headers: Record<string, string>) =>
  new Promise<number>((resolveStatus, reject) => {
    const request = httpRequest(`${base}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", "transfer-encoding": "chunked", ...headers }
    })
    request.on("response", (res) => {
      res.resume()
      resolveStatus(res.statusCode ?? 0)
    })
    request.on("error", reject)
    const piece = `{"text":"${"x".repeat(1_000)}`
    let sent = 0
    const pump = () => {
      while (sent < chunks) {
        sent += 1
        if (!request.write(sent === 1 ? piece : "x".repeat(1_024))) return void request.once("drain", pump)
      }
      request.end('"}')
    }
    pump()
  })

const SECRET_PASSWORD = "s3cretpw-9f2"
const UPSTREAM_TOKEN = "sk-live-UPSTREAMTOKEN123"

describe("tether serve: hostile input and operations", () => {
  const scope = Effect.runSync(Scope.make())
  let gateway: Gateway & { readonly logFile: string }
  let upstream: ReturnType<typeof createHttpServer>

  beforeAll(async () => {
    // An "MCP server" whose every answer is a 500 with a huge error page quoting a secret.
    upstream = createHttpServer((req, res) => {
      req.resume()
      req.on("end", () =>
        res
          .writeHead(500, { "content-type": "text/plain" })
          .end(
            `\u001b[31mboom\u001b[0m Authorization: Bearer ${UPSTREAM_TOKEN}\n${"stack line\n".repeat(20_000)}`
          )
      )
    })
    await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", () => r()))
    const upstreamPort = (upstream.address() as { port: number }).port
    const dir = mkdtempSync(join(tmpdir(), "tether-gw2-"))
    const config = join(dir, "mcp.json")
    writeFileSync(
      config,
      JSON.stringify({
        mcpServers: {
          local: { command: process.execPath, args: [FIXTURE, "--transport", "stdio"] },
          down: { url: `http://127.0.0.1:${await freeTcpPort()}/mcp`, optional: true },
          sec: {
            url: `http://alice:${SECRET_PASSWORD}@127.0.0.1:${await freeTcpPort()}/mcp`,
            optional: true
          },
          upstream: { url: `http://127.0.0.1:${upstreamPort}/mcp`, optional: true }
        }
      })
    )
    gateway = await startGatewayToFile(config, ["--no-auth", "--max-body", "2048", "--wait-ready", "1000"])
    await waitFor(async () => (await fetch(`${gateway.base}/health`)).status === 200)
  }, 60_000)

  afterAll(async () => {
    if (gateway !== undefined) expect(await stop(gateway.child)).toBe(0)
    await new Promise((r) => upstream.close(r))
    await Effect.runPromise(Scope.close(scope, Exit.void))
  })

  it("x-tether-timeout-ms outside 1..3600000 (or not a number) is a 400 naming the header", async () => {
    for (const value of ["1e12", "0", "-5", "abc", "3600001", "1.5"]) {
      const res = await post(gateway.base, "/local/echo", JSON.stringify({ text: "x" }), {
        "x-tether-timeout-ms": value
      })
      expect(res.status, value).toBe(400)
      expect(((await res.json()) as { error: { message: string } }).error.message).toContain(
        "x-tether-timeout-ms"
      )
    }
    const ok = await post(gateway.base, "/local/echo", JSON.stringify({ text: "x" }), {
      "x-tether-timeout-ms": "3600000"
    })
    expect(ok.status).toBe(200)
    expect(gateway.output()).not.toContain("TimeoutOverflowWarning")
  })

  it("a server that is not Ready answers 503 with Retry-After after --wait-ready, not 504 after the deadline", async () => {
    const started = Date.now()
    const res = await post(gateway.base, "/down/echo", JSON.stringify({ text: "x" }), {})
    const elapsed = Date.now() - started
    expect(res.status).toBe(503)
    expect(Number(res.headers.get("retry-after"))).toBeGreaterThanOrEqual(1)
    expect(((await res.json()) as { error: { tag: string } }).error.tag).toBe("ServerUnavailable")
    expect(elapsed).toBeGreaterThanOrEqual(900)
    expect(elapsed).toBeLessThan(10_000)
    // A shorter deadline bounds the wait too.
    const quick = Date.now()
    const short = await post(gateway.base, "/down/echo", JSON.stringify({ text: "x" }), {
      "x-tether-timeout-ms": "200"
    })
    expect(short.status).toBe(503)
    expect(Date.now() - quick).toBeLessThan(900)
  })

  it("a password in a server URL never shows in /health, error bodies, /metrics or the logs", async () => {
    await waitFor(async () => {
      const h = (await (await fetch(`${gateway.base}/health`)).json()) as {
        servers: Record<string, { last_error: string | null }>
      }
      return h.servers["sec"]?.last_error !== null && h.servers["sec"]?.last_error !== undefined
    })
    const health = await (await fetch(`${gateway.base}/health`)).text()
    expect(health).toContain("127.0.0.1")
    const call = await (await post(gateway.base, "/sec/echo", JSON.stringify({ text: "x" }), {})).text()
    const metrics = await (await fetch(`${gateway.base}/metrics`)).text()
    for (const text of [health, call, metrics, gateway.output()]) {
      expect(text).not.toContain(SECRET_PASSWORD)
    }
  })

  it("an upstream error body shows as a bounded excerpt with its secrets and escapes removed", async () => {
    await waitFor(async () => {
      const h = (await (await fetch(`${gateway.base}/health`)).json()) as {
        servers: Record<string, { last_error: string | null }>
      }
      return (h.servers["upstream"]?.last_error ?? "").includes("boom")
    })
    const health = (await (await fetch(`${gateway.base}/health`)).json()) as {
      servers: Record<string, { last_error: string }>
    }
    const lastError = health.servers["upstream"]!.last_error
    const call = (await (await post(gateway.base, "/upstream/echo", "{}", {})).json()) as {
      error: { message: string }
    }
    for (const text of [lastError, call.error.message]) {
      expect(text.length).toBeLessThanOrEqual(1_100)
      expect(text).not.toContain(UPSTREAM_TOKEN)
      expect(text).not.toContain("\u001b")
    }
    expect(gateway.output()).not.toContain(UPSTREAM_TOKEN)
  })

  it("with stdout redirected to a file, serve logs JSON lines", async () => {
    await waitFor(async () => gateway.output().includes("local: Ready"))
    const lines = gateway
      .output()
      .split("\n")
      .filter((l) => l.startsWith("{"))
    const ready = lines.map((l) => JSON.parse(l) as { message: string; logLevel: string })
    expect(ready).toContainEqual(expect.objectContaining({ message: expect.stringMatching(/^local: Ready/) }))
    expect(ready.every((l) => typeof l.logLevel === "string")).toBe(true)
  })

  it("a chunked body over --max-body is a 413, not a reset connection", async () => {
    expect(await postChunked(gateway.base, "/local/echo", 64, {})).toBe(413)
    // Under the limit, chunked works as before.
    expect(await postChunked(gateway.base, "/local/echo", 1, {})).toBe(200)
  })

  it("a tool with a 110-character name is listed in /openapi.json and callable", async () => {
    const name = `t${"o".repeat(108)}l`
    expect(name).toHaveLength(110)
    expect((await post(gateway.base, "/local/add_tool", JSON.stringify({ name }), {})).status).toBe(200)
    await waitFor(async () => {
      const doc = (await (await fetch(`${gateway.base}/openapi.json`)).json()) as { paths: object }
      return `/local/${name}` in doc.paths
    })
    const res = await post(gateway.base, `/local/${name}`, "{}", {})
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ content: [{ type: "text", text: name }] })
  })
})

/** Runs `tether serve` to its exit (it must exit on its own; killed after 50 s). */
const serveOnce = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  new Promise<{ code: number | null; out: string; err: string }>((resolveRun) => {
    const child = spawn(process.execPath, ["bin/tether.js", "serve", ...args], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, TETHER_API_KEY: "", ...env }
    })
    let out = ""
    let err = ""
    child.stdout.on("data", (c: Buffer) => (out += c.toString()))
    child.stderr.on("data", (c: Buffer) => (err += c.toString()))
    const timer = setTimeout(() => child.kill("SIGKILL"), 50_000)
    child.once("close", (code) => {
      clearTimeout(timer)
      resolveRun({ code, out, err })
    })
  })

describe.concurrent("tether serve: refusing to start", { timeout: 120_000 }, () => {
  let config: string
  beforeAll(() => {
    const dir = mkdtempSync(join(tmpdir(), "tether-gw3-"))
    config = join(dir, "mcp.json")
    writeFileSync(
      config,
      JSON.stringify({ mcpServers: { local: { command: process.execPath, args: [FIXTURE] } } })
    )
  })

  it("an empty --api-key (an unset variable) or TETHER_API_KEY exits 2 unless --no-auth", async () => {
    const [flag, env] = await Promise.all([
      serveOnce(["--config", config, "--port", "0", "--api-key", ""]),
      serveOnce(["--config", config, "--port", "0"], { TETHER_API_KEY: "" })
    ])
    for (const run of [flag, env]) {
      expect(run.code).toBe(2)
      expect(run.err.trim().split("\n")).toHaveLength(1)
      expect(run.err).toMatch(/empty.*--no-auth/)
      expect(run.out).not.toContain("LISTENING")
    }
  })

  it("a bad config and a busy port exit 2 with one line and no stack trace", async () => {
    const busy = createNetServer()
    await new Promise<void>((r) => busy.listen(0, "127.0.0.1", () => r()))
    const port = (busy.address() as { port: number }).port
    const bad = join(tmpdir(), `tether-missing-${process.pid}.json`)
    const [missing, inUse] = await Promise.all([
      serveOnce(["--config", bad, "--port", "0", "--no-auth"]),
      serveOnce(["--config", config, "--port", String(port), "--no-auth"])
    ])
    busy.close()
    expect(missing.code).toBe(2)
    expect(missing.err.trim().split("\n")).toHaveLength(1)
    expect(missing.err).toContain("not found")
    expect(inUse.code).toBe(2)
    expect(inUse.err.trim().split("\n")).toHaveLength(1)
    expect(inUse.err).toContain(`port ${port}`)
    for (const run of [missing, inUse]) expect(run.err).not.toMatch(/^ {4}at /m)
  })

  it("no key on a non-loopback address warns on stderr", async () => {
    // 192.0.2.1 (TEST-NET-1) is not this machine's: the warning comes first, then a one-line listen failure.
    const run = await serveOnce(["--config", config, "--port", "0", "--host", "192.0.2.1", "--no-auth"])
    expect(run.err).toMatch(/^WARNING: listening on 192\.0\.2\.1 without an API key/m)
    expect(run.code).toBe(2)
    expect(run.err).toContain("192.0.2.1")
  })
})

describe("tether serve --api-key-file", () => {
  it("reads the key from a file: 401 without it, 200 with it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tether-gw4-"))
    const config = join(dir, "mcp.json")
    const keyFile = join(dir, "key")
    writeFileSync(
      config,
      JSON.stringify({ mcpServers: { local: { command: process.execPath, args: [FIXTURE] } } })
    )
    writeFileSync(keyFile, "file-key-456\n")
    const gw = await startGateway(config, ["--api-key-file", keyFile])
    try {
      expect((await post(gw.base, "/local/echo", JSON.stringify({ text: "x" }), {})).status).toBe(401)
      const ok = await post(gw.base, "/local/echo", JSON.stringify({ text: "x" }), {
        authorization: "Bearer file-key-456"
      })
      expect(ok.status).toBe(200)
    } finally {
      expect(await stop(gw.child)).toBe(0)
    }
  })
})
