/**
 * Redaction of text that leaves the process (error bodies, `/health`, CLI output, logs):
 * credentials in URLs, bearer/basic tokens and `key=value` secrets are masked, control
 * characters (terminal escapes) removed, and the text bounded. Hand-written because no
 * Effect-ecosystem library scrubs free text; Effect's `Redacted` only protects values we
 * hold ourselves, not messages that other code (the SDK, undici, an upstream server) wrote.
 *
 * @internal
 */
import type { TetherError } from "../Errors.js"

const MASK = "***"

// `scheme://userinfo@` — the userinfo (user, or user:password) is masked as a whole: a
// bare user is often a token too (`https://TOKEN@github.com`).
const urlUserinfo = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#@"'<>]+@/gi

/** Masks the userinfo of every URL in `text`. @internal */
export const redactUrlCredentials = (text: string): string => text.replace(urlUserinfo, `$1${MASK}@`)

/** A URL with its userinfo masked (`http://***@host/mcp`); other text is returned as is. @internal */
export const redactUrl = (url: string): string => {
  try {
    const parsed = new URL(url)
    if (parsed.username === "" && parsed.password === "") return url
    parsed.username = MASK
    parsed.password = ""
    return parsed.toString()
  } catch {
    return redactUrlCredentials(url)
  }
}

const tokens = /\b(bearer|basic|token)(\s+)[A-Za-z0-9\-._~+/=]{6,}/gi
const pairs =
  /\b([A-Za-z0-9_-]*(?:api[_-]?key|apikey|token|secret|passw(?:or)?d|pwd|authorization|session[_-]?id)[A-Za-z0-9_-]*)("?\s*[:=]\s*"?)([^\s"',;&}]+)/gi
// ANSI escape sequences, then any other C0/C1 control but tab and newline.
const ansi = /\u001b\[[0-9;?]*[ -/]*[@-~]/g
const controls = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g

/** Default bound of an excerpt, in characters. @internal */
export const EXCERPT_MAX = 1_000

/**
 * A bounded, sanitized excerpt of text written by someone else (an upstream server's
 * error body, a transport's message): secrets masked, control characters dropped,
 * whitespace folded onto one line, at most `max` characters.
 *
 * @internal
 */
export const excerpt = (text: string, max: number = EXCERPT_MAX): string => {
  const clean = redactUrlCredentials(text)
    .replace(ansi, "")
    .replace(controls, "")
    .replace(tokens, `$1$2${MASK}`)
    .replace(pairs, `$1$2${MASK}`)
    .replace(/\s+/g, " ")
    .trim()
  return clean.length <= max ? clean : `${clean.slice(0, max)}… (${clean.length - max} more characters)`
}

/**
 * What an error may say outside the process: its own message for errors about the request
 * or the config (Tether wrote those, from what the user gave), a bounded and sanitized
 * excerpt for anything an upstream server, a transport or the network wrote (those can
 * quote URLs with passwords, tokens, or megabytes of an error page).
 *
 * @internal
 */
export const safeMessage = (error: TetherError): string =>
  error._tag === "InvalidConfig" || error._tag === "UnknownServer" || error._tag === "UnknownTool"
    ? redactUrlCredentials(error.message)
    : excerpt(error.message)
