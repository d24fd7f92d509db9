/**
 * The machinery of `Config`: a JSON (with comments) reader that reports line and column,
 * `${VAR}` / `${tenant.key}` placeholders, the walk that decodes an `mcpServers` file
 * collecting every problem by JSON path, and the `TETHER_*` environment overrides.
 *
 * @internal
 */
import type { FileSystem } from "@effect/platform"
import type { PlatformError } from "@effect/platform/Error"
import {
  Config as EffectConfig,
  Effect,
  Either,
  LogLevel,
  Option,
  ParseResult,
  Redacted,
  Schema
} from "effect"
import type { DecodeOptions, EnvOverrides, RenderOptions, ServerConfig, TetherConfig } from "../Config.js"
import { InvalidConfig } from "../Errors.js"
import type { ToolOverride } from "../McpConnection.js"
import * as Resilience from "../Resilience.js"
import * as ServerSpec from "../ServerSpec.js"
import { fileFields, serverFields } from "./configSchema.js"
import { formatPath, unknownKeyMessage } from "./schemaIssues.js"

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

type Key = string | number

/** One problem: where (a JSON path, "" for the whole input) and what, in plain words. */
interface Issue {
  readonly path: string
  readonly message: string
  readonly server?: string | undefined
}

const isRecord = (u: unknown): u is Readonly<Record<string, unknown>> =>
  typeof u === "object" && u !== null && !Array.isArray(u)

const hasOwn = (o: object, key: string): boolean => Object.prototype.hasOwnProperty.call(o, key)

/** A short, plain description of a value for "got …" (never a whole object). */
const describe = (u: unknown): string => {
  if (u === undefined) return "nothing"
  if (u === null) return "null"
  if (Array.isArray(u)) return "an array"
  if (typeof u === "object") return "an object"
  if (typeof u === "string") return JSON.stringify(u.length > 60 ? `${u.slice(0, 57)}...` : u)
  return String(u)
}

const lineOf = (issue: Issue): string =>
  issue.path.length > 0 ? `${issue.path}: ${issue.message}` : issue.message

const invalid = (
  header: string,
  issues: ReadonlyArray<Issue>,
  server?: string | undefined
): InvalidConfig => {
  const lines = issues.map(lineOf)
  const servers = new Set(issues.map((i) => i.server))
  const only = servers.size === 1 ? [...servers][0] : undefined
  const firstPath = issues[0]?.path
  return new InvalidConfig({
    server: server ?? only,
    path: firstPath === undefined || firstPath.length === 0 ? undefined : firstPath,
    issues: lines,
    message: `${header}:\n  - ${lines.join("\n  - ")}`
  })
}

// ---------------------------------------------------------------------------
// JSON with comments, with positions
// ---------------------------------------------------------------------------

/** @internal A syntax error at a 1-based line and column. */
export interface JsonSyntaxError {
  readonly line: number
  readonly column: number
  readonly message: string
}

/** @internal A key given twice in one object (the later one would silently win). */
export interface DuplicateKey {
  readonly path: ReadonlyArray<Key>
  readonly lines: readonly [number, number]
}

const MAX_DEPTH = 256
const FAIL: unique symbol = Symbol("fail")
type Fail = typeof FAIL

/**
 * Line and column of an offset. The line starts are found once per text and searched by
 * bisection: scanning from the start for every key made parsing quadratic.
 */
const positions = (text: string) => {
  let starts: Array<number> | undefined
  return (offset: number): { readonly line: number; readonly column: number } => {
    if (starts === undefined) {
      starts = [0]
      for (let i = text.indexOf("\n"); i >= 0; i = text.indexOf("\n", i + 1)) starts.push(i + 1)
    }
    let lo = 0
    let hi = starts.length - 1
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1
      if ((starts[mid] ?? 0) <= Math.min(offset, text.length)) lo = mid
      else hi = mid - 1
    }
    return { line: lo + 1, column: offset - (starts[lo] ?? 0) + 1 }
  }
}

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y
const WORD = /[A-Za-z0-9_$.+-]+/y
const ESCAPES: Readonly<Record<string, string>> = {
  '"': '"',
  "\\": "\\",
  "/": "/",
  b: "\b",
  f: "\f",
  n: "\n",
  r: "\r",
  t: "\t"
}

/**
 * Parses JSON, also accepting `//` and `/* *\/` comments and trailing commas (the JSONC
 * of VS Code's `mcp.json`). Reports the first syntax error with its line and column, and
 * every key defined twice in one object.
 *
 * @internal
 */
