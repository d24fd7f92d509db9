/**
 * Table-driven test of `Errors.classify` on REAL failures: every cause below is produced
 * by actually doing the failing thing on this machine (loopback servers on 127.0.0.1,
 * real child processes, the real MCP SDK client), except where noted as constructed.
 */
import { describe, expect, it } from "@effect/vitest"
import { brief } from "../src/internal/errorText.js"
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { SSEClientTransport, SseError } from "@modelcontextprotocol/sdk/client/sse.js"
import {
  StreamableHTTPClientTransport,
  StreamableHTTPError
} from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js"
import { Server } from "@modelcontextprotocol/sdk/server/index.js"
import {
  CallToolRequestSchema,
  CallToolResultSchema,
  EmptyResultSchema,
  ErrorCode,
  LATEST_PROTOCOL_VERSION,
  McpError
} from "@modelcontextprotocol/sdk/types.js"
import { Effect, Equal } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import * as dns from "node:dns"
import { once } from "node:events"
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import * as http from "node:http"
import * as net from "node:net"
import { constants as osConstants, tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll } from "vitest"
import { WebSocket, WebSocketServer } from "ws"
import * as Errors from "../src/Transport.js"
import {
  ChildExitedError,
  HttpStatusError,
  parseRetryAfter,
  SpawnError,
  WebSocketClosedError,
  WebSocketHandshakeError
} from "../src/internal/linkErrors.js"

// ---------------------------------------------------------------------------
// Loopback servers, temp files and children (all cleaned up in afterAll)
// ---------------------------------------------------------------------------

const HOST = "127.0.0.1"
const SERVER = "srv"

let closedPort = 0
let httpPort = 0
let resetPort = 0
let tempDir = ""
let httpServer: http.Server | undefined
let resetServer: net.Server | undefined
let wss: WebSocketServer | undefined
const sockets = new Set<net.Socket>()
const children = new Set<ChildProcess>()

const track = (socket: net.Socket): net.Socket => {
  sockets.add(socket)
  socket.once("close", () => sockets.delete(socket))
  return socket
}

const listen = async (server: net.Server): Promise<number> => {
  server.listen(0, HOST)
  await once(server, "listening")
  const address = server.address()
  if (address === null || typeof address === "string") throw new Error("no port")
  return address.port
}

const closeServer = (server: net.Server | undefined): Promise<void> =>
  new Promise((resolve) => (server === undefined ? resolve() : server.close(() => resolve())))

/**
 * `/status/<n>?retry=<s>&body=<text>` answers status n; `/cut` sends half a body then
 * destroys the socket; `/slow` never answers; `/text` answers 200 text/plain.
 * Upgrades: `/ws/close/<code>` accepts then closes with that code (1006: terminate);
 * `/ws/status/<n>` refuses the upgrade with HTTP n.
 */
const handle = (req: http.IncomingMessage, res: http.ServerResponse): void => {
  const url = new URL(req.url ?? "/", `http://${HOST}`)
  const status = /^\/status\/(\d{3})$/.exec(url.pathname)
  if (status !== null) {
    const code = Number(status[1])
    const retry = url.searchParams.get("retry")
    res.writeHead(code, { "content-type": "text/plain", ...(retry !== null ? { "retry-after": retry } : {}) })
    res.end(url.searchParams.get("body") ?? http.STATUS_CODES[code] ?? "")
    return
  }
  if (url.pathname === "/cut") {
    res.writeHead(200, { "content-type": "text/plain", "content-length": "1000" })
    res.write("partial body")
    setTimeout(() => res.socket?.destroy(), 20)
    return
  }
  if (url.pathname === "/slow") return // never answers; afterAll destroys the socket
  res.writeHead(200, { "content-type": "text/plain" })
  res.end("plain text, not JSON-RPC")
}

