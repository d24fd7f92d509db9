/**
 * The fault proxy itself, against real loopback servers: a node:http server, a node:net
 * echo server and a `ws` WebSocket server, all on 127.0.0.1.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Exit, Fiber, Option, Scope } from "effect"
import * as http from "node:http"
import * as net from "node:net"
import { WebSocket, WebSocketServer } from "ws"
import * as FaultProxy from "./support/faultProxy.js"

const TEST_TIMEOUT = 5_000

const toError = (e: unknown): Error => (e instanceof Error ? e : new Error(String(e)))

const portOf = (server: net.Server | WebSocketServer): number => {
  const address = server.address()
  return typeof address === "object" && address !== null ? address.port : 0
}

/** A real node:http server on 127.0.0.1:0, closed (connections and all) with the scope. */
const httpServer = (handler: http.RequestListener) =>
  Effect.acquireRelease(
    Effect.async<http.Server, Error>((resume) => {
      const server = http.createServer(handler)
      server.once("error", (e) => resume(Effect.fail(e)))
      server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
    }),
    (server) =>
      Effect.async<void>((resume) => {
        server.close(() => resume(Effect.void))
        server.closeAllConnections()
      })
  )

/**
 * A real node:net server on 127.0.0.1:0, closed with the scope. Without `allowHalfOpen` its
 * sockets answer a FIN with a FIN (like HTTP and WebSocket servers do).
 */
const netServer = (
  onConnection: (socket: net.Socket) => void,
  options: { readonly allowHalfOpen?: boolean } = {}
) =>
  Effect.acquireRelease(
    Effect.async<{ server: net.Server; sockets: Set<net.Socket> }, Error>((resume) => {
      const sockets = new Set<net.Socket>()
      const server = net.createServer({ allowHalfOpen: options.allowHalfOpen ?? false }, (socket) => {
        sockets.add(socket)
        socket.on("error", () => {})
        socket.once("close", () => sockets.delete(socket))
        onConnection(socket)
      })
      server.once("error", (e) => resume(Effect.fail(e)))
      server.listen(0, "127.0.0.1", () => resume(Effect.succeed({ server, sockets })))
    }),
    ({ server, sockets }) =>
      Effect.async<void>((resume) => {
        server.close(() => resume(Effect.void))
        for (const socket of sockets) socket.destroy()
      })
  )

/** A real `ws` echo server on 127.0.0.1:0, closed with the scope. */
const wsEchoServer = Effect.acquireRelease(
  Effect.async<WebSocketServer, Error>((resume) => {
    const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 })
    wss.on("connection", (ws) => {
      ws.on("error", () => {})
      ws.on("message", (data) => ws.send(`echo:${String(data)}`))
    })
    wss.once("error", (e) => resume(Effect.fail(e)))
    wss.once("listening", () => resume(Effect.succeed(wss)))
  }),
  (wss) =>
    Effect.async<void>((resume) => {
      for (const client of wss.clients) client.terminate()
      wss.close(() => resume(Effect.void))
    })
)

interface Reply {
  readonly status: number
  readonly headers: Headers
  readonly body: string
}

/** GET through fetch; `connection: close` by default so each request is its own connection. */
const get = (port: number, path = "/", headers: Record<string, string> = { connection: "close" }) =>
  Effect.tryPromise({
    try: async (signal): Promise<Reply> => {
      const response = await fetch(`http://127.0.0.1:${port}${path}`, { headers, signal })
      return { status: response.status, headers: response.headers, body: await response.text() }
    },
    catch: toError
  })

/** Poll `self` every 20 ms until `predicate` holds (or the deadline passes; then the last value). */
const eventually = <A>(self: Effect.Effect<A>, predicate: (a: A) => boolean, timeoutMs = 2_000) =>
  Effect.gen(function* () {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const a = yield* self
      if (predicate(a) || Date.now() > deadline) return a
      yield* Effect.sleep("20 millis")
    }
  })

/** A raw TCP client, destroyed with the scope. */
const rawClient = (port: number) =>
  Effect.acquireRelease(
    Effect.async<net.Socket, Error>((resume) => {
      const socket = net.connect({ host: "127.0.0.1", port, allowHalfOpen: true })
      socket.once("error", (e) => resume(Effect.fail(e)))
      socket.once("connect", () => resume(Effect.succeed(socket)))
    }),
    (socket) => Effect.sync(() => socket.destroy())
  )

