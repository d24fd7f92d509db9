/**
 * A real OAuth 2.1 authorization server (`oidc-provider`, with its dev interactions) and
 * an MCP server (the SDK's, Streamable HTTP) that accepts only the JWT access tokens it
 * issues, both on 127.0.0.1. Every token the authorization server issues is recorded, so
 * tests can grep logs and files for them; token requests are counted.
 */
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js"
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js"
import { Effect, type Scope } from "effect"
import { createLocalJWKSet, exportJWK, generateKeyPair, jwtVerify, type JWK } from "jose"
import { randomUUID } from "node:crypto"
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import Provider from "oidc-provider"
import { z } from "zod"

export interface OAuthWorld {
  readonly issuer: string
  readonly mcpUrl: string
  /** Every access and refresh token and client secret the authorization server sent. */
  readonly issued: Set<string>
  /** POST /token requests so far (any grant). */
  readonly tokenRequests: () => number
  /** When each POST /token arrived (epoch ms). */
  readonly tokenTimes: ReadonlyArray<number>
  /** Tool calls the MCP server executed. */
  readonly executed: () => number
  /** 401s the MCP server answered. */
  readonly refused: () => number
  /**
   * Revokes every grant: refresh tokens stop working, and the MCP server refuses the access
   * tokens issued so far (as a resource server that introspects would).
   */
  readonly revokeAll: () => Promise<void>
  /** The MCP server refuses every access token issued so far (the grants stay valid). */
  readonly rejectIssued: () => void
  /** Answer token requests with 429 + Retry-After for the next `count` requests. */
  readonly rateLimit: (count: number, retryAfterSeconds: number) => void
}

const listen = (server: Server) =>
  Effect.async<number>((resume) => {
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      resume(Effect.succeed(typeof address === "object" && address !== null ? address.port : 0))
    })
  })

const close = (server: Server) =>
  Effect.async<void>((resume) => {
    server.close(() => resume(Effect.void))
    server.closeAllConnections()
  })

/** Captures a response body (the token endpoint's JSON) as it is sent. */
const capture = (res: ServerResponse, onBody: (body: string) => void) => {
  const chunks: Array<Buffer> = []
  const write = res.write.bind(res)
  const end = res.end.bind(res)
  res.write = ((chunk: unknown, ...rest: Array<never>) => {
    if (typeof chunk === "string" || chunk instanceof Uint8Array) chunks.push(Buffer.from(chunk))
    return write(chunk as string, ...rest)
  }) as typeof res.write
  res.end = ((chunk?: unknown, ...rest: Array<never>) => {
    if (typeof chunk === "string" || chunk instanceof Uint8Array) chunks.push(Buffer.from(chunk))
    onBody(Buffer.concat(chunks).toString("utf8"))
    return end(chunk as string, ...rest)
  }) as typeof res.end
}

