/**
 * The link layer's reading of failures: {@link classify} turns what a transport, the MCP
 * SDK, Node or undici threw into one Tether error.
 *
 * It lives here, above `Errors`, because it has to recognize the SDK's and the platform's
 * error classes; `Errors` (the bottom layer) stays free of the SDK and imports nothing back.
 * Every export of `Errors` is re-exported, so code that handles link failures needs one
 * import: `Transport.classify(cause)`, `Transport.isRecoverable(error)`.
 *
 * @since 0.1.0
 */
import type { Classified, ClassifyContext } from "./Errors.js"
import * as internal from "./internal/classify.js"

/**
 * @since 0.1.0
 */
export * from "./Errors.js"

/**
 * Turns anything a transport, the MCP SDK, Node or undici threw into one classified
 * Tether error. Pure: the same input always gives the same output.
 *
 * @since 0.1.0
 * @category constructors
 */
export const classify = (cause: unknown, context?: ClassifyContext): Classified =>
  internal.classify(cause, context)
