/**
 * OAuth 2.1 for remote MCP servers, on the MCP SDK's client auth (`auth()`,
 * `OAuthClientProvider`, the transports' `authProvider`).
 *
 * A server opts in with `"auth": { "type": "oauth", … }` in `mcp.json`. Tokens, client
 * registrations and discovery results persist in the {@link TokenStore} (by default files
 * of mode 0600 under `~/.tether/auth`, written atomically), never in logs, errors, status
 * or metrics. Connections renew tokens before they expire (single flight per server),
 * re-send a request the server refused with 401 once after a renewal, and end in
 * `Failed` with `AuthorizationRequired` when only a new login can help.
 *
 * @since 0.1.0
 */
import { FileSystem, KeyValueStore, type Path } from "@effect/platform"
import { extractWWWAuthenticateParams } from "@modelcontextprotocol/sdk/client/auth.js"
import { LATEST_PROTOCOL_VERSION } from "@modelcontextprotocol/sdk/types.js"
import { Clock, Context, Effect, Layer, Option } from "effect"
import { createServer, type Server } from "node:http"
import { homedir } from "node:os"
import * as FileKeyValueStore from "./agent/FileKeyValueStore.js"
import * as Errors from "./Errors.js"
import * as internal from "./internal/auth.js"
import * as ServerSpec from "./ServerSpec.js"

/**
 * The store of tokens, client registrations and discovery results (a `KeyValueStore`).
 *
 * @since 0.1.0
 * @category tags
 */
export const TokenStore: typeof internal.TokenStore = internal.TokenStore

/**
 * @since 0.1.0
 * @category tags
 */
export type TokenStore = internal.TokenStore

/**
 * Someone who can log in (shows the authorization URL, returns the code). Only a login
 * provides one; without it a connection that needs a login fails with
 * `AuthorizationRequired`.
 *
 * @since 0.1.0
 * @category tags
 */
export const Authorizer: typeof internal.Authorizer = internal.Authorizer

/**
 * @since 0.1.0
 * @category tags
 */
export type Authorizer = internal.Authorizer

/**
 * The data directory: `TETHER_DATA_DIR`, else `~/.tether`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const dataDirectory = (): string => {
  const fromEnv = process.env["TETHER_DATA_DIR"]
  return fromEnv !== undefined && fromEnv !== "" ? fromEnv : `${homedir()}/.tether`
}

/**
 * A token store on disk: one file per key, mode 0600, written atomically, in a directory
 * of mode 0700.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFile = (directory: string) =>
  Layer.effect(
    TokenStore,
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      yield* fs.makeDirectory(directory, { recursive: true, mode: 0o700 })
      // An existing directory keeps its mode: tighten it, tokens live here.
      yield* fs.chmod(directory, 0o700)
      return yield* FileKeyValueStore.make(directory)
    })
  )

/**
 * A token store in memory (tests, or a process that must not write to disk).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<TokenStore> = Layer.effect(
  TokenStore,
  Effect.provide(KeyValueStore.KeyValueStore, KeyValueStore.layerMemory)
)

/**
 * The default store, `<data dir>/auth` on disk. Opened on first use, so a process with no
 * OAuth server never creates the directory; in memory (with a warning) when it cannot be
 * written.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerDefault: Layer.Layer<TokenStore, never, FileSystem.FileSystem | Path.Path> = Layer.suspend(
  () => layerLazy(`${dataDirectory()}/auth`)
)

/**
 * A store on disk in `directory`, opened on first use (see {@link layerDefault}).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerLazy = (
  directory: string
): Layer.Layer<TokenStore, never, FileSystem.FileSystem | Path.Path> =>
  Layer.effect(
    TokenStore,
    Effect.gen(function* () {
      const context = yield* Effect.context<FileSystem.FileSystem | Path.Path>()
      const open = yield* Effect.cached(
        Layer.build(layerFile(directory)).pipe(
          Effect.map((ctx) => Context.get(ctx, TokenStore)),
          Effect.scoped,
          Effect.provide(context),
          Effect.catchAll((error) =>
            Effect.zipRight(
              Effect.logWarning(`OAuth tokens kept in memory only: ${error.message}`),
              Effect.provide(KeyValueStore.KeyValueStore, KeyValueStore.layerMemory)
            )
          )
        )
      )
      const via = <A, E>(f: (store: KeyValueStore.KeyValueStore) => Effect.Effect<A, E>) =>
        Effect.flatMap(open, f)
      return KeyValueStore.make({
        get: (key) => via((s) => s.get(key)),
        getUint8Array: (key) => via((s) => s.getUint8Array(key)),
        set: (key, value) => via((s) => s.set(key, value)),
        remove: (key) => via((s) => s.remove(key)),
        clear: via((s) => s.clear),
        size: via((s) => s.size)
      })
    })
  )

/**
 * What `status` shows for one server: facts about the stored authorization, never a token.
 *
 * @since 0.1.0
 * @category models
 */
