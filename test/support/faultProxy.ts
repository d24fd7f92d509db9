/**
 * A real TCP fault proxy for fault tests: it listens on 127.0.0.1 and pipes every accepted
 * connection to 127.0.0.1:target, byte for byte, and can inject the faults a real network
 * or gateway produces: TCP resets, a hung (half-open) link, an HTTP 502/503 window from a
 * gateway whose upstream is gone, and refused connections. Built on `node:net` only; the
 * listener and every socket are destroyed, and every timer cleared, when the scope closes.
 */
import { Effect, type Scope } from "effect"
import { STATUS_CODES } from "node:http"
import * as net from "node:net"

export interface StatusOptions {
  readonly status: number
  readonly retryAfterSeconds?: number
  /**
   * Answer on live keep-alive connections instead of dropping them (a gateway that stays up
   * while its upstream fails): entering the window closes nothing; every request that
   * *starts* during the window gets the status (`Connection: keep-alive`), its body read and
   * discarded; requests already forwarded finish normally. Needs a proxy made with `http: true`.
   */
  readonly keepSockets?: boolean
}

export interface StatusWindowOptions extends StatusOptions {
  readonly durationMs: number
}

export interface FaultProxy {
  /** Where clients connect (127.0.0.1). */
  readonly port: number
  /** The upstream port new connections go to; settable via `retarget`. */
  readonly target: number
  /** Send new connections to another upstream port (open ones stay where they are). */
  readonly retarget: (port: number) => Effect.Effect<void>
  /** Currently open client connections (forwarded or waiting for a status answer). */
  readonly connections: Effect.Effect<number>
  /** Destroy every open connection with a TCP RST (`socket.resetAndDestroy()`) on both sides. */
  readonly reset: Effect.Effect<void>
  /** Stop forwarding bytes (and FIN/RST) in both directions, holding them, without closing anything: a hung link. */
  readonly pause: Effect.Effect<void>
  /** Deliver what was held and forward again. */
  readonly resume: Effect.Effect<void>
  /**
   * For `durationMs`, answer every HTTP request (WebSocket upgrades included) with `status`
   * and an optional `Retry-After`, like a gateway whose upstream is gone: entering the window
   * destroys every open connection; new connections get a well-formed HTTP/1.1 response
   * (`Connection: close`, `Content-Length`, a small JSON body) to the first bytes they send,
   * then are closed. Afterwards forwarding resumes. Returns at once (does not wait the window out).
   * With `keepSockets` nothing is closed: see `StatusOptions.keepSockets`.
   */
  readonly statusWindow: (options: StatusWindowOptions) => Effect.Effect<void>
  /** Enter (options) or leave (undefined) the status mode by hand; cancels a pending `statusWindow` end. */
  readonly setStatus: (options: StatusOptions | undefined) => Effect.Effect<void>
  /** The same as `setStatus(undefined)`. */
  readonly clearStatus: Effect.Effect<void>
  /** How many requests were answered with a status so far (both kinds of status mode). */
  readonly statusAnswers: Effect.Effect<number>
  /** Refuse new connections (reset them at once) while true, as if nothing listened. */
  readonly setRefuse: (refuse: boolean) => Effect.Effect<void>
}

/** Bytes held per direction while paused before we stop reading from the source (TCP backpressure). */
const HOLD_LIMIT = 4 * 1024 * 1024
/** How long a status-answered socket may linger (waiting for the client's FIN) before we destroy it. */
const STATUS_LINGER_MS = 1_000

/** What one direction (src → dst) holds while paused. */
interface Held {
  chunks: Array<Buffer>
  bytes: number
  /** src sent FIN. */
  ended: boolean
  /** src closed: "clean" after FIN, "error" on RST/error. */
  closed: "clean" | "error" | undefined
}

const emptyHeld = (): Held => ({ chunks: [], bytes: 0, ended: false, closed: undefined })

/** Sockets being reset (a connecting socket is reset only once it connects). */
const resetting = new WeakSet<net.Socket>()

const isOpen = (socket: net.Socket): boolean => !socket.destroyed && !resetting.has(socket)

