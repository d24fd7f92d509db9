/**
 * The one issue formatter of config decoding: Schema parse errors and hand-found problems
 * become plain-words lines that name the JSON path of each problem, gathered into one
 * `InvalidConfig`.
 *
 * @internal
 */
import { type SchemaAST as AST, Either, ParseResult, Schema } from "effect"
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

/**
 * @internal Annotation: what a value should be, in words, for "expected …, got …" (`"an
 * object of tools by name"`). Read from the schema that failed, or from a refinement or
 * transformation around it.
 */
export const ExpectedId: unique symbol = Symbol.for("tether/config/Expected")

/**
 * @internal Annotation: `(key, known) => message` for a key an object does not declare;
 * applies to the objects inside the annotated schema too, until one says otherwise.
 * Without one: "unknown field; did you mean …".
 */
export const UnknownKeyId: unique symbol = Symbol.for("tether/config/UnknownKey")

/**
 * @internal Annotation: the problems this schema raises itself are listed before the
 * others of the value being decoded (an unset `${VAR}` often explains the rest), after its
 * undeclared keys.
 */
export const FirstId: unique symbol = Symbol.for("tether/config/First")

type UnknownKey = (key: string, known: ReadonlyArray<string>) => string

const expectedAnnotation = (ast: AST.AST): string | undefined => {
  const value = ast.annotations[ExpectedId]
  return typeof value === "string" ? value : undefined
}

const isUnknownKey = (u: unknown): u is UnknownKey => typeof u === "function"

const unknownKeyAnnotation = (ast: AST.AST): UnknownKey | undefined => {
  const value = ast.annotations[UnknownKeyId]
  return isUnknownKey(value) ? value : undefined
}

/** The plain words for what a schema without an `ExpectedId` annotation accepts. */
const plainType = (ast: AST.AST): string | undefined => {
  switch (ast._tag) {
    case "UndefinedKeyword": // the "absent" side of an optional field
    case "Declaration": // `Redacted` values, only given in code
      return undefined
    case "NumberKeyword":
      return "a number"
    case "StringKeyword":
      return "a string"
    case "BooleanKeyword":
      return "true or false"
    case "TypeLiteral":
      return "an object"
    case "TupleType":
      return ast.rest[0]?.type._tag === "StringKeyword" ? "an array of strings" : "an array"
    default:
      return String(ast)
  }
}

/** One problem found in a `ParseIssue` tree: its own message, or what was expected. */
interface Leaf {
  readonly path: ReadonlyArray<PropertyKey>
  readonly own?: string
  readonly expected?: string
  /** Listing order: undeclared keys of the value itself, then `FirstId` problems, then the rest. */
  readonly rank: number
}

interface Scope {
  readonly path: ReadonlyArray<PropertyKey>
  /** The declared keys of the nearest object. */
  readonly known: ReadonlyArray<string>
  readonly unknownKey: UnknownKey
  /** The `ExpectedId` of the refinement or transformation being looked through. */
  readonly expected: string | undefined
}

const keyOf = (path: ReadonlyArray<PropertyKey>): string => String(path[path.length - 1] ?? "")

/** The position of a problem in its record, for listing a record's problems in key order. */
const keyIndex = (keys: ReadonlyArray<string>, issue: ParseResult.ParseIssue): number => {
  if (issue._tag !== "Pointer") return -1
  const first = typeof issue.path === "object" ? issue.path[0] : issue.path
  return keys.indexOf(String(first))
}

