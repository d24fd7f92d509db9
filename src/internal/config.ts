/**
 * The `mcpServers` decoder of `Config`: walks a parsed file against the fields declared in
 * `configSchema.ts`, collecting every problem by JSON path (formatted by `schemaIssues.ts`);
 * fills `${VAR}` placeholders (`placeholders.ts`) and applies the `TETHER_*` overrides
 * (`configEnv.ts`). The JSONC reader is `jsonc.ts`.
 *
 * @internal
 */
import type { FileSystem } from "@effect/platform"
import type { PlatformError } from "@effect/platform/Error"
import { Config as EffectConfig, Effect, Either, Option, Redacted, Schema } from "effect"
import type { DecodeOptions, RenderOptions, ServerConfig, TetherConfig } from "../Config.js"
import { InvalidConfig } from "../Errors.js"
import type { ToolOverride } from "../McpConnection.js"
import * as Resilience from "../Resilience.js"
import * as ServerSpec from "../ServerSpec.js"
import { envOverrides } from "./configEnv.js"
import { fileFields, serverFields } from "./configSchema.js"
import { parseJson } from "./jsonc.js"
import { expandEnv, expandTenant, referencedVariables, withTenantStandIns } from "./placeholders.js"
import {
  decodeWith,
  describe,
  formatPath,
  hasOwn,
  invalid,
  type Issue,
  isRecord,
  type Key,
  unknownKeyMessage
} from "./schemaIssues.js"

export { envOverrides } from "./configEnv.js"
export { parseJson } from "./jsonc.js"
export { referencedVariables } from "./placeholders.js"

// ---------------------------------------------------------------------------
// Decoding a file
// ---------------------------------------------------------------------------

/** The transports a config file can name (a `custom` transport is code, not data). */
type FileTransport = Exclude<ServerSpec.ServerSpec["type"], "custom">

const TRANSPORTS: Readonly<Record<string, FileTransport>> = {
  stdio: "stdio",
  http: "http",
  "streamable-http": "http",
  streamablehttp: "http",
  sse: "sse",
  websocket: "websocket",
  ws: "websocket"
}

const STDIO_FIELDS = ["command", "args", "env", "cwd"] as const
const REMOTE_FIELDS = ["url", "headers", "auth"] as const
const SCHEMAS = {
  stdio: ServerSpec.Stdio,
  http: ServerSpec.Http,
  sse: ServerSpec.Sse,
  websocket: ServerSpec.WebSocket
} as const

const NonEmptyString = Schema.String.pipe(Schema.filter((s) => s.length > 0 || "must not be empty"))
const PositiveInt = Schema.Number.pipe(
  Schema.filter((n) => (Number.isInteger(n) && n >= 1) || `expected a whole number of 1 or more, got ${n}`)
)

const defaultPolicy: Readonly<Record<string, unknown>> = Resilience.defaultPolicy

/** The part of a decoded policy the input actually gave (so merge order is respected). */
const givenPart = (
  raw: Readonly<Record<string, unknown>>,
  decoded: Resilience.Policy
): Resilience.PolicyInput => {
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(decoded)) {
    if (!hasOwn(raw, key)) continue
    const given = raw[key]
    out[key] =
      isRecord(value) && isRecord(given)
        ? Object.fromEntries(Object.entries(value).filter(([k]) => hasOwn(given, k)))
        : value
  }
  return out as Resilience.PolicyInput
}

/** Checks a `resilience` block (unknown settings included) and returns what it gave. */
const resilienceBlock = (
  raw: unknown,
  path: string,
  issues: Array<Issue>,
  server?: string | undefined
): Resilience.PolicyInput | undefined => {
  if (!isRecord(raw)) {
    issues.push({ path, message: `expected an object, got ${describe(raw)}`, server })
    return undefined
  }
  let ok = true
  for (const [key, value] of Object.entries(raw)) {
    const known = defaultPolicy[key]
    if (known === undefined) {
      ok = false
      issues.push({
        path: formatPath(path, [key]),
        message: unknownKeyMessage("setting", key, Object.keys(defaultPolicy)),
        server
      })
    } else if (isRecord(known) && isRecord(value)) {
      for (const sub of Object.keys(value)) {
        if (!hasOwn(known, sub)) {
          ok = false
          issues.push({
            path: formatPath(path, [key, sub]),
            message: unknownKeyMessage("setting", sub, Object.keys(known)),
            server
          })
        }
      }
    }
  }
  const decoded = decodeWith(Resilience.Policy, raw, path, server)
  if (Either.isLeft(decoded)) {
    issues.push(...decoded.left)
    return undefined
  }
  return ok ? givenPart(raw, decoded.right) : undefined
}

