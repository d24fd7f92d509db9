/**
 * The machinery of `Auth`: one `AuthManager` per server, holding the SDK
 * `OAuthClientProvider` (backed by the token store) and the `fetch` wrapper that keeps a
 * bearer alive under load.
 *
 * The flows themselves (discovery, registration, PKCE, resource indicators, scope
 * selection, token and refresh requests) are the MCP SDK's `auth()`. What is added here is
 * what the SDK's transports do not do, and why the wrapper handles 401s before they do:
 * - the SDK runs `auth()` once per request that meets a 401, so 50 concurrent calls with
 *   an expired token make 50 refreshes; and its "already re-authorized" flag is shared by
 *   every request of the transport, so the second concurrent 401 fails outright;
 * - nothing refreshes before expiry, so every token lifetime costs a refused request;
 * - a 429 from the token endpoint ends in a new authorization request (the SDK treats it
 *   as a server error and "continues"), i.e. a login prompt instead of a wait.
 * So: every renewal runs SDK `auth()` under one semaphore per server (single flight), a
 * request whose token is about to expire waits for the renewal first, a refused request
 * (401: the server did not execute it) is re-sent once with the new token, and a rate
 * limited token endpoint is not asked again before its `Retry-After`.
 *
 * @internal
 */
import {
  auth,
  extractWWWAuthenticateParams,
  type OAuthClientProvider,
  type OAuthDiscoveryState
} from "@modelcontextprotocol/sdk/client/auth.js"
import { createPrivateKeyJwtAuth } from "@modelcontextprotocol/sdk/client/auth-extensions.js"
import {
  InvalidClientError,
  InvalidGrantError,
  OAuthError,
  ServerError,
  TemporarilyUnavailableError,
  TooManyRequestsError,
  UnauthorizedClientError
} from "@modelcontextprotocol/sdk/server/auth/errors.js"
import type {
  OAuthClientInformationMixed,
  OAuthClientMetadata,
  OAuthTokens
} from "@modelcontextprotocol/sdk/shared/auth.js"
import type { FetchLike } from "@modelcontextprotocol/sdk/shared/transport.js"
import { KeyValueStore } from "@effect/platform"
import { Cause, Context, Effect, Exit, Metric, Option, Redacted } from "effect"
import { createPrivateKey } from "node:crypto"
import { readFile } from "node:fs/promises"
import * as Errors from "../Errors.js"
import * as Metrics from "../Metrics.js"
import type * as ServerSpec from "../ServerSpec.js"
import { parseRetryAfter } from "./linkErrors.js"

/**
 * Where tokens, client registrations and discovery results live: a `KeyValueStore` of its
 * own (the agent's sessions use another), keyed `SERVER/tokens`, `SERVER/client`, ….
 *
 * @internal
 */
export class TokenStore extends Context.Tag("tether/Auth/TokenStore")<
  TokenStore,
  KeyValueStore.KeyValueStore
>() {}

/**
 * Someone who can log in: shows the authorization URL and answers with the code the
 * redirect brought back. Only `tether auth login` (and test harnesses) provide one; a
 * runtime without it reports `AuthorizationRequired` instead of waiting for a person.
 *
 * @internal
 */
export class Authorizer extends Context.Tag("tether/Auth/Authorizer")<
  Authorizer,
  {
    /** The loopback URL the authorization server redirects to. */
    readonly redirectUrl: string
    /** Resolves with the authorization code for `url` (after checking `state`). */
    readonly authorize: (url: URL, state: string) => Promise<string>
  }
>() {}

/** @internal What is kept per server. */
export interface StoredTokens {
  readonly tokens: OAuthTokens
  /** Epoch ms when the access token expires (from `expires_in` on receipt). */
  readonly expiresAt?: number | undefined
}

/** @internal Key names in the store. */
export const keys = (server: string) => ({
  tokens: `${server}/tokens`,
  client: `${server}/client`,
  discovery: `${server}/discovery`,
  verifier: `${server}/verifier`
})

