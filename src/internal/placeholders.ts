/**
 * `${NAME}`, `${env:NAME}`, `${NAME:-default}` (from the environment, read by the caller
 * through the current `ConfigProvider`) and `${tenant.key}` placeholders in config strings.
 *
 * @internal
 */
import { Either } from "effect"
import { hasOwn } from "./schemaIssues.js"

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

/** @internal Every environment variable named in a string anywhere inside `value`. */
export const variablesIn = (value: unknown): ReadonlyArray<string> => {
  const names = new Set<string>()
  const seen = new Set<object>()
  const visit = (v: unknown): void => {
    if (typeof v === "string") for (const name of referencedVariables(v)) names.add(name)
    else if (typeof v === "object" && v !== null && !seen.has(v)) {
      seen.add(v)
      for (const item of Object.values(v)) visit(item)
    }
  }
  visit(value)
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
export const expandEnv = (
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
export const expandTenant = (
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
export const withTenantStandIns = (url: string): string =>
  url.replace(/\$\{tenant\.[A-Za-z0-9_-]+(?::-[^}]*)?\}/g, "0")