const flag = (
  entry: Readonly<Record<string, unknown>>,
  key: string,
  fallback: boolean,
  path: string,
  issues: Array<Issue>,
  server: string
): boolean => {
  if (!hasOwn(entry, key)) return fallback
  const value = entry[key]
  if (typeof value === "boolean") return value
  issues.push({
    path: formatPath(path, [key]),
    message: `expected true or false, got ${describe(value)}`,
    server
  })
  return fallback
}

/** A server's `prefix` (what `tether proxy` puts before its tool and prompt names). */
const prefixSetting = (
  entry: Readonly<Record<string, unknown>>,
  path: string,
  issues: Array<Issue>,
  server: string
): string | undefined => {
  if (!hasOwn(entry, "prefix")) return undefined
  const value = entry["prefix"]
  if (typeof value === "string" && /^[A-Za-z0-9_.-]*$/.test(value)) return value
  issues.push({
    path: formatPath(path, ["prefix"]),
    message: `expected a string of letters, digits, "_", "-" or "." (may be empty), got ${describe(value)}`,
    server
  })
  return undefined
}

const toolsBlock = (
  raw: unknown,
  path: string,
  issues: Array<Issue>,
  server: string
): Readonly<Record<string, ToolOverride>> => {
  if (raw === undefined) return {}
  if (!isRecord(raw)) {
    issues.push({ path, message: `expected an object of tools by name, got ${describe(raw)}`, server })
    return {}
  }
  const out: Record<string, ToolOverride> = {}
  for (const [tool, override] of Object.entries(raw)) {
    const at = formatPath(path, [tool])
    if (tool.trim().length === 0) issues.push({ path: at, message: "tool name must not be empty", server })
    if (!isRecord(override)) {
      issues.push({
        path: at,
        message: `expected an object such as { "idempotent": true }, got ${describe(override)}`,
        server
      })
      continue
    }
    for (const key of Object.keys(override)) {
      if (key !== "idempotent") {
        issues.push({
          path: formatPath(at, [key]),
          message: 'unknown setting; expected "idempotent"',
          server
        })
      }
    }
    const idempotent = override["idempotent"]
    if (idempotent !== undefined && typeof idempotent !== "boolean") {
      issues.push({
        path: formatPath(at, ["idempotent"]),
        message: `expected true or false, got ${describe(idempotent)}`,
        server
      })
      continue
    }
    Object.defineProperty(out, tool, {
      value: idempotent === undefined ? {} : { idempotent },
      enumerable: true,
      writable: true,
      configurable: true
    })
  }
  return out
}

/** Works out the transport (explicit, aliased or inferred) of one server entry. */
const transportOf = (
  entry: Readonly<Record<string, unknown>>,
  path: string,
  url: unknown,
  issues: Array<Issue>,
  server: string
): FileTransport | undefined => {
  const given: Array<{ readonly key: string; readonly type: FileTransport | undefined }> = []
  for (const key of ["type", "transport"]) {
    if (!hasOwn(entry, key)) continue
    const raw = entry[key]
    const at = formatPath(path, [key])
    if (typeof raw !== "string") {
      issues.push({ path: at, message: `expected a string, got ${describe(raw)}`, server })
      given.push({ key, type: undefined })
      continue
    }
    const type = TRANSPORTS[raw.toLowerCase()]
    if (type === undefined) {
      issues.push({
        path: at,
        message: `unknown transport ${JSON.stringify(raw)}; expected stdio, http, sse or websocket (or streamable-http, ws)`,
        server
      })
    }
    given.push({ key, type })
  }
  if (given.length > 0) {
    if (given.some((g) => g.type === undefined)) return undefined
    const [first, second] = given
    if (first !== undefined && second !== undefined && first.type !== second.type) {
      issues.push({
        path: formatPath(path, ["transport"]),
        message: `says ${JSON.stringify(second.type)} but "type" says ${JSON.stringify(first.type)}; give one`,
        server
      })
      return undefined
    }
    return first?.type
  }
  const hasCommand = hasOwn(entry, "command")
  const hasUrl = hasOwn(entry, "url")
  if (hasCommand) return "stdio"
  if (hasUrl) return typeof url === "string" && /^wss?:/i.test(url.trim()) ? "websocket" : "http"
  issues.push({ path, message: 'needs "command" (stdio) or "url"', server })
  return undefined
}