const handleUpgrade = (req: http.IncomingMessage, socket: net.Socket, head: Buffer): void => {
  const url = new URL(req.url ?? "/", `http://${HOST}`)
  const refuse = /^\/ws\/status\/(\d{3})$/.exec(url.pathname)
  if (refuse !== null) {
    const code = Number(refuse[1])
    socket.end(
      `HTTP/1.1 ${code} ${http.STATUS_CODES[code] ?? ""}\r\nRetry-After: 5\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`
    )
    return
  }
  const close = /^\/ws\/close\/(\d{4})$/.exec(url.pathname)
  if (close === null || wss === undefined) {
    socket.destroy()
    return
  }
  const code = Number(close[1])
  wss.handleUpgrade(req, socket, head, (ws) => {
    if (code === 1006) ws.terminate()
    else ws.close(code, `server closes with ${code}`)
  })
}

beforeAll(async () => {
  const probe = net.createServer()
  closedPort = await listen(probe)
  await closeServer(probe)

  httpServer = http.createServer(handle)
  httpServer.on("connection", track)
  httpServer.on("upgrade", handleUpgrade)
  httpPort = await listen(httpServer)

  wss = new WebSocketServer({ noServer: true, handleProtocols: (p) => (p.has("mcp") ? "mcp" : false) })

  // Resets the connection (RST) as soon as the client sends anything.
  resetServer = net.createServer((socket) => {
    track(socket)
    socket.once("data", () => socket.resetAndDestroy())
  })
  resetPort = await listen(resetServer)

  tempDir = mkdtempSync(join(tmpdir(), "tether-errors-"))
})

afterAll(async () => {
  for (const child of children) child.kill("SIGKILL")
  for (const socket of sockets) socket.destroy()
  for (const client of wss?.clients ?? []) client.terminate()
  wss?.close()
  httpServer?.closeAllConnections()
  await Promise.all([closeServer(httpServer), closeServer(resetServer)])
  if (tempDir !== "") rmSync(tempDir, { recursive: true, force: true })
})

// ---------------------------------------------------------------------------
// Producers of real failures
// ---------------------------------------------------------------------------

const url = (path: string): string => `http://${HOST}:${httpPort}${path}`

/** The rejection reason of a promise that must fail. */
const rejection = async (promise: Promise<unknown>): Promise<unknown> => {
  try {
    await promise
  } catch (error) {
    return error
  }
  throw new Error("expected a failure, got a success")
}

/** The first 'error' a socket emits after `act` runs on it. */
const socketError = async (
  host: string,
  port: number,
  act: (socket: net.Socket) => void
): Promise<unknown> => {
  const socket = track(net.connect({ host, port }))
  try {
    const failed = once(socket, "error").then(([error]: Array<unknown>) => error)
    socket.once("connect", () => act(socket))
    return await failed
  } finally {
    socket.destroy()
  }
}

/** A connected socket on which `write` fails; returns the error given to the write callback. */
const writeError = async (prepare: (socket: net.Socket) => void): Promise<unknown> => {
  const socket = track(net.connect({ host: HOST, port: httpPort }))
  socket.on("error", () => {}) // the same error is also emitted; the callback reports it
  try {
    await once(socket, "connect")
    prepare(socket)
    return await new Promise<unknown>((resolve) => socket.write("late bytes", (error) => resolve(error)))
  } finally {
    socket.destroy()
  }
}

const startChild = (
  command: string,
  args: ReadonlyArray<string>,
  stdio: "ignore" | "pipe" = "ignore"
): ChildProcess => {
  const child = spawn(command, [...args], { stdio: [stdio, stdio, "pipe"] })
  children.add(child)
  child.once("close", () => children.delete(child))
  return child
}

/** The 'error' of spawning `command` (ENOENT, EACCES). */
const spawnFailure = async (command: string): Promise<NodeJS.ErrnoException> => {
  const child = startChild(command, [])
  const [error] = await once(child, "error")
  return error as NodeJS.ErrnoException
}

/** Runs a child to its end and builds the ChildExitedError Tether's stdio link builds. */
const childExit = async (args: ReadonlyArray<string>, kill?: NodeJS.Signals): Promise<ChildExitedError> => {
  const child = startChild(process.execPath, args)
  let stderr = ""
  child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")))
  const closed = once(child, "close")
  if (kill !== undefined) {
    await once(child, "spawn")
    child.kill(kill)
  }
  const [code, signal] = (await closed) as [number | null, NodeJS.Signals | null]
  return new ChildExitedError(code, signal, stderr.trim())
}

