/**
 * The one place where raw failures (Node system errors, undici/fetch errors, MCP SDK
 * errors, HTTP statuses, child exits, WebSocket closes) become tagged Tether errors.
 *
 * @internal
 */
import { SseError } from "@modelcontextprotocol/sdk/client/sse.js"
import { StreamableHTTPError } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js"
import { ErrorCode, McpError } from "@modelcontextprotocol/sdk/types.js"
import { Cause, Predicate } from "effect"
import type { ClassifyContext, Classified } from "../Errors.js"
import * as Errors from "../Errors.js"
import { redactUrlCredentials } from "./redact.js"
import {
  ChildExitedError,
  HttpStatusError,
  SpawnError,
  WebSocketClosedError,
  WebSocketHandshakeError
} from "./linkErrors.js"

const connectCodes: ReadonlySet<string> = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EHOSTDOWN",
  "ENETDOWN",
  "ETIMEDOUT",
  "EADDRNOTAVAIL",
  "EMFILE",
  "ENFILE",
  "UND_ERR_CONNECT_TIMEOUT"
])

const lostCodes: ReadonlySet<string> = new Set([
  "ECONNRESET",
  "EPIPE",
  "ECONNABORTED",
  "UND_ERR_SOCKET",
  "UND_ERR_CLOSED",
  "UND_ERR_ABORTED",
  "ERR_STREAM_DESTROYED",
  "ERR_STREAM_WRITE_AFTER_END",
  "ERR_STREAM_PREMATURE_CLOSE",
  "ERR_SOCKET_CLOSED"
])

const timeoutCodes: ReadonlySet<string> = new Set(["UND_ERR_HEADERS_TIMEOUT", "UND_ERR_BODY_TIMEOUT"])

const spawnCodes: ReadonlySet<string> = new Set(["ENOENT", "EACCES", "ENOTDIR", "EPERM"])

const unavailableStatuses: ReadonlySet<number> = new Set([429, 500, 502, 503, 504])

const classifiedTags: ReadonlySet<string> = new Set([
  "ConnectFailed",
  "ConnectionLost",
  "RequestTimeout",
  "HttpUnavailable",
  "SessionExpired",
  "ProtocolError",
  "Unauthorized",
  "AuthorizationRequired",
  "InvalidResponse",
  "SpawnFailed"
])

/**
 * The message, with the inner cause's message when there is one ("fetch failed: connect
 * ECONNREFUSED …"). URL credentials are masked: undici quotes the whole URL when it
 * refuses one with a password.
 */
const messageOf = (u: unknown): string => redactUrlCredentials(rawMessageOf(u))

const rawMessageOf = (u: unknown): string => {
  if (!(u instanceof Error)) return Predicate.isString(u) ? u : safeStringify(u)
  const inner = u.cause instanceof Error ? u.cause.message : undefined
  return inner !== undefined && inner.length > 0 && !u.message.includes(inner)
    ? `${u.message}: ${inner}`
    : u.message
}

const safeStringify = (u: unknown): string => {
  try {
    return JSON.stringify(u) ?? String(u)
  } catch {
    return String(u)
  }
}

/** Walks `cause` chains and AggregateErrors for the first Node/undici error code. */
const findCode = (u: unknown, depth = 0): string | undefined => {
  if (depth > 6 || !Predicate.isObject(u)) return undefined
  if (Predicate.hasProperty(u, "code") && Predicate.isString(u.code)) return u.code
  if (u instanceof AggregateError) {
    for (const inner of u.errors) {
      const code = findCode(inner, depth + 1)
      if (code !== undefined) return code
    }
  }
  return Predicate.hasProperty(u, "cause") ? findCode(u.cause, depth + 1) : undefined
}

const fromStatus = (
  status: number,
  message: string,
  hasSession: boolean,
  server: string | undefined,
  retryAfterMs?: number
): Classified => {
  if (status === 401 || status === 403) return new Errors.Unauthorized({ server, message, status })
  if (hasSession && (status === 404 || (status === 400 && /session/i.test(message)))) {
    return new Errors.SessionExpired({ server, message, status })
  }
  if (unavailableStatuses.has(status)) {
    return new Errors.HttpUnavailable({ server, message, status, retryAfterMs })
  }
  return new Errors.InvalidResponse({ server, message, status })
}

const fromCode = (code: string, message: string, server: string | undefined): Classified | undefined => {
  if (connectCodes.has(code)) return new Errors.ConnectFailed({ server, message, code })
  if (lostCodes.has(code)) return new Errors.ConnectionLost({ server, message, reason: "Reset", code })
  if (timeoutCodes.has(code)) return new Errors.RequestTimeout({ server, message })
  return undefined
}