/** Pushes an issue for each field of `raw` that the file's Schema does not declare. */
const unknownFields = (
  raw: Readonly<Record<string, unknown>>,
  known: ReadonlyArray<string>,
  path: string,
  issues: Array<Issue>,
  server?: string | undefined
): void => {
  for (const key of Object.keys(raw)) {
    if (!known.includes(key)) {
      issues.push({ path: formatPath(path, [key]), message: unknownKeyMessage("field", key, known), server })
    }
  }
}

/** Decodes one `mcpServers` entry; pushes its problems. */
const serverEntry = (
  name: string,
  raw: unknown,
  prefix: string,
  context: {
    readonly separator: string | undefined
    readonly env: (name: string) => string | undefined
    readonly global: Resilience.PolicyInput | undefined
    readonly overrides: Resilience.PolicyInput | undefined
  },
  issues: Array<Issue>
): ServerConfig | undefined => {
  const path = formatPath(prefix, [name])
  const server = name
  const before = issues.length
  if (name.trim().length === 0) issues.push({ path, message: "server name must not be empty", server })
  else if (name === "__proto__") {
    issues.push({ path, message: 'server name "__proto__" is reserved; choose another name', server })
  } else if (context.separator !== undefined && name.includes(context.separator)) {
    issues.push({
      path,
      message: `server name must not contain the namespace separator ${JSON.stringify(context.separator)}`,
      server
    })
  }
  if (!isRecord(raw)) {
    issues.push({ path, message: `expected an object with "command" or "url", got ${describe(raw)}`, server })
    return undefined
  }
  unknownFields(raw, serverFields, path, issues, server)
  if (hasOwn(raw, "disabled")) {
    const disabled = raw["disabled"]
    if (disabled === true) return undefined
    if (disabled !== false) {
      issues.push({
        path: formatPath(path, ["disabled"]),
        message: `expected true or false, got ${describe(disabled)}`,
        server
      })
    }
  }

  // --- the spec ---------------------------------------------------------------------
  const failedPaths = new Set<string>()
  const interpolate = (value: unknown, keys: ReadonlyArray<Key>): unknown => {
    if (typeof value !== "string") return value
    const expanded = expandEnv(value, context.env)
    if (Either.isRight(expanded)) return expanded.right
    const at = formatPath(path, keys)
    failedPaths.add(at)
    for (const message of expanded.left) issues.push({ path: at, message, server })
    return value
  }
  let spec: ServerSpec.ServerSpec | undefined
  const rawUrl = raw["url"]
  const url = hasOwn(raw, "url") ? interpolate(rawUrl, ["url"]) : undefined
  if (hasOwn(raw, "command") && hasOwn(raw, "url")) {
    issues.push({
      path,
      message: 'has both "command" and "url"; use "command" for a stdio server or "url" for a remote one',
      server
    })
  } else {
    const type = transportOf(raw, path, url, issues, server)
    if (type !== undefined) {
      const own: ReadonlyArray<string> = type === "stdio" ? STDIO_FIELDS : REMOTE_FIELDS
      for (const key of [...STDIO_FIELDS, ...REMOTE_FIELDS]) {
        if (hasOwn(raw, key) && !own.includes(key)) {
          issues.push({
            path: formatPath(path, [key]),
            message:
              type === "stdio"
                ? `a stdio server does not take "${key}"`
                : `a ${type} server does not take "${key}" (only stdio servers do)`,
            server
          })
        }
      }
      const record = (key: string): unknown => {
        const value = raw[key]
        return isRecord(value)
          ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolate(v, [key, k])]))
          : value
      }
      const input: Record<string, unknown> = { type }
      for (const key of own) {
        if (!hasOwn(raw, key)) continue
        input[key] =
          key === "url" ? url : key === "env" || key === "headers" || key === "auth" ? record(key) : raw[key]
      }
      const rawAuth = raw["auth"]
      if (isRecord(rawAuth)) {
        const fields = Object.keys(ServerSpec.OAuth.fields)
        for (const key of Object.keys(rawAuth)) {
          if (!fields.includes(key)) {
            issues.push({
              path: formatPath(path, ["auth", key]),
              message: unknownKeyMessage("field", key, fields),
              server
            })
          }
        }
      }
      // OAuth rides on the SDK's HTTP transports; a WebSocket handshake has no such flow.
      if (type === "websocket" && hasOwn(raw, "auth")) {
        issues.push({
          path: formatPath(path, ["auth"]),
          message: 'a websocket server does not take "auth" (OAuth needs an http or sse server)',
          server
        })
      }
      // A URL holding `${tenant.key}` is checked with stand-ins, and kept as written.
      const checkedUrl = typeof url === "string" ? withTenantStandIns(url) : url
      if (typeof url === "string") input["url"] = checkedUrl
      const decoded = decodeWith<ServerSpec.ServerSpec, ServerSpec.Encoded>(
        SCHEMAS[type] as unknown as Schema.Schema<ServerSpec.ServerSpec, ServerSpec.Encoded>,
        input,
        path,
        server
      )
      if (Either.isLeft(decoded)) {
        for (const issue of decoded.left) {
          if (failedPaths.has(issue.path)) continue
          // Messages quote the URL as written (`${VAR}` unexpanded): an expanded one may hold a secret.
          const message =
            typeof checkedUrl === "string" && typeof rawUrl === "string"
              ? issue.message.split(JSON.stringify(checkedUrl)).join(JSON.stringify(rawUrl))
              : issue.message
          issues.push({ ...issue, message })
        }
      } else if (
        decoded.right.type !== "stdio" &&
        decoded.right.type !== "custom" &&
        typeof url === "string"
      ) {
        spec = { ...decoded.right, url }
      } else {
        spec = decoded.right
      }
    }
  }

  // --- resilience, tools, flags --------------------------------------------------------
  const own = hasOwn(raw, "resilience")
    ? resilienceBlock(raw["resilience"], formatPath(path, ["resilience"]), issues, server)
    : undefined
  const tools = toolsBlock(raw["tools"], formatPath(path, ["tools"]), issues, server)
  const lazy = flag(raw, "lazy", false, path, issues, server)
  const optional = flag(raw, "optional", false, path, issues, server)
  const trustAnnotations = flag(raw, "trustAnnotations", true, path, issues, server)
  const namePrefix = prefixSetting(raw, path, issues, server)
  if (issues.length > before || spec === undefined) return undefined

  const resilience = Resilience.merge(context.global, context.overrides, own)
  if (Either.isLeft(resilience)) {
    for (const line of resilience.left.issues ?? []) issues.push({ path: "", message: line, server })
    return undefined
  }
  return {
    name,
    spec,
    resilience: resilience.right,
    tools,
    lazy,
    optional,
    trustAnnotations,
    ...(namePrefix !== undefined ? { prefix: namePrefix } : {})
  }
}

