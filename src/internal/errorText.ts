/**
 * Bounded one-line summaries of errors, for messages that mention another error. A message
 * names its cause once, briefly; the cause itself travels as data (`cause`), so messages
 * never nest and never grow with the number of failures.
 *
 * @internal
 */
import { redactUrlCredentials } from "./redact.js"

/** Longest summary of another error inside a message. */
const BRIEF_MAX = 300

/** Longest message built from summaries. */
export const MESSAGE_MAX = 1024

const clip = (text: string, max: number): string => (text.length <= max ? text : `${text.slice(0, max - 1)}…`)

/**
 * @internal `Tag: first line of the message`, at most 300 characters, URL credentials masked:
 * library users read these messages directly, not only through the gateway and CLI (which
 * mask at their edge), and a transport's message may quote the server URL with its password.
 */
export const brief = (error: { readonly _tag: string; readonly message: string }): string => {
  const line = redactUrlCredentials(error.message.split("\n", 1)[0] ?? "")
  // A summary never carries the summary of a third error along.
  const own = line.split(" (last connection error: ", 1)[0] ?? line
  return clip(`${error._tag}: ${own}`, BRIEF_MAX)
}

/** @internal A message cut to at most 1 KB. */
export const bounded = (message: string): string => clip(message, MESSAGE_MAX)