/** The renewal could not reach a usable answer now, but a later try may (network, 5xx). */
class Transient {
  readonly _tag = "Transient"
  constructor(
    readonly cause: unknown,
    readonly retryAfterMs: number | undefined
  ) {}
}

type RenewError = Errors.AuthorizationRequired | Transient

/** @internal What the server's challenge said. */
export interface Hint {
  readonly scope?: string | undefined
  readonly resourceMetadataUrl?: URL | undefined
  /** A 403 `insufficient_scope`: the token works but needs more scope. */
  readonly stepUp?: boolean | undefined
}

/** @internal */
export interface AuthManager {
  readonly server: string
  readonly provider: OAuthClientProvider
  /** Wraps the transport's `fetch`; `onRequired` ends the session (→ Failed). */
  readonly wrapFetch: (
    base: FetchLike,
    onRequired: (error: Errors.AuthorizationRequired) => void
  ) => FetchLike
  /** Runs the authorization (login) or a renewal now, single-flight. */
  readonly renew: (
    seen: string | undefined,
    hint?: Hint
  ) => Effect.Effect<OAuthTokens, Errors.AuthorizationRequired | Errors.HttpUnavailable>
  /** Token requests made (to the token endpoint), for tests and status. */
  readonly tokenRequests: () => number
}

/** @internal */
export interface ManagerOptions {
  readonly server: string
  readonly url: string
  readonly config: ServerSpec.OAuth
  readonly store: KeyValueStore.KeyValueStore
  readonly authorizer: Authorizer["Type"] | undefined
  readonly now: () => number
}

const loginHint = (server: string) => `run \`tether auth login ${server}\``

/** @internal */
export const required = (
  server: string,
  reason: Errors.AuthorizationRequired["reason"],
  detail: string
): Errors.AuthorizationRequired =>
  new Errors.AuthorizationRequired({
    server,
    reason,
    message: `${server} needs an OAuth authorization (${detail}): ${loginHint(server)}`
  })

const bearerOf = (headers: RequestInit["headers"] | undefined): string | undefined => {
  if (headers === undefined) return undefined
  const value = (headers instanceof Headers ? headers : new Headers(headers)).get("authorization")
  return value !== null && /^bearer /i.test(value) ? value.slice(7).trim() : undefined
}

const withBearer = (init: RequestInit | undefined, token: string): RequestInit => {
  const headers = new Headers(init?.headers)
  headers.set("authorization", `Bearer ${token}`)
  return { ...init, headers }
}

const hrefOf = (url: string | URL): string => {
  try {
    const parsed = new URL(url)
    parsed.hash = ""
    return parsed.href
  } catch {
    return String(url)
  }
}

/** Smallest lead time: the renewal must reach the token endpoint and come back. */
const MIN_SKEW_MS = 100
/** Largest lead time, for long-lived tokens. */
const MAX_SKEW_MS = 30_000
/**
 * Renew when a tenth of the lifetime is left: early enough that no request meets an
 * expired token, late enough that renewals stay within 1.12× the lifetimes elapsed.
 */
const SKEW_FRACTION = 0.1
/** A 429/503 without Retry-After: wait this long before asking the token endpoint again. */
const DEFAULT_BACKOFF_MS = 2_000