const hardReset = (socket: net.Socket): void => {
  if (!isOpen(socket)) return
  resetting.add(socket)
  try {
    socket.resetAndDestroy()
  } catch {
    socket.destroy()
  }
}

/** End our side, then destroy once the FIN is flushed (nobody is left to read from it). */
const endThenDestroy = (socket: net.Socket): void => {
  if (!isOpen(socket)) return
  if (socket.writableFinished) {
    socket.destroy()
    return
  }
  socket.once("finish", () => socket.destroy())
  if (!socket.writableEnded) socket.end()
}

const statusResponse = (options: StatusOptions, keepAlive = false): string => {
  const body = JSON.stringify({
    error: "upstream unavailable (fault proxy)",
    status: options.status
  })
  const lines = [
    `HTTP/1.1 ${options.status} ${STATUS_CODES[options.status] ?? "Unknown"}`,
    "Content-Type: application/json",
    `Content-Length: ${Buffer.byteLength(body)}`,
    keepAlive ? "Connection: keep-alive" : "Connection: close",
    ...(options.retryAfterSeconds !== undefined ? [`Retry-After: ${options.retryAfterSeconds}`] : []),
    "",
    body
  ]
  return lines.join("\r\n")
}

/** Longest request head the framer buffers before it stops framing that connection. */
const MAX_HEAD = 64 * 1024

/**
 * Splits what one client sends into HTTP/1.1 requests, so each request can be forwarded or
 * answered here. Bodies are framed by `Content-Length`; a chunked body or an upgrade ends
 * the framing of that connection (its bytes are forwarded as they are from then on), which
 * is enough for the MCP SDK's fetch (string bodies, no pipelining).
 */
class RequestFramer {
  private head: Buffer = Buffer.alloc(0)
  private bodyLeft = 0
  private mode: "head" | "body" | "raw" | "discard" = "head"
  /** The status this request is answered with, or undefined when it is forwarded. */
  private answering: StatusOptions | undefined

  constructor(
    private readonly decide: () => StatusOptions | undefined,
    private readonly pass: (bytes: Buffer) => void,
    private readonly answer: (status: StatusOptions, close: boolean) => void
  ) {}

  push(chunk: Buffer): void {
    let data = chunk
    while (data.length > 0) {
      if (this.mode === "raw") return this.pass(data)
      if (this.mode === "discard") return
      if (this.mode === "body") {
        const n = Math.min(this.bodyLeft, data.length)
        if (this.answering === undefined) this.pass(data.subarray(0, n))
        this.bodyLeft -= n
        data = data.subarray(n)
        if (this.bodyLeft === 0) this.endRequest()
        continue
      }
      const buffered = Buffer.concat([this.head, data])
      const end = buffered.indexOf("\r\n\r\n")
      if (end < 0) {
        this.head = buffered
        if (buffered.length > MAX_HEAD) {
          this.head = Buffer.alloc(0)
          this.mode = "raw"
          this.pass(buffered)
        }
        return
      }
      const head = buffered.subarray(0, end + 4)
      data = buffered.subarray(end + 4)
      this.head = Buffer.alloc(0)
      const text = head.toString("latin1")
      this.answering = this.decide()
      if (this.answering === undefined) this.pass(head)
      if (/\r\ntransfer-encoding:[^\r]*chunked/i.test(text) || /\r\nupgrade:/i.test(text)) {
        if (this.answering === undefined) {
          this.mode = "raw"
        } else {
          // Where this body ends is not worth parsing here: answer, then close.
          this.mode = "discard"
          this.answer(this.answering, true)
        }
        continue
      }
      this.bodyLeft = Number(/\r\ncontent-length:\s*(\d+)/i.exec(text)?.[1] ?? 0)
      this.mode = "body"
      if (this.bodyLeft === 0) this.endRequest()
    }
  }

  private endRequest(): void {
    const answering = this.answering
    this.answering = undefined
    this.mode = "head"
    if (answering !== undefined) this.answer(answering, false)
  }
}

