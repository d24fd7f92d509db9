/**
 * The `mcpServers` decoder of `Config`: the file's top level and each server entry are
 * decoded by the Schemas of `configSchema.ts`, every problem listed by JSON path through
 * `schemaIssues.formatIssue`. Also fills `${VAR}` placeholders (`placeholders.ts`, read
 * through the `ConfigProvider` by `load` and `fromObject`) and applies the `TETHER_*`
 * overrides (`configEnv.ts`). The JSONC reader is `jsonc.ts`.
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
import {
  entrySchemas,
  File,
  fileFields,
  type FileTransport,
  NamespaceSeparator,
  serverFields,
  type Variables
} from "./configSchema.js"
import { parseJson } from "./jsonc.js"
import { expandEnv, expandTenant, referencedVariables, variablesIn } from "./placeholders.js"
import {
  decodeWith,
  describe,
  formatPath,
  hasOwn,
  invalid,
  type Issue,
  isRecord,
  type Key
} from "./schemaIssues.js"

export { envOverrides } from "./configEnv.js"

// ---------------------------------------------------------------------------
// Decoding a file
// ---------------------------------------------------------------------------

const TRANSPORTS: Readonly<Record<string, FileTransport>> = {
  stdio: "stdio",
  http: "http",
  "streamable-http": "http",
  streamablehttp: "http",
  sse: "sse",
  websocket: "websocket",
  ws: "websocket"
}

const SCHEMAS = {
  stdio: ServerSpec.Stdio,
  http: ServerSpec.Http,
  sse: ServerSpec.Sse,
  websocket: ServerSpec.WebSocket
} as const

/**
 * Works out the transport of one entry (explicit, aliased or inferred), which picks the
 * struct the entry is decoded with. Written by hand, not as a Schema: it reads four keys
 * (`type`, `transport`, `command`, `url` with its placeholders filled) whose messages refer
 * to each other, and a failed Schema transformation would stop there, hiding the entry's
 * other problems, which the file format promises to list.
 */
const transportOf = (
  entry: Readonly<Record<string, unknown>>,
  path: string,
  env: Variables,
  issues: Array<Issue>,
  server: string
): FileTransport | undefined => {
  let url = entry["url"]
  if (typeof url === "string") {
    const filled = expandEnv(url, env)
    if (Either.isRight(filled)) url = filled.right
    else for (const message of filled.left) issues.push({ path: formatPath(path, ["url"]), message, server })
  }
  const hasCommand = hasOwn(entry, "command")
  const hasUrl = hasOwn(entry, "url")
  if (hasCommand && hasUrl) {
    issues.push({
      path,
      message: 'has both "command" and "url"; use "command" for a stdio server or "url" for a remote one',
      server
    })
    return undefined
  }
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
  if (hasCommand) return "stdio"
  if (hasUrl) return typeof url === "string" && /^wss?:/i.test(url.trim()) ? "websocket" : "http"
  issues.push({ path, message: 'needs "command" (stdio) or "url"', server })
  return undefined
}

/**
 * Splits problems into those at the given keys of the object at `path` and the rest: a
 * misspelt key often explains the other problems, so it is listed before them.
 */
const atKeys = (
  issues: ReadonlyArray<Issue>,
  path: string,
  keys: ReadonlyArray<string>
): readonly [ReadonlyArray<Issue>, ReadonlyArray<Issue>] => {
  const paths = new Set(keys.map((key) => formatPath(path, [key])))
  return [issues.filter((i) => paths.has(i.path)), issues.filter((i) => !paths.has(i.path))]
}

/** Why a server name cannot be used, if it cannot (it becomes part of catalog names). */
const nameProblem = (name: string, separator: string | undefined): string | undefined =>
  name.trim().length === 0
    ? "server name must not be empty"
    : name === "__proto__"
      ? 'server name "__proto__" is reserved; choose another name'
      : separator !== undefined && name.includes(separator)
        ? `server name must not contain the namespace separator ${JSON.stringify(separator)}`
        : undefined

/** What an entry says besides its spec. */
interface Settings {
  readonly resilience?: Resilience.PolicyInput | undefined
  readonly tools?: Readonly<Record<string, ToolOverride>> | undefined
  readonly lazy?: boolean | undefined
  readonly optional?: boolean | undefined
  readonly trustAnnotations?: boolean | undefined
  readonly prefix?: string | undefined
}

