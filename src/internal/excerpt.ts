/**
 * A bounded, sanitized excerpt of text that came from another system (an error body of an
 * LLM provider or an MCP server), safe to show in errors and logs: secrets that such
 * bodies echo back (API keys, bearer tokens, `password=…`, URL credentials, the caller's
 * own key) are masked, control characters dropped, whitespace collapsed, and the result cut
 * to a few hundred characters. Written by hand: no library in the stack does this.
 *
 * @internal
 */

/** Values of these keys are masked in JSON (`"api_key": "…"`) and in `key=value` text. */
const SECRET_KEY =
  /(["']?)((?:api[_-]?key|apikey|access[_-]?token|refresh[_-]?token|id[_-]?token|token|secret|client[_-]?secret|password|passwd|authorization|x-api-key|cookie|session[_-]?id)\1\s*[:=]\s*)(["']?)([^"'\s,;&}]+)/gi

const PATTERNS: ReadonlyArray<readonly [RegExp, string]> = [
  // Authorization schemes.
  [/\b(Bearer|Basic|Token)\s+[A-Za-z0-9._~+/=-]{6,}/gi, "$1 ***"],
  // Well-known key shapes: OpenAI/Anthropic `sk-…`, GitHub `ghp_…`, Slack `xox…`, AWS, Google, JWTs.
  [/\b(?:sk|pk|rk)-[A-Za-z0-9_-]{8,}/g, "***"],
  [/\bgh[pousr]_[A-Za-z0-9]{16,}/g, "***"],
  [/\bxox[abprs]-[A-Za-z0-9-]{8,}/g, "***"],
  [/\bAKIA[0-9A-Z]{16}\b/g, "***"],
  [/\bAIza[0-9A-Za-z_-]{30,}/g, "***"],
  [/\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/g, "***"],
  // user:password@ in URLs.
  [/\b([a-z][a-z0-9+.-]*:\/\/)[^\s/@:]+:[^\s/@]+@/gi, "$1***@"]
]

/**
 * The excerpt: at most `max` characters (default 300) of `text`, with `secrets` (values the
 * caller knows, e.g. its own API key) and the patterns above masked.
 *
 * @internal
 */
export const excerpt = (
  text: string,
  options: {
    readonly max?: number | undefined
    readonly secrets?: ReadonlyArray<string | undefined> | undefined
  } = {}
): string => {
  const max = options.max ?? 300
  // Sanitize a bounded prefix only: a huge body costs no more than a small one.
  let out = text.slice(0, max * 4 + 1024)
  for (const secret of options.secrets ?? []) {
    if (secret !== undefined && secret.length >= 4) out = out.split(secret).join("***")
  }
  out = out.replace(SECRET_KEY, (_, q: string, prefix: string, quote: string) => `${q}${prefix}${quote}***`)
  for (const [pattern, replacement] of PATTERNS) out = out.replace(pattern, replacement)
  // Control characters (terminal escapes included) and runs of whitespace.
  out = out
    .replace(/[\u0000-\u001f\u007f-\u009f]+/g, " ")
    .replace(/\s{2,}/g, " ")
    .trim()
  const truncated = text.length > max * 4 + 1024 || out.length > max
  return truncated ? `${out.slice(0, max)}… (${text.length} characters in all)` : out
}
