/**
 * A real OpenAI-compatible Chat Completions server on 127.0.0.1 (node:http), scripted by
 * the test: `POST /v1/chat/completions` answers whatever the script returns for each
 * request (a completion, an HTTP error, a broken body…); `stream: true` requests get the
 * same completion as server-sent events. Every request is recorded.
 */
import { Effect, type Scope } from "effect"
import { createServer, type IncomingHttpHeaders, type Server } from "node:http"

export interface WireMessage {
  readonly role: "system" | "user" | "assistant" | "tool"
  readonly content: string | null
  readonly tool_calls?: ReadonlyArray<{
    readonly id: string
    readonly function: { readonly name: string; readonly arguments: string }
  }>
  readonly tool_call_id?: string
}

export interface ChatRequest {
  readonly body: {
    readonly model: string
    readonly messages: ReadonlyArray<WireMessage>
    readonly tools?: ReadonlyArray<{
      readonly type: string
      readonly function: {
        readonly name: string
        readonly description?: string
        readonly parameters: unknown
      }
    }>
    readonly stream?: boolean
  }
  readonly headers: IncomingHttpHeaders
}

export interface Reply {
  readonly status?: number
  readonly headers?: Record<string, string>
  /** A JSON body (a completion by default). */
  readonly json?: unknown
  /** A raw body, sent as is (for invalid JSON). */
  readonly raw?: string
  readonly delayMs?: number
}

export type Script = (request: ChatRequest, index: number) => Reply

export interface ToolCallSpec {
  readonly name: string
  readonly arguments: Record<string, unknown>
}

let callCounter = 0

/** A completion whose message is text and/or tool calls. */
export const completion = (message: {
  readonly text?: string
  readonly toolCalls?: ReadonlyArray<ToolCallSpec>
}): Reply => {
  const calls = (message.toolCalls ?? []).map((c) => ({
    id: `call_${++callCounter}`,
    type: "function",
    function: { name: c.name, arguments: JSON.stringify(c.arguments) }
  }))
  return {
    json: {
      id: `chatcmpl-${callCounter}`,
      object: "chat.completion",
      model: "scripted",
      choices: [
        {
          index: 0,
          message: {
            role: "assistant",
            content: message.text ?? null,
            ...(calls.length > 0 ? { tool_calls: calls } : {})
          },
          finish_reason: calls.length > 0 ? "tool_calls" : "stop"
        }
      ],
      usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 }
    }
  }
}

export const text = (t: string): Reply => completion({ text: t })
export const toolCalls = (...calls: ReadonlyArray<ToolCallSpec>): Reply => completion({ toolCalls: calls })

/**
 * A tiny rule-based "model":
 * - after tool results → `tool said: <contents joined with " | ">`
 * - `call <tool> <json args>` → a call of that tool
 * - anything else → `you said: <text>`
 */
export const brain: Script = (request) => {
  const messages = request.body.messages
  const last = messages[messages.length - 1]
  if (last?.role === "tool") {
    const results: Array<string> = []
    for (let i = messages.length - 1; i >= 0 && messages[i]?.role === "tool"; i--) {
      results.unshift(messages[i]?.content ?? "")
    }
    return text(`tool said: ${results.join(" | ")}`)
  }
  const said = last?.content ?? ""
  const match = /^call (\S+)\s*(.*)$/.exec(said)
  if (match !== null) {
    const args = match[2] !== undefined && match[2].trim().length > 0 ? JSON.parse(match[2]) : {}
    return toolCalls({ name: match[1] ?? "", arguments: args })
  }
  return text(`you said: ${said}`)
}

export interface LlmServer {
  /** The base URL (`http://127.0.0.1:PORT/v1`), as TETHER_LLM_BASE_URL. */
  readonly url: string
  readonly requests: Array<ChatRequest>
  /** Replaces the script; `index` restarts at 0. */
  readonly setScript: (script: Script) => void
  readonly close: () => Promise<void>
}

