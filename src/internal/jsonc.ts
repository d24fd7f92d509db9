/**
 * JSON with comments and trailing commas (the JSONC of VS Code's `mcp.json`), read with
 * line and column for syntax errors and a report of every key given twice. Written by
 * hand: `JSON.parse` has neither comments nor positions nor duplicate keys.
 *
 * @internal
 */
import { Either } from "effect"
import type { Key } from "./schemaIssues.js"

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

  /** After an item of an object or array: a "," (another item), its close (the end), or an error. */
  const separator = (close: "}" | "]", after: string): "item" | "end" | Fail => {
    if (!skip()) return FAIL
    if (text[pos] === "," || text[pos] === close) return text[pos++] === "," ? "item" : "end"
    return fail(pos, `expected "," or "${close}" after ${after}, found ${found(pos)}`)
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
      const next = separator("}", "a property value")
      if (next === "item") continue
      return next === "end" ? out : FAIL
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
      const next = separator("]", "an array element")
      if (next === "item") continue
      return next === "end" ? out : FAIL
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