export const parseJson = (
  text: string
): Either.Either<
  { readonly value: unknown; readonly duplicates: ReadonlyArray<DuplicateKey> },
  JsonSyntaxError
> => {
  const positionOf = positions(text)
  let pos = text.charCodeAt(0) === 0xfeff ? 1 : 0
  let error: { readonly offset: number; readonly message: string } | undefined
  const duplicates: Array<DuplicateKey> = []

  const fail = (offset: number, message: string): Fail => {
    error = { offset, message }
    return FAIL
  }

  const found = (at: number): string => {
    if (at >= text.length) return "the end of the file"
    if (text[at] === '"') return "a string"
    WORD.lastIndex = at
    const word = WORD.exec(text)
    if (word !== null) return JSON.stringify(word[0].length > 20 ? `${word[0].slice(0, 20)}...` : word[0])
    return JSON.stringify(text[at])
  }

  /** Skips whitespace and comments; false after an unterminated comment. */
  const skip = (): boolean => {
    while (pos < text.length) {
      const c = text[pos]
      if (c === " " || c === "\t" || c === "\n" || c === "\r") pos++
      else if (c === "/" && text[pos + 1] === "/") {
        const nl = text.indexOf("\n", pos)
        pos = nl < 0 ? text.length : nl + 1
      } else if (c === "/" && text[pos + 1] === "*") {
        const end = text.indexOf("*/", pos + 2)
        if (end < 0) {
          fail(pos, "unterminated /* comment")
          return false
        }
        pos = end + 2
      } else break
    }
    return true
  }

  const string = (): string | Fail => {
    const start = pos
    pos++
    let out = ""
    let chunk = pos
    for (;;) {
      if (pos >= text.length) return fail(start, "unterminated string")
      const code = text.charCodeAt(pos)
      if (code === 34) {
        out += text.slice(chunk, pos)
        pos++
        return out
      }
      if (code === 92) {
        out += text.slice(chunk, pos)
        const e = text[pos + 1] ?? ""
        const simple = ESCAPES[e]
        if (simple !== undefined) {
          out += simple
          pos += 2
        } else if (e === "u" && /^[0-9a-fA-F]{4}$/.test(text.slice(pos + 2, pos + 6))) {
          out += String.fromCharCode(parseInt(text.slice(pos + 2, pos + 6), 16))
          pos += 6
        } else {
          return fail(pos, `invalid escape \\${e === "u" ? text.slice(pos + 2, pos + 6) : e} in a string`)
        }
        chunk = pos
        continue
      }
      if (code < 0x20) {
        return fail(
          pos,
          code === 10 || code === 13
            ? "line break inside a string (write it as \\n)"
            : "control character inside a string"
        )
      }
      pos++
    }
  }

  const value = (path: ReadonlyArray<Key>, depth: number): unknown => {
    if (!skip()) return FAIL
    if (depth > MAX_DEPTH) return fail(pos, `nested more than ${MAX_DEPTH} levels deep`)
    const c = text[pos]
    if (c === "{") return object(path, depth)
    if (c === "[") return array(path, depth)
    if (c === '"') return string()
    for (const [word, literal] of [
      ["true", true],
      ["false", false],
      ["null", null]
    ] as const) {
      if (text.startsWith(word, pos) && !/[A-Za-z0-9_$]/.test(text[pos + word.length] ?? "")) {
        pos += word.length
        return literal
      }
    }
    if (c === "-" || (c !== undefined && c >= "0" && c <= "9")) {
      NUMBER.lastIndex = pos
      const match = NUMBER.exec(text)
      if (match === null) return fail(pos, `invalid number ${found(pos)}`)
      const end = pos + match[0].length
      if (/^-?0$/.test(match[0]) && /[0-9]/.test(text[end] ?? "")) {
        return fail(pos, `invalid number ${found(pos)}: numbers cannot start with 0`)
      }
      pos = end
      return Number(match[0])
    }
    return fail(pos, `expected a value, found ${found(pos)}`)
  }

  const object = (path: ReadonlyArray<Key>, depth: number): unknown => {
    pos++
    const out: Record<string, unknown> = {}
    const lines = new Map<string, number>()
    for (;;) {
      if (!skip()) return FAIL
      if (text[pos] === "}") {
        pos++
        return out
      }
      if (text[pos] !== '"')
        return fail(pos, `expected a property name in double quotes or "}", found ${found(pos)}`)
      const keyAt = pos
      const key = string()
      if (key === FAIL) return FAIL
      if (!skip()) return FAIL
      if (text[pos] !== ":") return fail(pos, `expected ":" after the property name, found ${found(pos)}`)
      pos++
      const v = value([...path, key], depth + 1)
      if (v === FAIL) return FAIL
      const line = positionOf(keyAt).line
      const previous = lines.get(key)
      if (previous !== undefined) duplicates.push({ path: [...path, key], lines: [previous, line] })
      lines.set(key, line)
      // defineProperty: a "__proto__" key stays a plain property, as with JSON.parse.
      Object.defineProperty(out, key, { value: v, enumerable: true, writable: true, configurable: true })
      if (!skip()) return FAIL
      if (text[pos] === ",") {
        pos++
        continue
      }
      if (text[pos] === "}") {
        pos++
        return out
      }
      return fail(pos, `expected "," or "}" after a property value, found ${found(pos)}`)
    }
  }

  const array = (path: ReadonlyArray<Key>, depth: number): unknown => {
    pos++
    const out: Array<unknown> = []
    for (;;) {
      if (!skip()) return FAIL
      if (text[pos] === "]") {
        pos++
        return out
      }
      const v = value([...path, out.length], depth + 1)
      if (v === FAIL) return FAIL
      out.push(v)
      if (!skip()) return FAIL
      if (text[pos] === ",") {
        pos++
        continue
      }
      if (text[pos] === "]") {
        pos++
        return out
      }
      return fail(pos, `expected "," or "]" after an array element, found ${found(pos)}`)
    }
  }

  const result = ((): unknown => {
    if (!skip()) return FAIL
    if (pos >= text.length) return fail(pos, "the file is empty")
    const v = value([], 0)
    if (v === FAIL) return FAIL
    if (!skip()) return FAIL
    if (pos < text.length)
      return fail(pos, `expected the end of the file after the JSON value, found ${found(pos)}`)
    return v
  })()

  if (result === FAIL || error !== undefined) {
    const at = error ?? { offset: pos, message: "not valid JSON" }
    return Either.left({ ...positionOf(at.offset), message: at.message })
  }
  return Either.right({ value: result, duplicates })
}

