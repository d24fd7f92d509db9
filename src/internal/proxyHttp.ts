/**
 * The Streamable HTTP front of `Proxy`: an `@effect/platform` HTTP app for `/mcp` that
 * checks the API key, the Host and Origin headers (DNS rebinding) and the body size, then
 * hands the request to the SDK's web-standard server transport of its session.
 *
 * @internal
 */
import { HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js"
import { isInitializeRequest, type JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js"
import { Clock, Duration, Effect, Option, Redacted, Schedule } from "effect"
import { createHash, randomUUID, timingSafeEqual } from "node:crypto"
import type { HttpOptions, Proxy } from "../Proxy.js"

const digest = (s: string) => createHash("sha256").update(s).digest()

/**
 * Does an `Authorization` header carry the key? Constant-time (fixed-length digests).
 * The same check as `tether serve`'s, kept as a small function so both can share one.
 *
 * @internal
 */
export const bearerMatches = (expected: Redacted.Redacted<string>, header: string | undefined): boolean => {
  const match = /^Bearer\s+(.+)$/i.exec(header ?? "")
  return match !== null && timingSafeEqual(digest(Redacted.value(expected)), digest(match[1]!.trim()))
}

const LOOPBACK: ReadonlySet<string> = new Set(["127.0.0.1", "localhost", "[::1]", "::1"])

/** The host name of a `Host` header or an origin's authority, without the port. */
const hostnameOf = (authority: string): string => {
  if (authority.startsWith("[")) return authority.slice(0, authority.indexOf("]") + 1).toLowerCase()
  return (authority.split(":")[0] ?? "").toLowerCase()
}

/**
 * DNS rebinding protection: a page on another site that resolves its name to 127.0.0.1
 * still sends its own name in `Host` and `Origin`. Loopback names are always allowed;
 * anything else only when listed (`host` or `host:port`; origins as `scheme://host[:port]`).
 *
 * @internal
 */
export const hostAllowed = (host: string | undefined, allowed: ReadonlyArray<string>): boolean => {
  if (host === undefined || host.length === 0) return false
  const lower = host.toLowerCase()
  return (
    LOOPBACK.has(hostnameOf(lower)) ||
    allowed.some((a) => a.toLowerCase() === lower || a.toLowerCase() === hostnameOf(lower))
  )
}

/** @internal An absent Origin (not a browser) is fine; a present one must be loopback or listed. */
export const originAllowed = (origin: string | undefined, allowed: ReadonlyArray<string>): boolean => {
  if (origin === undefined) return true
  const lower = origin.toLowerCase()
  if (allowed.some((a) => a.toLowerCase() === lower)) return true
  const authority = /^https?:\/\/([^/]+)$/.exec(lower)?.[1]
  return authority !== undefined && LOOPBACK.has(hostnameOf(authority))
}

const rpcError = (status: number, code: number, message: string, headers: Record<string, string> = {}) =>
  HttpServerResponse.unsafeJson({ jsonrpc: "2.0", error: { code, message }, id: null }, { status, headers })

const isInitialize = (body: unknown): boolean =>
  Array.isArray(body) ? body.some((m) => isInitializeRequest(m)) : isInitializeRequest(body)

/** @internal Reads a JSON body within the limit, or answers 413/400. */
const readBody = (request: HttpServerRequest.HttpServerRequest, maxBody: number) =>
  Effect.gen(function* () {
    const declared = Number(request.headers["content-length"] ?? "0")
    if (declared > maxBody) {
      return yield* Effect.fail(
        rpcError(413, -32600, `body of ${declared} bytes exceeds the limit of ${maxBody}`)
      )
    }
    const text = yield* request.text.pipe(
      HttpServerRequest.withMaxBodySize(Option.some(maxBody)),
      Effect.mapError((e) =>
        String(e.cause).includes("maxBytes")
          ? rpcError(413, -32600, `body exceeds the limit of ${maxBody} bytes`)
          : rpcError(400, -32700, `could not read the body: ${e.message}`)
      )
    )
    return yield* Effect.try({
      try: (): unknown => JSON.parse(text),
      catch: (e) => rpcError(400, -32700, `Parse error: ${e instanceof Error ? e.message : String(e)}`)
    })
  })

/** @internal The `/mcp` handler, with its sessions closed when the scope closes. */
export const makeHandler = (proxy: Proxy, options: HttpOptions = {}) =>
  Effect.gen(function* () {
    const maxBody = options.maxBodyBytes ?? 1024 * 1024
    const maxSessions = options.maxSessions ?? 10_000
    const allowedHosts = options.allowedHosts ?? []
    const allowedOrigins = options.allowedOrigins ?? []
    const stateless = options.stateless ?? false
    const transports = new Map<string, WebStandardStreamableHTTPServerTransport>()
    const lastSeen = new Map<string, number>()
    const idleMs = Duration.toMillis(Duration.decode(options.sessionIdleTimeout ?? "24 hours"))
    // A client that vanished without DELETE would hold its session (server, transport,
    // subscriptions) for ever: sessions idle past the limit are closed.
    yield* Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      for (const [id, at] of lastSeen) {
        if (now - at < idleMs) continue
        lastSeen.delete(id)
        const transport = transports.get(id)
        transports.delete(id)
        if (transport !== undefined) yield* Effect.promise(() => transport.close().catch(() => undefined))
      }
    }).pipe(
      Effect.repeat(Schedule.spaced(Duration.millis(Math.max(50, Math.min(60_000, idleMs / 2))))),
      Effect.forkScoped
    )
    yield* Effect.addFinalizer(() =>
      Effect.promise(() => Promise.allSettled([...transports.values()].map((t) => t.close()))).pipe(
        Effect.zipRight(Effect.sync(() => transports.clear()))
      )
    )

    const toWeb = (request: HttpServerRequest.HttpServerRequest, host: string) =>
      new Request(`http://${host}${request.url}`, {
        method: request.method,
        headers: new Headers(Object.entries(request.headers))
      })

    const forward = (
      transport: WebStandardStreamableHTTPServerTransport,
      request: HttpServerRequest.HttpServerRequest,
      host: string,
      body: unknown
    ) =>
      Effect.tryPromise({
        try: () =>
          transport.handleRequest(
            toWeb(request, host),
            body === undefined ? undefined : { parsedBody: body }
          ),
        catch: (e) => rpcError(500, -32603, `tether proxy: ${e instanceof Error ? e.message : String(e)}`)
      }).pipe(Effect.map(HttpServerResponse.fromWeb))

    const handle = Effect.gen(function* () {
      const request = yield* HttpServerRequest.HttpServerRequest
      const host = request.headers["host"]
      if (!hostAllowed(host, allowedHosts)) {
        return rpcError(
          403,
          -32000,
          `Forbidden: Host ${JSON.stringify(host ?? "")} is not allowed (--allowed-host)`
        )
      }
      if (!originAllowed(request.headers["origin"], allowedOrigins)) {
        return rpcError(
          403,
          -32000,
          `Forbidden: Origin ${JSON.stringify(request.headers["origin"])} is not allowed (--allowed-origin)`
        )
      }
      if (options.apiKey !== undefined && !bearerMatches(options.apiKey, request.headers["authorization"])) {
        return rpcError(
          401,
          -32001,
          "Unauthorized: missing or wrong API key (send Authorization: Bearer <key>)",
          {
            "www-authenticate": 'Bearer realm="tether"'
          }
        )
      }
      const body = request.method === "POST" ? yield* readBody(request, maxBody) : undefined

      if (stateless) {
        // Nothing outlives the request: a fresh server and transport answer it, in JSON.
        // No session id generator: the SDK's stateless mode.
        const transport = new WebStandardStreamableHTTPServerTransport({ enableJsonResponse: true })
        const session = yield* proxy.connect(transport, { stateless: true })
        return yield* forward(transport, request, host!, body).pipe(Effect.ensuring(session.close))
      }

      const sessionId = request.headers["mcp-session-id"]
      if (sessionId !== undefined) {
        const transport = transports.get(sessionId)
        if (transport === undefined) return rpcError(404, -32001, "Session not found")
        lastSeen.set(sessionId, yield* Clock.currentTimeMillis)
        return yield* forward(transport, request, host!, body)
      }
      if (request.method !== "POST" || !isInitialize(body as JSONRPCMessage)) {
        return rpcError(400, -32000, "Bad Request: no valid Mcp-Session-Id header (initialize first)")
      }
      if (transports.size >= maxSessions) {
        return rpcError(503, -32000, `the proxy already serves its maximum of ${maxSessions} sessions`, {
          "retry-after": "1"
        })
      }
      const now = yield* Clock.currentTimeMillis
      const transport: WebStandardStreamableHTTPServerTransport =
        new WebStandardStreamableHTTPServerTransport({
          sessionIdGenerator: () => randomUUID(),
          onsessioninitialized: (id) => {
            transports.set(id, transport)
            lastSeen.set(id, now)
          },
          onsessionclosed: (id) => {
            transports.delete(id)
            lastSeen.delete(id)
          }
        })
      yield* proxy.connect(transport)
      return yield* forward(transport, request, host!, body)
    }).pipe(Effect.catchAll((response) => Effect.succeed(response)))

    return { handle, sessions: () => transports.size }
  })
