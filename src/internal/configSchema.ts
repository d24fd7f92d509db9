/**
 * The shape of an `mcp.json` file, declared once as Schemas: the top level ({@link File})
 * and one struct per kind of server entry ({@link entrySchemas}: stdio, http, sse,
 * websocket, plus the entries whose transport could not be worked out and disabled ones).
 * An entry is decoded once, with every problem collected and no undeclared key allowed;
 * `schemaIssues.formatIssue` turns the problems into lines by JSON path. So a new setting
 * is accepted by declaring it here.
 *
 * @internal
 */
import { Either, ParseResult, Schema } from "effect"
import * as Resilience from "../Resilience.js"
import * as ServerSpec from "../ServerSpec.js"
import { expandEnv, withTenantStandIns } from "./placeholders.js"
import {
  ExpectedId,
  FirstId,
  formatIssue,
  hasOwn,
  isRecord,
  UnknownKeyId,
  unknownKeyMessage
} from "./schemaIssues.js"

/** @internal Looks up a `${NAME}` variable (undefined when unset). */
export type Variables = (name: string) => string | undefined

/** @internal The transports a config file can name (a `custom` transport is code, not data). */
export type FileTransport = Exclude<ServerSpec.ServerSpec["type"], "custom">

/** Settings another host keeps in the same file (or ones checked elsewhere); accepted as is. */
const Foreign = Schema.optional(Schema.Unknown)

/** Fails with one `Type` issue per message (a value may hold several bad placeholders). */
const failWith = (ast: Schema.Schema.Any["ast"], actual: unknown, messages: ReadonlyArray<string>) => {
  const [first, ...rest] = messages.map((m) => new ParseResult.Type(ast, actual, m))
  return ParseResult.fail(
    first === undefined
      ? new ParseResult.Type(ast, actual)
      : rest.length === 0
        ? first
        : new ParseResult.Composite(ast, actual, [first, ...rest])
  )
}