/** @internal Decodes an `mcpServers` document, collecting every problem. */
export const decode = (
  input: unknown,
  options: DecodeOptions | undefined,
  earlier: ReadonlyArray<Issue> = []
): Either.Either<TetherConfig, InvalidConfig> => {
  const source = options?.source ?? "(inline)"
  const envRecord = options?.env ?? process.env
  const env = (name: string): string | undefined => (hasOwn(envRecord, name) ? envRecord[name] : undefined)
  const issues: Array<Issue> = [...earlier]
  const fail = () => Either.left(invalid(`invalid config ${source}`, issues))

  if (!isRecord(input)) {
    issues.push({
      path: "",
      message: `expected an object with "mcpServers" at the top level, got ${describe(input)}`
    })
    return fail()
  }

  // Without a servers key the file is likely not a config at all: "is missing" says that.
  if (hasOwn(input, "mcpServers") || hasOwn(input, "servers")) unknownFields(input, fileFields, "", issues)

  // --- servers: `mcpServers` (Claude Desktop, Cursor, mcp-use) or `servers` (VS Code) ---
  let serversKey = "mcpServers"
  if (hasOwn(input, "mcpServers") && hasOwn(input, "servers")) {
    issues.push({
      path: "servers",
      message: 'give the servers either in "mcpServers" or in "servers", not both'
    })
  } else if (!hasOwn(input, "mcpServers") && hasOwn(input, "servers")) {
    serversKey = "servers"
  }
  const servers = input[serversKey]
  if (!hasOwn(input, serversKey)) {
    issues.push({ path: "mcpServers", message: "is missing; expected an object of servers by name" })
  } else if (!isRecord(servers)) {
    issues.push({
      path: serversKey,
      message: `expected an object of servers by name, got ${describe(servers)}`
    })
  }

  // --- global settings --------------------------------------------------------------------
  const global = hasOwn(input, "resilience")
    ? resilienceBlock(input["resilience"], "resilience", issues)
    : undefined
  const field = <A, I>(key: string, schema: Schema.Schema<A, I>): A | undefined => {
    if (!hasOwn(input, key)) return undefined
    const decoded = decodeWith(schema, input[key], key)
    if (Either.isRight(decoded)) return decoded.right
    issues.push(...decoded.left)
    return undefined
  }
  const namespaceSeparator = field("namespaceSeparator", NonEmptyString)
  const maxConnections = field("maxConnections", PositiveInt)
  const idleTimeToLive = field("idleTimeToLive", Resilience.Millis)

  let overrides = options?.overrides
  if (overrides !== undefined) {
    const checked = decodeWith(Resilience.Policy, overrides, "overrides")
    if (Either.isLeft(checked)) {
      issues.push(...checked.left)
      overrides = undefined
    }
  }

  // --- each server ------------------------------------------------------------------------
  const decoded: Array<ServerConfig> = []
  if (isRecord(servers)) {
    const separator =
      hasOwn(input, "namespaceSeparator") && namespaceSeparator === undefined
        ? undefined
        : (namespaceSeparator ?? "__")
    for (const [name, entry] of Object.entries(servers)) {
      const server = serverEntry(name, entry, serversKey, { separator, env, global, overrides }, issues)
      if (server !== undefined) decoded.push(server)
    }
  }

  if (issues.length > 0) return fail()
  return Either.right({
    servers: decoded,
    namespaceSeparator: namespaceSeparator ?? "__",
    maxConnections,
    idleTimeToLive,
    source
  })
}

