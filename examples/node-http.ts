/**
 * A plain `node:http` host that exposes its MCP servers over a small JSON API.
 *
 *   TETHER_CONFIG=./mcp.json PORT=3000 npx tsx examples/node-http.ts
 *   curl 127.0.0.1:3000/tools
 *   curl -X POST 127.0.0.1:3000/call/files/read -d '{"path":"a.txt"}'
 *   curl 127.0.0.1:3000/status
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import { Errors, Gateway, Tether } from "../src/index.js"

// ONE Tether per process, created before the server listens and shared by every request.
// It owns the MCP sessions (and stdio children); one per request would re-initialize
// every server on every request and lose the reconnects, breaker and heartbeat state.
const tether = await Tether.start({ config: process.env.TETHER_CONFIG ?? "./mcp.json" })

const send = (
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {}
): void => {
  res.writeHead(status, { ...headers, "content-type": "application/json" }).end(JSON.stringify(body))
}

const readJson = async (req: IncomingMessage): Promise<Record<string, unknown>> => {
  let text = ""
  for await (const chunk of req) text += String(chunk)
  const args: unknown = text.trim() === "" ? {} : JSON.parse(text)
  if (typeof args !== "object" || args === null || Array.isArray(args))
    throw new SyntaxError("the body must be a JSON object of tool arguments")
  return args as Record<string, unknown>
}

const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
  const { pathname } = new URL(req.url ?? "/", "http://localhost")
  const call = /^\/call\/([^/]+)\/([^/]+)$/.exec(pathname)
  if (req.method === "GET" && pathname === "/tools") return send(res, 200, await tether.listTools())
  if (req.method === "GET" && pathname === "/status") return send(res, 200, await tether.status())
  if (req.method !== "POST" || call === null) return send(res, 404, { error: { tag: "NotFound" } })

  let args: Record<string, unknown>
  try {
    args = await readJson(req)
  } catch (e) {
    return send(res, 400, { error: { tag: "BadRequest", message: (e as Error).message } })
  }
  // Cancel the MCP call (the server gets notifications/cancelled) if the client goes away.
  const abort = new AbortController()
  res.on("close", () => abort.abort())
  const [server, tool] = [decodeURIComponent(call[1]!), decodeURIComponent(call[2]!)]
  try {
    send(res, 200, await tether.callTool(server, tool, args, { signal: abort.signal }))
  } catch (error) {
    if (abort.signal.aborted) return // the client went away: nobody to answer
    if (!Errors.isTetherError(error)) throw error
    // The gateway's mapping: a tool error is the tool's result (200), OutcomeUnknown 502,
    // unavailable 503 with Retry-After, timeout 504, unknown server/tool 404, …
    const { body, headers, status } = Gateway.httpErrorOf(error)
    send(res, status, body, headers)
  }
}

const server = createServer((req, res) => {
  handle(req, res).catch((error: unknown) => {
    console.error(error)
    if (!res.headersSent) send(res, 500, { error: { tag: "Internal", message: String(error) } })
  })
})

server.listen(Number(process.env.PORT ?? 3000), "127.0.0.1", () => {
  const address = server.address()
  console.log(`LISTENING ${typeof address === "object" && address !== null ? address.port : ""}`)
})

const shutdown = async () => {
  server.close() // stop accepting; requests in flight still get their answers
  await tether.close() // waits for calls in flight, then closes sessions and reaps stdio children
  process.exit(0)
}
process.once("SIGTERM", () => void shutdown())
process.once("SIGINT", () => void shutdown())