export interface Status {
  readonly server: string
  readonly grantType: "authorization_code" | "client_credentials"
  readonly loggedIn: boolean
  readonly expiresAt: number | undefined
  readonly refreshable: boolean
  readonly scope: string | undefined
  readonly registeredClient: boolean
}

type OAuthSpec = (ServerSpec.Http | ServerSpec.Sse) & { readonly auth: ServerSpec.OAuth }

/**
 * Is this spec an OAuth one?
 *
 * @since 0.1.0
 * @category guards
 */
export const isOAuth = (spec: ServerSpec.ServerSpec): spec is OAuthSpec =>
  (spec.type === "http" || spec.type === "sse") && spec.auth !== undefined

const readJson = <A>(store: KeyValueStore.KeyValueStore, key: string) =>
  store.get(key).pipe(
    Effect.orElseSucceed(() => Option.none<string>()),
    Effect.map(
      Option.flatMap((text) => {
        try {
          return Option.some(JSON.parse(text) as A)
        } catch {
          return Option.none()
        }
      })
    )
  )

/**
 * The stored authorization of one server.
 *
 * @since 0.1.0
 * @category accessors
 */
export const status = (server: string, spec: OAuthSpec): Effect.Effect<Status, never, TokenStore> =>
  Effect.gen(function* () {
    const store = yield* TokenStore
    const keys = internal.keys(server)
    const tokens = yield* readJson<internal.StoredTokens>(store, keys.tokens)
    const client = yield* readJson<unknown>(store, keys.client)
    return {
      server,
      grantType: spec.auth.grantType,
      loggedIn: Option.isSome(tokens),
      expiresAt: Option.getOrUndefined(Option.flatMap(tokens, (t) => Option.fromNullable(t.expiresAt))),
      refreshable: Option.exists(tokens, (t) => typeof t.tokens.refresh_token === "string"),
      scope: Option.getOrUndefined(Option.flatMap(tokens, (t) => Option.fromNullable(t.tokens.scope))),
      registeredClient: spec.auth.clientId !== undefined || Option.isSome(client)
    }
  })

/**
 * Forgets everything stored for a server (tokens, registration, discovery).
 *
 * @since 0.1.0
 * @category mutations
 */
export const logout = (server: string): Effect.Effect<void, never, TokenStore> =>
  Effect.gen(function* () {
    const store = yield* TokenStore
    for (const key of Object.values(internal.keys(server))) yield* Effect.ignore(store.remove(key))
  })

/**
 * @since 0.1.0
 * @category models
 */
export interface LoginOptions {
  readonly server: string
  readonly spec: ServerSpec.ServerSpec | ServerSpec.Encoded
  /** Loopback port for the redirect (0: any free port, or the one the stored registration names). */
  readonly port?: number | undefined
  /** Called with the authorization URL: print it, open a browser. */
  readonly onUrl: (url: string) => Effect.Effect<void>
  /** How long to wait for the browser to come back (default 5 minutes). */
  readonly timeoutMs?: number | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface LoginResult {
  readonly server: string
  readonly expiresAt: number | undefined
  readonly scope: string | undefined
}

interface Callback {
  readonly redirectUrl: string
  readonly code: (state: string) => Promise<string>
}

/** The loopback redirect target: one GET /callback, answered with a short page. */
const callbackServer = (port: number) =>
  Effect.acquireRelease(
    Effect.async<{ server: Server; callback: Callback }, Errors.InvalidConfig>((resume) => {
      let arrived: ((query: URLSearchParams) => void) | undefined
      const queue: Array<URLSearchParams> = []
      const server = createServer((req, res) => {
        const url = new URL(req.url ?? "/", "http://127.0.0.1")
        if (url.pathname !== "/callback") {
          res.writeHead(404).end()
          return
        }
        const ok = url.searchParams.has("code")
        res
          .writeHead(ok ? 200 : 400, { "content-type": "text/html; charset=utf-8" })
          .end(
            ok
              ? "<p>Tether: authorization received. You can close this tab.</p>"
              : "<p>Tether: the authorization did not complete. See the terminal.</p>"
          )
        if (arrived !== undefined) arrived(url.searchParams)
        else queue.push(url.searchParams)
      })
      server.once("error", (e) =>
        resume(
          Effect.fail(
            new Errors.InvalidConfig({
              path: "--port",
              message: `cannot listen on 127.0.0.1:${port}: ${e.message}`
            })
          )
        )
      )
      server.listen(port, "127.0.0.1", () => {
        const address = server.address()
        const actual = typeof address === "object" && address !== null ? address.port : port
        const callback: Callback = {
          redirectUrl: `http://127.0.0.1:${actual}/callback`,
          code: (state) =>
            new Promise((resolve, reject) => {
              const handle = (query: URLSearchParams) => {
                const error = query.get("error")
                // The state check defends against a forged redirect from another page.
                if (query.get("state") !== state) reject(new Error("the redirect's state does not match"))
                else if (error !== null) reject(new Error(`the authorization server answered ${error}`))
                else resolve(query.get("code") ?? "")
              }
              const queued = queue.shift()
              if (queued !== undefined) handle(queued)
              else arrived = handle
            })
        }
        resume(Effect.succeed({ server, callback }))
      })
    }),
    ({ server }) =>
      Effect.async<void>((resume) => {
        server.close(() => resume(Effect.void))
        server.closeAllConnections()
      })
  )

/** Asks the server once without a token, for the challenge's `resource_metadata` and `scope`. */
const probe = (url: string) =>
  Effect.tryPromise(async () => {
    const response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 0,
        method: "initialize",
        params: {
          protocolVersion: LATEST_PROTOCOL_VERSION,
          capabilities: {},
          clientInfo: { name: "tether", version: "login" }
        }
      })
    })
    await response.body?.cancel().catch(() => undefined)
    return response.status === 401 || response.status === 403 ? extractWWWAuthenticateParams(response) : {}
  }).pipe(Effect.orElseSucceed(() => ({})))

