/**
 * How to reach one MCP server, in the `mcp.json` style, discriminated by `type`:
 * `stdio` (a child process), `http` (Streamable HTTP), `sse` (the older HTTP+SSE
 * transport) or `websocket`. Header and env values are `Redacted`: they often hold
 * secrets and must never reach a log.
 *
 * @since 0.1.0
 */
import { type Effect, Either, Redacted, Schema } from "effect"
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js"
import { InvalidConfig } from "./Errors.js"
import { redactUrl } from "./internal/redact.js"
import { decodeOrInvalid } from "./internal/schemaIssues.js"

/**
 * A secret string: accepts a plain string (from JSON) or an already `Redacted` one.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Secret: Schema.Schema<
  Redacted.Redacted<string>,
  string | Redacted.Redacted<string>
> = Schema.Union(Schema.Redacted(Schema.String), Schema.RedactedFromSelf(Schema.String))

const urlWithProtocols = (protocols: ReadonlyArray<string>, what: string) =>
  Schema.String.pipe(
    Schema.filter(
      (s) => {
        let url: URL
        try {
          url = new URL(s)
        } catch {
          return `malformed URL ${JSON.stringify(redactUrl(s))}: expected an absolute ${what} URL such as ${protocols[0]}//127.0.0.1:8000/mcp`
        }
        return protocols.includes(url.protocol)
          ? undefined
          : `URL ${JSON.stringify(redactUrl(s))} has protocol ${url.protocol}; a ${what} URL needs ${protocols.join(" or ")}`
      },
      { identifier: "Url" }
    )
  )

const NonEmpty = (what: string) =>
  Schema.String.pipe(Schema.filter((s) => s.trim().length > 0 || `${what} must not be empty`))

/**
 * A server run as a child process speaking MCP over its stdin/stdout.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Stdio = Schema.Struct({
  type: Schema.Literal("stdio"),
  command: NonEmpty("command"),
  args: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] }),
  env: Schema.optional(Schema.Record({ key: Schema.String, value: Secret })),
  cwd: Schema.optional(Schema.String)
})

/**
 * @since 0.1.0
 * @category models
 */
export type Stdio = typeof Stdio.Type

const HttpFields = {
  headers: Schema.optional(Schema.Record({ key: Schema.String, value: Secret }))
}

/**
 * OAuth 2.1 for a remote server (`"auth": { "type": "oauth", … }`). Everything is optional:
 * with no `clientId` the client discovers the authorization server and registers itself
 * (dynamic client registration, or `clientMetadataUrl` as a client ID metadata document).
 * `clientSecret` is `Redacted` (write it as `${VAR}`). `grantType` is `authorization_code`
 * (a person logs in once with `tether auth login SERVER`) or `client_credentials`
 * (machine to machine: a secret, or `privateKeyFile` for `private_key_jwt`).
 *
 * @since 0.1.0
 * @category schemas
 */
export const OAuth = Schema.Struct({
  type: Schema.Literal("oauth"),
  clientId: Schema.optional(NonEmpty("clientId")),
  clientSecret: Schema.optional(Secret),
  scope: Schema.optional(Schema.String),
  grantType: Schema.optionalWith(Schema.Literal("authorization_code", "client_credentials"), {
    default: () => "authorization_code" as const
  }),
  tokenEndpointAuthMethod: Schema.optional(
    Schema.Literal("none", "client_secret_basic", "client_secret_post", "private_key_jwt")
  ),
  /** A PEM (PKCS#8) private key for `private_key_jwt`; read when a token is requested. */
  privateKeyFile: Schema.optional(NonEmpty("privateKeyFile")),
  /** The JWS algorithm for `private_key_jwt` (default ES256 for EC keys, RS256 otherwise). */
  signingAlgorithm: Schema.optional(Schema.String),
  /** An https URL serving this client's metadata document, used as its client ID when the server supports it. */
  clientMetadataUrl: Schema.optional(Schema.String)
})

/**
 * @since 0.1.0
 * @category models
 */
export type OAuth = typeof OAuth.Type

/**
 * A server reached over Streamable HTTP (`POST`/`GET` on one endpoint).
 *
 * @since 0.1.0
 * @category schemas
 */
export const Http = Schema.Struct({
  type: Schema.Literal("http"),
  url: urlWithProtocols(["http:", "https:"], "http"),
  ...HttpFields,
  auth: Schema.optional(OAuth)
})

/**
 * @since 0.1.0
 * @category models
 */
export type Http = typeof Http.Type

