/**
 * The one issue formatter of config decoding: Schema parse errors and hand-found problems
 * become plain-words lines that name the JSON path of each problem, gathered into one
 * `InvalidConfig`.
 *
 * @internal
 */
import { Either, ParseResult, Schema } from "effect"
import { InvalidConfig } from "../Errors.js"

/** @internal */
export type Key = string | number

/** @internal One problem: where (a JSON path, "" for the whole input) and what, in plain words. */
export interface Issue {
  readonly path: string
  readonly message: string
  readonly server?: string | undefined
}

/** @internal */
export const isRecord = (u: unknown): u is Readonly<Record<string, unknown>> =>
  typeof u === "object" && u !== null && !Array.isArray(u)

/** @internal */
export const hasOwn = (o: object, key: string): boolean => Object.prototype.hasOwnProperty.call(o, key)

/** A short, plain description of a value for "got …" (never a whole object). */
export const describe = (u: unknown): string => {
  if (u === undefined) return "nothing"
  if (u === null) return "null"
  if (Array.isArray(u)) return "an array"
  if (typeof u === "object") return "an object"
  if (typeof u === "string") return JSON.stringify(u.length > 60 ? `${u.slice(0, 57)}...` : u)
  return String(u)
}

const lineOf = (issue: Issue): string =>
  issue.path.length > 0 ? `${issue.path}: ${issue.message}` : issue.message

/** @internal */
export const invalid = (
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
 *
 * @internal
 */
export const decodeWith = <A, I>(
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

/** @internal `a.b[0].c` from a Schema issue path. */
export const formatPath = (prefix: string, path: ReadonlyArray<PropertyKey>): string =>
  path.reduce<string>(
    (acc, key) =>
      typeof key === "number"
        ? `${acc}[${key}]`
        : acc.length === 0
          ? String(key)
          : /^[A-Za-z_$][\w$]*$/.test(String(key))
            ? `${acc}.${String(key)}`
            : `${acc}[${JSON.stringify(String(key))}]`,
    prefix
  )

/** @internal One line per problem: `path: message`. */
export const issueLines = (prefix: string, error: ParseResult.ParseError): ReadonlyArray<string> =>
  ParseResult.ArrayFormatter.formatErrorSync(error).map((issue) => {
    const path = formatPath(prefix, issue.path)
    return `${path.length > 0 ? path : "(root)"}: ${issue.message}`
  })

/** @internal Decodes `input` with `schema`, or fails with an `InvalidConfig` listing every problem. */
export const decodeOrInvalid = <A, I>(
  schema: Schema.Schema<A, I>,
  input: unknown,
  options: { readonly what: string; readonly path?: string; readonly server?: string | undefined }
): Either.Either<A, InvalidConfig> =>
  Schema.decodeUnknownEither(schema, { errors: "all", onExcessProperty: "ignore" })(input).pipe(
    Either.mapLeft((error) => {
      const issues = issueLines(options.path ?? "", error)
      return new InvalidConfig({
        server: options.server,
        path: options.path,
        issues,
        message: `invalid ${options.what}:\n  - ${issues.join("\n  - ")}`
      })
    })
  )

/** Edit distance (insert, delete, substitute, swap two neighbours), case-insensitive. */
const distance = (a: string, b: string): number => {
  const s = a.toLowerCase()
  const t = b.toLowerCase()
  const d: Array<Array<number>> = Array.from({ length: s.length + 1 }, (_, i) =>
    Array.from({ length: t.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0))
  )
  for (let i = 1; i <= s.length; i++) {
    for (let j = 1; j <= t.length; j++) {
      const row = d[i] as Array<number>
      const above = d[i - 1] as Array<number>
      const cost = s[i - 1] === t[j - 1] ? 0 : 1
      let best = Math.min((above[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (above[j - 1] ?? 0) + cost)
      if (i > 1 && j > 1 && s[i - 1] === t[j - 2] && s[i - 2] === t[j - 1]) {
        best = Math.min(best, ((d[i - 2] as Array<number>)[j - 2] ?? 0) + 1)
      }
      row[j] = best
    }
  }
  return (d[s.length] as Array<number>)[t.length] ?? 0
}

/** @internal The closest candidate to a misspelt `key`, when one is close enough to be meant. */
export const closest = (key: string, candidates: ReadonlyArray<string>): string | undefined => {
  let best: string | undefined
  let bestDistance = Infinity
  for (const candidate of candidates) {
    const d = distance(key, candidate)
    if (d < bestDistance) {
      best = candidate
      bestDistance = d
    }
  }
  const allowed = Math.max(1, Math.floor(Math.max(key.length, 3) / 3))
  return bestDistance <= allowed ? best : undefined
}

/** @internal "unknown field; did you mean …" or "…; expected one of …", for a key not in `known`. */
export const unknownKeyMessage = (what: string, key: string, known: ReadonlyArray<string>): string => {
  const near = closest(key, known)
  return near !== undefined
    ? `unknown ${what}; did you mean ${JSON.stringify(near)}?`
    : `unknown ${what}; expected one of ${known.join(", ")}`
}