/** @internal Parses JSON (with comments) text, then decodes it. */
export const parse = (
  text: string,
  options: DecodeOptions | undefined
): Either.Either<TetherConfig, InvalidConfig> => {
  const source = options?.source ?? "(inline)"
  const parsed = parseJson(text)
  if (Either.isLeft(parsed)) {
    const { column, line, message } = parsed.left
    return Either.left(
      invalid(`invalid config ${source}`, [
        { path: "", message: `${source}:${line}:${column}: not valid JSON: ${message}` }
      ])
    )
  }
  const duplicates = parsed.right.duplicates.map((d): Issue => ({
    path: formatPath("", d.path),
    message: `defined twice (lines ${d.lines[0]} and ${d.lines[1]}); the second would silently replace the first`,
    server:
      d.path.length === 2 && (d.path[0] === "mcpServers" || d.path[0] === "servers")
        ? String(d.path[1])
        : undefined
  }))
  return decode(parsed.right.value, options, duplicates)
}

// ---------------------------------------------------------------------------
// Tenants
// ---------------------------------------------------------------------------

/** @internal Fills `${tenant.key}` placeholders of a decoded spec. */
export const renderTenant = (
  spec: ServerSpec.ServerSpec,
  tenant: Readonly<Record<string, string>>,
  options: RenderOptions | undefined
): Either.Either<ServerSpec.ServerSpec, InvalidConfig> => {
  const server = options?.server
  const prefix = options?.path ?? (server === undefined ? "" : formatPath("mcpServers", [server]))
  const issues: Array<Issue> = []
  const fill = (value: string, keys: ReadonlyArray<Key>): string => {
    const filled = expandTenant(value, tenant)
    if (Either.isRight(filled)) return filled.right
    for (const message of filled.left) issues.push({ path: formatPath(prefix, keys), message, server })
    return value
  }
  const fillSecrets = (
    record: { readonly [k: string]: Redacted.Redacted<string> } | undefined,
    key: string
  ): { readonly [k: string]: Redacted.Redacted<string> } | undefined =>
    record === undefined
      ? undefined
      : Object.fromEntries(
          Object.entries(record).map(([k, v]) => {
            const plain = Redacted.value(v)
            const filled = fill(plain, [key, k])
            return [k, filled === plain ? v : Redacted.make(filled)]
          })
        )
  const header = `invalid tenant values${server === undefined ? "" : ` for server ${server}`}`

  // A programmatic transport has no strings to fill.
  if (spec.type === "custom") return Either.right(spec)
  if (spec.type === "stdio") {
    const env = fillSecrets(spec.env, "env")
    const rendered: ServerSpec.Stdio = {
      ...spec,
      command: fill(spec.command, ["command"]),
      args: spec.args.map((arg, i) => fill(arg, ["args", i])),
      ...(spec.cwd === undefined ? {} : { cwd: fill(spec.cwd, ["cwd"]) }),
      ...(env === undefined ? {} : { env })
    }
    return issues.length > 0 ? Either.left(invalid(header, issues, server)) : Either.right(rendered)
  }
  const url = fill(spec.url, ["url"])
  const headers = fillSecrets(spec.headers, "headers")
  if (issues.length > 0) return Either.left(invalid(header, issues, server))
  const checked = decodeWith<ServerSpec.ServerSpec, ServerSpec.Encoded>(
    SCHEMAS[spec.type] as unknown as Schema.Schema<ServerSpec.ServerSpec, ServerSpec.Encoded>,
    { type: spec.type, url },
    prefix,
    server
  )
  if (Either.isLeft(checked)) return Either.left(invalid(header, checked.left, server))
  return Either.right({ ...spec, url, ...(headers === undefined ? {} : { headers }) })
}