/** The spec and settings of one entry, decoded with the struct of its transport. */
const decodeEntry = (
  schemas: ReturnType<typeof entrySchemas>,
  type: FileTransport,
  raw: Readonly<Record<string, unknown>>,
  path: string,
  server: string
): Either.Either<
  { readonly spec: ServerSpec.ServerSpec; readonly settings: Settings },
  ReadonlyArray<Issue>
> => {
  const at = <A, I>(schema: Schema.Schema<A, I>) => decodeWith(schema, raw, path, server)
  switch (type) {
    case "stdio":
      return Either.map(at(schemas.stdio), ({ args, command, cwd, env, ...settings }) => ({
        spec: {
          type,
          command,
          args,
          ...(env === undefined ? {} : { env }),
          ...(cwd === undefined ? {} : { cwd })
        } satisfies ServerSpec.Stdio,
        settings
      }))
    case "http":
    case "sse":
      return Either.map(at(schemas[type]), ({ auth, headers, url, ...settings }) => ({
        spec: {
          type,
          url,
          ...(headers === undefined ? {} : { headers }),
          ...(auth === undefined ? {} : { auth })
        } satisfies ServerSpec.Http | ServerSpec.Sse,
        settings
      }))
    case "websocket":
      return Either.map(at(schemas.websocket), ({ headers, url, ...settings }) => ({
        spec: { type, url, ...(headers === undefined ? {} : { headers }) } satisfies ServerSpec.WebSocket,
        settings
      }))
  }
}

