/**
 * A `Link` is one SDK transport for one session, wrapped so the connection can see what
 * the SDK hides: when the link died and why, when any message last arrived (heartbeat),
 * and for each request whether it was handed to the wire ("phase", for safe retries).
 *
 * @internal
 */
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import type { Transport, TransportSendOptions } from "@modelcontextprotocol/sdk/shared/transport.js"
import type {
  JSONRPCMessage,
  JSONRPCRequest,
  MessageExtraInfo,
  RequestId
} from "@modelcontextprotocol/sdk/types.js"
import * as Errors from "../Errors.js"
import { classify } from "./classify.js"
import type { ServerSpec } from "../ServerSpec.js"
import { reveal } from "../ServerSpec.js"
import { WebSocketClientTransport } from "../WebSocketTransport.js"
import type { AuthManager } from "./auth.js"
import { makeTrackedFetch, type TrackedFetch } from "./httpFetch.js"
import { StdioTransport } from "./stdio.js"

/**
 * Where a request stands: `pending` (never handed to the transport), `sent` (handed over:
 * the server may have it), `refused` (the transport proved the server did not take it:
 * connect refused, 429/503, unknown session).
 *
 * @internal
 */
export type Phase = "pending" | "sent" | "refused"

/** @internal One attempt of one request, as the link saw it. */
export interface Flight {
  requestId: RequestId | undefined
  phase: Phase
  retryAfterMs: number | undefined
}

/** @internal */
export const makeFlight = (): Flight => ({ requestId: undefined, phase: "pending", retryAfterMs: undefined })

/** @internal */
export interface LinkOptions {
  readonly server: string
  readonly graceMs: number
  readonly openTimeoutMs: number
  /** Millisecond clock (the Effect `Clock`, so `TestClock` drives heartbeat tests). */
  readonly now: () => number
  /** Called once, with the raw cause, when the link dies by itself. */
  readonly onLost: (cause: unknown) => void
  /** OAuth for an `http`/`sse` spec with `auth`: the SDK provider plus Tether's renewing fetch. */
  readonly auth?: AuthManager | undefined
}

type Killable = Transport & { kill?: () => Promise<void> }

// The SDK's `isJSONRPCRequest` runs a full zod parse: 7 µs per call in the benchmarks, on
// a message the SDK itself just built. The shape is all that is needed here.
const isRequest = (message: JSONRPCMessage): message is JSONRPCRequest =>
  "method" in message && "id" in message

const refusedTags: ReadonlySet<string> = new Set(["ConnectFailed", "SessionExpired", "Unauthorized"])

/** @internal */
export class Link implements Transport {
  onclose?: () => void
  onerror?: (error: Error) => void
  onmessage?: <T extends JSONRPCMessage>(message: T, extra?: MessageExtraInfo) => void

  /** The flight the next request `send` belongs to (set synchronously around a call). */
  current: Flight | undefined
  private readonly flights = new Map<RequestId, Flight>()
  private lastActivityMs: number
  private closing = false
  private lostReported = false
  private readonly inner: Killable
  private readonly tracked: TrackedFetch | undefined

  constructor(
    readonly spec: ServerSpec,
    private readonly options: LinkOptions
  ) {
    this.lastActivityMs = options.now()
    const hooks = {
      activity: () => this.touch(),
      lost: (cause: unknown) => this.reportLost(cause),
      retryAfter: (ids: ReadonlyArray<string | number>, ms: number) => {
        this.lastRetryAfterMs = ms
        for (const id of ids) {
          const flight = this.flights.get(id)
          if (flight !== undefined) flight.retryAfterMs = ms
        }
      },
      refused: (ids: ReadonlyArray<string | number>) => {
        for (const id of ids) {
          const flight = this.flights.get(id)
          if (flight !== undefined) flight.phase = "refused"
        }
      },
      now: options.now
    }
    // Under the tracked fetch, so a request re-sent after a token renewal is one request to it.
    const authFetch = options.auth?.wrapFetch(fetch, (error) => this.reportLost(error))
    const authProvider = options.auth?.provider
    switch (spec.type) {
      case "stdio":
        this.tracked = undefined
        this.inner = new StdioTransport({
          command: spec.command,
          args: spec.args,
          env: reveal(spec.env),
          cwd: spec.cwd,
          graceMs: options.graceMs
        })
        break
      case "http":
        this.tracked = makeTrackedFetch(hooks, authFetch)
        this.inner = new StreamableHTTPClientTransport(new URL(spec.url), {
          fetch: this.tracked.fetch,
          ...(authProvider === undefined ? {} : { authProvider }),
          requestInit: { headers: reveal(spec.headers) },
          // A stream that breaks is reported by the tracked fetch and the whole session is
          // rebuilt; these retries only cover a GET stream the server ended cleanly.
          reconnectionOptions: {
            initialReconnectionDelay: 500,
            maxReconnectionDelay: 1_000,
            reconnectionDelayGrowFactor: 2,
            maxRetries: 2
          }
        })
        break
      case "sse":
        this.tracked = makeTrackedFetch(hooks, authFetch)
        this.inner = new SSEClientTransport(new URL(spec.url), {
          fetch: this.tracked.fetch,
          ...(authProvider === undefined ? {} : { authProvider }),
          requestInit: { headers: reveal(spec.headers) }
        })
        break
      case "websocket":
        this.tracked = undefined
        this.inner = new WebSocketClientTransport(new URL(spec.url), {
          headers: reveal(spec.headers),
          openTimeoutMs: options.openTimeoutMs
        })
        break
      case "custom":
        this.tracked = undefined
        this.inner = spec.transport()
        break
    }
  }