export const make = (options: {
  readonly target: number
  /** Frame client bytes as HTTP/1.1 requests (needed for `keepSockets` status windows). */
  readonly http?: boolean
}): Effect.Effect<FaultProxy, Error, Scope.Scope> =>
  Effect.gen(function* () {
    const http = options.http ?? false
    let target = options.target
    let paused = false
    let refuse = false
    let status: StatusOptions | undefined
    let statusTimer: ReturnType<typeof setTimeout> | undefined
    let statusAnswers = 0

    /** Every socket we own (clients and upstreams), for cleanup. */
    const sockets = new Set<net.Socket>()
    /** Client sockets (for `connections`). */
    const clients = new Set<net.Socket>()
    /** Flushers of the held bytes of each live direction, run on resume. */
    const flushers = new Set<() => void>()
    /** Socket-level timers (status linger), cleared on close. */
    const timers = new Set<ReturnType<typeof setTimeout>>()

    const track = (socket: net.Socket, isClient: boolean) => {
      sockets.add(socket)
      if (isClient) clients.add(socket)
      socket.setNoDelay(true)
      // Errors are reported through `close(hadError)`; an unhandled 'error' would crash.
      socket.on("error", () => {})
      socket.once("close", () => {
        sockets.delete(socket)
        clients.delete(socket)
      })
    }

    /**
     * Forward src → dst with backpressure; while paused, hold data, FIN and close. Returns the
     * data handler. `tap`, when given, sees each chunk first and passes on what to forward.
     */
    const forward = (
      src: net.Socket,
      dst: net.Socket,
      tap?: (chunk: Buffer, pass: (bytes: Buffer) => void) => void
    ) => {
      const held = emptyHeld()
      let waitingDrain = false

      const write = (chunk: Buffer) => {
        if (!isOpen(dst) || dst.writableEnded) return
        if (!dst.write(chunk) && !waitingDrain) {
          waitingDrain = true
          src.pause()
          dst.once("drain", () => {
            waitingDrain = false
            if (!(paused && held.bytes >= HOLD_LIMIT)) src.resume()
          })
        }
      }
      const deliverEnd = () => {
        if (isOpen(dst) && !dst.writableEnded) dst.end()
      }
      const deliverClose = (kind: "clean" | "error") => {
        if (kind === "error") hardReset(dst)
        else endThenDestroy(dst)
      }

      const flush = () => {
        const chunks = held.chunks
        const { ended, closed } = held
        held.chunks = []
        held.bytes = 0
        held.ended = false
        held.closed = undefined
        for (const chunk of chunks) write(chunk)
        if (ended) deliverEnd()
        if (closed !== undefined) {
          flushers.delete(flush)
          deliverClose(closed)
        } else if (!waitingDrain && isOpen(src) && src.isPaused()) {
          src.resume()
        }
      }
      flushers.add(flush)

      const receive = (chunk: Buffer) => {
        if (paused) {
          held.chunks.push(chunk)
          held.bytes += chunk.length
          if (held.bytes >= HOLD_LIMIT) src.pause()
          return
        }
        write(chunk)
      }
      const onData = tap === undefined ? receive : (chunk: Buffer) => tap(chunk, receive)
      src.on("data", onData)
      src.once("end", () => {
        if (paused) held.ended = true
        else deliverEnd()
      })
      src.once("close", (hadError: boolean) => {
        const kind = hadError ? "error" : "clean"
        if (paused) {
          held.closed = kind
          return
        }
        flushers.delete(flush)
        deliverClose(kind)
      })
      return onData
    }

    const link = (client: net.Socket, first: Buffer | undefined) => {
      const upstream = net.connect({ host: "127.0.0.1", port: target, allowHalfOpen: true })
      track(upstream, false)
      const fromClient = forward(
        client,
        upstream,
        http ? (chunk, pass) => framerOf(client, pass).push(chunk) : undefined
      )
      forward(upstream, client)
      // Bytes read before the link existed go the same way as the rest (held while paused).
      if (first !== undefined) fromClient(first)
      if (client.isPaused()) client.resume()
    }

    const answerStatus = (client: net.Socket, answer: StatusOptions) => {
      // Keep reading (and discarding) what the client still sends, so closing does not RST
      // away our response; the client closes after reading `Connection: close`.
      client.on("data", () => {})
      client.once("end", () => client.destroy())
      client.resume()
      statusAnswers += 1
      client.end(statusResponse(answer))
      const timer = setTimeout(() => client.destroy(), STATUS_LINGER_MS)
      timer.unref()
      timers.add(timer)
      client.once("close", () => {
        clearTimeout(timer)
        timers.delete(timer)
      })
    }

    const framers = new WeakMap<net.Socket, RequestFramer>()
    const framerOf = (client: net.Socket, pass: (bytes: Buffer) => void): RequestFramer => {
      let framer = framers.get(client)
      if (framer === undefined) {
        framer = new RequestFramer(
          () => (status?.keepSockets === true ? status : undefined),
          pass,
          (answer, close) => {
            if (!isOpen(client) || client.writableEnded) return
            if (close) answerStatus(client, answer)
            else {
              statusAnswers += 1
              client.write(statusResponse(answer, true))
            }
          }
        )
        framers.set(client, framer)
      }
      return framer
    }

    const onConnection = (client: net.Socket) => {
      if (refuse) {
        client.on("error", () => {})
        hardReset(client)
        return
      }
      track(client, true)
      if (status === undefined || status.keepSockets === true) {
        link(client, undefined)
        return
      }
      // Status mode: decide at the first bytes (the window may have ended by then).
      const onEarlyEnd = () => client.destroy() // closed before asking anything
      client.once("end", onEarlyEnd)
      client.once("data", (first: Buffer) => {
        client.off("end", onEarlyEnd)
        client.pause()
        if (status !== undefined) answerStatus(client, status)
        else link(client, first)
      })
    }

    const server = net.createServer({ allowHalfOpen: true }, onConnection)
    server.on("error", () => {})

    const listen = Effect.async<void, Error>((resume) => {
      const onError = (error: Error) => resume(Effect.fail(error))
      server.once("error", onError)
      server.listen(0, "127.0.0.1", () => {
        server.off("error", onError)
        resume(Effect.void)
      })
    })

    const clearStatusTimer = () => {
      if (statusTimer !== undefined) clearTimeout(statusTimer)
      statusTimer = undefined
    }

    const destroyAll = (how: (socket: net.Socket) => void) => {
      for (const socket of [...sockets]) how(socket)
    }

    const release = Effect.async<void>((resume) => {
      clearStatusTimer()
      for (const timer of timers) clearTimeout(timer)
      timers.clear()
      flushers.clear()
      paused = false
      server.close(() => resume(Effect.void))
      destroyAll((socket) => socket.destroy())
    })

    yield* Effect.acquireRelease(listen, () => release)

    const address = server.address()
    if (address === null || typeof address !== "object") {
      return yield* Effect.fail(new Error("fault proxy: no listening address"))
    }

    const enterStatus = (options: StatusOptions) => {
      if (options.keepSockets === true && !http) {
        throw new Error("fault proxy: keepSockets needs a proxy made with http: true")
      }
      status = { ...options }
      if (options.keepSockets !== true) destroyAll((socket) => socket.destroy())
    }

    const setStatus = (options: StatusOptions | undefined) =>
      Effect.sync(() => {
        clearStatusTimer()
        if (options === undefined) status = undefined
        else enterStatus(options)
      })

    const proxy: FaultProxy = {
      port: address.port,
      get target() {
        return target
      },
      retarget: (port) =>
        Effect.sync(() => {
          target = port
        }),
      connections: Effect.sync(() => clients.size),
      reset: Effect.sync(() => destroyAll(hardReset)),
      pause: Effect.sync(() => {
        paused = true
      }),
      resume: Effect.sync(() => {
        paused = false
        for (const flush of [...flushers]) flush()
      }),
      statusWindow: ({ durationMs, ...options }) =>
        Effect.sync(() => {
          clearStatusTimer()
          enterStatus(options)
          statusTimer = setTimeout(() => {
            statusTimer = undefined
            status = undefined
          }, durationMs)
          statusTimer.unref()
        }),
      setStatus,
      clearStatus: setStatus(undefined),
      statusAnswers: Effect.sync(() => statusAnswers),
      setRefuse: (value) =>
        Effect.sync(() => {
          refuse = value
        })
    }
    return proxy
  })