// ---------------------------------------------------------------------------
// Schema issues, in plain words
// ---------------------------------------------------------------------------

const valueAt = (input: unknown, path: ReadonlyArray<PropertyKey>): unknown => {
  let current = input
  for (const key of path) {
    if (typeof current !== "object" || current === null || typeof key === "symbol") return undefined
    current = hasOwn(current, String(key)) ? (current as Record<string, unknown>)[String(key)] : undefined
  }
  return current
}

const EXPECTED = /^Expected (.*), actual /s

const plainType = (schemaType: string): string | undefined => {
  if (schemaType.startsWith("Redacted(")) return undefined // only for values given in code
  if (schemaType === "number") return "a number"
  if (schemaType === "string") return "a string"
  if (schemaType === "boolean") return "true or false"
  if (schemaType === "null") return "null"
  if (schemaType.startsWith("ReadonlyArray<string>")) return "an array of strings"
  if (schemaType.startsWith("{") || schemaType.startsWith("Struct")) return "an object"
  return schemaType
}

/**
 * Decodes with a Schema, or returns every problem by path in plain words: drops the
 * "Expected undefined" echo of optional fields, prefers a refinement's own message, and
 * merges a union's alternatives into one "expected a or b, got c".
 */
const decodeWith = <A, I>(
  schema: Schema.Schema<A, I>,
  input: unknown,
  prefix: string,
  server?: string | undefined
): Either.Either<A, ReadonlyArray<Issue>> =>
  Schema.decodeUnknownEither(schema, { errors: "all", onExcessProperty: "ignore" })(input).pipe(
    Either.mapLeft((error) => {
      const groups = new Map<string, { path: ReadonlyArray<PropertyKey>; messages: Array<string> }>()
      for (const issue of ParseResult.ArrayFormatter.formatErrorSync(error)) {
        const key = JSON.stringify(issue.path.map(String))
        const group = groups.get(key) ?? { path: issue.path, messages: [] }
        group.messages.push(issue.message)
        groups.set(key, group)
      }
      const issues: Array<Issue> = []
      for (const { messages, path } of groups.values()) {
        const relevant = messages.filter((m) => !m.startsWith("Expected undefined, actual"))
        if (relevant.length === 0) continue
        const where = formatPath(prefix, path)
        const own = [...new Set(relevant.filter((m) => !EXPECTED.test(m)))]
        if (own.length > 0) {
          for (const message of own) issues.push({ path: where, message, server })
          continue
        }
        const types = new Set(
          relevant.flatMap((m) => {
            const t = plainType(EXPECTED.exec(m)?.[1] ?? "")
            return t === undefined ? [] : [t]
          })
        )
        const alternatives =
          types.has("a number") && types.has("a string")
            ? [
                'milliseconds or a duration string such as "5 seconds"',
                ...[...types].filter((t) => t !== "a number" && t !== "a string")
              ]
            : [...types]
        issues.push({
          path: where,
          message: `expected ${alternatives.join(" or ")}, got ${describe(valueAt(input, path))}`,
          server
        })
      }
      return issues
    })
  )

