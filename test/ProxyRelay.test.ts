/**
 * Server→client requests other than elicitation: `sampling/createMessage` and `roots/list`,
 * answered by `McpConnection`'s handlers and, through `tether proxy`, by the downstream
 * client. Real fixture servers (stdio children) and a real downstream SDK client over HTTP.
 */
import { HttpRouter, HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import {
  type CallToolResult,
  CreateMessageRequestSchema,
  type CreateMessageResult,
  ListRootsRequestSchema,
  type Root
} from "@modelcontextprotocol/sdk/types.js"
import { Context, Effect, Layer } from "effect"
import { mkdtempSync, writeFileSync } from "node:fs"
import { createServer } from "node:http"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import * as McpConnection from "../src/McpConnection.js"
import * as McpPool from "../src/McpPool.js"
import * as Proxy from "../src/Proxy.js"
import type * as ServerSpec from "../src/ServerSpec.js"
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js"
import { FIXTURE, stdioSpec } from "./support/fixture.js"

const textOf = (result: { readonly content?: ReadonlyArray<{ type: string; text?: string }> }): string =>
  (result.content ?? [])
    .flatMap((c) => (c.type === "text" && c.text !== undefined ? [c.text] : []))
    .join("\n")

const ROOTS: ReadonlyArray<Root> = [{ uri: "file:///work/project", name: "project" }]

const answerOf = (prompt: string): CreateMessageResult => ({
  model: "downstream-model",
  role: "assistant",
  content: { type: "text", text: `answer to ${prompt}` }
})

/** Polls until `check` holds (bounded). */
const eventually = <A>(self: Effect.Effect<A, unknown>, check: (a: A) => boolean, what: string) =>
  Effect.gen(function* () {
    const until = Date.now() + 10_000
    for (;;) {
      const a = yield* self
      if (check(a)) return a
      if (Date.now() > until) return yield* Effect.fail(new Error(`timed out waiting for ${what}`))
      yield* Effect.sleep("100 millis")
    }
  })

describe("McpConnection sampling and roots handlers", () => {
  it.live(
    "a sampling handler answers the server's sampling/createMessage; failures and no handler are errors",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const seen: Array<unknown> = []
          const conn = yield* McpConnection.make({
            name: "sampler",
            server: stdioSpec(),
            sampling: (request) => {
              seen.push(request.messages[0]?.content)
              return Effect.succeed(answerOf("hello"))
            }
          })
          const result = yield* conn.callTool("sample", { prompt: "hello" })
          expect(JSON.parse(textOf(result))).toEqual(answerOf("hello"))
          expect(seen).toEqual([{ type: "text", text: "hello" }])

          const failing = yield* McpConnection.make({
            name: "failing",
            server: stdioSpec(),
            sampling: () => Effect.fail(new Error("no model configured"))
          })
          const unanswered = yield* Effect.flip(failing.callTool("sample", { prompt: "x" }))
          expect(unanswered._tag).toBe("ToolFailed")
          expect(unanswered.message).toContain("sampling not answered: no model configured")

          // Without a handler nothing answers sampling/createMessage: the client SDK says so.
          const plain = yield* McpConnection.make({ name: "plain", server: stdioSpec() })
          const refused = yield* Effect.flip(plain.callTool("sample", { prompt: "x" }))
          expect(refused._tag).toBe("ToolFailed")
          expect(refused.message).toContain("Method not found")
        })
      )
  )

  it.live("a roots handler answers roots/list; rootsChanged notifies the server", () =>
    Effect.scoped(
      Effect.gen(function* () {
        let roots: ReadonlyArray<Root> = ROOTS
        const conn = yield* McpConnection.make({
          name: "roots",
          server: stdioSpec(),
          roots: () => Effect.sync(() => roots)
        })
        const first = JSON.parse(textOf(yield* conn.callTool("roots", {}))) as {
          roots: unknown
          changes: number
        }
        expect(first).toEqual({ roots: ROOTS, changes: 0 })

        roots = [...ROOTS, { uri: "file:///tmp/other" }]
        yield* conn.rootsChanged
        const after = yield* eventually(
          Effect.map(
            conn.callTool("roots", {}),
            (r) => JSON.parse(textOf(r)) as { roots: unknown; changes: number }
          ),
          (a) => a.changes === 1,
          "the server to count one roots list_changed"
        )
        expect(after.roots).toEqual(roots)

        const plain = yield* McpConnection.make({ name: "plain", server: stdioSpec() })
        const refused = yield* Effect.flip(plain.callTool("roots", {}))
        expect(refused._tag).toBe("ToolFailed")
        expect(refused.message).toMatch(/roots/i)
      })
    )
  )
})