/** Collect everything a socket receives until it ends or closes. */
const readAll = (socket: net.Socket) =>
  Effect.async<string>((resume) => {
    let text = ""
    socket.on("data", (chunk: Buffer) => (text += chunk.toString()))
    socket.once("end", () => resume(Effect.succeed(text)))
    socket.once("close", () => resume(Effect.succeed(text)))
  })

/** Writes one HTTP/1.1 request on a raw socket and reads one Content-Length response. */
const exchange = (socket: net.Socket, request: string) =>
  Effect.async<{ status: number; head: string; body: string }, Error>((resume) => {
    let buffered = Buffer.alloc(0)
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk])
      const end = buffered.indexOf("\r\n\r\n")
      if (end < 0) return
      const head = buffered.subarray(0, end).toString("latin1")
      const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0)
      if (buffered.length < end + 4 + length) return
      socket.off("data", onData)
      socket.off("close", onClose)
      const body = buffered.subarray(end + 4, end + 4 + length).toString()
      resume(Effect.succeed({ status: Number(head.split(" ")[1]), head, body }))
    }
    const onClose = () => resume(Effect.fail(new Error("socket closed before the response")))
    socket.on("data", onData)
    socket.once("close", onClose)
    socket.write(request)
  })

/** A ws client (through the proxy), terminated with the scope. */
const wsClient = (port: number) =>
  Effect.acquireRelease(
    Effect.async<WebSocket, Error>((resume) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/`)
      ws.once("error", (e) => resume(Effect.fail(e)))
      ws.once("open", () => resume(Effect.succeed(ws)))
    }),
    (ws) => Effect.sync(() => ws.terminate())
  )

const nextMessage = (ws: WebSocket) =>
  Effect.async<string>((resume) => {
    ws.once("message", (data) => resume(Effect.succeed(String(data))))
  })

const hello: http.RequestListener = (req, res) => {
  res.setHeader("content-type", "text/plain")
  res.end(`hello ${req.url ?? ""}`)
}

describe("FaultProxy", () => {
  it.scopedLive(
    "forwards a plain HTTP GET (keep-alive and per-connection) and follows retarget",
    () =>
      Effect.gen(function* () {
        const a = yield* httpServer(hello)
        const b = yield* httpServer((_req, res) => res.end("from b"))
        const proxy = yield* FaultProxy.make({ target: portOf(a) })
        expect(proxy.port).not.toBe(portOf(a))
        expect(proxy.target).toBe(portOf(a))

        const reply = yield* get(proxy.port, "/x?y=1")
        expect(reply.status).toBe(200)
        expect(reply.body).toBe("hello /x?y=1")
        const keepAlive = yield* get(proxy.port, "/ka", {})
        expect(keepAlive.body).toBe("hello /ka")
        expect(yield* proxy.connections).toBe(1) // undici keeps that one open

        yield* proxy.retarget(portOf(b))
        expect(proxy.target).toBe(portOf(b))
        expect((yield* get(proxy.port)).body).toBe("from b")
      }),
    TEST_TIMEOUT
  )

  it.scopedLive(
    "forwards a streaming response chunk by chunk",
    () =>
      Effect.gen(function* () {
        let release: () => void = () => {}
        const released = new Promise<void>((r) => (release = r))
        const server = yield* httpServer((_req, res) => {
          res.writeHead(200, { "content-type": "text/plain" })
          res.write("first\n")
          void released.then(() => res.end("second\n"))
        })
        const proxy = yield* FaultProxy.make({ target: portOf(server) })
        const result = yield* Effect.tryPromise({
          try: async () => {
            const response = await fetch(`http://127.0.0.1:${proxy.port}/stream`, {
              headers: { connection: "close" }
            })
            const reader = response.body!.getReader()
            const decoder = new TextDecoder()
            // The first chunk arrives while the server still holds the second.
            const first = await reader.read()
            const firstText = decoder.decode(first.value)
            release()
            let rest = ""
            for (;;) {
              const chunk = await reader.read()
              if (chunk.done) break
              rest += decoder.decode(chunk.value)
            }
            return { firstText, rest }
          },
          catch: toError
        })
        expect(result).toEqual({ firstText: "first\n", rest: "second\n" })
      }),
    TEST_TIMEOUT
  )

  it.scopedLive(
    "reset fails an in-flight fetch with a TCP RST; the next fetch works",
    () =>
      Effect.gen(function* () {
        const hanging: Array<http.ServerResponse> = []
        const upstreamErrors: Array<string | undefined> = []
        const server = yield* httpServer((req, res) => {
          if (req.url !== "/hang") return hello(req, res)
          hanging.push(res)
          req.socket.on("error", (e: NodeJS.ErrnoException) => upstreamErrors.push(e.code))
        })
        const proxy = yield* FaultProxy.make({ target: portOf(server) })
        const inFlight = yield* Effect.fork(Effect.either(get(proxy.port, "/hang")))
        yield* eventually(
          Effect.sync(() => hanging.length),
          (n) => n === 1
        )
        expect(hanging).toHaveLength(1)
        expect(yield* proxy.connections).toBe(1)

        yield* proxy.reset
        const failed = yield* Fiber.join(inFlight)
        expect(Either.isLeft(failed)).toBe(true)
        if (Either.isLeft(failed)) {
          expect(failed.left.message).toMatch(/fetch failed|terminated/)
          // The client side saw a reset, not an orderly close.
          expect(String((failed.left.cause as { code?: string } | undefined)?.code)).toBe("ECONNRESET")
        }
        // So did the server side.
        expect(
          yield* eventually(
            Effect.sync(() => upstreamErrors),
            (e) => e.length > 0
          )
        ).toEqual(["ECONNRESET"])
        expect(yield* eventually(proxy.connections, (n) => n === 0)).toBe(0)

        const next = yield* get(proxy.port, "/after")
        expect(next.status).toBe(200)
        expect(next.body).toBe("hello /after")
      }),
    TEST_TIMEOUT
  )

  it.scopedLive(
    "pause hangs a request without closing anything; resume delivers it",
    () =>
      Effect.gen(function* () {
        const server = yield* httpServer(hello)
        const proxy = yield* FaultProxy.make({ target: portOf(server) })
        expect((yield* get(proxy.port, "/before")).status).toBe(200)

        yield* proxy.pause
        const pending = yield* Effect.fork(get(proxy.port, "/held"))
        yield* Effect.sleep("300 millis")
        expect(Option.isNone(yield* Fiber.poll(pending))).toBe(true)
        expect(yield* proxy.connections).toBe(1) // accepted and still open, just silent

        yield* proxy.resume
        const reply = yield* Fiber.join(pending)
        expect(reply.status).toBe(200)
        expect(reply.body).toBe("hello /held")
      }),
    TEST_TIMEOUT
  )

  it.scopedLive(
    "statusWindow answers 502 + Retry-After during the window, then forwards again",
    () =>
      Effect.gen(function* () {
        const server = yield* httpServer(hello)
        const proxy = yield* FaultProxy.make({ target: portOf(server) })
        // An idle keep-alive connection is destroyed on entering the window.
        yield* get(proxy.port, "/warm", {})
        expect(yield* proxy.connections).toBe(1)

        yield* proxy.statusWindow({ status: 502, durationMs: 500, retryAfterSeconds: 2 })
        expect(yield* eventually(proxy.connections, (n) => n === 0)).toBe(0)
        const during = yield* get(proxy.port, "/during")
        expect(during.status).toBe(502)
        expect(during.headers.get("retry-after")).toBe("2")
        expect(during.headers.get("content-type")).toBe("application/json")
        expect(JSON.parse(during.body)).toMatchObject({ status: 502 })

        yield* Effect.sleep("600 millis")
        const after = yield* get(proxy.port, "/after")
        expect(after.status).toBe(200)
        expect(after.body).toBe("hello /after")

        // By hand: no Retry-After unless asked for.
        yield* proxy.setStatus({ status: 503 })
        const manual = yield* get(proxy.port, "/manual")
        expect(manual.status).toBe(503)
        expect(manual.headers.get("retry-after")).toBeNull()
        yield* proxy.clearStatus
        expect((yield* get(proxy.port, "/cleared")).status).toBe(200)
        expect(yield* eventually(proxy.connections, (n) => n === 0)).toBe(0)
      }),
    TEST_TIMEOUT
  )

  it.scopedLive(
    "a keepSockets window answers 502 per request on a live keep-alive socket, without closing it",
    () =>
      Effect.gen(function* () {
        const seen: Array<string> = []
        const server = yield* httpServer((req, res) => {
          seen.push(`${req.method} ${req.url}`)
          req.resume()
          req.once("end", () => hello(req, res))
        })
        const proxy = yield* FaultProxy.make({ target: portOf(server), http: true })
        const socket = yield* rawClient(proxy.port)
        const closed = { value: false }
        socket.once("close", () => (closed.value = true))
        const before = yield* exchange(socket, "GET /before HTTP/1.1\r\nHost: x\r\n\r\n")
        expect(before).toMatchObject({ status: 200, body: "hello /before" })

        yield* proxy.statusWindow({ status: 502, durationMs: 400, keepSockets: true })
        const body = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/call" })
        const post = `POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n${body}`
        const during = yield* exchange(socket, post)
        expect(during.status).toBe(502)
        expect(during.head).toMatch(/connection: keep-alive/i)
        // Twice on the same socket: the body of the first was framed and discarded.
        expect((yield* exchange(socket, post)).status).toBe(502)
        expect(closed.value).toBe(false)
        expect(yield* proxy.connections).toBe(1)

        yield* Effect.sleep("500 millis")
        const after = yield* exchange(socket, "GET /after HTTP/1.1\r\nHost: x\r\n\r\n")
        expect(after).toMatchObject({ status: 200, body: "hello /after" })
        expect(closed.value).toBe(false)
        // The upstream never saw a request sent during the window.
        expect(seen).toEqual(["GET /before", "GET /after"])
      }),
    TEST_TIMEOUT
  )

  it.scopedLive(
    "a WebSocket exchanges messages through the proxy; reset closes it with 1006",
    () =>
      Effect.gen(function* () {
        const wss = yield* wsEchoServer
        const proxy = yield* FaultProxy.make({ target: portOf(wss) })
        const ws = yield* wsClient(proxy.port)
        const reply = nextMessage(ws)
        ws.send("hello")
        expect(yield* reply).toBe("echo:hello")
        expect(yield* proxy.connections).toBe(1)

        const closed = Effect.async<number>((resume) => {
          ws.once("close", (code) => resume(Effect.succeed(code)))
        })
        ws.on("error", () => {})
        yield* proxy.reset
        expect(yield* closed).toBe(1006)
        expect(yield* eventually(proxy.connections, (n) => n === 0)).toBe(0)
        expect(
          yield* eventually(
            Effect.sync(() => wss.clients.size),
            (n) => n === 0
          )
        ).toBe(0)
      }),
    TEST_TIMEOUT
  )

  it.scopedLive(
    "a WebSocket upgrade during a status window gets the status response",
    () =>
      Effect.gen(function* () {
        const wss = yield* wsEchoServer
        const proxy = yield* FaultProxy.make({ target: portOf(wss) })
        yield* proxy.setStatus({ status: 503, retryAfterSeconds: 1 })
        const response = yield* Effect.async<{ status: number; retryAfter: string | undefined }>((resume) => {
          const ws = new WebSocket(`ws://127.0.0.1:${proxy.port}/`)
          ws.on("error", () => {})
          ws.once("unexpected-response", (_req, res) => {
            res.resume()
            const retryAfter = res.headers["retry-after"]
            resume(
              Effect.succeed({
                status: res.statusCode ?? 0,
                retryAfter: Array.isArray(retryAfter) ? retryAfter[0] : retryAfter
              })
            )
            ws.terminate()
          })
          ws.once("open", () => {
            resume(Effect.succeed({ status: 101, retryAfter: undefined }))
            ws.terminate()
          })
        })
        expect(response).toEqual({ status: 503, retryAfter: "1" })
        expect(wss.clients.size).toBe(0)

        yield* proxy.clearStatus
        const ws = yield* wsClient(proxy.port)
        const reply = nextMessage(ws)
        ws.send("again")
        expect(yield* reply).toBe("echo:again")
      }),
    TEST_TIMEOUT
  )

  it.scopedLive(
    "setRefuse(true) makes fetch fail; setRefuse(false) lets it through",
    () =>
      Effect.gen(function* () {
        const server = yield* httpServer(hello)
        const proxy = yield* FaultProxy.make({ target: portOf(server) })
        yield* proxy.setRefuse(true)
        const refused = yield* Effect.either(get(proxy.port, "/refused"))
        expect(Either.isLeft(refused)).toBe(true)
        if (Either.isLeft(refused)) expect(refused.left.message).toMatch(/fetch failed/)
        expect(yield* proxy.connections).toBe(0)

        yield* proxy.setRefuse(false)
        expect((yield* get(proxy.port, "/ok")).body).toBe("hello /ok")
      }),
    TEST_TIMEOUT
  )

  it.scopedLive(
    "an upstream that is down resets the client connection",
    () =>
      Effect.gen(function* () {
        const server = yield* httpServer(hello)
        const dead = yield* netServer(() => {}).pipe(
          Effect.map(({ server }) => portOf(server)),
          Effect.scoped // listened once, then closed: nothing listens there now
        )
        const proxy = yield* FaultProxy.make({ target: dead })
        const failed = yield* Effect.either(get(proxy.port, "/down"))
        expect(Either.isLeft(failed)).toBe(true)
        if (Either.isLeft(failed)) expect(failed.left.message).toMatch(/fetch failed/)
        expect(yield* eventually(proxy.connections, (n) => n === 0)).toBe(0)

        yield* proxy.retarget(portOf(server))
        expect((yield* get(proxy.port, "/up")).body).toBe("hello /up")
      }),
    TEST_TIMEOUT
  )

  it.scopedLive(
    "connections counts open client connections",
    () =>
      Effect.gen(function* () {
        const upstream = yield* netServer(() => {})
        const proxy = yield* FaultProxy.make({ target: portOf(upstream.server) })
        expect(yield* proxy.connections).toBe(0)
        const one = yield* rawClient(proxy.port)
        const two = yield* rawClient(proxy.port)
        expect(yield* eventually(proxy.connections, (n) => n === 2)).toBe(2)
        expect(
          yield* eventually(
            Effect.sync(() => upstream.sockets.size),
            (n) => n === 2
          )
        ).toBe(2)
        one.destroy()
        expect(yield* eventually(proxy.connections, (n) => n === 1)).toBe(1)
        two.destroy()
        expect(yield* eventually(proxy.connections, (n) => n === 0)).toBe(0)
        // Closing the client side closes the upstream side too.
        expect(
          yield* eventually(
            Effect.sync(() => upstream.sockets.size),
            (n) => n === 0
          )
        ).toBe(0)
      }),
    TEST_TIMEOUT
  )

  it.scopedLive(
    "half-closes propagate both ways; the other direction keeps flowing",
    () =>
      Effect.gen(function* () {
        const upstream = yield* netServer(
          (socket) => {
            let got = ""
            socket.on("data", (chunk: Buffer) => (got += chunk.toString()))
            // Answer only after the client's FIN arrived, then FIN back.
            socket.once("end", () => socket.end(`got:${got}`))
          },
          { allowHalfOpen: true }
        )
        const proxy = yield* FaultProxy.make({ target: portOf(upstream.server) })
        const client = yield* rawClient(proxy.port)
        const received = readAll(client)
        client.end("ping")
        expect(yield* received).toBe("got:ping")
        expect(yield* eventually(proxy.connections, (n) => n === 0)).toBe(0)
        expect(
          yield* eventually(
            Effect.sync(() => upstream.sockets.size),
            (n) => n === 0
          )
        ).toBe(0)
      }),
    TEST_TIMEOUT
  )

  it.scopedLive(
    "closing the scope stops listening and destroys every socket",
    () =>
      Effect.gen(function* () {
        const upstream = yield* netServer(() => {})
        const scope = yield* Scope.make()
        const proxy = yield* FaultProxy.make({ target: portOf(upstream.server) }).pipe(Scope.extend(scope))
        const client = yield* rawClient(proxy.port)
        const ended = readAll(client)
        yield* proxy.pause // held state must not keep anything alive either
        expect(
          yield* eventually(
            Effect.sync(() => upstream.sockets.size),
            (n) => n === 1
          )
        ).toBe(1)

        yield* Scope.close(scope, Exit.void)
        yield* ended
        expect(client.destroyed || client.readableEnded).toBe(true)
        expect(
          yield* eventually(
            Effect.sync(() => upstream.sockets.size),
            (n) => n === 0
          )
        ).toBe(0)
        const again = yield* Effect.either(rawClient(proxy.port))
        expect(Either.isLeft(again)).toBe(true)
        if (Either.isLeft(again)) expect(again.left.message).toMatch(/ECONNREFUSED/)
      }),
    TEST_TIMEOUT
  )
})