const sse = (reply: Reply): string => {
  const body = reply.json as {
    choices: ReadonlyArray<{
      message: { content: string | null; tool_calls?: ReadonlyArray<Record<string, unknown>> }
      finish_reason: string
    }>
    usage: unknown
  }
  const choice = body.choices[0]
  const events: Array<unknown> = []
  const content = choice?.message.content ?? ""
  // Split the text in two deltas, and each tool call's arguments too, as real servers do.
  if (content.length > 0) {
    const half = Math.ceil(content.length / 2)
    events.push({ choices: [{ index: 0, delta: { role: "assistant", content: content.slice(0, half) } }] })
    events.push({ choices: [{ index: 0, delta: { content: content.slice(half) } }] })
  }
  for (const [index, call] of (choice?.message.tool_calls ?? []).entries()) {
    const fn = call.function as { name: string; arguments: string }
    const half = Math.ceil(fn.arguments.length / 2)
    events.push({
      choices: [
        {
          index: 0,
          delta: {
            tool_calls: [
              {
                index,
                id: call.id,
                type: "function",
                function: { name: fn.name, arguments: fn.arguments.slice(0, half) }
              }
            ]
          }
        }
      ]
    })
    events.push({
      choices: [
        { index: 0, delta: { tool_calls: [{ index, function: { arguments: fn.arguments.slice(half) } }] } }
      ]
    })
  }
  events.push({ choices: [{ index: 0, delta: {}, finish_reason: choice?.finish_reason ?? "stop" }] })
  events.push({ choices: [], usage: body.usage })
  return `${events.map((e) => `data: ${JSON.stringify(e)}\n\n`).join("")}data: [DONE]\n\n`
}

export const startLlmServer = (initial: Script = brain): Promise<LlmServer> =>
  new Promise((resolve, reject) => {
    let script = initial
    let index = 0
    const requests: Array<ChatRequest> = []
    const server: Server = createServer((req, res) => {
      const chunks: Array<Buffer> = []
      req.on("data", (c: Buffer) => chunks.push(c))
      req.on("end", () => {
        if (req.method !== "POST" || req.url !== "/v1/chat/completions") {
          res.writeHead(404, { "content-type": "application/json" }).end('{"error":"not found"}')
          return
        }
        let request: ChatRequest
        try {
          request = { body: JSON.parse(Buffer.concat(chunks).toString("utf8")), headers: req.headers }
        } catch {
          res.writeHead(400).end("bad json")
          return
        }
        requests.push(request)
        let reply: Reply
        try {
          reply = script(request, index++)
        } catch (e) {
          res.writeHead(500, { "content-type": "text/plain" }).end(`script failed: ${String(e)}`)
          return
        }
        const send = () => {
          const status = reply.status ?? 200
          if (reply.raw !== undefined) {
            res.writeHead(status, { "content-type": "application/json", ...reply.headers }).end(reply.raw)
          } else if (request.body.stream === true && status === 200 && reply.json !== undefined) {
            res.writeHead(200, { "content-type": "text/event-stream", ...reply.headers }).end(sse(reply))
          } else {
            res
              .writeHead(status, { "content-type": "application/json", ...reply.headers })
              .end(JSON.stringify(reply.json ?? {}))
          }
        }
        if (reply.delayMs !== undefined) setTimeout(send, reply.delayMs)
        else send()
      })
    })
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      resolve({
        url: `http://127.0.0.1:${port}/v1`,
        requests,
        setScript: (next) => {
          script = next
          index = 0
        },
        close: () =>
          new Promise((r) => {
            server.closeAllConnections()
            server.close(() => r())
          })
      })
    })
  })

/** The server for the life of the scope. */
export const llmServer = (script: Script = brain): Effect.Effect<LlmServer, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(() => startLlmServer(script)),
    (s) => Effect.promise(() => s.close())
  )