export const makeOAuthWorld = (
  options: { readonly accessTokenTtl?: number } = {}
): Effect.Effect<OAuthWorld, never, Scope.Scope> =>
  Effect.gen(function* () {
    const ttl = options.accessTokenTtl ?? 2
    const issued = new Set<string>()
    let tokenRequests = 0
    const tokenTimes: Array<number> = []
    /** Access tokens the MCP server refuses although they verify (revoked). */
    const revoked = new Set<string>()
    let executed = 0
    let refused = 0
    let limited = { count: 0, retryAfter: 1 }

    // --- authorization server -----------------------------------------------------------
    const asServer = createServer()
    const asPort = yield* listen(asServer)
    const issuer = `http://127.0.0.1:${asPort}`
    const mcpServerHttp = createServer()
    const mcpPort = yield* listen(mcpServerHttp)
    const mcpUrl = `http://127.0.0.1:${mcpPort}/mcp`

    const { privateKey, publicKey } = yield* Effect.promise(() =>
      generateKeyPair("ES256", { extractable: true })
    )
    const privateJwk: JWK = {
      ...(yield* Effect.promise(() => exportJWK(privateKey))),
      kid: "k1",
      alg: "ES256",
      use: "sig"
    }
    const publicJwk: JWK = {
      ...(yield* Effect.promise(() => exportJWK(publicKey))),
      kid: "k1",
      alg: "ES256",
      use: "sig"
    }

    const provider = new Provider(issuer, {
      jwks: { keys: [privateJwk] },
      features: {
        devInteractions: { enabled: true },
        registration: { enabled: true },
        revocation: { enabled: true },
        clientCredentials: { enabled: true },
        resourceIndicators: {
          enabled: true,
          defaultResource: () => mcpUrl,
          useGrantedResource: () => true,
          getResourceServerInfo: () => ({
            scope: "mcp",
            audience: mcpUrl,
            accessTokenTTL: ttl,
            accessTokenFormat: "jwt",
            jwt: { sign: { alg: "ES256" } }
          })
        }
      },
      scopes: ["openid", "offline_access", "mcp"],
      clientDefaults: { id_token_signed_response_alg: "ES256" },
      issueRefreshToken: (_ctx: unknown, client: { grantTypeAllowed: (g: string) => boolean }) =>
        client.grantTypeAllowed("refresh_token"),
      ttl: { AccessToken: ttl, RefreshToken: 3600, Grant: 3600, Session: 3600, Interaction: 600 },
      clients: [
        {
          client_id: "machine",
          client_secret: "machine-secret-0123456789abcdef0123456789",
          grant_types: ["client_credentials"],
          response_types: [],
          redirect_uris: [],
          token_endpoint_auth_method: "client_secret_basic"
        }
      ]
    })
    provider.proxy = false
    const callback = provider.callback()
    asServer.on("request", (req: IncomingMessage, res: ServerResponse) => {
      const path = (req.url ?? "").split("?")[0]
      if (req.method === "POST" && path === "/token") {
        tokenRequests += 1
        tokenTimes.push(Date.now())
        if (limited.count > 0) {
          limited = { ...limited, count: limited.count - 1 }
          res.writeHead(429, {
            "content-type": "application/json",
            "retry-after": String(limited.retryAfter)
          })
          res.end(JSON.stringify({ error: "slow_down" }))
          return
        }
        capture(res, (body) => {
          try {
            const json = JSON.parse(body) as Record<string, unknown>
            for (const key of ["access_token", "refresh_token", "id_token"]) {
              if (typeof json[key] === "string") issued.add(json[key])
            }
          } catch {
            // Not JSON: nothing issued.
          }
        })
      }
      if (req.method === "POST" && path === "/reg") {
        capture(res, (body) => {
          try {
            const json = JSON.parse(body) as Record<string, unknown>
            for (const key of ["client_secret", "registration_access_token"]) {
              if (typeof json[key] === "string") issued.add(json[key])
            }
          } catch {
            // Not JSON.
          }
        })
      }
      void callback(req, res)
    })
    issued.add("machine-secret-0123456789abcdef0123456789")

    // --- MCP server that checks the tokens ----------------------------------------------
    const jwks = createLocalJWKSet({ keys: [publicJwk] })
    const prmPath = "/.well-known/oauth-protected-resource/mcp"
    const challenge = `Bearer error="invalid_token", resource_metadata="http://127.0.0.1:${mcpPort}${prmPath}"`
    const transports = new Map<string, StreamableHTTPServerTransport>()
    const newServer = () => {
      const server = new McpServer({ name: "oauth-fixture", version: "1.0.0" })
      server.registerTool(
        "echo",
        {
          description: "Echoes its input",
          inputSchema: { text: z.string() },
          annotations: { idempotentHint: true }
        },
        ({ text }) => {
          executed += 1
          return { content: [{ type: "text", text }] }
        }
      )
      server.registerTool(
        "append",
        { description: "Not idempotent", inputSchema: { text: z.string() } },
        ({ text }) => {
          executed += 1
          return { content: [{ type: "text", text: `appended ${text}` }] }
        }
      )
      return server
    }
    mcpServerHttp.on("request", (req: IncomingMessage, res: ServerResponse) => {
      void (async () => {
        const url = new URL(req.url ?? "/", mcpUrl)
        if (url.pathname === prmPath) {
          res.writeHead(200, { "content-type": "application/json" })
          res.end(
            JSON.stringify({ resource: mcpUrl, authorization_servers: [issuer], scopes_supported: ["mcp"] })
          )
          return
        }
        const header = req.headers.authorization ?? ""
        const token = /^Bearer (.+)$/i.exec(header)?.[1]
        const valid =
          token !== undefined &&
          // `iat`/`exp` are whole seconds: without a second of leeway a "2 s" token issued at
          // x.9 s would live 1.1 s, and no client could keep to the lifetime it was told.
          (await jwtVerify(token, jwks, { issuer, audience: mcpUrl, clockTolerance: 1 }).then(
            () => !revoked.has(token),
            () => false
          ))
        if (!valid) {
          refused += 1
          res.writeHead(401, { "www-authenticate": challenge, "content-type": "application/json" })
          res.end(JSON.stringify({ error: "invalid_token" }))
          return
        }
        const sessionId = req.headers["mcp-session-id"]
        let transport = typeof sessionId === "string" ? transports.get(sessionId) : undefined
        if (transport === undefined) {
          if (typeof sessionId === "string") {
            res.writeHead(404).end()
            return
          }
          const created = new StreamableHTTPServerTransport({
            sessionIdGenerator: () => randomUUID(),
            onsessioninitialized: (id) => void transports.set(id, created)
          })
          created.onclose = () => {
            if (created.sessionId !== undefined) transports.delete(created.sessionId)
          }
          await newServer().connect(created)
          transport = created
        }
        await transport.handleRequest(req, res)
      })()
    })

    yield* Effect.addFinalizer(() =>
      Effect.gen(function* () {
        for (const t of transports.values()) yield* Effect.promise(() => t.close())
        yield* close(mcpServerHttp)
        yield* close(asServer)
      })
    )

    return {
      issuer,
      mcpUrl,
      issued,
      tokenRequests: () => tokenRequests,
      tokenTimes,
      executed: () => executed,
      refused: () => refused,
      rejectIssued: () => {
        for (const token of issued) revoked.add(token)
      },
      revokeAll: async () => {
        for (const token of issued) revoked.add(token)
        // Every refresh token issued: destroy it and its grant.
        for (const token of issued) {
          const found = await provider.RefreshToken.find(token).catch(() => undefined)
          if (found !== undefined && found !== null) {
            const grant = await provider.Grant.find(found.grantId)
            await grant?.destroy()
            await found.destroy()
          }
        }
      },
      rateLimit: (count, retryAfter) => {
        limited = { count, retryAfter }
      }
    }
  })

