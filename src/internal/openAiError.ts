/**
 * Failures of the OpenAI-compatible provider: one failed attempt (`AttemptFailed`, the
 * @effect/ai error to surface plus whether a retry may help), and the pieces of its
 * messages. Nothing here holds a request header: the API key never reaches an error.
 *
 * @internal
 */
import { AiError } from "@effect/ai"
import { Option } from "effect"
import { excerpt } from "./excerpt.js"

/** @internal */
export const MODULE = "OpenAiCompat"

/** @internal One failed attempt: the error to surface, and whether another attempt may help. */
export class AttemptFailed {
  readonly _tag = "AttemptFailed"
  constructor(
    readonly error: AiError.AiError,
    readonly transient: boolean,
    readonly retryAfterMs: number | undefined
  ) {}
}

/** @internal */
export const TRANSIENT_STATUS: ReadonlySet<number> = new Set([408, 409, 425, 429, 500, 502, 503, 504])

/** @internal */
export const requestDetails = (url: string) => ({
  method: "POST" as const,
  url,
  urlParams: [],
  hash: Option.none<string>(),
  headers: { "content-type": "application/json" }
})

/**
 * @internal The link to the provider broke or stalled (`description` says how): an
 * `HttpRequestError` of reason `Transport`.
 */
export const transportError = (method: string, url: string, description: string) =>
  new AiError.HttpRequestError({
    module: MODULE,
    method,
    reason: "Transport",
    request: requestDetails(url),
    description
  })

/** @internal A failed attempt that broke on the link: another attempt may help. */
export const transportFailed = (method: string, url: string, description: string) =>
  new AttemptFailed(transportError(method, url, description), true, undefined)

/** @internal */
export const malformed = (method: string, description: string, cause?: unknown) =>
  new AttemptFailed(
    new AiError.MalformedOutput({
      module: MODULE,
      method,
      description,
      ...(cause !== undefined ? { cause } : {})
    }),
    false,
    undefined
  )

/** @internal The innermost useful message of a transport failure (`connect ECONNREFUSED 127.0.0.1:1`). */
export const describeCause = (cause: unknown): string => {
  const messages: Array<string> = []
  let current: unknown = cause
  for (let depth = 0; depth < 4 && current instanceof Error; depth++) {
    const code = (current as { readonly code?: unknown }).code
    messages.push(
      typeof code === "string" && !current.message.includes(code)
        ? `${current.message} (${code})`
        : current.message
    )
    current = current.cause
  }
  return messages.length > 0 ? messages.join(": ") : "the request could not be sent"
}

/** @internal What the provider sent, for an error: bounded, with secrets it may echo masked. */
export const snippet = (text: string, max = 300, secrets?: ReadonlyArray<string>) =>
  excerpt(text, { max, secrets })