// ---------------------------------------------------------------------------
// Placeholders
// ---------------------------------------------------------------------------

const ENV_NAME = /^(?:env:)?([A-Za-z_][A-Za-z0-9_]*)(?::-([\s\S]*))?$/
const TENANT = /^tenant\.([A-Za-z0-9_-]+)(?::-([\s\S]*))?$/
const PLACEHOLDER_HELP = "use ${NAME}, ${NAME:-default} or ${tenant.key}"

/** @internal Every environment variable named by a `${NAME}` placeholder in `text`. */
export const referencedVariables = (text: string): ReadonlyArray<string> => {
  const names = new Set<string>()
  for (const match of text.matchAll(/\$\{(?:env:)?([A-Za-z_][A-Za-z0-9_]*)(?::-[^}]*)?\}/g)) {
    if (match[1] !== undefined) names.add(match[1])
  }
  return [...names]
}

/** Replaces each `${…}` by `replace(inner)`; the first error wins. */
const expand = (
  template: string,
  replace: (inner: string, placeholder: string) => Either.Either<string, string>
): Either.Either<string, ReadonlyArray<string>> => {
  let out = ""
  let from = 0
  const errors: Array<string> = []
  for (;;) {
    const start = template.indexOf("${", from)
    if (start < 0) break
    const end = template.indexOf("}", start + 2)
    if (end < 0) {
      errors.push(
        `unclosed placeholder ${JSON.stringify(template.slice(start, start + 30))}; ${PLACEHOLDER_HELP}`
      )
      from = template.length
      break
    }
    const placeholder = template.slice(start, end + 1)
    const replaced = replace(template.slice(start + 2, end), placeholder)
    if (Either.isLeft(replaced)) errors.push(replaced.left)
    out += template.slice(from, start) + (Either.isRight(replaced) ? replaced.right : placeholder)
    from = end + 1
  }
  out += template.slice(from)
  return errors.length > 0 ? Either.left([...new Set(errors)]) : Either.right(out)
}

/** Fills `${NAME}` / `${env:NAME}` / `${NAME:-default}` from `env`; keeps `${tenant.key}`. */
const expandEnv = (
  template: string,
  env: (name: string) => string | undefined
): Either.Either<string, ReadonlyArray<string>> =>
  expand(template, (inner, placeholder) => {
    if (TENANT.test(inner)) return Either.right(placeholder)
    if (inner.startsWith("input:")) {
      return Either.left(
        `VS Code input variables such as ${JSON.stringify(placeholder)} are not supported; use \${NAME} from the environment`
      )
    }
    const match = ENV_NAME.exec(inner)
    if (match === null || match[1] === undefined) {
      return Either.left(`malformed placeholder ${JSON.stringify(placeholder)}; ${PLACEHOLDER_HELP}`)
    }
    const value = env(match[1])
    if (match[2] !== undefined) return Either.right(value === undefined || value === "" ? match[2] : value)
    return value === undefined
      ? Either.left(`environment variable ${match[1]} is not set`)
      : Either.right(value)
  })

/** Fills `${tenant.key}` / `${tenant.key:-default}` from `values`; leaves anything else. */
const expandTenant = (
  template: string,
  values: Readonly<Record<string, string>>
): Either.Either<string, ReadonlyArray<string>> =>
  expand(template, (inner, placeholder) => {
    const match = TENANT.exec(inner)
    if (match === null || match[1] === undefined) return Either.right(placeholder)
    const value = hasOwn(values, match[1]) ? values[match[1]] : undefined
    if (match[2] !== undefined) return Either.right(value === undefined || value === "" ? match[2] : value)
    return value === undefined
      ? Either.left(`tenant value ${JSON.stringify(match[1])} is not set`)
      : Either.right(value)
  })

