/**
 * The gateway's routes: auth, body limits, the error → HTTP mapping, health, metrics,
 * OpenAPI, tool calls.
 *
 * @internal
 */
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { AjvJsonSchemaValidator } from "@modelcontextprotocol/sdk/validation/ajv"
import type { JsonSchemaType } from "@modelcontextprotocol/sdk/validation/types"
import { Chunk, Clock, Effect, Option, Redacted, Stream } from "effect"
import { createHash, timingSafeEqual } from "node:crypto"
import * as ConnectionState from "../ConnectionState.js"
import * as Errors from "../Errors.js"
import type { Options } from "../Gateway.js"
import * as McpPool from "../McpPool.js"
import { Prometheus } from "../Prometheus.js"
import { docsPage, document, MAX_TIMEOUT_MS } from "./openapi.js"
import { excerpt, safeMessage } from "./redact.js"

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  HttpServerResponse.unsafeJson(body, { status, headers })

const errorBody = (tag: string, message: string, extra: Record<string, unknown> = {}) => ({
  error: { tag, message, ...extra }
})

export { MAX_TIMEOUT_MS }

/** How much of an oversized chunked body is read (and dropped) so the client gets its 413. */
const DRAIN_BYTES = 16 * 1024 * 1024

/** @internal The longest tool (MCP: 128 characters) or server name the routes match. */
export const MAX_NAME_LENGTH = 256

/** @internal The error → HTTP mapping (documented in Gateway.ts). */
export const httpErrorOf = (
  error: Errors.TetherError,
  now: number = Date.now()
): {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: unknown
} => {
  const base = { server: error.server }
  const message = safeMessage(error)
  switch (error._tag) {
    case "UnknownServer":
    case "UnknownTool":
      return { status: 404, headers: {}, body: errorBody(error._tag, message, base) }
    case "ToolFailed":
      return { status: 200, headers: {}, body: error.result }
    case "ProtocolError":
      return error.code === -32602
        ? {
            status: 422,
            headers: {},
            body: errorBody(error._tag, message, { ...base, code: error.code })
          }
        : {
            status: 502,
            headers: {},
            body: errorBody(error._tag, message, { ...base, code: error.code })
          }
    case "OutcomeUnknown":
      return {
        status: 502,
        headers: {},
        body: errorBody(error._tag, message, {
          ...base,
          tool: error.tool,
          request_id: error.requestId,
          may_have_run: true
        })
      }
    case "RequestTimeout":
      return { status: 504, headers: {}, body: errorBody(error._tag, message, base) }
    case "InvalidConfig":
      return { status: 500, headers: {}, body: errorBody(error._tag, message, base) }
    case "Unauthorized":
    case "AuthorizationRequired":
    case "InvalidResponse":
      return { status: 502, headers: {}, body: errorBody(error._tag, message, base) }
    default: {
      // Recoverable families and SpawnFailed: the server is unavailable right now.
      const retryAfterMs =
        error._tag === "HttpUnavailable"
          ? error.retryAfterMs
          : error._tag === "ServerUnavailable" && error.retryAt !== undefined
            ? Math.max(0, error.retryAt - now)
            : undefined
      const seconds = Math.max(1, Math.ceil((retryAfterMs ?? 1_000) / 1_000))
      return {
        status: 503,
        headers: { "retry-after": String(seconds) },
        body: errorBody(error._tag, message, base)
      }
    }
  }
}

const respondError = (error: Errors.TetherError) =>
  Effect.map(Clock.currentTimeMillis, (now) => {
    const { body, headers, status } = httpErrorOf(error, now)
    return json(status, body, { ...headers })
  })

const digest = (s: string) => createHash("sha256").update(s).digest()

/** Constant-time comparison (of fixed-length digests, so the length leaks nothing either). */
const keyMatches = (expected: Redacted.Redacted<string>, given: string): boolean =>
  timingSafeEqual(digest(Redacted.value(expected)), digest(given))

const validator = new AjvJsonSchemaValidator()