/** A non-executable file: spawning it fails with EACCES (also as root: no x bit at all). */
const nonExecutable = (): string => {
  const file = join(tempDir, "not-executable.sh")
  writeFileSync(file, "#!/bin/sh\necho never\n")
  chmodSync(file, 0o644)
  return file
}

/** EPIPE: the child closes its stdin, says so, and we write to the dead pipe. */
const brokenPipe = async (): Promise<unknown> => {
  const child = startChild(
    process.execPath,
    ["-e", "require('fs').closeSync(0); process.stdout.write('closed'); setInterval(() => {}, 1000)"],
    "pipe"
  )
  try {
    await once(child.stdout!, "data")
    const failed = once(child.stdin!, "error").then(([error]: Array<unknown>) => error)
    child.stdin!.write("hello\n")
    return await failed
  } finally {
    child.kill("SIGKILL")
  }
}

/** ENOTFOUND: `.invalid` never resolves (RFC 6761). */
const unknownHost = async (via: "dns" | "net"): Promise<unknown> => {
  const host = "no-such-host.invalid"
  const real =
    via === "dns"
      ? new Promise<unknown>((resolve) => dns.lookup(host, (error) => resolve(error)))
      : socketError(host, 80, () => {})
  // If the resolver hangs instead of answering, build the error the way Node does
  // (getaddrinfo ENOTFOUND, errno UV_EAI_NONAME) so the row still runs offline.
  const fallback = new Promise<unknown>((resolve) =>
    setTimeout(
      () =>
        resolve(
          Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), {
            errno: -3008,
            code: "ENOTFOUND",
            syscall: "getaddrinfo",
            hostname: host
          })
        ),
      3_000
    ).unref()
  )
  return Promise.race([real, fallback])
}

const fetchFailure = (path: string, init?: RequestInit): Promise<unknown> =>
  rejection(fetch(url(path), init).then((response) => response.text()))

const fetchStatusError = async (path: string, hadSession: boolean): Promise<HttpStatusError> => {
  const response = await fetch(url(path), hadSession ? { headers: { "mcp-session-id": "sess-1" } } : {})
  const text = await response.text()
  return new HttpStatusError(
    response.status,
    parseRetryAfter(response.headers.get("retry-after"), Date.now()),
    hadSession,
    text.slice(0, 200) || response.statusText
  )
}

/** A raw `ws` client: how Tether's WebSocket transport sees a server close. */
const wsClose = async (code: number): Promise<WebSocketClosedError> => {
  const ws = new WebSocket(`ws://${HOST}:${httpPort}/ws/close/${code}`, "mcp")
  ws.on("error", () => {})
  const [closeCode, reason] = (await once(ws, "close")) as [number, Buffer]
  return new WebSocketClosedError(closeCode, reason.toString("utf8"))
}

/** A raw `ws` client whose upgrade is answered with a plain HTTP status. */
const wsRefused = async (status: number): Promise<WebSocketHandshakeError> => {
  const ws = new WebSocket(`ws://${HOST}:${httpPort}/ws/status/${status}`, "mcp")
  ws.on("error", () => {})
  try {
    const [request, response] = (await once(ws, "unexpected-response")) as [
      http.ClientRequest,
      http.IncomingMessage
    ]
    const error = new WebSocketHandshakeError(
      response.statusCode ?? 0,
      parseRetryAfter(response.headers["retry-after"], Date.now())
    )
    response.resume()
    request.destroy()
    return error
  } finally {
    ws.terminate()
  }
}

const newClient = (): Client => new Client({ name: "errors-test", version: "0.0.0" })

/** A raw SDK client connecting with Streamable HTTP to `target`. */
const sdkHttpConnect = (target: string): Promise<unknown> =>
  rejection(newClient().connect(new StreamableHTTPClientTransport(new URL(target))))

/** The SDK's SSE transport starting against `target`. */
const sdkSseStart = async (target: string): Promise<unknown> => {
  const transport = new SSEClientTransport(new URL(target))
  try {
    return await rejection(transport.start())
  } finally {
    await transport.close()
  }
}