/**
 * A server reached over the (deprecated but common) HTTP+SSE transport.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Sse = Schema.Struct({
  type: Schema.Literal("sse"),
  url: urlWithProtocols(["http:", "https:"], "sse"),
  ...HttpFields,
  auth: Schema.optional(OAuth)
})

/**
 * @since 0.1.0
 * @category models
 */
export type Sse = typeof Sse.Type

/**
 * A server reached over WebSocket (subprotocol `mcp`, one JSON-RPC message per text frame).
 *
 * @since 0.1.0
 * @category schemas
 */
export const WebSocket = Schema.Struct({
  type: Schema.Literal("websocket"),
  url: urlWithProtocols(["ws:", "wss:"], "websocket"),
  ...HttpFields
})

/**
 * @since 0.1.0
 * @category models
 */
export type WebSocket = typeof WebSocket.Type

/**
 * The spec of one server.
 *
 * @since 0.1.0
 * @category schemas
 */
/**
 * A server reached over a transport the program builds itself (the SDK's
 * `InMemoryTransport`, a custom one). `transport` is called for every session: once to
 * connect and again on each reconnect, so it must return a new, unstarted transport each
 * time. Only for programmatic use; config files cannot hold a function.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Custom = Schema.Struct({
  type: Schema.Literal("custom"),
  /** Shown in status output and errors instead of a command or URL. */
  label: Schema.optionalWith(Schema.String, { default: () => "custom transport" }),
  transport: Schema.declare((u: unknown): u is () => Transport => typeof u === "function", {
    identifier: "TransportFactory",
    description: "a function returning a new MCP SDK Transport"
  })
})

/**
 * @since 0.1.0
 * @category schemas
 */
export type Custom = typeof Custom.Type

export const ServerSpec = Schema.Union(Stdio, Http, Sse, WebSocket, Custom)

/**
 * @since 0.1.0
 * @category models
 */
export type ServerSpec = typeof ServerSpec.Type

/**
 * The JSON form of a spec (`type` plus the transport's fields).
 *
 * @since 0.1.0
 * @category models
 */
export type Encoded = typeof ServerSpec.Encoded

const knownTypes = ["stdio", "http", "sse", "websocket", "custom"] as const
const byType = { stdio: Stdio, http: Http, sse: Sse, websocket: WebSocket, custom: Custom } as const

/**
 * Decodes a spec, failing with an `InvalidConfig` that names each wrong field
 * (an unknown `type`, a missing `command`, a malformed `url`, …).
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeEither = (
  input: unknown,
  options?: { readonly path?: string; readonly server?: string | undefined }
): Either.Either<ServerSpec, InvalidConfig> => {
  const path = options?.path ?? "server"
  const type = typeof input === "object" && input !== null && "type" in input ? input.type : undefined
  const known = knownTypes.find((t) => t === type)
  if (known === undefined) {
    const issue =
      typeof input !== "object" || input === null
        ? `${path}: expected an object with a "type" field, got ${input === null ? "null" : typeof input}`
        : `${path}.type: unknown transport type ${JSON.stringify(type)}; expected one of ${knownTypes.join(", ")}`
    return Either.left(
      new InvalidConfig({
        server: options?.server,
        path,
        issues: [issue],
        message: `invalid server spec:\n  - ${issue}`
      })
    )
  }
  const schema: Schema.Schema<ServerSpec, Encoded> = byType[known] as unknown as Schema.Schema<
    ServerSpec,
    Encoded
  >
  return decodeOrInvalid(schema, input, { what: "server spec", path, server: options?.server })
}

/**
 * Effect version of {@link decodeEither}.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decode = (
  input: unknown,
  options?: { readonly path?: string; readonly server?: string | undefined }
): Effect.Effect<ServerSpec, InvalidConfig> => decodeEither(input, options)

/**
 * A short, secret-free description for logs and status (`stdio: node server.js`, `http: http://…`).
 *
 * @since 0.1.0
 * @category utils
 */
export const describe = (spec: ServerSpec): string => {
  switch (spec.type) {
    case "stdio":
      return `stdio: ${[spec.command, ...spec.args].join(" ")}`
    case "custom":
      return `custom: ${spec.label}`
    default:
      // Credentials in a URL's userinfo are secrets too (a bare user is often a token).
      return `${spec.type}: ${redactUrl(spec.url)}`
  }
}

/** Plain headers or env values, revealed for the transport that needs them. @internal */
export const reveal = (
  record: { readonly [k: string]: Redacted.Redacted<string> } | undefined
): Record<string, string> =>
  Object.fromEntries(Object.entries(record ?? {}).map(([k, v]) => [k, Redacted.value(v)]))