/** @internal */
export const makeApp = (options: Options) => {
  const maxBody = options.maxBodyBytes ?? 1024 * 1024
  const waitReadyMs = options.waitReadyMs ?? 5_000
  const healthOpen = options.healthOpen ?? true
  const apiKey = options.apiKey

  const authorized = (open: boolean) =>
    Effect.gen(function* () {
      if (apiKey === undefined || open) return true
      const request = yield* HttpServerRequest.HttpServerRequest
      const header = request.headers["authorization"] ?? ""
      const match = /^Bearer\s+(.+)$/i.exec(header)
      return match !== null && keyMatches(apiKey, match[1]!.trim())
    })

  const unauthorized = json(
    401,
    errorBody("Unauthorized", "missing or wrong API key (send Authorization: Bearer <key>)"),
    {
      "www-authenticate": 'Bearer realm="tether"'
    }
  )

  const guarded = <E, R>(handler: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>, open = false) =>
    Effect.flatMap(authorized(open), (ok) => (ok ? handler : Effect.succeed(unauthorized)))

  const health = Effect.gen(function* () {
    const pool = yield* McpPool.McpPool
    const now = yield* Clock.currentTimeMillis
    const all = yield* pool.status
    const servers = Object.fromEntries(
      all.map((s) => [
        s.server,
        {
          status: s.state.toLowerCase(),
          optional: s.optional,
          error_count: s.errors,
          reconnect_attempts: Math.max(0, s.connectAttempts - 1),
          reconnects: s.reconnects,
          // Open without the key: never more than a sanitized excerpt of what a server said.
          last_error:
            s.lastError === undefined ? null : excerpt(`${s.lastError.tag}: ${s.lastError.message}`),
          last_check: new Date(now).toISOString(),
          since: new Date(s.since).toISOString()
        }
      ])
    )
    const down = all.filter((s) => !s.optional && s.state !== "Ready").map((s) => s.server)
    return json(down.length === 0 ? 200 : 503, {
      status: down.length === 0 ? "ok" : "unavailable",
      ...(down.length > 0 ? { unavailable: down } : {}),
      servers
    })
  })

  const metrics = Effect.gen(function* () {
    const prometheus = yield* Prometheus
    const text = yield* prometheus.render
    return HttpServerResponse.text(text, { contentType: "text/plain; version=0.0.4; charset=utf-8" })
  })

  // Without a server filter `tools` cannot fail; the type still says UnknownServer.
  const catalog = Effect.flatMap(McpPool.McpPool, (pool) => pool.tools({ timeout: "2 seconds" })).pipe(
    Effect.orDie
  )

  const openapi = Effect.map(catalog, (entries) =>
    json(200, document(entries, { secured: apiKey !== undefined, healthOpen }))
  )

  const docs = Effect.map(catalog, (entries) => HttpServerResponse.html(docsPage(entries)))

  /** Reads the body as a JSON object, or answers 413/400/422 saying what is wrong. */
  const readArgs = Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    const declared = Number(request.headers["content-length"] ?? "0")
    if (declared > maxBody) {
      return yield* Effect.fail(
        json(413, errorBody("PayloadTooLarge", `body of ${declared} bytes exceeds the limit of ${maxBody}`))
      )
    }
    // A chunked body has no length up front. Stopping to read it mid-way destroys the
    // request stream, and the client sees a reset instead of the 413: so the rest is read
    // and dropped, keeping at most `maxBody`. Past `DRAIN_BYTES` more the client is abusive
    // and reading stops (a reset is then its answer).
    const read = yield* request.stream.pipe(
      Stream.runFoldWhile(
        { chunks: Chunk.empty<Uint8Array>(), bytes: 0 },
        (acc) => acc.bytes <= maxBody + DRAIN_BYTES,
        (acc, chunk) => ({
          chunks:
            acc.bytes + chunk.length > maxBody ? Chunk.empty<Uint8Array>() : Chunk.append(acc.chunks, chunk),
          bytes: acc.bytes + chunk.length
        })
      ),
      Effect.mapError((e) => json(400, errorBody("BadRequest", `could not read the body: ${e.message}`)))
    )
    if (read.bytes > maxBody) {
      return yield* Effect.fail(
        json(413, errorBody("PayloadTooLarge", `body of ${read.bytes} bytes exceeds the limit of ${maxBody}`))
      )
    }
    const text = Buffer.concat(Chunk.toReadonlyArray(read.chunks)).toString("utf8")
    if (text.trim() === "") return {}
    const parsed = yield* Effect.try({
      try: (): unknown => JSON.parse(text),
      catch: (e) =>
        json(
          400,
          errorBody(
            "MalformedJson",
            `the body is not valid JSON: ${e instanceof Error ? e.message : String(e)}`
          )
        )
    })
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      return yield* Effect.fail(
        json(422, errorBody("InvalidArguments", "the body must be a JSON object of tool arguments"))
      )
    }
    return parsed as Record<string, unknown>
  })

  /** `x-tether-timeout-ms`, or a ready 400 when it is not a whole number in 1..MAX_TIMEOUT_MS. */
  const timeoutOf = Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    const raw = request.headers["x-tether-timeout-ms"]
    if (raw === undefined) return undefined
    const ms = Number(raw)
    if (raw.trim() === "" || !Number.isInteger(ms) || ms < 1 || ms > MAX_TIMEOUT_MS) {
      return yield* Effect.fail(
        json(
          400,
          errorBody(
            "BadRequest",
            `x-tether-timeout-ms must be a whole number of milliseconds from 1 to ${MAX_TIMEOUT_MS}, got ${JSON.stringify(excerpt(raw, 40))}`
          )
        )
      )
    }
    return ms
  })

  /**
   * Waits at most `waitReady` (and never past the call's deadline) for a server that is
   * not Ready, so a request to a server that is down gets a quick 503 with `Retry-After`
   * instead of holding the client for the whole call deadline. Returns the time waited.
   */
  const awaitReady = (pool: McpPool.McpPool, server: string, timeout: number | undefined) =>
    Effect.scoped(
      Effect.gen(function* () {
        const conn = yield* pool.connection(server)
        const state = yield* conn.state
        if (ConnectionState.isReady(state)) return 0
        const started = yield* Clock.currentTimeMillis
        // A connection that gave up does not try again before `retryAt`: no use waiting.
        const wait =
          state._tag === "Failed" && state.retryAt > started + waitReadyMs
            ? 0
            : Math.min(waitReadyMs, timeout ?? conn.policy.call.timeout)
        const ready = yield* conn.changes.pipe(
          Stream.filter(ConnectionState.isReady),
          Stream.runHead,
          Effect.timeout(wait),
          Effect.option
        )
        const now = yield* Clock.currentTimeMillis
        if (Option.isSome(ready) && Option.isSome(ready.value)) return now - started
        const current = yield* conn.state
        const retryAt =
          current._tag === "Reconnecting"
            ? current.nextRetryAt
            : current._tag === "Failed"
              ? current.retryAt
              : now + 1_000
        const lastError =
          current._tag === "Reconnecting" || current._tag === "Failed" ? current.lastError : undefined
        return yield* new Errors.ServerUnavailable({
          server,
          retryAt: Math.max(retryAt, now + 1_000),
          lastError: lastError === undefined ? undefined : `${lastError._tag}: ${lastError.message}`,
          message:
            `${server} is not ready (${ConnectionState.describe(current)}) after waiting ${now - started} ms` +
            ` (--wait-ready ${waitReadyMs} ms)`
        })
      })
    )

  const callTool = Effect.gen(function* () {
    const pool = yield* McpPool.McpPool
    const params = yield* HttpRouter.params
    const server = params["server"] ?? ""
    const tool = params["tool"] ?? ""
    const timeout = yield* timeoutOf
    const args = yield* readArgs
    const waited = yield* awaitReady(pool, server, timeout)
    const entries = yield* pool.tools({ server, timeout: "5 seconds" })
    const entry = entries.find((e) => e.tool.name === tool)
    if (entry !== undefined) {
      const check = validator.getValidator(entry.tool.inputSchema as JsonSchemaType)(args)
      if (!check.valid) {
        return json(
          422,
          errorBody(
            "InvalidArguments",
            `arguments do not match the input schema of ${tool}: ${check.errorMessage}`,
            { server, tool }
          )
        )
      }
    }
    const result = yield* pool.callTool(server, tool, args, {
      timeout: timeout === undefined ? undefined : Math.max(1, timeout - waited)
    })
    return json(200, result)
  }).pipe(
    // timeoutOf and readArgs fail with a ready response; everything else is a Tether error.
    Effect.catchAll((e) => (HttpServerResponse.isServerResponse(e) ? Effect.succeed(e) : respondError(e)))
  )

  const reconnect = Effect.gen(function* () {
    const pool = yield* McpPool.McpPool
    const params = yield* HttpRouter.params
    yield* pool.reconnect(params["name"] ?? "")
    return json(202, { status: "reconnecting", server: params["name"] })
  }).pipe(Effect.catchAll(respondError))

  const router = HttpRouter.empty.pipe(
    HttpRouter.get("/health", guarded(health, healthOpen)),
    HttpRouter.get("/metrics", guarded(metrics)),
    HttpRouter.get("/openapi.json", guarded(openapi)),
    HttpRouter.get("/docs", guarded(docs)),
    HttpRouter.post("/admin/servers/:name/reconnect", guarded(reconnect)),
    (router) => (options.mcp === undefined ? router : HttpRouter.all(router, "/mcp", options.mcp)),
    HttpRouter.post("/:server/:tool", guarded(callTool)),
    Effect.catchTag("RouteNotFound", () =>
      guarded(Effect.succeed(json(404, errorBody("NotFound", "no such route; see /docs"))))
    )
  )
  // find-my-way caps a path parameter at 100 characters; MCP allows tool names of 128.
  return HttpRouter.withRouterConfig(router, { maxParamLength: MAX_NAME_LENGTH })
}