  get sessionId(): string | undefined {
    return this.inner.sessionId
  }

  get pid(): number | undefined {
    return this.inner instanceof StdioTransport ? this.inner.pid : undefined
  }

  /** Epoch ms of the last message or stream chunk from the server. */
  get lastActivity(): number {
    return this.lastActivityMs
  }

  /** The last `Retry-After` the server sent (a 429/503 during connect has no flight). */
  lastRetryAfterMs: number | undefined

  /** The protocol version agreed in `initialize`. */
  protocolVersion: string | undefined

  setProtocolVersion(version: string): void {
    this.protocolVersion = version
    this.inner.setProtocolVersion?.(version)
  }

  start(): Promise<void> {
    this.inner.onmessage = (message, extra) => {
      this.touch()
      this.onmessage?.(message, extra)
    }
    this.inner.onerror = (error) => {
      if (this.isLinkError(error)) this.reportLost(error)
      this.onerror?.(error)
    }
    this.inner.onclose = () => {
      if (!this.closing)
        this.reportLost(
          new Errors.ConnectionLost({
            server: this.options.server,
            message: "transport closed",
            reason: "Closed"
          })
        )
      this.onclose?.()
    }
    return this.inner.start()
  }

  send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void> {
    const flight = this.current !== undefined && isRequest(message) ? this.current : undefined
    if (flight !== undefined) {
      this.current = undefined
      flight.requestId = (message as JSONRPCRequest).id
      flight.phase = "sent"
      // Only the HTTP transports report back by request id (Retry-After, refused).
      if (this.tracked !== undefined) this.flights.set(flight.requestId, flight)
    }
    let sent: Promise<void>
    try {
      sent = this.inner.send(message, options)
    } catch (error) {
      sent = Promise.reject(error)
    }
    // No `async`/`await` here: an extra promise and microtask on every message showed in
    // the call-path profile. A failure is only inspected when a flight is at stake.
    // A transport we did not write proves nothing by failing (see `provesNotTaken`).
    return flight === undefined || this.spec.type === "custom"
      ? sent
      : sent.catch((error: unknown) => {
          if (this.provesNotTaken(error, flight)) flight.phase = "refused"
          // The SDK's Transport contract is Promise-based: rejecting is how it learns of this.
          return Promise.reject(error)
        })
  }

  /** Forget a finished flight. */
  settle(flight: Flight): void {
    if (flight.requestId !== undefined && this.tracked !== undefined) this.flights.delete(flight.requestId)
  }

  /** Graceful close: end the session politely (DELETE, stdin EOF + SIGTERM), then close. */
  async close(): Promise<void> {
    if (this.closing) return
    this.closing = true
    if (this.inner instanceof StreamableHTTPClientTransport && this.inner.sessionId !== undefined) {
      const inner = this.inner
      await Promise.race([
        inner.terminateSession().catch(() => undefined),
        new Promise((r) => setTimeout(r, 500).unref())
      ])
    }
    this.tracked?.abortAll()
    await this.inner.close()
  }

  /** Forced close: the link is dead or hung. Kill the child, drop the socket, abort streams. */
  async kill(): Promise<void> {
    this.closing = true
    this.tracked?.abortAll()
    await (this.inner.kill ? this.inner.kill() : this.inner.close())
  }

  private touch(): void {
    this.lastActivityMs = this.options.now()
  }

  private reportLost(cause: unknown): void {
    if (this.closing || this.lostReported) return
    this.lostReported = true
    this.options.onLost(cause)
  }

  /** Does this `onerror` mean the whole link is gone (as opposed to one request failing)? */
  private isLinkError(error: Error): boolean {
    switch (this.spec.type) {
      case "stdio":
      case "websocket":
        return error.name === "ChildExitedError" || error.name === "WebSocketClosedError"
      case "sse":
        // EventSource errors come only from the event stream, never from a POST.
        return error.name !== "ZodError" && error.message.startsWith("SSE error")
      case "http":
        // The standalone GET stream gave up reconnecting: notifications would be lost.
        return (
          error.message.startsWith("Maximum reconnection attempts") ||
          error.message.startsWith("Failed to reconnect")
        )
      case "custom":
        // Unknown error kinds: the transport's close and the heartbeat decide.
        return false
    }
  }

  private provesNotTaken(error: unknown, flight: Flight): boolean {
    // A transport we did not write may fail a send after the server took the request.
    if (this.spec.type === "custom") return false
    if (this.spec.type !== "http" && this.spec.type !== "sse") return true
    const classified = classify(error, {
      server: this.options.server,
      hasSession: this.sessionId !== undefined
    })
    if (refusedTags.has(classified._tag)) return true
    if (classified._tag === "HttpUnavailable" && (classified.status === 429 || classified.status === 503)) {
      return true
    }
    return flight.retryAfterMs !== undefined
  }
}
