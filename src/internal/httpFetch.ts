/**
 * The `fetch` Tether hands to the SDK's HTTP transports. The SDK transport cannot tell a
 * dead server from a quiet one, keeps a dead session forever and loses `Retry-After`;
 * this wrapper sees every request and response, so it:
 * - aborts every request and stream of the link at once when the link is closed (the
 *   SDK's Streamable HTTP transport leaves calls pending for 60 s after a server dies);
 * - reports a response stream that breaks mid-way (server killed, proxy reset) as a lost
 *   link, and a 404 (or "session" 400) on a known session id as an expired session;
 * - records `Retry-After` of 429/503 answers on the request's flight;
 * - counts every received chunk as activity for the heartbeat;
 * - listens once per distinct caller `AbortSignal` instead of once per request (the SDK
 *   shares one signal across all requests, which floods MaxListenersExceededWarning).
 *
 * @internal
 */
import type { FetchLike } from "@modelcontextprotocol/sdk/shared/transport.js"
import { HttpStatusError, parseRetryAfter } from "./linkErrors.js"

/** @internal */
export interface FetchHooks {
  readonly activity: () => void
  readonly lost: (cause: unknown) => void
  readonly retryAfter: (requestIds: ReadonlyArray<string | number>, ms: number) => void
  /** The server answered these requests without taking them (429, 503, unknown session). */
  readonly refused: (requestIds: ReadonlyArray<string | number>) => void
  readonly now: () => number
}

/** @internal */
export interface TrackedFetch {
  readonly fetch: FetchLike
  /** Aborts every request and stream in flight, and every later one. */
  readonly abortAll: () => void
}

const requestIdsOf = (body: unknown): ReadonlyArray<string | number> => {
  if (typeof body !== "string") return []
  try {
    const parsed: unknown = JSON.parse(body)
    const messages = Array.isArray(parsed) ? parsed : [parsed]
    return messages.flatMap((m: unknown) =>
      typeof m === "object" &&
      m !== null &&
      "id" in m &&
      "method" in m &&
      (typeof m.id === "string" || typeof m.id === "number")
        ? [m.id]
        : []
    )
  } catch {
    return []
  }
}

// The SDK passes a `Headers`; copying it into a new one per request showed in the benchmarks.
const hasSessionHeader = (headers: RequestInit["headers"] | undefined): boolean =>
  headers !== undefined && (headers instanceof Headers ? headers : new Headers(headers)).has("mcp-session-id")

/**
 * A response stream passed through chunk by chunk: each chunk is activity, a clean end
 * releases the request, a break is a lost link (unless the link aborted it itself).
 * A class rather than closures per request: it is made for every POST answered as SSE.
 */
class Monitored {
  constructor(
    private readonly reader: ReadableStreamDefaultReader<Uint8Array>,
    private readonly hooks: FetchHooks,
    private readonly signal: AbortSignal,
    private readonly release: () => void
  ) {}

  async pull(stream: ReadableStreamDefaultController<Uint8Array>): Promise<void> {
    try {
      const { done, value } = await this.reader.read()
      if (done) {
        this.release()
        stream.close()
        return
      }
      this.hooks.activity()
      stream.enqueue(value)
    } catch (error) {
      this.release()
      if (!this.signal.aborted) this.hooks.lost(error)
      stream.error(error)
    }
  }

  cancel(reason: unknown): Promise<void> {
    this.release()
    return this.reader.cancel(reason)
  }
}

/** @internal */
export const makeTrackedFetch = (hooks: FetchHooks, base: FetchLike = fetch): TrackedFetch => {
  const controllers = new Set<AbortController>()
  const bySignal = new WeakMap<AbortSignal, Set<AbortController>>()
  let aborted = false

  const abortAll = (): void => {
    aborted = true
    for (const controller of controllers) controller.abort()
    controllers.clear()
  }

  const follow = (signal: AbortSignal, controller: AbortController): (() => void) => {
    let set = bySignal.get(signal)
    if (set === undefined) {
      const created = new Set<AbortController>()
      bySignal.set(signal, created)
      signal.addEventListener(
        "abort",
        () => {
          for (const c of created) c.abort(signal.reason)
          created.clear()
        },
        { once: true }
      )
      set = created
    }
    set.add(controller)
    const owned = set
    return () => owned.delete(controller)
  }

  const trackedFetch: FetchLike = async (url, init) => {
    const controller = new AbortController()
    if (aborted || init?.signal?.aborted === true) controller.abort()
    controllers.add(controller)
    const unfollow = init?.signal ? follow(init.signal, controller) : () => {}
    const release = () => {
      controllers.delete(controller)
      unfollow()
    }
    const withSession = hasSessionHeader(init?.headers)
    let response: Response
    try {
      response = await base(url, { ...init, signal: controller.signal })
    } catch (error) {
      release()
      // The SDK's Transport contract is Promise-based: rejecting is how it learns of this.
      throw error
    }
    hooks.activity()
    const status = response.status
    if (status === 429 || status === 503) {
      hooks.refused(requestIdsOf(init?.body))
      const retryAfterMs = parseRetryAfter(response.headers.get("retry-after"), hooks.now())
      if (retryAfterMs !== undefined) hooks.retryAfter(requestIdsOf(init?.body), retryAfterMs)
    }
    if (withSession && (status === 404 || status === 400)) {
      const text = await response
        .clone()
        .text()
        .catch(() => "")
      if (status === 404 || /session/i.test(text)) {
        // Mark the requests first: reporting the loss closes the link, which settles them.
        hooks.refused(requestIdsOf(init?.body))
        hooks.lost(new HttpStatusError(status, undefined, true, text.slice(0, 200) || response.statusText))
      }
    }
    const contentType = response.headers.get("content-type") ?? ""
    const body = response.body
    if (body === null || !contentType.includes("text/event-stream")) {
      // A JSON answer is read at once by the SDK; only streams need watching.
      release()
      return response
    }
    const monitored = new ReadableStream<Uint8Array>(
      new Monitored(body.getReader(), hooks, controller.signal, release)
    )
    return new Response(monitored, { status, statusText: response.statusText, headers: response.headers })
  }

  return { fetch: trackedFetch, abortAll }
}
