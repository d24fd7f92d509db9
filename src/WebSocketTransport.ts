/**
 * MCP over WebSocket, on the `ws` package: subprotocol `mcp`, one JSON-RPC message per
 * text frame. The SDK's own client transport needs a global `WebSocket` (absent on
 * Node 20) and cannot send headers; the SDK has no server side at all. This module has
 * both, so tests, examples and users can serve MCP over WebSocket.
 *
 * @since 0.1.0
 */
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js"
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js"
import { Effect, type Scope } from "effect"
import type { IncomingMessage } from "node:http"
import { WebSocket as WS, WebSocketServer } from "ws"
import { parseMessage } from "./internal/jsonRpc.js"
import { WebSocketClosedError, WebSocketHandshakeError, parseRetryAfter } from "./internal/linkErrors.js"

/**
 * The WebSocket subprotocol MCP uses.
 *
 * @since 0.1.0
 * @category constants
 */
export const SUBPROTOCOL = "mcp"

const parseFrame = (data: WS.RawData): JSONRPCMessage => {
  const text = Array.isArray(data)
    ? Buffer.concat(data).toString("utf8")
    : Buffer.isBuffer(data)
      ? data.toString("utf8")
      : Buffer.from(data).toString("utf8")
  return parseMessage(text)
}

abstract class Base implements Transport {
  onclose?: () => void
  onerror?: (error: Error) => void
  onmessage?: (message: JSONRPCMessage) => void
  protected socket: WS | undefined
  protected closing = false
  private finished = false

  protected attach(socket: WS): void {
    this.socket = socket
    socket.on("message", (data, isBinary) => {
      if (isBinary) {
        this.onerror?.(new Error("binary WebSocket frame ignored: MCP uses text frames"))
        return
      }
      let message: JSONRPCMessage
      try {
        message = parseFrame(data)
      } catch (error) {
        this.onerror?.(error instanceof Error ? error : new Error(String(error)))
        return
      }
      this.onmessage?.(message)
    })
    socket.on("close", (code, reason) => {
      if (!this.closing) this.onerror?.(new WebSocketClosedError(code, reason.toString("utf8")))
      this.finish()
    })
    socket.on("error", (error) => {
      if (!this.closing) this.onerror?.(error)
    })
  }

  abstract start(): Promise<void>

  send(message: JSONRPCMessage): Promise<void> {
    const socket = this.socket
    if (socket === undefined || socket.readyState !== WS.OPEN)
      return Promise.reject(new Error("Not connected"))
    // No write callback: waiting for each frame to be flushed cost ~10 µs per message in
    // the benchmarks, and a failed write also fails the socket, whose close ends the link.
    socket.send(JSON.stringify(message))
    return Promise.resolve()
  }

  /** Graceful close (1000), falling back to terminate if the peer does not answer. */
  close(): Promise<void> {
    return this.shutdown(true)
  }

  /** Forced close: drop the TCP connection now. */
  kill(): Promise<void> {
    return this.shutdown(false)
  }

  private shutdown(graceful: boolean): Promise<void> {
    this.closing = true
    const socket = this.socket
    if (socket === undefined || socket.readyState === WS.CLOSED) {
      this.finish()
      return Promise.resolve()
    }
    return new Promise((resolve) => {
      const timer = graceful ? setTimeout(() => socket.terminate(), 1_000) : undefined
      socket.once("close", () => {
        clearTimeout(timer)
        this.finish()
        resolve()
      })
      if (graceful && socket.readyState === WS.OPEN) socket.close(1000, "closing")
      else socket.terminate()
    })
  }

  private finish(): void {
    if (this.finished) return
    this.finished = true
    this.onclose?.()
  }
}

/**
 * Client side: connects to `url` with optional headers (e.g. `Authorization`).
 *
 * @since 0.1.0
 * @category transports
 */
export class WebSocketClientTransport extends Base {
  constructor(
    private readonly url: URL,
    private readonly options: {
      readonly headers?: Record<string, string>
      readonly openTimeoutMs?: number
    } = {}
  ) {
    super()
  }

  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket = new WS(this.url, SUBPROTOCOL, {
        headers: this.options.headers ?? {},
        handshakeTimeout: this.options.openTimeoutMs ?? 10_000,
        perMessageDeflate: false
      })
      let opened = false
      let handshakeError: Error | undefined
      socket.once("unexpected-response", (_request, response) => {
        // With this listener ws leaves the failed upgrade to us: fail the start now.
        handshakeError = new WebSocketHandshakeError(
          response.statusCode ?? 0,
          parseRetryAfter(response.headers["retry-after"], Date.now())
        )
        response.resume()
        this.closing = true
        socket.terminate()
        reject(handshakeError)
      })
      socket.once("open", () => {
        opened = true
        if (socket.protocol !== SUBPROTOCOL) {
          this.closing = true
          socket.terminate()
          reject(new Error(`server did not accept the "${SUBPROTOCOL}" WebSocket subprotocol`))
          return
        }
        resolve()
      })
      socket.on("error", (error) => {
        if (!opened) reject(handshakeError ?? error)
      })
      socket.on("close", () => {
        if (!opened) reject(handshakeError ?? new Error("Not connected"))
      })
      this.attach(socket)
    })
  }
}

/**
 * Server side: wraps one accepted WebSocket as an SDK `Transport`, ready for
 * `server.connect(transport)`.
 *
 * @since 0.1.0
 * @category transports
 */
export class WebSocketServerTransport extends Base {
  constructor(socket: WS) {
    super()
    this.attach(socket)
  }
  start(): Promise<void> {
    return Promise.resolve()
  }
}

/**
 * Serves MCP over WebSocket on `host:port` (path optional): each connection gets a fresh
 * server from `connect` (e.g. `(t) => makeServer().connect(t)`). The listener and every
 * connection close with the scope. Returns the bound port.
 *
 * @since 0.1.0
 * @category servers
 */
export const serve = (options: {
  readonly host?: string
  readonly port: number
  readonly path?: string
  readonly connect: (transport: WebSocketServerTransport, request: IncomingMessage) => Promise<void>
}): Effect.Effect<{ readonly port: number }, Error, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<WebSocketServer, Error>((resume) => {
      const server = new WebSocketServer({
        host: options.host ?? "127.0.0.1",
        port: options.port,
        ...(options.path !== undefined ? { path: options.path } : {}),
        handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false)
      })
      server.once("listening", () => resume(Effect.succeed(server)))
      server.once("error", (error) => resume(Effect.fail(error)))
      server.on("connection", (socket, request) => {
        const transport = new WebSocketServerTransport(socket)
        options.connect(transport, request).catch(() => socket.terminate())
      })
    }),
    (server) =>
      Effect.async<void>((resume) => {
        for (const client of server.clients) client.terminate()
        server.close(() => resume(Effect.void))
      })
  ).pipe(
    Effect.map((server) => {
      const address = server.address()
      return { port: typeof address === "object" && address !== null ? address.port : options.port }
    })
  )