/** An in-memory SDK server with tools `boom` (throws), `slow` (never answers). */
const withMcp = async (use: (client: Client, server: Server) => Promise<unknown>): Promise<unknown> => {
  const server = new Server({ name: "errors-fixture", version: "0.0.0" }, { capabilities: { tools: {} } })
  server.setRequestHandler(CallToolRequestSchema, (request) => {
    if (request.params.name === "boom") throw new Error("tool handler crashed")
    if (request.params.name === "bad-args")
      throw new McpError(ErrorCode.InvalidParams, "x must be a number", { field: "x" })
    return new Promise(() => {}) // "slow": never answers
  })
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair()
  const client = newClient()
  try {
    await server.connect(serverSide)
    await client.connect(clientSide)
    return await use(client, server)
  } finally {
    await client.close()
    await server.close()
  }
}

/** A hand-written server that answers every request after `initialize` with junk. */
const junkResult = async (): Promise<unknown> => {
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair()
  serverSide.onmessage = (message) => {
    if (!("id" in message) || !("method" in message)) return
    const result =
      message.method === "initialize"
        ? {
            protocolVersion: LATEST_PROTOCOL_VERSION,
            capabilities: { tools: {} },
            serverInfo: { name: "junk", version: "0" }
          }
        : { content: 5 }
    void serverSide.send({ jsonrpc: "2.0", id: message.id, result })
  }
  await serverSide.start()
  const client = newClient()
  try {
    await client.connect(clientSide)
    return await rejection(client.callTool({ name: "anything" }))
  } finally {
    await client.close()
  }
}

const zodError = (parse: () => unknown): unknown => {
  try {
    parse()
  } catch (error) {
    return error
  }
  throw new Error("expected the schema to reject")
}

// ---------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------

interface Row {
  readonly name: string
  readonly make: () => unknown
  readonly context?: Errors.ClassifyContext
  readonly tag: Errors.Classified["_tag"]
  /** Expected fields of the classified error (asymmetric matchers allowed). */
  readonly fields?: Record<string, unknown>
  /** The class the real cause must be an instance of (proves the row produced what it claims). */
  readonly instance?: abstract new (...args: never) => unknown
  /** classify must hand this exact Tether error back. */
  readonly same?: boolean
  readonly recoverable?: boolean
  readonly linkFailure?: boolean
}

const ctx: Errors.ClassifyContext = { server: SERVER }
const inSession: Errors.ClassifyContext = { server: SERVER, hasSession: true }

const passThrough = new Errors.HttpUnavailable({
  server: "other",
  message: "already classified",
  status: 503,
  retryAfterMs: 1_500
})

