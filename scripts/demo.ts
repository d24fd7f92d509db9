/**
 * `npm run demo`: Tether keeping one MCP connection alive, offline, on bundled defaults.
 *
 * Starts the bundled fixture MCP server over Streamable HTTP, connects, calls a tool
 * every 200 ms, kills the server (SIGKILL) and restarts it twice, and prints every state
 * transition live, then a summary: calls ok / failed, reconnects, and the time from the
 * server being back to the first successful call.
 *
 * Options: --transport http|sse|ws|stdio (default http), --cycles N (default 2).
 */
import { NodeRuntime } from "@effect/platform-node"
import { Duration, Effect, Fiber, Ref, Schedule, Stream } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import { createServer } from "node:net"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import * as ConnectionState from "../src/ConnectionState.js"
import * as McpConnection from "../src/McpConnection.js"
import type * as ServerSpec from "../src/ServerSpec.js"

const { values } = parseArgs({
  options: { transport: { type: "string", default: "http" }, cycles: { type: "string", default: "2" } }
})
const transport = values.transport
const cycles = Number(values.cycles)
const fixture = fileURLToPath(new URL("./fixture-server.ts", import.meta.url))
const fixtureArgs = (kind: string, port?: number) => [
  "--import",
  "tsx",
  fixture,
  "--transport",
  kind,
  ...(port !== undefined ? ["--port", String(port)] : [])
]

const t0 = performance.now()
const stamp = () => `${((performance.now() - t0) / 1000).toFixed(2).padStart(6)}s`
const say = (line: string) => Effect.sync(() => process.stdout.write(`${stamp()}  ${line}\n`))

const freePort = Effect.async<number>((resume) => {
  const server = createServer()
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})

/** Starts the fixture on `port` and waits until it listens. */
const startServer = (kind: string, port: number) =>
  Effect.async<ChildProcess, Error>((resume) => {
    const child = spawn(process.execPath, fixtureArgs(kind, port), { stdio: ["ignore", "pipe", "inherit"] })
    child.stdout?.on("data", (chunk: Buffer) => {
      if (chunk.toString().includes("READY")) resume(Effect.succeed(child))
    })
    child.once("exit", (code) => resume(Effect.fail(new Error(`fixture server exited (${code})`))))
  })

const killProcess = (child: ChildProcess) =>
  Effect.async<void>((resume) => {
    if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
    child.once("exit", () => resume(Effect.void))
    child.kill("SIGKILL")
  })

const program = Effect.gen(function* () {
  yield* say(`Tether demo: one MCP connection over ${transport}, ${cycles} server kills`)
  const port = yield* freePort
  let server: ChildProcess | undefined
  let spec: ServerSpec.Encoded
  if (transport === "stdio") {
    spec = { type: "stdio", command: process.execPath, args: fixtureArgs("stdio") }
  } else {
    server = yield* startServer(transport, port)
    const url =
      transport === "http"
        ? `http://127.0.0.1:${port}/mcp`
        : transport === "sse"
          ? `http://127.0.0.1:${port}/sse`
          : `ws://127.0.0.1:${port}/`
    spec =
      transport === "ws" ? { type: "websocket", url } : { type: transport === "sse" ? "sse" : "http", url }
  }
  yield* Effect.addFinalizer(() => (server === undefined ? Effect.void : killProcess(server)))

  const conn = yield* McpConnection.make({ name: "fixture", server: spec })
  yield* conn.changes.pipe(
    Stream.runForEach((s) => say(`state → ${ConnectionState.describe(s)}`)),
    Effect.forkScoped
  )
  yield* conn.awaitReady({ timeout: "30 seconds" })

  const ok = yield* Ref.make(0)
  const failed = yield* Ref.make(0)
  const lastOkAt = yield* Ref.make(0)
  let n = 0
  const caller = yield* Effect.gen(function* () {
    n += 1
    const result = yield* Effect.either(
      conn.callTool("echo", { text: `call ${n}` }, { timeout: "5 seconds" })
    )
    if (result._tag === "Right") {
      yield* Ref.update(ok, (x) => x + 1)
      yield* Ref.set(lastOkAt, performance.now())
    } else {
      yield* Ref.update(failed, (x) => x + 1)
      yield* say(`call ${n} failed: ${result.left._tag}: ${result.left.message}`)
    }
  }).pipe(Effect.repeat(Schedule.spaced(Duration.millis(200))), Effect.forkScoped)

  const recoveries: Array<number> = []
  for (let cycle = 1; cycle <= cycles; cycle++) {
    yield* Effect.sleep("1500 millis")
    if (transport === "stdio") {
      yield* say(`kill -9 the stdio server (Tether restarts it)`)
      const pids = yield* Effect.promise(() => import("../src/internal/stdio.js").then((m) => m.livePids()))
      for (const pid of pids) process.kill(pid, "SIGKILL")
      const killedAt = performance.now()
      yield* waitForOkAfter(lastOkAt, killedAt)
      recoveries.push((yield* Ref.get(lastOkAt)) - killedAt)
    } else {
      yield* say(`kill -9 the server (pid ${server?.pid})`)
      if (server !== undefined) yield* killProcess(server)
      yield* Effect.sleep("1 second")
      server = yield* startServer(transport, port)
      const backAt = performance.now()
      yield* say(`server is back (pid ${server.pid})`)
      yield* waitForOkAfter(lastOkAt, backAt)
      recoveries.push((yield* Ref.get(lastOkAt)) - backAt)
    }
  }
  yield* Effect.sleep("1 second")
  yield* Fiber.interrupt(caller)

  const stats = yield* conn.stats
  const summary = [
    "",
    "Summary",
    `  calls ok          ${yield* Ref.get(ok)}`,
    `  calls failed      ${yield* Ref.get(failed)}`,
    `  reconnects        ${stats.reconnects}`,
    `  connect attempts  ${stats.connectAttempts}`,
    `  recovery (server back → first successful call): ${recoveries.map((ms) => `${Math.round(ms)} ms`).join(", ")}`,
    ""
  ]
  yield* Effect.sync(() => process.stdout.write(summary.join("\n")))
})

const waitForOkAfter = (lastOkAt: Ref.Ref<number>, after: number) =>
  Ref.get(lastOkAt).pipe(
    Effect.repeat({ until: (t) => t > after, schedule: Schedule.spaced(Duration.millis(10)) }),
    Effect.timeoutFail({
      duration: "30 seconds",
      onTimeout: () => new Error("no successful call within 30 s")
    })
  )

NodeRuntime.runMain(program.pipe(Effect.scoped))