/**
 * A headless browser for oidc-provider's dev interactions: follows the authorization URL,
 * submits the login form (any user) and the consent form, and stops at the redirect to
 * the client's loopback callback, which it then calls (as a browser would).
 */
export const browse = async (authorizationUrl: string): Promise<void> => {
  const cookies = new Map<string, string>()
  const cookieHeader = () => [...cookies].map(([k, v]) => `${k}=${v}`).join("; ")
  const remember = (response: Response) => {
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(";")
      const eq = pair?.indexOf("=") ?? -1
      if (pair !== undefined && eq > 0) cookies.set(pair.slice(0, eq), pair.slice(eq + 1))
    }
  }
  let url = authorizationUrl
  let init: RequestInit = { method: "GET" }
  for (let step = 0; step < 20; step++) {
    const response = await fetch(url, {
      ...init,
      redirect: "manual",
      headers: { ...(init.headers as Record<string, string> | undefined), cookie: cookieHeader() }
    })
    remember(response)
    const location = response.headers.get("location")
    if (response.status >= 300 && response.status < 400 && location !== null) {
      url = new URL(location, url).href
      init = { method: "GET" }
      continue
    }
    const html = await response.text()
    if (url.includes("/callback")) return
    const form = /<form[^>]*action="([^"]+)"[^>]*>([\s\S]*?)<\/form>/i.exec(html)
    if (form === null || form[1] === undefined || form[2] === undefined) {
      throw new Error(`no form at ${url} (status ${response.status})`)
    }
    const fields = new URLSearchParams()
    for (const input of form[2].matchAll(/<input[^>]*>/gi)) {
      const name = /name="([^"]+)"/.exec(input[0])?.[1]
      const value = /value="([^"]*)"/.exec(input[0])?.[1] ?? ""
      if (name !== undefined)
        fields.set(name, name === "login" ? "alice" : name === "password" ? "pw" : value)
    }
    if (!fields.has("login") && /name="login"/.test(form[2])) fields.set("login", "alice")
    url = new URL(form[1].replace(/&amp;/g, "&"), url).href
    init = {
      method: "POST",
      body: fields.toString(),
      headers: { "content-type": "application/x-www-form-urlencoded" }
    }
  }
  throw new Error("the authorization flow did not reach the callback in 20 steps")
}
