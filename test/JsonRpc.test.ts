/**
 * The decoder of Tether's own transports (stdio, WebSocket) must give exactly what the
 * SDK's `JSONRPCMessageSchema` gives: the same message, or a failure for the same input.
 */
import { describe, expect, it } from "@effect/vitest"
import { JSONRPCMessageSchema } from "@modelcontextprotocol/sdk/types.js"
import { decodeMessage, LineBuffer } from "../src/internal/jsonRpc.js"

const corpus: ReadonlyArray<unknown> = [
  { jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "echo", arguments: { text: "x" } } },
  { jsonrpc: "2.0", id: "a", method: "ping" },
  { jsonrpc: "2.0", method: "notifications/progress", params: { progressToken: 1, progress: 2 } },
  { jsonrpc: "2.0", id: 7, result: { content: [{ type: "text", text: "hello" }] } },
  { jsonrpc: "2.0", id: 7, result: {} },
  { jsonrpc: "2.0", id: 7, error: { code: -32601, message: "Method not found" } },
  { jsonrpc: "2.0", error: { code: -32700, message: "Parse error" } },
  // Shapes that mix or miss keys: whatever the union does, the decoder must do.
  { jsonrpc: "2.0", id: 7, result: {}, error: { code: 1, message: "both" } },
  { jsonrpc: "2.0", id: 7, method: "x", result: {} },
  { jsonrpc: "2.0", method: "x", error: { code: 1, message: "m" } },
  { jsonrpc: "1.0", id: 7, result: {} },
  { id: 7, result: {} },
  { jsonrpc: "2.0", id: null, result: {} },
  { jsonrpc: "2.0", id: 1.5, method: "ping" },
  { jsonrpc: "2.0", id: 7, error: { code: "x", message: "m" } },
  { jsonrpc: "2.0", id: 7, result: "not an object" },
  { jsonrpc: "2.0", method: 3 },
  { jsonrpc: "2.0" },
  [],
  [{ jsonrpc: "2.0", id: 1, method: "ping" }],
  null,
  "text",
  42
]

const outcome = (f: () => unknown): { ok: true; value: unknown } | { ok: false } => {
  try {
    return { ok: true, value: f() }
  } catch {
    return { ok: false }
  }
}

describe("decodeMessage", () => {
  it("agrees with the SDK's JSONRPCMessageSchema on every shape", () => {
    let accepted = 0
    for (const input of corpus) {
      const ours = outcome(() => decodeMessage(input))
      const sdk = outcome(() => JSONRPCMessageSchema.parse(input))
      expect({ input, ...ours }).toEqual({ input, ...sdk })
      if (ours.ok) accepted += 1
    }
    // The corpus holds both kinds; a decoder that rejected (or accepted) everything fails.
    expect(accepted).toBeGreaterThanOrEqual(6)
    expect(accepted).toBeLessThan(corpus.length)
  })
})

describe("LineBuffer", () => {
  it("frames messages split across chunks, strips CR, and reports a bad line without losing the next", () => {
    const buffer = new LineBuffer()
    const text =
      '{"jsonrpc":"2.0","id":1,"result":{}}\r\nnot json\n{"jsonrpc":"2.0","method":"x"}\n{"jsonrpc"'
    const bytes = Buffer.from(text)
    expect(buffer.append(bytes.subarray(0, 10))).toBeUndefined()
    expect(buffer.readMessage()).toBeNull()
    expect(buffer.append(bytes.subarray(10))).toBeUndefined()
    expect(buffer.readMessage()).toEqual({ jsonrpc: "2.0", id: 1, result: {} })
    expect(() => buffer.readMessage()).toThrow()
    expect(buffer.readMessage()).toEqual({ jsonrpc: "2.0", method: "x" })
    expect(buffer.readMessage()).toBeNull()
    expect(buffer.append(Buffer.from(':"2.0","id":2,"result":{}}\n'))).toBeUndefined()
    expect(buffer.readMessage()).toEqual({ jsonrpc: "2.0", id: 2, result: {} })
  })

  it("refuses a line over 10 MiB with an error instead of growing without bound", () => {
    const buffer = new LineBuffer()
    const error = buffer.append(Buffer.alloc(10 * 1024 * 1024 + 1, 0x20))
    expect(error?.message).toMatch(/exceeded 10485760 bytes/)
    expect(buffer.readMessage()).toBeNull()
  })
})
