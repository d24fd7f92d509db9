/**
 * The Promise API: what a host that does not use Effect sees (plain Promises, `Error`
 * rejections with `_tag` and fields), start-up from an object or a file, tenants, abort,
 * and a close that lets calls in flight finish and leaves no child process behind.
 */
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import * as Tether from "../src/Tether.js"
import { myFixtureChildren } from "./support/conn.js"
import { FIXTURE, readLog, tempLog } from "./support/fixture.js"

const stdio = (...extra: ReadonlyArray<string>) => ({
  command: process.execPath,
  args: [FIXTURE, "--transport", "stdio", ...extra]
})

const textOf = (result: { content: ReadonlyArray<{ type: string; text?: string }> }) =>
  result.content.flatMap((c) => (c.type === "text" && c.text !== undefined ? [c.text] : [])).join("")

/** The rejection of a promise that must reject. */
const rejection = async (promise: Promise<unknown>): Promise<Record<string, unknown>> => {
  try {
    await promise
  } catch (error) {
    return error as Record<string, unknown>
  }
  throw new Error("expected a rejection")
}

const waitUntil = async (predicate: () => boolean, timeoutMs: number) => {
  const deadline = Date.now() + timeoutMs
  while (!predicate() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25))
  return predicate()
}

// Every Tether a test starts is closed afterwards, whatever the test did.
const started: Array<Tether.Tether> = []
const start = async (options: Tether.StartOptions) => {
  const tether = await Tether.start(options)
  started.push(tether)
  return tether
}
afterEach(async () => {
  await Promise.all(started.splice(0).map((t) => t.close({ graceMs: 0 })))
})

