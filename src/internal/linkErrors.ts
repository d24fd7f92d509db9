/**
 * Plain `Error` values that Tether's own transports hand to the SDK's `onerror`/`onclose`
 * callbacks (the SDK's `Transport` interface is callback based, so these cannot be
 * Effect failures). `classify` turns each into a tagged Tether error.
 *
 * @internal
 */

/** @internal The stdio child exited (or was killed) while the link was open. */
export class ChildExitedError extends Error {
  override readonly name = "ChildExitedError"
  constructor(
    readonly exitCode: number | null,
    readonly signal: string | null,
    readonly stderrTail: string
  ) {
    super(
      `server process exited (${signal !== null ? `signal ${signal}` : `code ${exitCode}`})` +
        (stderrTail.length > 0 ? `; stderr: ${stderrTail}` : "")
    )
  }
}

/** @internal The stdio command could not be started. */
export class SpawnError extends Error {
  override readonly name = "SpawnError"
  constructor(
    readonly command: string,
    readonly code: string | undefined,
    detail: string
  ) {
    super(detail)
  }
}

/** @internal A WebSocket closed with this code while the link was open. */
export class WebSocketClosedError extends Error {
  override readonly name = "WebSocketClosedError"
  constructor(
    readonly code: number,
    readonly reason: string
  ) {
    super(`WebSocket closed with code ${code}${reason.length > 0 ? ` (${reason})` : ""}`)
  }
}

/** @internal The WebSocket upgrade was answered with a plain HTTP status. */
export class WebSocketHandshakeError extends Error {
  override readonly name = "WebSocketHandshakeError"
  constructor(
    readonly status: number,
    readonly retryAfterMs: number | undefined
  ) {
    super(`WebSocket upgrade answered HTTP ${status}`)
  }
}

/** @internal An HTTP response Tether read before the SDK did (status and Retry-After kept). */
export class HttpStatusError extends Error {
  override readonly name = "HttpStatusError"
  constructor(
    readonly status: number,
    readonly retryAfterMs: number | undefined,
    readonly hadSession: boolean,
    detail: string
  ) {
    super(`HTTP ${status}: ${detail}`)
  }
}

/** @internal Parses a `Retry-After` header (seconds or an HTTP date) into milliseconds. */
export const parseRetryAfter = (value: string | null | undefined, nowMs: number): number | undefined => {
  if (value === null || value === undefined || value.trim() === "") return undefined
  const seconds = Number(value)
  if (Number.isFinite(seconds)) return Math.max(0, Math.round(seconds * 1000))
  const date = Date.parse(value)
  return Number.isNaN(date) ? undefined : Math.max(0, date - nowMs)
}
