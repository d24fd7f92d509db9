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