const collect = (issue: ParseResult.ParseIssue, scope: Scope, out: Array<Leaf>): void => {
  switch (issue._tag) {
    case "Pointer": {
      const path: ReadonlyArray<PropertyKey> = typeof issue.path === "object" ? issue.path : [issue.path]
      collect(issue.issue, { ...scope, path: [...scope.path, ...path], expected: undefined }, out)
      return
    }
    case "Composite": {
      const ast = issue.ast
      const issues: ReadonlyArray<ParseResult.ParseIssue> = Array.isArray(issue.issues)
        ? issue.issues
        : [issue.issues as ParseResult.ParseIssue]
      const inner: Scope =
        ast._tag === "TypeLiteral"
          ? {
              ...scope,
              known: ast.propertySignatures.map((ps) => String(ps.name)),
              unknownKey: unknownKeyAnnotation(ast) ?? scope.unknownKey,
              expected: undefined
            }
          : { ...scope, unknownKey: unknownKeyAnnotation(ast) ?? scope.unknownKey, expected: undefined }
      // Schema lists a record's refused keys before its values; the file's order reads better.
      const ordered =
        ast._tag === "TypeLiteral" && ast.propertySignatures.length === 0 && isRecord(issue.actual)
          ? ((keys) =>
              issues
                .map((i, n) => [keyIndex(keys, i), n, i] as const)
                .sort((a, b) => a[0] - b[0] || a[1] - b[1])
                .map(([, , i]) => i))(Object.keys(issue.actual))
          : issues
      for (const i of ordered) collect(i, inner, out)
      return
    }
    case "Refinement":
    case "Transformation": {
      const unknownKey = unknownKeyAnnotation(issue.ast) ?? scope.unknownKey
      collect(
        issue.issue,
        { ...scope, unknownKey, expected: expectedAnnotation(issue.ast) ?? scope.expected },
        out
      )
      return
    }
    case "Type": {
      const rank = issue.ast.annotations[FirstId] === true ? 1 : 2
      if (issue.message !== undefined) {
        out.push({ path: scope.path, own: issue.message, rank })
        return
      }
      const expected = expectedAnnotation(issue.ast) ?? scope.expected ?? plainType(issue.ast)
      if (expected !== undefined) out.push({ path: scope.path, expected, rank })
      return
    }
    case "Missing":
      out.push({ path: scope.path, own: issue.message ?? "is missing", rank: 2 })
      return
    case "Unexpected":
      out.push({
        path: scope.path,
        own: scope.unknownKey(keyOf(scope.path), scope.known),
        rank: scope.path.length === 1 ? 0 : 2
      })
      return
    case "Forbidden":
      out.push({ path: scope.path, own: issue.message ?? "is forbidden", rank: 2 })
      return
  }
}

/**
 * The one issue formatter of config decoding: every problem of a `ParseIssue` tree, by JSON
 * path, in plain words. A refinement's or transformation's own message wins; the
 * alternatives of a union become one "expected a or b, got c"; a key an object does not
 * declare gets "did you mean" (or its `UnknownKeyId` message); the "absent" side of an
 * optional field is dropped.
 *
 * @internal
 */
export const formatIssue = (
  issue: ParseResult.ParseIssue,
  input: unknown,
  prefix: string,
  server?: string | undefined
): ReadonlyArray<Issue> => {
  const leaves: Array<Leaf> = []
  collect(
    issue,
    {
      path: [],
      known: [],
      unknownKey: (key, known) => unknownKeyMessage("field", key, known),
      expected: undefined
    },
    leaves
  )
  const groups = new Map<string, { path: ReadonlyArray<PropertyKey>; leaves: Array<Leaf> }>()
  for (const leaf of [...leaves].sort((a, b) => a.rank - b.rank)) {
    const key = JSON.stringify(leaf.path.map(String))
    const group = groups.get(key) ?? { path: leaf.path, leaves: [] }
    group.leaves.push(leaf)
    groups.set(key, group)
  }
  const issues: Array<Issue> = []
  for (const { leaves, path } of groups.values()) {
    const where = formatPath(prefix, path)
    const own = [...new Set(leaves.flatMap((l) => (l.own === undefined ? [] : [l.own])))]
    if (own.length > 0) {
      for (const message of own) issues.push({ path: where, message, server })
      continue
    }
    const types = new Set(leaves.flatMap((l) => (l.expected === undefined ? [] : [l.expected])))
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
}

/**
 * Decodes with a Schema, or returns every problem by path in plain words ({@link formatIssue}).
 * A key the schema does not declare is a problem unless `excess` is `"ignore"`.
 *
 * @internal
 */
export const decodeWith = <A, I>(
  schema: Schema.Schema<A, I>,
  input: unknown,
  prefix: string,
  server?: string | undefined,
  excess: "error" | "ignore" = "error"
): Either.Either<A, ReadonlyArray<Issue>> =>
  Schema.decodeUnknownEither(schema, { errors: "all", onExcessProperty: excess })(input).pipe(
    Either.mapLeft((error) => formatIssue(error.issue, input, prefix, server))
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