/** The part of a decoded policy the input actually gave (so merge order is respected). */
const givenPart = (raw: unknown, decoded: Resilience.Policy): Resilience.PolicyInput => {
  const out: Record<string, unknown> = {}
  if (!isRecord(raw)) return out
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

const PolicyInput = Schema.declare((u: unknown): u is Resilience.PolicyInput => isRecord(u))

/**
 * A `resilience` block: checked against the whole policy, but only what it gives is kept
 * (defaults < global block < `TETHER_*` < server block is merged later).
 */
const GivenPolicy = Schema.transformOrFail(Schema.Unknown, PolicyInput, {
  strict: true,
  decode: (raw, options) =>
    Either.map(ParseResult.decodeUnknownEither(Resilience.Policy)(raw, options), (policy) =>
      givenPart(raw, policy)
    ),
  encode: ParseResult.succeed
}).annotations({
  [UnknownKeyId]: (key: string, known: ReadonlyArray<string>) => unknownKeyMessage("setting", key, known)
})

/** @internal */
export const NamespaceSeparator = Schema.String.pipe(
  Schema.filter((s) => s.length > 0 || "must not be empty")
)
const PositiveInt = Schema.Number.pipe(
  Schema.filter((n) => (Number.isInteger(n) && n >= 1) || `expected a whole number of 1 or more, got ${n}`)
)
const Servers = Schema.Record({ key: Schema.String, value: Schema.Unknown }).annotations({
  [ExpectedId]: "an object of servers by name"
})

/** @internal The top level of the file (each server entry is decoded by {@link entrySchemas}). */
export const File = Schema.Struct({
  $schema: Foreign,
  mcpServers: Schema.optional(Servers),
  /** VS Code's name for `mcpServers`. */
  servers: Schema.optional(Servers),
  /** VS Code's prompted inputs (`${input:…}` placeholders are refused where used). */
  inputs: Foreign,
  resilience: Schema.optional(GivenPolicy),
  namespaceSeparator: Schema.optional(NamespaceSeparator),
  maxConnections: Schema.optional(PositiveInt),
  idleTimeToLive: Schema.optional(Resilience.Millis)
})

/** One entry of `tools`: per-tool overrides. */
const ToolEntry = Schema.Struct({
  idempotent: Schema.optional(Schema.Boolean)
}).annotations({
  [ExpectedId]: 'an object such as { "idempotent": true }',
  [UnknownKeyId]: () => 'unknown setting; expected "idempotent"'
})

const ToolsRecord = Schema.Record({
  key: Schema.String.pipe(Schema.filter((name) => name.trim().length > 0)),
  value: ToolEntry
}).annotations({
  [ExpectedId]: "an object of tools by name",
  // Schema reports a key its key schema refuses as an undeclared one: here, a blank name.
  [UnknownKeyId]: () => "tool name must not be empty"
})

type Tools = { readonly [tool: string]: typeof ToolEntry.Type }

/**
 * `tools`, checked by {@link ToolsRecord} and kept as given: Schema builds a record by
 * assignment, which would turn a tool named `__proto__` into the record's prototype.
 */
const Tools = Schema.transformOrFail(
  Schema.Unknown,
  Schema.declare((u: unknown): u is Tools => isRecord(u)),
  {
    strict: true,
    decode: (raw, options) =>
      Either.map(ParseResult.decodeUnknownEither(ToolsRecord)(raw, options), (): Tools =>
        Object.fromEntries(
          Object.entries(isRecord(raw) ? raw : {}).map(([tool, entry]) => {
            const idempotent = isRecord(entry) ? entry["idempotent"] : undefined
            return [tool, typeof idempotent === "boolean" ? { idempotent } : {}]
          })
        )
      ),
    encode: ParseResult.succeed
  }
)

const Prefix = Schema.String.pipe(Schema.filter((s) => /^[A-Za-z0-9_.-]*$/.test(s))).annotations({
  [ExpectedId]: 'a string of letters, digits, "_", "-" or "." (may be empty)'
})

const STDIO_FIELDS: ReadonlyArray<string> = ["command", "args", "env", "cwd"]
const REMOTE_FIELDS: ReadonlyArray<string> = ["url", "headers", "auth"]

/**
 * Every field a server entry may hold, in the order "expected one of …" lists them. A
 * disabled entry is decoded with it alone: only its keys are checked.
 */
const AnyEntry = Schema.Struct({
  type: Foreign,
  /** An alias of `type` used by some hosts. */
  transport: Foreign,
  command: Foreign,
  args: Foreign,
  env: Foreign,
  cwd: Foreign,
  url: Foreign,
  headers: Foreign,
  /** OAuth for an http/sse server: see `ServerSpec.OAuth`. */
  auth: Foreign,
  tools: Foreign,
  resilience: Foreign,
  disabled: Foreign,
  lazy: Foreign,
  optional: Foreign,
  trustAnnotations: Foreign,
  /** What `tether proxy` puts before this server's names. */
  prefix: Foreign,
  /** Free text some hosts show. */
  description: Foreign,
  /** Cline's tool permissions (a UI setting). */
  autoApprove: Foreign,
  alwaysAllow: Foreign
})

/** @internal The declared fields of a server entry. */
export const serverFields: ReadonlyArray<string> = Object.keys(AnyEntry.fields)

/** @internal The declared top-level fields. */
export const fileFields: ReadonlyArray<string> = Object.keys(File.fields)

/** The message for a key an entry of `transport` does not declare. */
const undeclared =
  (transport: FileTransport | undefined) =>
  (key: string): string => {
    if (transport === "stdio" && REMOTE_FIELDS.includes(key)) return `a stdio server does not take "${key}"`
    if (transport !== undefined && transport !== "stdio" && STDIO_FIELDS.includes(key)) {
      return `a ${transport} server does not take "${key}" (only stdio servers do)`
    }
    // OAuth rides on the SDK's HTTP transports; a WebSocket handshake has no such flow.
    if (transport === "websocket" && key === "auth") {
      return 'a websocket server does not take "auth" (OAuth needs an http or sse server)'
    }
    return unknownKeyMessage("field", key, serverFields)
  }

/**
 * @internal The struct of each kind of server entry, filling `${NAME}` placeholders from
 * `env` (built once per decoded file, as the variables differ between calls). `unresolved`
 * is for an entry whose transport could not be worked out: its other settings are still
 * checked. `disabled` checks only the keys.
 */
export const entrySchemas = (env: Variables) => {
  /** A string with its `${NAME}` placeholders filled (`${tenant.key}` ones are kept). */
  const Filled = Schema.transformOrFail(Schema.String, Schema.String, {
    strict: true,
    decode: (s, _, ast) =>
      Either.match(expandEnv(s, env), {
        onLeft: (messages) => failWith(ast, s, messages),
        onRight: ParseResult.succeed
      }),
    encode: ParseResult.succeed
  }).annotations({ [FirstId]: true })
  const Secrets = Schema.Record({
    key: Schema.String,
    value: Schema.compose(Filled, ServerSpec.Secret, { strict: false })
  })
  /** `auth` with its values filled, then checked as `ServerSpec.OAuth`. */
  const Auth = Schema.transformOrFail(
    Schema.Record({ key: Schema.String, value: Schema.Unknown }),
    Schema.typeSchema(ServerSpec.OAuth),
    {
      strict: true,
      decode: (raw, options, ast) => {
        const filled: Record<string, unknown> = {}
        const failed: Array<ParseResult.ParseIssue> = []
        for (const [key, value] of Object.entries(raw)) {
          const expanded = typeof value === "string" ? expandEnv(value, env) : Either.right(value)
          // A value whose placeholder failed is checked as written, so its other problems show too.
          filled[key] = Either.getOrElse(expanded, () => value)
          if (Either.isLeft(expanded)) {
            for (const m of expanded.left)
              failed.push(new ParseResult.Pointer(key, raw, new ParseResult.Type(ast, value, m)))
          }
        }
        const checked = ParseResult.decodeUnknownEither(ServerSpec.OAuth)(filled, options)
        const [first, ...rest] = Either.isLeft(checked) ? [...failed, checked.left] : failed
        return first === undefined
          ? checked
          : ParseResult.fail(new ParseResult.Composite(ast, raw, [first, ...rest]))
      },
      encode: (auth) => ParseResult.encodeEither(ServerSpec.OAuth)(auth)
    }
  ).annotations({
    [FirstId]: true,
    [UnknownKeyId]: (key: string, known: ReadonlyArray<string>) => unknownKeyMessage("field", key, known)
  })
  /**
   * A URL with its `${NAME}` placeholders filled, checked by `check` with a stand-in for
   * each `${tenant.key}` (filled per tenant later), and kept with those as written.
   */
  const Url = (check: Schema.Schema<string>) =>
    Schema.transformOrFail(Schema.String, Schema.String, {
      strict: true,
      decode: (raw, options, ast) => {
        const filled = expandEnv(raw, env)
        // `transportOf` reported the placeholder: it needed the URL to infer the transport.
        if (Either.isLeft(filled)) return ParseResult.succeed(raw)
        const checked = withTenantStandIns(filled.right)
        return Either.match(ParseResult.decodeUnknownEither(check)(checked, options), {
          // Messages quote the URL as written (`${VAR}` unexpanded): an expanded one may hold a secret.
          onLeft: (issue) =>
            failWith(
              ast,
              raw,
              formatIssue(issue, checked, "").map((i) =>
                i.message.split(JSON.stringify(checked)).join(JSON.stringify(raw))
              )
            ),
          onRight: () => ParseResult.succeed(filled.right)
        })
      },
      encode: ParseResult.succeed
    })

  const names = { type: Foreign, transport: Foreign } // checked by `transportOf`
  // Listed in the order their problems are reported.
  const settings = {
    resilience: Schema.optional(GivenPolicy),
    tools: Schema.optional(Tools),
    lazy: Schema.optional(Schema.Boolean),
    optional: Schema.optional(Schema.Boolean),
    trustAnnotations: Schema.optional(Schema.Boolean),
    prefix: Schema.optional(Prefix),
    description: Foreign,
    autoApprove: Foreign,
    alwaysAllow: Foreign
  }
  const disabled = Schema.optional(Schema.Boolean) // `true` is decoded by `AnyEntry`
  const entry = <Fields extends Schema.Struct.Fields>(transport: FileTransport | undefined, fields: Fields) =>
    Schema.Struct({ ...names, disabled, ...fields, ...settings }).annotations({
      [UnknownKeyId]: undeclared(transport)
    })
  const remote = { headers: Schema.optional(Secrets), auth: Schema.optional(Auth) }
  return {
    stdio: entry("stdio", {
      command: ServerSpec.Stdio.fields.command,
      args: ServerSpec.Stdio.fields.args,
      env: Schema.optional(Secrets),
      cwd: ServerSpec.Stdio.fields.cwd
    }),
    http: entry("http", { url: Url(ServerSpec.Http.fields.url), ...remote }),
    sse: entry("sse", { url: Url(ServerSpec.Sse.fields.url), ...remote }),
    websocket: entry("websocket", { url: Url(ServerSpec.WebSocket.fields.url), headers: remote.headers }),
    unresolved: entry(undefined, {
      command: Foreign,
      args: Foreign,
      env: Foreign,
      cwd: Foreign,
      url: Foreign,
      headers: Foreign,
      auth: Foreign
    }),
    disabled: AnyEntry.annotations({ [UnknownKeyId]: undeclared(undefined) })
  }
}