/** Decodes one `mcpServers` entry; pushes its problems. */
const serverEntry = (
  name: string,
  raw: unknown,
  prefix: string,
  context: {
    readonly separator: string | undefined
    readonly env: Variables
    readonly schemas: ReturnType<typeof entrySchemas>
    readonly global: Resilience.PolicyInput | undefined
    readonly overrides: Resilience.PolicyInput | undefined
  },
  issues: Array<Issue>
): ServerConfig | undefined => {
  const path = formatPath(prefix, [name])
  const server = name
  const before = issues.length
  const problem = nameProblem(name, context.separator)
  if (problem !== undefined) issues.push({ path, message: problem, server })
  if (!isRecord(raw)) {
    issues.push({ path, message: `expected an object with "command" or "url", got ${describe(raw)}`, server })
    return undefined
  }
  // A disabled entry is not started, so only its keys are checked.
  const disabled = raw["disabled"] === true
  const transport: Array<Issue> = []
  const type = disabled ? undefined : transportOf(raw, path, context.env, transport, server)
  const checkOnly = <A, I>(schema: Schema.Schema<A, I>) =>
    Either.map(decodeWith(schema, raw, path, server), () => undefined)
  const decoded =
    type !== undefined
      ? decodeEntry(context.schemas, type, raw, path, server)
      : disabled
        ? checkOnly(context.schemas.disabled)
        : checkOnly(context.schemas.unresolved)
  if (Either.isLeft(decoded)) {
    const [early, later] = atKeys(decoded.left, path, [
      ...Object.keys(raw).filter((key) => !serverFields.includes(key)),
      "disabled"
    ])
    issues.push(...early, ...transport, ...later)
    return undefined
  }
  issues.push(...transport)
  if (issues.length > before || decoded.right === undefined) return undefined

  const { prefix: namePrefix, ...settings } = decoded.right.settings
  const resilience = Resilience.merge(context.global, context.overrides, settings.resilience)
  if (Either.isLeft(resilience)) {
    for (const line of resilience.left.issues ?? []) issues.push({ path: "", message: line, server })
    return undefined
  }
  return {
    name,
    spec: decoded.right.spec,
    resilience: resilience.right,
    tools: settings.tools ?? {},
    lazy: settings.lazy ?? false,
    optional: settings.optional ?? false,
    trustAnnotations: settings.trustAnnotations ?? true,
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
  const env: Variables = (name) => (hasOwn(envRecord, name) ? envRecord[name] : undefined)
  const issues: Array<Issue> = [...earlier]
  const fail = () => Either.left(invalid(`invalid config ${source}`, issues))

  if (!isRecord(input)) {
    issues.push({
      path: "",
      message: `expected an object with "mcpServers" at the top level, got ${describe(input)}`
    })
    return fail()
  }

  // --- servers: `mcpServers` (Claude Desktop, Cursor, mcp-use) or `servers` (VS Code) ---
  const hasServers = hasOwn(input, "mcpServers") || hasOwn(input, "servers")
  const serversKey = hasOwn(input, "mcpServers") ? "mcpServers" : "servers"
  const where: Array<Issue> = []
  if (!hasServers) {
    where.push({ path: "mcpServers", message: "is missing; expected an object of servers by name" })
  } else if (hasOwn(input, "mcpServers") && hasOwn(input, "servers")) {
    where.push({
      path: "servers",
      message: 'give the servers either in "mcpServers" or in "servers", not both'
    })
  }

  // --- global settings --------------------------------------------------------------------
  const file = decodeWith(File, input, "", undefined)
  const [unknown, later] = atKeys(
    Either.isLeft(file) ? file.left : [],
    "",
    Object.keys(input).filter((key) => !fileFields.includes(key))
  )
  // Without a servers key the input is likely not a config at all: "is missing" says that
  // better than a list of unknown fields.
  issues.push(...(hasServers ? unknown : []), ...where, ...later)
  const settings = Either.getOrUndefined(file)
  // A bad separator is reported above; names are then not checked against it.
  const givenSeparator = input["namespaceSeparator"]
  const separator = !hasOwn(input, "namespaceSeparator")
    ? "__"
    : Schema.is(NamespaceSeparator)(givenSeparator)
      ? givenSeparator
      : undefined

  let overrides = options?.overrides
  if (overrides !== undefined) {
    const checked = decodeWith(Resilience.Policy, overrides, "overrides", undefined, "ignore")
    if (Either.isLeft(checked)) {
      issues.push(...checked.left)
      overrides = undefined
    }
  }

  // --- each server ------------------------------------------------------------------------
  const decoded: Array<ServerConfig> = []
  const servers = input[serversKey]
  if (isRecord(servers)) {
    const context = { separator, env, schemas: entrySchemas(env), global: settings?.resilience, overrides }
    for (const [name, entry] of Object.entries(servers)) {
      const server = serverEntry(name, entry, serversKey, context, issues)
      if (server !== undefined) decoded.push(server)
    }
  }

  if (issues.length > 0) return fail()
  return Either.right({
    servers: decoded,
    namespaceSeparator: separator ?? "__",
    maxConnections: settings?.maxConnections,
    idleTimeToLive: settings?.idleTimeToLive,
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

/** Reads each variable through the current `ConfigProvider` (unset ones are left out). */
const readVariables = (
  names: ReadonlyArray<string>
): Effect.Effect<Readonly<Record<string, string>>, InvalidConfig> =>
  Effect.reduce(names, {} as Readonly<Record<string, string>>, (env, name) =>
    EffectConfig.option(EffectConfig.string(name)).pipe(
      Effect.map(Option.match({ onNone: () => env, onSome: (value) => ({ ...env, [name]: value }) })),
      Effect.mapError(
        (error) =>
          new InvalidConfig({
            issues: [`${name}: cannot be read: ${String(error)}`],
            message: `cannot read environment variable ${name}: ${String(error)}`
          })
      )
    )
  )

/** @internal Reads, parses and decodes a file, with env placeholders and `TETHER_*` overrides. */
export const load = (fs: FileSystem.FileSystem, path: string): Effect.Effect<TetherConfig, InvalidConfig> =>
  Effect.gen(function* () {
    const text = yield* Effect.mapError(fs.readFileString(path), (error) => readError(path, error))
    const overrides = yield* envOverrides
    const env = yield* readVariables(referencedVariables(text))
    return yield* parse(text, { source: path, env, overrides: overrides.resilience })
  })

/** @internal Decodes a config value given in code, like `load` does a file. */
export const fromObject = (
  input: unknown,
  options: { readonly source?: string | undefined } | undefined
): Effect.Effect<TetherConfig, InvalidConfig> =>
  Effect.gen(function* () {
    const overrides = yield* envOverrides
    const env = yield* readVariables(variablesIn(input))
    return yield* decode(input, {
      source: options?.source ?? "(inline)",
      env,
      overrides: overrides.resilience
    })
  })