describe("Tether (Promise API)", () => {
  it("starts from a config object: calls, business errors as tagged Error rejections", async () => {
    const tether = await start({ config: { mcpServers: { fixture: stdio() } } })
    expect(textOf(await tether.callTool("fixture", "echo", { text: "hello" }))).toBe("hello")
    expect(textOf(await tether.call("fixture__echo", { text: "by name" }))).toBe("by name")
    expect((await tether.listTools()).map((e) => e.name)).toContain("fixture__echo")

    const failed = await rejection(tether.callTool("fixture", "fail", { message: "boom" }))
    expect(failed).toBeInstanceOf(Error)
    expect(failed).toMatchObject({ _tag: "ToolFailed", server: "fixture", tool: "fail" })
    expect(failed.result).toMatchObject({ isError: true, content: [{ type: "text", text: "boom" }] })

    const unknownServer = await rejection(tether.callTool("nosuch", "echo", { text: "x" }))
    expect(unknownServer).toBeInstanceOf(Error)
    expect(unknownServer).toMatchObject({ _tag: "UnknownServer", known: ["fixture"] })
    expect(unknownServer.message).toContain("nosuch")

    expect(await rejection(tether.callTool("fixture", "nosuch"))).toMatchObject({ _tag: "UnknownTool" })

    const [status] = await tether.status()
    expect(status).toMatchObject({ server: "fixture", state: "Ready" })
  })

  it("onElicitation answers servers' forms with a promise", async () => {
    const asked: Array<string> = []
    const tether = await start({
      config: { mcpServers: { fixture: stdio() } },
      onElicitation: async (request) => {
        asked.push(request.message)
        return { action: "accept", content: { name: "Ada" } }
      }
    })
    const answer = JSON.parse(textOf(await tether.callTool("fixture", "ask", {})))
    // Fields left out are filled from the schema's defaults.
    expect(answer).toEqual({ action: "accept", content: { name: "Ada", age: 30, verified: true } })
    expect(asked).toEqual(["Details, please"])
  })

  it("starts from a config file path", async () => {
    const path = join(mkdtempSync(join(tmpdir(), "tether-test-")), "mcp.json")
    writeFileSync(path, JSON.stringify({ mcpServers: { fixture: stdio() } }, null, 2))
    const tether = await start({ config: path })
    expect(textOf(await tether.callTool("fixture", "echo", { text: "from file" }))).toBe("from file")
  })

  it("rejects a bad config with InvalidConfig naming the path, and starts nothing", async () => {
    const before = myFixtureChildren().length
    const error = await rejection(
      Tether.start({
        config: { mcpServers: { good: stdio(), broken: { command: 42 } } }
      })
    )
    expect(error).toBeInstanceOf(Error)
    expect(error._tag).toBe("InvalidConfig")
    expect(error.message).toContain("mcpServers.broken.command")
    expect(myFixtureChildren()).toHaveLength(before)

    const missing = await rejection(Tether.start({ config: join(tmpdir(), "tether-no-such-file.json") }))
    expect(missing).toMatchObject({ _tag: "InvalidConfig" })
    expect(missing.message).toContain("not found")
  })

  it("forTenant: each tenant gets its own connection, with its own values", async () => {
    const tether = await start({
      config: {
        mcpServers: {
          shared: stdio(),
          perTenant: { ...stdio(), env: { TETHER_TENANT: "${tenant.id}" }, lazy: true }
        }
      }
    })
    const whoami = async (id: string) =>
      JSON.parse(textOf(await tether.forTenant(id).callTool("perTenant", "whoami"))) as { env: string }
    expect(await whoami("acme")).toMatchObject({ env: "acme" })
    expect(await whoami("beta")).toMatchObject({ env: "beta" })
    expect(textOf(await tether.forTenant("acme").callTool("shared", "echo", { text: "t" }))).toBe("t")
    const tenants = (await tether.statusAll()).flatMap((s) => (s.tenant === undefined ? [] : [s.tenant]))
    expect(new Set(tenants)).toEqual(new Set(["acme", "beta"]))
  })

  it("close() lets a call in flight finish, then refuses calls and leaves no child process", async () => {
    const log = tempLog()
    const tether = await start({ config: { mcpServers: { fixture: stdio("--log", log) } } })
    expect(textOf(await tether.callTool("fixture", "echo", { text: "warm" }))).toBe("warm")
    expect(myFixtureChildren().length).toBeGreaterThan(0)

    const inFlight = tether.callTool("fixture", "slow", { ms: 500 })
    // In flight: the server has it.
    expect(await waitUntil(() => readLog(log).includes("slow 500"), 5_000)).toBe(true)
    const closeStarted = performance.now()
    const closed = tether.close({ graceMs: 5_000 })
    // A call made while closing is refused at once.
    expect(await rejection(tether.callTool("fixture", "echo", { text: "late" }))).toMatchObject({
      _tag: "ConnectionLost"
    })
    expect(textOf(await inFlight)).toBe("slept 500")
    await closed
    expect(performance.now() - closeStarted).toBeLessThan(4_000)

    const after = await rejection(tether.callTool("fixture", "echo", { text: "x" }))
    expect(after).toBeInstanceOf(Error)
    expect(after._tag).toBe("ConnectionLost")
    await expect(tether.close()).resolves.toBeUndefined()
    expect(await waitUntil(() => myFixtureChildren().length === 0, 5_000)).toBe(true)
  })

  it("an aborted signal cancels the call: it rejects at once and the server is told", async () => {
    const log = tempLog()
    const tether = await start({ config: { mcpServers: { fixture: stdio("--log", log) } } })
    expect(textOf(await tether.callTool("fixture", "echo", { text: "warm" }))).toBe("warm")

    const controller = new AbortController()
    const begun = performance.now()
    const call = tether.callTool("fixture", "slow", { ms: 10_000 }, { signal: controller.signal })
    // Aborted once the server runs it, so there is something to cancel.
    expect(await waitUntil(() => readLog(log).includes("slow 10000"), 5_000)).toBe(true)
    controller.abort()
    const error = await rejection(call)
    expect(performance.now() - begun).toBeLessThan(3_000)
    expect(error).toBeInstanceOf(Error)
    expect(error.name).toBe("AbortError")
    expect(await waitUntil(() => readLog(log).some((l) => l.startsWith("cancelled")), 5_000)).toBe(true)

    // The connection is still good afterwards.
    expect(textOf(await tether.callTool("fixture", "echo", { text: "still" }))).toBe("still")
  })
})