// ---------------------------------------------------------------------------
// Loading a file
// ---------------------------------------------------------------------------

const readError = (path: string, error: PlatformError): InvalidConfig => {
  const message =
    error._tag === "SystemError" && error.reason === "NotFound"
      ? `config file ${path} not found`
      : error._tag === "SystemError" && error.reason === "PermissionDenied"
        ? `cannot read config file ${path}: permission denied`
        : `cannot read config file ${path}: ${error.message}`
  return new InvalidConfig({ issues: [message], message })
}

/** @internal Reads, parses and decodes a file, with env placeholders and `TETHER_*` overrides. */
export const load = (fs: FileSystem.FileSystem, path: string): Effect.Effect<TetherConfig, InvalidConfig> =>
  Effect.gen(function* () {
    const text = yield* Effect.mapError(fs.readFileString(path), (error) => readError(path, error))
    const overrides = yield* envOverrides
    const env: Record<string, string> = {}
    for (const name of referencedVariables(text)) {
      const value = yield* EffectConfig.option(EffectConfig.string(name)).pipe(
        Effect.mapError(
          (error) =>
            new InvalidConfig({
              issues: [`${name}: cannot be read: ${String(error)}`],
              message: `cannot read environment variable ${name}: ${String(error)}`
            })
        )
      )
      if (Option.isSome(value)) env[name] = value.value
    }
    return yield* parse(text, { source: path, env, overrides: overrides.resilience })
  })