const rows: ReadonlyArray<Row> = [
  // --- Node system errors ---------------------------------------------------
  {
    name: "net.connect to a closed loopback port (ECONNREFUSED)",
    make: () => socketError(HOST, closedPort, () => {}),
    tag: "ConnectFailed",
    fields: { code: "ECONNREFUSED" },
    recoverable: true,
    linkFailure: true
  },
  {
    name: "dns.lookup of no-such-host.invalid (ENOTFOUND)",
    make: () => unknownHost("dns"),
    tag: "ConnectFailed",
    fields: { code: expect.stringMatching(/^(ENOTFOUND|EAI_AGAIN)$/) }
  },
  {
    name: "net.connect to no-such-host.invalid (ENOTFOUND)",
    make: () => unknownHost("net"),
    tag: "ConnectFailed",
    fields: { code: expect.stringMatching(/^(ENOTFOUND|EAI_AGAIN)$/) }
  },
  {
    name: "socket reset by the peer (resetAndDestroy → ECONNRESET)",
    make: () => socketError(HOST, resetPort, (socket) => socket.write("hello")),
    tag: "ConnectionLost",
    fields: { reason: "Reset", code: "ECONNRESET" },
    recoverable: true,
    linkFailure: true
  },
  {
    name: "write to a pipe whose reader closed it (EPIPE)",
    make: brokenPipe,
    tag: "ConnectionLost",
    fields: { reason: "Reset", code: "EPIPE" }
  },
  {
    name: "write to a destroyed socket (ERR_STREAM_DESTROYED)",
    make: () => writeError((socket) => socket.destroy()),
    tag: "ConnectionLost",
    fields: { reason: "Reset", code: "ERR_STREAM_DESTROYED" }
  },
  {
    name: "write after end (ERR_STREAM_WRITE_AFTER_END)",
    make: () => writeError((socket) => socket.end()),
    tag: "ConnectionLost",
    fields: { reason: "Reset", code: "ERR_STREAM_WRITE_AFTER_END" }
  },
  {
    name: "spawn of a missing command (ENOENT, syscall spawn)",
    make: () => spawnFailure("tether-no-such-command-xyz"),
    tag: "SpawnFailed",
    fields: { code: "ENOENT", command: "tether-no-such-command-xyz" },
    recoverable: false,
    linkFailure: false
  },
  {
    name: "spawn of a non-executable file (EACCES)",
    make: () => spawnFailure(nonExecutable()),
    tag: "SpawnFailed",
    fields: { code: "EACCES", command: expect.stringMatching(/not-executable\.sh$/) }
  },
  {
    // Constructed: exhausting the fd table of the test process is not an option.
    name: "EMFILE (constructed like Node's connect error)",
    make: () =>
      Object.assign(new Error(`connect EMFILE ${HOST}:${closedPort} - Local (undefined:undefined)`), {
        errno: -osConstants.errno.EMFILE,
        code: "EMFILE",
        syscall: "connect"
      }),
    tag: "ConnectFailed",
    fields: { code: "EMFILE" }
  },

  // --- undici / fetch -------------------------------------------------------
  {
    name: "fetch to a closed port (TypeError fetch failed, cause ECONNREFUSED)",
    instance: TypeError,
    make: () => rejection(fetch(`http://${HOST}:${closedPort}/`)),
    tag: "ConnectFailed",
    fields: { code: "ECONNREFUSED" }
  },
  {
    name: "fetch whose server destroys the socket mid-body (terminated, UND_ERR_SOCKET)",
    instance: TypeError,
    make: () => fetchFailure("/cut"),
    tag: "ConnectionLost",
    fields: { reason: "Reset", code: "UND_ERR_SOCKET" }
  },
  {
    name: "fetch aborted with an AbortController (AbortError)",
    make: () => {
      const controller = new AbortController()
      setTimeout(() => controller.abort(), 20)
      return fetchFailure("/slow", { signal: controller.signal })
    },
    tag: "ConnectionLost",
    fields: { reason: "Closed" }
  },
  {
    name: "fetch with AbortSignal.timeout (TimeoutError)",
    make: () => fetchFailure("/slow", { signal: AbortSignal.timeout(30) }),
    tag: "RequestTimeout",
    recoverable: true,
    linkFailure: false
  },

  // --- MCP SDK: McpError ----------------------------------------------------
  {
    name: "McpError ConnectionClosed -32000 (constructed)",
    make: () => new McpError(ErrorCode.ConnectionClosed, "Connection closed"),
    tag: "ConnectionLost",
    fields: { reason: "Closed" }
  },
  {
    name: "McpError RequestTimeout -32001 (constructed)",
    make: () => new McpError(ErrorCode.RequestTimeout, "Request timed out", { timeout: 60_000 }),
    tag: "RequestTimeout"
  },
  ...(
    [
      ["MethodNotFound", ErrorCode.MethodNotFound],
      ["InvalidParams", ErrorCode.InvalidParams],
      ["InvalidRequest", ErrorCode.InvalidRequest],
      ["InternalError", ErrorCode.InternalError],
      ["ParseError", ErrorCode.ParseError]
    ] as const
  ).map(([label, code]): Row => ({
    name: `McpError ${label} ${code} (constructed)`,
    make: () => new McpError(code, label),
    tag: "ProtocolError",
    fields: { code },
    ...(code === ErrorCode.MethodNotFound ? { recoverable: false, linkFailure: false } : {})
  })),
  {
    name: "real McpError MethodNotFound from an SDK server",
    instance: McpError,
    make: () =>
      withMcp((client) => rejection(client.request({ method: "no/such/method" }, EmptyResultSchema))),
    tag: "ProtocolError",
    fields: { code: ErrorCode.MethodNotFound }
  },
  {
    name: "real McpError InternalError from a crashing tool handler",
    instance: McpError,
    make: () => withMcp((client) => rejection(client.callTool({ name: "boom" }))),
    tag: "ProtocolError",
    fields: { code: ErrorCode.InternalError }
  },
  {
    name: "real McpError InvalidParams (with data) from a tool handler",
    instance: McpError,
    make: () => withMcp((client) => rejection(client.callTool({ name: "bad-args" }))),
    tag: "ProtocolError",
    fields: { code: ErrorCode.InvalidParams, data: { field: "x" } }
  },
  {
    name: "real McpError RequestTimeout from the SDK's own request timeout",
    instance: McpError,
    make: () => withMcp((client) => rejection(client.callTool({ name: "slow" }, undefined, { timeout: 30 }))),
    tag: "RequestTimeout"
  },
  {
    name: "real McpError ConnectionClosed: server closes with a call in flight",
    instance: McpError,
    make: () =>
      withMcp(async (client, server) => {
        const pending = rejection(client.callTool({ name: "slow" }))
        setTimeout(() => void server.close(), 10)
        return pending
      }),
    tag: "ConnectionLost",
    fields: { reason: "Closed" },
    recoverable: true,
    linkFailure: true
  },

  // --- MCP SDK: schemas -----------------------------------------------------
  {
    name: "ZodError from CallToolResultSchema.parse({ content: 5 })",
    make: () => zodError(() => CallToolResultSchema.parse({ content: 5 })),
    tag: "InvalidResponse",
    fields: { message: expect.stringMatching(/^invalid reply from server/) }
  },
  {
    name: "$ZodError the SDK client raises on a malformed tools/call result",
    instance: Error,
    make: junkResult,
    tag: "InvalidResponse",
    fields: { message: expect.stringMatching(/^invalid reply from server/) },
    recoverable: false
  },

  // --- MCP SDK: StreamableHTTPError (constructed with the SDK's messages) -----
  ...(
    [
      [401, undefined, "Unauthorized", { status: 401 }],
      [403, undefined, "Unauthorized", { status: 403 }],
      [404, undefined, "InvalidResponse", { status: 404 }],
      [404, inSession, "SessionExpired", { status: 404 }],
      [400, undefined, "InvalidResponse", { status: 400 }],
      [400, inSession, "SessionExpired", { status: 400 }],
      [429, undefined, "HttpUnavailable", { status: 429, retryAfterMs: undefined }],
      [500, undefined, "HttpUnavailable", { status: 500 }],
      [502, undefined, "HttpUnavailable", { status: 502 }],
      [503, inSession, "HttpUnavailable", { status: 503 }],
      [504, undefined, "HttpUnavailable", { status: 504 }],
      [418, undefined, "InvalidResponse", { status: 418 }]
    ] as const
  ).map(([status, context, tag, fields]): Row => ({
    name: `StreamableHTTPError ${status}${context?.hasSession === true ? " on a known session" : ""}`,
    make: () =>
      new StreamableHTTPError(
        status,
        `Error POSTing to endpoint: ${status === 400 ? "Bad Request: No valid session ID provided" : (http.STATUS_CODES[status] ?? "")}`
      ),
    context: context ?? ctx,
    tag,
    fields,
    ...(status === 404 && context !== undefined ? { recoverable: true, linkFailure: true } : {}),
    ...(status === 401 ? { recoverable: false, linkFailure: false } : {})
  })),
  {
    name: "StreamableHTTPError -1 (unexpected content type)",
    make: () => new StreamableHTTPError(-1, "Unexpected content type: text/html"),
    tag: "InvalidResponse",
    fields: { status: undefined }
  },

  // --- MCP SDK: real transport failures -------------------------------------
  {
    name: "real SDK Client + StreamableHTTPClientTransport to a closed port",
    instance: TypeError,
    make: () => sdkHttpConnect(`http://${HOST}:${closedPort}/mcp`),
    tag: "ConnectFailed",
    fields: { code: "ECONNREFUSED" }
  },
  {
    name: "real SDK StreamableHTTPError 502 from a loopback server",
    instance: StreamableHTTPError,
    make: () => sdkHttpConnect(url("/status/502")),
    tag: "HttpUnavailable",
    fields: { status: 502 }
  },
  {
    name: "real SDK StreamableHTTPError 404 on a known session",
    instance: StreamableHTTPError,
    make: () => sdkHttpConnect(url("/status/404")),
    context: inSession,
    tag: "SessionExpired",
    fields: { status: 404 }
  },
  {
    name: "real SDK StreamableHTTPError 404 without a session",
    instance: StreamableHTTPError,
    make: () => sdkHttpConnect(url("/status/404")),
    tag: "InvalidResponse",
    fields: { status: 404 }
  },
  {
    name: "real SDK StreamableHTTPError -1: server answers text/plain",
    instance: StreamableHTTPError,
    make: () => sdkHttpConnect(url("/text")),
    tag: "InvalidResponse",
    fields: { status: undefined }
  },
  {
    name: "real SDK SseError: SSE transport to a closed port",
    instance: SseError,
    make: () => sdkSseStart(`http://${HOST}:${closedPort}/sse`),
    tag: "ConnectFailed",
    fields: { code: "ECONNREFUSED" }
  },
  {
    name: "real SDK SseError 502 from a loopback server",
    instance: SseError,
    make: () => sdkSseStart(url("/status/502")),
    tag: "HttpUnavailable",
    fields: { status: 502 }
  },
  {
    name: "real SDK SseError 401 from a loopback server",
    instance: SseError,
    make: () => sdkSseStart(url("/status/401")),
    tag: "Unauthorized",
    fields: { status: 401 }
  },
  {
    name: "UnauthorizedError (constructed, as the SDK's auth flow throws it)",
    make: () => new UnauthorizedError(),
    tag: "Unauthorized",
    fields: { status: undefined }
  },
  {
    name: "new Error('Not connected') (constructed, as the SDK throws it)",
    make: () => new Error("Not connected"),
    tag: "ConnectionLost",
    fields: { reason: "NotConnected" }
  },
  {
    name: "real 'Not connected' from an SDK Client that never connected",
    make: () => rejection(newClient().ping()),
    tag: "ConnectionLost",
    fields: { reason: "NotConnected" }
  },

  // --- Tether's own link errors ---------------------------------------------
  {
    name: "ChildExitedError: node -e process.exit(3)",
    make: () => childExit(["-e", "console.error('fatal: giving up'); process.exit(3)"]),
    tag: "ConnectionLost",
    fields: { reason: "ChildExited", code: 3, message: expect.stringContaining("fatal: giving up") },
    recoverable: true,
    linkFailure: true
  },
  {
    name: "ChildExitedError: child killed with SIGKILL",
    make: () => childExit(["-e", "setInterval(() => {}, 1000)"], "SIGKILL"),
    tag: "ConnectionLost",
    fields: { reason: "ChildExited", code: "SIGKILL" }
  },
  {
    name: "SpawnError from a real ENOENT spawn failure",
    make: async () => {
      const error = await spawnFailure("tether-missing-server")
      return new SpawnError("tether-missing-server", error.code, "command not found")
    },
    tag: "SpawnFailed",
    fields: { command: "tether-missing-server", code: "ENOENT" }
  },
  {
    name: "SpawnError from a real EACCES spawn failure",
    make: async () => {
      const file = nonExecutable()
      const error = await spawnFailure(file)
      return new SpawnError(file, error.code, "not executable")
    },
    tag: "SpawnFailed",
    fields: { code: "EACCES" }
  },
  ...([1000, 1001, 1006, 1011, 1012] as const).map((code): Row => ({
    name: `WebSocketClosedError ${code} from a real ws server`,
    make: () => wsClose(code),
    tag: "ConnectionLost",
    fields: { reason: "WebSocketClosed", code },
    ...(code === 1006 ? { recoverable: true, linkFailure: true } : {})
  })),
  {
    name: "WebSocketClosedError 1008 (policy) from a real ws server",
    make: () => wsClose(1008),
    tag: "Unauthorized"
  },
  {
    name: "WebSocketClosedError 4401 from a real ws server",
    make: () => wsClose(4401),
    tag: "Unauthorized",
    recoverable: false
  },
  {
    name: "WebSocketClosedError 1013 (try again later) from a real ws server",
    make: () => wsClose(1013),
    tag: "HttpUnavailable",
    fields: { status: 503 }
  },
  {
    name: "WebSocketHandshakeError 401 from a real upgrade refusal",
    make: () => wsRefused(401),
    tag: "Unauthorized",
    fields: { status: 401 }
  },
  {
    name: "WebSocketHandshakeError 502 from a real upgrade refusal",
    make: () => wsRefused(502),
    tag: "HttpUnavailable",
    fields: { status: 502, retryAfterMs: 5_000 }
  },
  {
    name: "WebSocketHandshakeError 503 + Retry-After from a real upgrade refusal",
    make: () => wsRefused(503),
    tag: "HttpUnavailable",
    fields: { status: 503, retryAfterMs: 5_000 }
  },
  {
    name: "HttpStatusError 404 on a session (real response)",
    make: () => fetchStatusError("/status/404", true),
    tag: "SessionExpired",
    fields: { status: 404 }
  },
  {
    name: "HttpStatusError 400 'session' on a session (real response)",
    make: () =>
      fetchStatusError(
        `/status/400?body=${encodeURIComponent("Bad Request: No valid session ID provided")}`,
        true
      ),
    tag: "SessionExpired",
    fields: { status: 400 }
  },
  {
    name: "HttpStatusError 404 without a session (real response)",
    make: () => fetchStatusError("/status/404", false),
    // hadSession on the error wins over the context's hasSession
    context: inSession,
    tag: "InvalidResponse",
    fields: { status: 404 }
  },
  {
    name: "HttpStatusError 429 + Retry-After (real response)",
    make: () => fetchStatusError("/status/429?retry=2", false),
    tag: "HttpUnavailable",
    fields: { status: 429, retryAfterMs: 2_000 }
  },

  // --- Effect and pass-through ----------------------------------------------
  {
    name: "Cause.TimeoutException from Effect.timeout",
    make: () => Effect.runPromise(Effect.never.pipe(Effect.timeout("10 millis"), Effect.flip)),
    tag: "RequestTimeout"
  },
  {
    name: "a Tether error passes through unchanged",
    make: () => passThrough,
    tag: "HttpUnavailable",
    fields: { server: "other", status: 503, retryAfterMs: 1_500 },
    same: true
  }
]