/** A stand-in for each `${tenant.key}`, so a URL holding placeholders can still be checked. */
const withTenantStandIns = (url: string): string =>
  url.replace(/\$\{tenant\.[A-Za-z0-9_-]+(?::-[^}]*)?\}/g, "0")

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
const REMOTE_FIELDS = ["url", "headers"] as const
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
        input[key] = key === "url" ? url : key === "env" || key === "headers" ? record(key) : raw[key]
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
  if (issues.length > before || spec === undefined) return undefined

  const resilience = Resilience.merge(context.global, context.overrides, own)
  if (Either.isLeft(resilience)) {
    for (const line of resilience.left.issues ?? []) issues.push({ path: "", message: line, server })
    return undefined
  }
  return { name, spec, resilience: resilience.right, tools, lazy, optional, trustAnnotations }
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
// Environment
// ---------------------------------------------------------------------------

/** An optional variable read through the current `ConfigProvider`; blank counts as unset. */
const variable = (name: string): Effect.Effect<Option.Option<string>, Issue> =>
  EffectConfig.option(EffectConfig.string(name)).pipe(
    Effect.map(Option.map((s) => s.trim())),
    Effect.map(Option.filter((s) => s.length > 0)),
    Effect.mapError((error): Issue => ({ path: name, message: `cannot be read: ${String(error)}` }))
  )

const wholeNumber =
  (what: string) =>
  (name: string, raw: string): Either.Either<number, Issue> =>
    /^\d+$/.test(raw) && Number.isSafeInteger(Number(raw))
      ? Either.right(Number(raw))
      : Either.left({
          path: name,
          message: `expected a whole number of ${what} (0 or more), got ${JSON.stringify(raw)}`
        })

const LOG_LEVELS: ReadonlyArray<LogLevel.LogLevel> = LogLevel.allLevels

const logLevel = (name: string, raw: string): Either.Either<LogLevel.LogLevel, Issue> => {
  const wanted = raw.toLowerCase()
  const level = LOG_LEVELS.find((l) => l._tag.toLowerCase() === wanted || l.label.toLowerCase() === wanted)
  return level === undefined
    ? Either.left({
        path: name,
        message: `unknown log level ${JSON.stringify(raw)}; expected one of ${LOG_LEVELS.map((l) => l._tag.toLowerCase()).join(", ")}`
      })
    : Either.right(level)
}

const RESILIENCE_VARIABLES: ReadonlyArray<readonly [string, string, string, string]> = [
  ["TETHER_RECONNECT_MAX_ATTEMPTS", "reconnect", "maxAttempts", "attempts"],
  ["TETHER_RECONNECT_INITIAL_DELAY_MS", "reconnect", "initialDelay", "milliseconds"],
  ["TETHER_RECONNECT_MAX_DELAY_MS", "reconnect", "maxDelay", "milliseconds"],
  ["TETHER_HEARTBEAT_INTERVAL_MS", "heartbeat", "interval", "milliseconds"],
  ["TETHER_HEARTBEAT_TIMEOUT_MS", "heartbeat", "timeout", "milliseconds"],
  ["TETHER_CALL_TIMEOUT_MS", "call", "timeout", "milliseconds"],
  ["TETHER_TOOL_MAX_RETRIES", "call", "maxRetries", "retries"]
]

/** @internal The `TETHER_*` variables, read through the current `ConfigProvider`. */
export const envOverrides: Effect.Effect<EnvOverrides, InvalidConfig> = Effect.gen(function* () {
  const issues: Array<Issue> = []
  const read = <A>(
    name: string,
    decode: (name: string, raw: string) => Either.Either<A, Issue>
  ): Effect.Effect<A | undefined> =>
    variable(name).pipe(
      Effect.flatMap(
        Option.match({
          onNone: () => Either.right(undefined),
          onSome: (raw) => decode(name, raw)
        })
      ),
      Effect.catchAll((issue) =>
        Effect.sync(() => {
          issues.push(issue)
          return undefined
        })
      )
    )

  const configPath = yield* read("TETHER_CONFIG", (_, raw) => Either.right(raw))
  const level = yield* read("TETHER_LOG_LEVEL", logLevel)
  const resilience: Record<string, Record<string, number>> = {}
  for (const [name, group, key, what] of RESILIENCE_VARIABLES) {
    const value = yield* read(name, wholeNumber(what))
    if (value !== undefined) resilience[group] = { ...resilience[group], [key]: value }
  }
  if (issues.length > 0) return yield* Either.left(invalid("invalid environment", issues))
  return {
    configPath,
    logLevel: level,
    // Each value is a whole number ≥ 0, valid for the field it sets.
    resilience: resilience as Resilience.PolicyInput
  }
})

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