/**
 * Runs the authorization-code flow for one server: a loopback callback, the
 * authorization URL handed to `onUrl`, the code exchanged, the tokens stored. For a
 * `client_credentials` server it just fetches a token.
 *
 * @since 0.1.0
 * @category login
 */
export const login = (
  options: LoginOptions
): Effect.Effect<
  LoginResult,
  Errors.AuthorizationRequired | Errors.HttpUnavailable | Errors.InvalidConfig,
  TokenStore
> =>
  Effect.scoped(
    Effect.gen(function* () {
      const { server } = options
      const spec = yield* ServerSpec.decode(options.spec, { server, path: `mcpServers.${server}` })
      if (!isOAuth(spec)) {
        return yield* new Errors.InvalidConfig({
          server,
          path: `mcpServers.${server}.auth`,
          message: `${server} has no "auth": { "type": "oauth" } block; nothing to log in to`
        })
      }
      const store = yield* TokenStore
      const keys = internal.keys(server)
      const storedClient = yield* readJson<{ redirect_uris?: ReadonlyArray<string> }>(store, keys.client)
      const registeredPort = Option.flatMap(storedClient, (c) =>
        Option.fromNullable(c.redirect_uris?.[0]).pipe(
          Option.flatMap((u) => Option.liftThrowable(() => Number(new URL(u).port))()),
          Option.filter((p) => p > 0)
        )
      )
      const port = options.port ?? Option.getOrElse(registeredPort, () => 0)
      const { callback } = yield* callbackServer(port)
      // A registration made for another redirect URL cannot serve this one: register again.
      if (
        Option.isSome(storedClient) &&
        !(storedClient.value.redirect_uris ?? []).includes(callback.redirectUrl)
      ) {
        yield* Effect.ignore(store.remove(keys.client))
      }
      // A login replaces what was there.
      yield* Effect.ignore(store.remove(keys.tokens))
      const clock = yield* Effect.clock
      const authorizer: Authorizer["Type"] = {
        redirectUrl: callback.redirectUrl,
        authorize: async (url, state) => {
          await Effect.runPromise(options.onUrl(url.href))
          return callback.code(state)
        }
      }
      const manager = yield* internal.makeManager({
        server,
        url: spec.url,
        config: spec.auth,
        store,
        authorizer,
        now: () => clock.unsafeCurrentTimeMillis()
      })
      const hint = yield* probe(spec.url)
      const timeoutMs = options.timeoutMs ?? 300_000
      const tokens = yield* manager.renew(undefined, hint).pipe(
        Effect.timeoutFail({
          duration: timeoutMs,
          onTimeout: () =>
            internal.required(server, "NoTokens", `no answer from the browser within ${timeoutMs / 1000} s`)
        })
      )
      const now = yield* Clock.currentTimeMillis
      return {
        server,
        expiresAt: tokens.expires_in === undefined ? undefined : now + tokens.expires_in * 1_000,
        scope: tokens.scope
      }
    })
  )
