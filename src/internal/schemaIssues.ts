/**
 * Turns Schema parse errors into plain-words lines that name the path of each problem.
 *
 * @internal
 */
import { Either, ParseResult, Schema } from "effect"
import { InvalidConfig } from "../Errors.js"

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