/** An in-process proxy over one stdio fixture, with every relay wired, on a real HTTP port. */
const serveProxy = Effect.gen(function* () {
  const options: McpPool.Options = {
    servers: [
      { name: "a", spec: stdioSpec() as ServerSpec.ServerSpec, resilience: { call: { timeout: 15_000 } } }
    ]
  }
  const relay = Proxy.relay()
  const app = Layer.unwrapScoped(
    Effect.map(Proxy.httpHandler(), (handle) =>
      HttpServer.serve(HttpRouter.empty.pipe(HttpRouter.all("/mcp", handle)))
    )
  )
  const context = yield* Layer.build(
    app.pipe(
      Layer.provideMerge(NodeHttpServer.layer(() => createServer(), { port: 0, host: "127.0.0.1" })),
      Layer.provideMerge(Proxy.layer({ relay })),
      Layer.provideMerge(McpPool.layer({ ...options, ...relay.handlers }))
    )
  )
  const address = Context.get(context, HttpServer.HttpServer).address
  return `http://127.0.0.1:${address._tag === "TcpAddress" ? address.port : 0}/mcp`
})

/** A downstream SDK client; `capable` declares sampling and roots and answers them. */
const downstream = (
  url: string,
  capable: { readonly roots: () => ReadonlyArray<Root> } | undefined,
  transport: () => Transport = () => new StreamableHTTPClientTransport(new URL(url))
) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const client = new Client(
        { name: "downstream", version: "1.0.0" },
        capable === undefined ? undefined : { capabilities: { sampling: {}, roots: { listChanged: true } } }
      )
      if (capable !== undefined) {
        client.setRequestHandler(CreateMessageRequestSchema, async (request) => {
          const content = request.params.messages[0]?.content
          return answerOf(content !== undefined && "text" in content ? String(content.text) : "?")
        })
        client.setRequestHandler(ListRootsRequestSchema, async () => ({ roots: [...capable.roots()] }))
      }
      await client.connect(transport())
      return client
    }),
    (client) => Effect.promise(() => client.close())
  )

const call = (client: Client, name: string, args: Record<string, unknown> = {}) =>
  Effect.promise(() => client.callTool({ name, arguments: args }) as Promise<CallToolResult>)

describe("tether proxy relays sampling and roots", () => {
  it.scopedLive("without a capable downstream client: sampling is a clear error, roots an empty list", () =>
    Effect.gen(function* () {
      const url = yield* serveProxy
      const plain = yield* downstream(url, undefined)
      const sampled = yield* call(plain, "sample", { prompt: "hi" })
      expect(sampled.isError).toBe(true)
      expect(textOf(sampled)).toContain(
        "sampling not answered: no downstream client that declared the sampling capability"
      )
      const roots = yield* call(plain, "roots")
      expect(JSON.parse(textOf(roots))).toEqual({ roots: [], changes: 0 })
    })
  )

  it.scopedLive(
    "an upstream's sampling and roots/list are answered by the downstream client; its roots list_changed goes upstream",
    () =>
      Effect.gen(function* () {
        const url = yield* serveProxy
        let roots: ReadonlyArray<Root> = ROOTS
        const client = yield* downstream(url, { roots: () => roots })

        const sampled = yield* call(client, "sample", { prompt: "what is 2+2" })
        expect(sampled.isError).not.toBe(true)
        expect(JSON.parse(textOf(sampled))).toEqual(answerOf("what is 2+2"))

        expect(JSON.parse(textOf(yield* call(client, "roots")))).toEqual({ roots: ROOTS, changes: 0 })

        // A session without the capabilities, calling while the capable one is idle, is
        // answered from the only session that declared roots; it cannot make anyone sample.
        const plain = yield* downstream(url, undefined)
        expect(JSON.parse(textOf(yield* call(plain, "roots")))).toEqual({ roots: ROOTS, changes: 0 })
        expect((yield* call(plain, "sample", { prompt: "x" })).isError).toBe(true)

        roots = [{ uri: "file:///elsewhere", name: "elsewhere" }]
        yield* Effect.promise(() => client.sendRootsListChanged())
        const after = yield* eventually(
          Effect.map(
            call(client, "roots"),
            (r) => JSON.parse(textOf(r)) as { roots: unknown; changes: number }
          ),
          (a) => a.changes === 1,
          "the upstream to count one roots list_changed"
        )
        expect(after.roots).toEqual(roots)
      })
  )

  it.scopedLive(
    "the tether proxy CLI over stdio relays sampling and roots to its client",
    () =>
      Effect.gen(function* () {
        const config = join(mkdtempSync(join(tmpdir(), "tether-relay-")), "mcp.json")
        writeFileSync(
          config,
          JSON.stringify({
            mcpServers: { solo: { command: process.execPath, args: [FIXTURE, "--transport", "stdio"] } }
          })
        )
        // Closing the client closes the proxy's stdin: the proxy and its upstream exit.
        const client = yield* downstream(
          "",
          { roots: () => ROOTS },
          () =>
            new StdioClientTransport({
              command: process.execPath,
              args: [resolve("bin/tether.js"), "proxy", "--config", config],
              stderr: "pipe"
            })
        )
        expect(JSON.parse(textOf(yield* call(client, "sample", { prompt: "over stdio" })))).toEqual(
          answerOf("over stdio")
        )
        expect(JSON.parse(textOf(yield* call(client, "roots")))).toEqual({ roots: ROOTS, changes: 0 })
      }),
    90_000
  )
})