/** @internal */
export const classify = (cause: unknown, context?: ClassifyContext): Classified => {
  const server = context?.server
  const hasSession = context?.hasSession ?? false
  if (
    Predicate.hasProperty(cause, "_tag") &&
    Predicate.isString(cause._tag) &&
    classifiedTags.has(cause._tag)
  ) {
    return cause as Classified
  }
  if (Cause.isTimeoutException(cause)) {
    return new Errors.RequestTimeout({ server, message: "request timed out" })
  }
  if (cause instanceof ChildExitedError) {
    return new Errors.ConnectionLost({
      server,
      message: cause.message,
      reason: "ChildExited",
      code: cause.signal ?? cause.exitCode ?? undefined
    })
  }
  if (cause instanceof SpawnError) {
    return new Errors.SpawnFailed({
      server,
      message: cause.message,
      command: cause.command,
      code: cause.code
    })
  }
  if (cause instanceof WebSocketClosedError) {
    if (cause.code === 1008 || cause.code === 4401 || cause.code === 4403) {
      return new Errors.Unauthorized({ server, message: cause.message })
    }
    if (cause.code === 1013)
      return new Errors.HttpUnavailable({ server, message: cause.message, status: 503 })
    return new Errors.ConnectionLost({
      server,
      message: cause.message,
      reason: "WebSocketClosed",
      code: cause.code
    })
  }
  if (cause instanceof WebSocketHandshakeError) {
    return fromStatus(cause.status, cause.message, false, server, cause.retryAfterMs)
  }
  if (cause instanceof HttpStatusError) {
    return fromStatus(cause.status, cause.message, cause.hadSession, server, cause.retryAfterMs)
  }
  if (cause instanceof StreamableHTTPError) {
    const status = cause.code ?? -1
    if (status === -1) return new Errors.InvalidResponse({ server, message: cause.message })
    return fromStatus(status, cause.message, hasSession, server)
  }
  if (cause instanceof SseError) {
    if (typeof cause.code === "number") return fromStatus(cause.code, cause.message, hasSession, server)
    // The eventsource package keeps only the text of the fetch failure.
    const code =
      findCode(cause.event) ?? findCode(cause) ?? /\b(E[A-Z]{3,}|UND_ERR_[A-Z_]+)\b/.exec(cause.message)?.[1]
    const byCode = code !== undefined ? fromCode(code, cause.message, server) : undefined
    return byCode ?? new Errors.ConnectionLost({ server, message: cause.message, reason: "StreamAborted" })
  }
  if (cause instanceof UnauthorizedError) {
    return new Errors.Unauthorized({ server, message: cause.message })
  }
  if (cause instanceof McpError) {
    if (cause.code === ErrorCode.ConnectionClosed) {
      return new Errors.ConnectionLost({ server, message: cause.message, reason: "Closed" })
    }
    if (cause.code === ErrorCode.RequestTimeout) {
      const data: unknown = cause.data
      const timeoutMs =
        Predicate.hasProperty(data, "timeout") && typeof data.timeout === "number" ? data.timeout : undefined
      return new Errors.RequestTimeout({ server, message: cause.message, timeoutMs })
    }
    return new Errors.ProtocolError({ server, message: cause.message, code: cause.code, data: cause.data })
  }
  // zod's classic `parse` throws `ZodError`; the SDK validates replies with zod/v4-mini's
  // `safeParse`, whose errors are `$ZodError` (same shape, different name).
  if (Predicate.isError(cause) && (cause.name === "ZodError" || cause.name === "$ZodError")) {
    return new Errors.InvalidResponse({ server, message: `invalid reply from server: ${cause.message}` })
  }
  if (Predicate.isError(cause) && (cause.name === "AbortError" || cause.name === "TimeoutError")) {
    return cause.name === "TimeoutError"
      ? new Errors.RequestTimeout({ server, message: cause.message })
      : new Errors.ConnectionLost({ server, message: cause.message, reason: "Closed" })
  }
  const message = messageOf(cause)
  const code = findCode(cause)
  if (code !== undefined) {
    const byCode = fromCode(code, message, server)
    if (byCode !== undefined) return byCode
    if (
      spawnCodes.has(code) &&
      Predicate.hasProperty(cause, "syscall") &&
      String(cause.syscall).startsWith("spawn")
    ) {
      const command = Predicate.hasProperty(cause, "path") ? String(cause.path) : "?"
      return new Errors.SpawnFailed({ server, message, command, code })
    }
  }
  if (Predicate.isError(cause)) {
    if (cause.message === "Not connected") {
      return new Errors.ConnectionLost({ server, message, reason: "NotConnected" })
    }
    // undici reports a body cut off mid-stream as `TypeError: terminated`; the SDK
    // re-wraps stream failures as "SSE stream disconnected: …".
    if (
      cause.message === "terminated" ||
      cause.message.startsWith("SSE stream disconnected") ||
      cause.message === "fetch failed"
    ) {
      return new Errors.ConnectionLost({ server, message, reason: "StreamAborted" })
    }
  }
  return new Errors.InvalidResponse({ server, message: `unexpected failure: ${message}` })
}
