/**
 * An Express 5 host that exposes its MCP servers over a small JSON API.
 *
 *   TETHER_CONFIG=./mcp.json PORT=3000 npx tsx examples/express.ts
 *   curl 127.0.0.1:3000/tools
 *   curl -X POST 127.0.0.1:3000/call/files/read -H 'content-type: application/json' -d '{"path":"a.txt"}'
 *   curl 127.0.0.1:3000/status
 */
import express, { type NextFunction, type Request, type Response } from "express"
import { Errors, Gateway, Tether } from "../src/index.js"

// ONE Tether per process, created before the app listens and shared by every request.
// It owns the MCP sessions (and stdio children); one per request would re-initialize
// every server on every request and lose the reconnects, breaker and heartbeat state.
const tether = await Tether.start({ config: process.env.TETHER_CONFIG ?? "./mcp.json" })

const app = express()
app.use(express.json())

app.get("/tools", async (_req, res) => {
  res.json(await tether.listTools())
})

app.get("/status", async (_req, res) => {
  res.json(await tether.status())
})

// Express 5 passes a rejected promise to the error handler below: no try/catch here.
app.post("/call/:server/:tool", async (req: Request<{ server: string; tool: string }>, res) => {
  const args: unknown = req.body ?? {}
  if (typeof args !== "object" || Array.isArray(args)) {
    res.status(400).json({ error: { tag: "BadRequest", message: "the body must be a JSON object" } })
    return
  }
  // Cancel the MCP call (the server gets notifications/cancelled) if the client goes away.
  const abort = new AbortController()
  res.on("close", () => abort.abort())
  const { server, tool } = req.params
  res.json(await tether.callTool(server, tool, args as Record<string, unknown>, { signal: abort.signal }))
})

app.use((error: unknown, _req: Request, res: Response, next: NextFunction) => {
  if (res.headersSent) return next(error)
  if (error instanceof Error && error.name === "AbortError") return // the client went away
  if (Errors.isTetherError(error)) {
    // The gateway's mapping: a tool error is the tool's result (200), OutcomeUnknown 502,
    // unavailable 503 with Retry-After, timeout 504, unknown server/tool 404, …
    const { body, headers, status } = Gateway.httpErrorOf(error)
    return res.status(status).set(headers).json(body)
  }
  const status = (error as { status?: number }).status ?? 500 // 400 for a body that is not JSON
  if (status >= 500) console.error(error)
  const message = error instanceof Error ? error.message : String(error)
  res.status(status).json({ error: { tag: status < 500 ? "BadRequest" : "Internal", message } })
})

const server = app.listen(Number(process.env.PORT ?? 3000), "127.0.0.1", () => {
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