/** @internal */
export const makeManager = (options: ManagerOptions): Effect.Effect<AuthManager> =>
  Effect.gen(function* () {
    const { authorizer, config, now, server, store, url } = options
    const k = keys(server)
    const semaphore = yield* Effect.makeSemaphore(1)
    const refreshes = (outcome: string) =>
      Metric.update(
        Metric.tagged(Metric.tagged(Metrics.tokenRefreshes, "server", server), "outcome", outcome),
        1
      )

    let cached: StoredTokens | undefined
    let lifetimeMs: number | undefined
    /** No request to the authorization server before this (its Retry-After). */
    let notBefore = 0
    let tokenRequests = 0
    /** Facts about the current `auth()` run, read when it ends. */
    let run = { rateLimitedMs: undefined as number | undefined, invalidated: undefined as string | undefined }
    let pendingCode: Promise<string> | undefined

    const readJson = async <A>(key: string): Promise<A | undefined> => {
      const value = await Effect.runPromise(Effect.orElseSucceed(store.get(key), () => Option.none()))
      if (Option.isNone(value)) return undefined
      try {
        return JSON.parse(value.value) as A
      } catch {
        return undefined
      }
    }
    const writeJson = (key: string, value: unknown) =>
      Effect.runPromise(Effect.orDie(store.set(key, JSON.stringify(value))))
    const remove = (key: string) => Effect.runPromise(Effect.ignore(store.remove(key)))

    const current = async (): Promise<StoredTokens | undefined> => {
      // Read through when empty: `tether auth login` in another process may have stored some.
      if (cached === undefined) {
        cached = await readJson<StoredTokens>(k.tokens)
        if (cached?.expiresAt !== undefined && cached.tokens.expires_in !== undefined) {
          lifetimeMs = cached.tokens.expires_in * 1_000
        }
      }
      return cached
    }

    const skewMs = () =>
      lifetimeMs === undefined
        ? MIN_SKEW_MS
        : Math.min(MAX_SKEW_MS, Math.max(MIN_SKEW_MS, lifetimeMs * SKEW_FRACTION))
    const expiringSoon = (stored: StoredTokens) =>
      stored.expiresAt !== undefined && now() >= stored.expiresAt - skewMs()
    const expired = (stored: StoredTokens) => stored.expiresAt !== undefined && now() >= stored.expiresAt

    const configuredClient = (): OAuthClientInformationMixed | undefined =>
      config.clientId === undefined
        ? undefined
        : {
            client_id: config.clientId,
            ...(config.clientSecret === undefined
              ? {}
              : { client_secret: Redacted.value(config.clientSecret) })
          }

    const interactive = config.grantType === "authorization_code" && authorizer !== undefined
    /** A scope the server asked for with 403 insufficient_scope (step-up). */
    let stepUpScope: string | undefined
    const scopeOf = () => stepUpScope ?? config.scope
    const baseMetadata: OAuthClientMetadata = {
      client_name: "Tether",
      redirect_uris: authorizer === undefined ? [] : [authorizer.redirectUrl],
      grant_types:
        config.grantType === "client_credentials"
          ? ["client_credentials"]
          : ["authorization_code", "refresh_token"],
      response_types: config.grantType === "client_credentials" ? [] : ["code"],
      token_endpoint_auth_method:
        config.tokenEndpointAuthMethod ?? (config.clientSecret === undefined ? "none" : "client_secret_basic")
    }

    const privateKeyAuth =
      config.privateKeyFile === undefined || config.clientId === undefined
        ? undefined
        : (() => {
            const file = config.privateKeyFile
            const clientId = config.clientId
            return async (
              headers: Headers,
              params: URLSearchParams,
              url: string | URL,
              metadata?: unknown
            ) => {
              const pem = await readFile(file, "utf8")
              const alg =
                config.signingAlgorithm ??
                (createPrivateKey(pem).asymmetricKeyType === "rsa" ? "RS256" : "ES256")
              const sign = createPrivateKeyJwtAuth({
                issuer: clientId,
                subject: clientId,
                privateKey: pem,
                alg
              })
              // The SDK's metadata type is not exported under a stable name; it is passed through.
              return sign(headers, params, url, metadata as Parameters<typeof sign>[3])
            }
          })()

    const provider: OAuthClientProvider = {
      get redirectUrl() {
        return config.grantType === "client_credentials"
          ? undefined
          : (authorizer?.redirectUrl ?? "http://127.0.0.1/callback")
      },
      ...(config.clientMetadataUrl === undefined ? {} : { clientMetadataUrl: config.clientMetadataUrl }),
      get clientMetadata() {
        const scope = scopeOf()
        return scope === undefined ? baseMetadata : { ...baseMetadata, scope }
      },
      state: () => crypto.randomUUID(),
      clientInformation: async () =>
        configuredClient() ?? (await readJson<OAuthClientInformationMixed>(k.client)),
      saveClientInformation: async (info) => {
        // A configured client stays in the config (its secret is a `${VAR}`), never on disk.
        if (config.clientId !== undefined) return
        await writeJson(k.client, info)
      },
      tokens: async () => (await current())?.tokens,
      saveTokens: async (tokens) => {
        const stored: StoredTokens = {
          tokens,
          expiresAt: tokens.expires_in === undefined ? undefined : now() + tokens.expires_in * 1_000
        }
        lifetimeMs = tokens.expires_in === undefined ? undefined : tokens.expires_in * 1_000
        cached = stored
        await writeJson(k.tokens, stored)
      },
      redirectToAuthorization: (url) => {
        if (authorizer === undefined || config.grantType === "client_credentials") {
          throw required(
            server,
            run.invalidated === "tokens" ? "InvalidGrant" : "NoTokens",
            "no usable tokens"
          )
        }
        const state = url.searchParams.get("state") ?? ""
        pendingCode = authorizer.authorize(url, state)
      },
      saveCodeVerifier: (verifier) => writeJson(k.verifier, verifier),
      codeVerifier: async () => (await readJson<string>(k.verifier)) ?? "",
      invalidateCredentials: async (scope) => {
        run.invalidated = scope
        if (scope === "all" || scope === "tokens") {
          cached = undefined
          await remove(k.tokens)
        }
        if (scope === "all" || scope === "client") await remove(k.client)
        if (scope === "all" || scope === "verifier") await remove(k.verifier)
        if (scope === "all" || scope === "discovery") await remove(k.discovery)
      },
      saveDiscoveryState: (state) => writeJson(k.discovery, state),
      discoveryState: () => readJson<OAuthDiscoveryState>(k.discovery),
      ...(config.grantType === "client_credentials"
        ? {
            prepareTokenRequest: (scope?: string) => {
              const params = new URLSearchParams({ grant_type: "client_credentials" })
              const chosen = scopeOf() ?? scope
              if (chosen !== undefined && chosen !== "") params.set("scope", chosen)
              return params
            }
          }
        : {}),
      ...(privateKeyAuth === undefined ? {} : { addClientAuthentication: privateKeyAuth })
    }

    /** The fetch `auth()` uses: counts token requests and notices rate limiting. */
    const authFetch =
      (base: FetchLike): FetchLike =>
      async (url, init) => {
        const isToken = init?.method === "POST" && String(init.body ?? "").includes("grant_type=")
        if (isToken) tokenRequests += 1
        const response = await base(url, init)
        if (response.status === 429 || response.status === 503) {
          const ms = parseRetryAfter(response.headers.get("retry-after"), now()) ?? DEFAULT_BACKOFF_MS
          run.rateLimitedMs = ms
          notBefore = now() + ms
        }
        return response
      }

    const classifyFailure = (cause: unknown): RenewError => {
      if (run.rateLimitedMs !== undefined) return new Transient(cause, run.rateLimitedMs)
      if (cause instanceof Errors.AuthorizationRequired) return cause
      if (cause instanceof InvalidGrantError)
        return required(server, "InvalidGrant", "the authorization server refused the refresh token")
      if (cause instanceof InvalidClientError || cause instanceof UnauthorizedClientError) {
        return required(server, "InvalidClient", "the authorization server refused this client")
      }
      if (
        cause instanceof OAuthError &&
        !(cause instanceof ServerError) &&
        !(cause instanceof TemporarilyUnavailableError) &&
        !(cause instanceof TooManyRequestsError)
      ) {
        // Only the error code: a description is the server's free text.
        return required(server, "Rejected", `the authorization server answered ${cause.errorCode}`)
      }
      return new Transient(cause, undefined)
    }

    /** One SDK `auth()` run (plus the code exchange for an interactive login). */
    const runAuth = (base: FetchLike, hint: Hint) =>
      Effect.tryPromise({
        try: async () => {
          run = { rateLimitedMs: undefined, invalidated: undefined }
          pendingCode = undefined
          const fetchFn = authFetch(base)
          const options = {
            serverUrl: url,
            fetchFn,
            ...(hint.scope === undefined ? {} : { scope: hint.scope }),
            ...(hint.resourceMetadataUrl === undefined
              ? {}
              : { resourceMetadataUrl: hint.resourceMetadataUrl })
          }
          let result = await auth(provider, options)
          if (result === "REDIRECT" && pendingCode !== undefined) {
            const code = await pendingCode
            result = await auth(provider, { ...options, authorizationCode: code })
          }
          if (result !== "AUTHORIZED")
            throw required(server, "NoTokens", "the authorization was not completed")
          const stored = await current()
          if (stored === undefined) throw required(server, "NoTokens", "no tokens were issued")
          return stored.tokens
        },
        catch: classifyFailure
      })

    const renewWith = (
      base: FetchLike,
      seen: string | undefined,
      hint: Hint
    ): Effect.Effect<OAuthTokens, RenewError> =>
      semaphore.withPermits(1)(
        Effect.gen(function* () {
          const stored = yield* Effect.promise(() => current())
          // Someone renewed while this caller waited: use theirs.
          if (
            stored !== undefined &&
            stored.tokens.access_token !== seen &&
            !expiringSoon(stored) &&
            hint.stepUp !== true
          ) {
            return stored.tokens
          }
          if (hint.stepUp === true) {
            if (config.grantType === "authorization_code" && !interactive) {
              return yield* Effect.fail(
                required(
                  server,
                  "Rejected",
                  `the server asks for more scope${hint.scope === undefined ? "" : ` (${hint.scope})`}`
                )
              )
            }
            stepUpScope = hint.scope ?? stepUpScope
            // A refresh keeps the old scope: only a new authorization (or token) widens it.
            cached = undefined
            yield* Effect.promise(() => remove(k.tokens))
          }
          if (stored === undefined && config.grantType === "authorization_code" && !interactive) {
            return yield* Effect.fail(required(server, "NoTokens", "no stored tokens"))
          }
          const wait = notBefore - now()
          if (wait > 0) return yield* Effect.fail(new Transient(undefined, wait))
          const exit = yield* Effect.exit(runAuth(base, hint))
          if (Exit.isSuccess(exit)) {
            yield* refreshes("ok")
            return exit.value
          }
          const error = firstFailure(exit.cause) ?? new Transient(undefined, undefined)
          yield* refreshes(
            error._tag === "AuthorizationRequired"
              ? "invalid_grant"
              : error.retryAfterMs !== undefined
                ? "rate_limited"
                : "error"
          )
          if (error._tag === "AuthorizationRequired") {
            // The grant is gone: nothing stored may be offered again.
            cached = undefined
            yield* Effect.promise(() => remove(k.tokens))
          }
          return yield* Effect.fail(error)
        })
      )

    const toPublic = (error: RenewError): Errors.AuthorizationRequired | Errors.HttpUnavailable =>
      error._tag === "AuthorizationRequired"
        ? error
        : new Errors.HttpUnavailable({
            server,
            status: 503,
            retryAfterMs: error.retryAfterMs,
            message: `${server}: the authorization server is unavailable${error.retryAfterMs === undefined ? "" : ` (retry after ${error.retryAfterMs} ms)`}`
          })

    /** A refused answer standing in for the request: the caller's retry logic takes it from here. */
    const unavailable = (retryAfterMs: number | undefined) =>
      new Response(null, {
        status: 503,
        statusText: "authorization server unavailable",
        headers: {
          "retry-after": String(Math.max(1, Math.ceil((retryAfterMs ?? DEFAULT_BACKOFF_MS) / 1_000)))
        }
      })

    const wrapFetch = (
      base: FetchLike,
      onRequired: (error: Errors.AuthorizationRequired) => void
    ): FetchLike => {
      const target = hrefOf(options.url)
      const fail = (error: Errors.AuthorizationRequired): never => {
        onRequired(error)
        // The SDK's Transport contract is Promise-based: rejecting is how it learns of this.
        throw error
      }
      const renewNow = (seen: string | undefined, hint: Hint = {}) =>
        Effect.runPromiseExit(renewWith(base, seen, hint))

      return async (url, init) => {
        let sent = bearerOf(init?.headers)
        let request = init
        if (sent !== undefined) {
          const stored = await current()
          if (stored !== undefined && expiringSoon(stored)) {
            const exit = await renewNow(stored.tokens.access_token)
            if (Exit.isSuccess(exit)) sent = exit.value.access_token
            else {
              const error = firstFailure(exit.cause)
              if (error?._tag === "AuthorizationRequired") return fail(error)
              // Not renewed yet: the old token still works until it expires.
              if (expired(stored)) return unavailable(error?.retryAfterMs)
            }
          } else if (stored !== undefined && stored.tokens.access_token !== sent) {
            sent = stored.tokens.access_token
          }
          request = withBearer(init, sent)
        }
        const response = await base(url, request)
        const challenged =
          response.status === 401 ||
          (response.status === 403 && extractWWWAuthenticateParams(response).error === "insufficient_scope")
        // Only the MCP endpoint's own challenges: a 401 from the token endpoint is an OAuth error.
        if (!challenged || (sent === undefined && hrefOf(url) !== target)) return response
        const params = extractWWWAuthenticateParams(response)
        await response.body?.cancel().catch(() => undefined)
        // A 401 means the request was not executed: renew once, then send it again.
        const exit = await renewNow(sent, {
          scope: params.scope,
          resourceMetadataUrl: params.resourceMetadataUrl,
          stepUp: response.status === 403
        })
        if (Exit.isFailure(exit)) {
          const error = firstFailure(exit.cause)
          if (error?._tag === "AuthorizationRequired") return fail(error)
          return unavailable(error?.retryAfterMs)
        }
        const again = await base(url, withBearer(init, exit.value.access_token))
        if (again.status === 401) {
          await again.body?.cancel().catch(() => undefined)
          return fail(required(server, "Rejected", "the server refused a freshly issued token"))
        }
        if (again.status === 403 && extractWWWAuthenticateParams(again).error === "insufficient_scope") {
          await again.body?.cancel().catch(() => undefined)
          // One step-up per request: the token works, this operation is beyond what was granted.
          // The call fails; the session (and its other tools) stays up.
          throw required(server, "Rejected", "the server refused the widened scope")
        }
        return again
      }
    }

    return {
      server,
      provider,
      wrapFetch,
      renew: (seen, hint) => Effect.mapError(renewWith(fetch, seen, hint ?? {}), toPublic),
      tokenRequests: () => tokenRequests
    }
  })