// ---------------------------------------------------------------------------
// Assertions
// ---------------------------------------------------------------------------

/** Tag, message and every own field: what "the same classification" means. */
const view = (e: Errors.Classified): Record<string, unknown> => ({ ...e, _tag: e._tag, message: e.message })

describe("Errors.classify on real failures", () => {
  it("has at least 34 rows", () => {
    expect(rows.length).toBeGreaterThanOrEqual(34)
    expect(new Set(rows.map((r) => r.name)).size).toBe(rows.length)
  })

  for (const row of rows) {
    it.live(row.name, () =>
      Effect.gen(function* () {
        const cause = yield* Effect.promise(async () => row.make())
        const context = row.context ?? ctx
        if (row.instance !== undefined) expect(cause).toBeInstanceOf(row.instance)
        const result = Errors.classify(cause, context)

        expect(result._tag).toBe(row.tag)
        expect(Errors.isTetherError(result)).toBe(true)
        for (const [key, value] of Object.entries(row.fields ?? {})) {
          expect((result as unknown as Record<string, unknown>)[key], key).toEqual(value)
        }
        if (row.same === true) expect(result).toBe(cause)
        else expect(result.server).toBe(context.server)

        // Pure: the same input gives the same tag and fields.
        const again = Errors.classify(cause, context)
        expect(view(again)).toStrictEqual(view(result))
        expect(Equal.equals(again, result)).toBe(true)

        if (row.recoverable !== undefined) expect(Errors.isRecoverable(result)).toBe(row.recoverable)
        if (row.linkFailure !== undefined) expect(Errors.isLinkFailure(result)).toBe(row.linkFailure)
      })
    )
  }
})

describe("error summaries inside other errors' messages", () => {
  it("name the cause once, on one line, with URL credentials masked", () => {
    const summary = brief({
      _tag: "ConnectFailed",
      message:
        "fetch failed for http://alice:s3cret@127.0.0.1:9/mcp (last connection error: ConnectFailed: older)\nstack"
    })
    expect(summary).toBe("ConnectFailed: fetch failed for http://***@127.0.0.1:9/mcp")
    expect(summary).not.toContain("s3cret")
  })
})
