/**
 * An in-process MCP server reached through the SDK's `InMemoryTransport` (a `custom`
 * server spec), with an elicitation handler that accepts forms with their defaults.
 *
 *   npx tsx examples/in-memory.ts
 */
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js"
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js"
import { Console, Effect } from "effect"
import { z } from "zod"
import { McpConnection } from "../src/index.js"

const makeServer = () => {
  const server = new McpServer({ name: "in-process", version: "1.0.0" })
  server.registerTool("greet", { inputSchema: { name: z.string() } }, ({ name }) => ({
    content: [{ type: "text", text: `hello ${name}` }]
  }))
  server.registerTool("signup", { description: "Asks for a plan (elicitation)" }, async () => {
    const answer = await server.server.elicitInput({
      message: "Which plan?",
      requestedSchema: {
        type: "object",
        properties: { plan: { type: "string", enum: ["free", "pro"], default: "free" } }
      }
    })
    return { content: [{ type: "text", text: `signed up: ${JSON.stringify(answer.content)}` }] }
  })
  return server
}

// Called for every session (the first and each reconnect): a new linked pair each time.
const transport = () => {
  const [client, server] = InMemoryTransport.createLinkedPair()
  void makeServer().connect(server)
  return client
}

const text = (result: {
  readonly content: ReadonlyArray<{ readonly type: string; readonly text?: string }>
}) => result.content.map((c) => c.text ?? `[${c.type}]`).join("\n")

const program = Effect.gen(function* () {
  const conn = yield* McpConnection.McpConnection
  yield* Console.log(text(yield* conn.callTool("greet", { name: "Tether" })))
  yield* Console.log(text(yield* conn.callTool("signup", {})))
}).pipe(
  Effect.provide(
    McpConnection.layer({
      name: "local",
      server: { type: "custom", label: "in-process", transport },
      elicitation: McpConnection.acceptWithDefaults
    })
  )
)

Effect.runPromise(program).catch((error: unknown) => {
  console.error(error)
  process.exitCode = 1
})