const firstFailure = <E>(cause: Cause.Cause<E>): E | undefined =>
  Option.getOrUndefined(Cause.failureOption(cause))

/** @internal Opens the manager for a spec with `auth`, or nothing. */
export const forSpec = (
  server: string,
  spec: ServerSpec.ServerSpec,
  now: () => number
): Effect.Effect<AuthManager | undefined> =>
  Effect.gen(function* () {
    if ((spec.type !== "http" && spec.type !== "sse") || spec.auth === undefined) return undefined
    const store = yield* Effect.serviceOption(TokenStore)
    const authorizer = yield* Effect.serviceOption(Authorizer)
    const kv = Option.isSome(store)
      ? store.value
      : yield* Effect.provide(KeyValueStore.KeyValueStore, KeyValueStore.layerMemory)
    const options: ManagerOptions = {
      server,
      url: spec.url,
      config: spec.auth,
      store: kv,
      authorizer: Option.getOrUndefined(authorizer),
      now
    }
    if (Option.isSome(authorizer)) return yield* makeManager(options)
    // Connections to one server over one store (a pool's tenants) share one manager: with
    // rotating refresh tokens, two managers refreshing apart would each spend the other's
    // refresh token and end in invalid_grant.
    const key = JSON.stringify([server, spec.url, spec.auth])
    let byKey = shared.get(kv)
    if (byKey === undefined) {
      byKey = new Map()
      shared.set(kv, byKey)
    }
    const existing = byKey.get(key)
    if (existing !== undefined) return existing
    const made = yield* makeManager(options)
    byKey.set(key, made)
    return made
  })

/** Managers by store, then by server: the store's lifetime bounds theirs. */
const shared = new WeakMap<KeyValueStore.KeyValueStore, Map<string, AuthManager>>()
