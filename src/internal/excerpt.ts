/**
 * A bounded, sanitized excerpt of an LLM provider's error body: `redact.ts`'s excerpt
 * (URL credentials, bearer tokens and `key=value` secrets masked, control characters
 * dropped, one line, bounded), plus what a provider is known to echo back: the caller's own
 * API key, and well-known key shapes (`sk-…`, `ghp_…`, `xox…-`, AWS, Google, JWTs).
 *
 * @internal
 */
import { excerpt as redactedExcerpt } from "./redact.js"

const MASK = "***"

const KEY_SHAPES: ReadonlyArray<RegExp> = [
  /\b(?:sk|pk|rk)-[A-Za-z0-9_-]{8,}/g,
  /\bgh[pousr]_[A-Za-z0-9]{16,}/g,
  /\bxox[abprs]-[A-Za-z0-9-]{8,}/g,
  /\bAKIA[0-9A-Z]{16}\b/g,
  /\bAIza[0-9A-Za-z_-]{30,}/g,
  /\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/g
]

/**
 * At most `max` characters (default 300) of `text`, with `secrets` (values the caller
 * knows, e.g. its own API key) and the key shapes above masked, then sanitized by `redact.ts`.
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
  // Only a bounded prefix is scanned: a huge body costs no more than a small one.
  const prefix = text.length > max * 4 + 1024
  let out = prefix ? text.slice(0, max * 4 + 1024) : text
  for (const secret of options.secrets ?? []) {
    if (secret !== undefined && secret.length >= 4) out = out.split(secret).join(MASK)
  }
  for (const shape of KEY_SHAPES) out = out.replace(shape, MASK)
  const clean = redactedExcerpt(out, max)
  return prefix && clean.length <= max ? `${clean}… (${text.length} characters in all)` : clean
}
