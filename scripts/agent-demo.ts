/**
 * `npm run agent-demo`: the bundled agent runner, offline, keeping a conversation going
 * while its MCP servers die.
 *
 * Two fixture MCP servers (`scripts/fixture-server.ts`): `web` over Streamable HTTP (a
 * process this demo starts, kills and restarts) and `local` over stdio (spawned by Tether,
 * killed by this demo, respawned by Tether). The model is the scripted one, replaying
 * `examples/agent-demo.replay.json` (every model line is labelled `[replay]`), so no LLM
 * and no network are needed. The conversation (8 turns) goes on through:
 *
 *   - the HTTP server killed between turns and restarted while the next turn waits;
 *   - the stdio server killed between turns;
 *   - the HTTP server killed DURING a read-only call (retried once it is back);
 *   - the stdio server killed DURING a non-idempotent call (OutcomeUnknown: told to the
 *     model and to you, never retried);
 *
 * then prints a summary. Everything rendered comes from the agent's typed event stream.
 */
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Duration, Effect, Either, Fiber, Layer, Schedule, Stream } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import * as Agent from "../src/agent/Agent.js"
import type * as AgentEvent from "../src/agent/AgentEvent.js"
import * as ReplayModel from "../src/agent/ReplayModel.js"
import * as Repl from "../src/cli/repl.js"
import * as SessionStore from "../src/agent/SessionStore.js"
import * as Config from "../src/Config.js"
import { livePids } from "../src/internal/stdio.js"
import * as McpPool from "../src/McpPool.js"

const fixture = fileURLToPath(new URL("./fixture-server.ts", import.meta.url))
const recording = fileURLToPath(new URL("../examples/agent-demo.replay.json", import.meta.url))
const t0 = performance.now()
const stamp = () => `${((performance.now() - t0) / 1000).toFixed(1).padStart(5)}s`
const io = Repl.nodeIo(process.stdout)
const narrate = (line: string) => io.out(`\n── ${stamp()}  ${line}`)

const freePort = Effect.async<number>((resume) => {
  const server = createServer()
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})

/** Starts the HTTP fixture on `port` and waits until it listens. */
const startWeb = (port: number) =>
  Effect.async<ChildProcess, Error>((resume) => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", fixture, "--transport", "http", "--port", String(port)],
      { stdio: ["ignore", "pipe", "inherit"] }
    )
    child.stdout?.on("data", (chunk: Buffer) => {
      if (chunk.toString().includes("READY")) resume(Effect.succeed(child))
    })
    child.once("exit", (code) => resume(Effect.fail(new Error(`the web server exited (${code})`))))
  })

const kill = (child: ChildProcess | undefined) =>
  Effect.async<void>((resume) => {
    if (child === undefined || child.exitCode !== null || child.signalCode !== null)
      return resume(Effect.void)
    child.once("exit", () => resume(Effect.void))
    child.kill("SIGKILL")
  })

const killLocal = Effect.sync(() => {
  const pids = livePids()
  for (const pid of pids) process.kill(pid, "SIGKILL")
  return pids
})

const program = Effect.gen(function* () {
  const port = yield* freePort
  let web: ChildProcess | undefined = yield* startWeb(port)
  yield* Effect.addFinalizer(() => kill(web))

  const config = yield* Config.decode(
    {
      mcpServers: {
        web: { url: `http://127.0.0.1:${port}/mcp` },
        local: { command: process.execPath, args: ["--import", "tsx", fixture, "--transport", "stdio"] }
      }
    },
    { source: "agent-demo" }
  )
  // The demo's session lives in a temporary folder, removed when the demo ends (also on
  // Ctrl-C or failure: the scope closes).
  const dataDir = yield* Effect.acquireRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), "tether-agent-demo-"))),
    (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
  )
  const services = Layer.mergeAll(
    McpPool.layer(config),
    SessionStore.layerFileSystem(join(dataDir, "sessions")),
    ReplayModel.layerFile(recording)
  ).pipe(Layer.provide(NodeContext.layer))

  return yield* Effect.gen(function* () {
    const agent = yield* Agent.make({
      sessionId: "agent-demo",
      model: { label: "replay of examples/agent-demo.replay.json", replay: true }
    })
    yield* io.out(`Tether agent demo: a scripted model, two MCP servers (web over HTTP, local over stdio)`)
    yield* io.out(`tether agent · ${yield* Repl.describeSession(agent)}`)
    const renderer = yield* Repl.startRenderer(agent, io)
    const collected: Array<AgentEvent.AgentEvent> = []
    yield* Effect.forkScoped(
      Stream.runForEach(yield* agent.subscribe, (e) => Effect.sync(() => collected.push(e)))
    )

    // Faults that must land in the middle of a tool call are triggered by the event stream.
    const onToolCall = (name: string, action: Effect.Effect<void, Error>) =>
      Effect.flatMap(agent.subscribe, (events) =>
        events.pipe(
          Stream.filter((e): e is AgentEvent.ToolCall => e._tag === "ToolCall" && e.name === name),
          Stream.take(1),
          Stream.runForEach(() => action),
          Effect.fork
        )
      )
    /** Waits until Tether has noticed the loss of `server` and reconnected it. */
    const awaitReconnected = (server: string, reconnects: number) =>
      agent.status.pipe(
        Effect.repeat({
          until: (all) =>
            all.some((s) => s.server === server && s.state === "Ready" && s.reconnects >= reconnects),
          schedule: Schedule.spaced("50 millis")
        }),
        Effect.timeoutFail({
          duration: "30 seconds",
          onTimeout: () => new Error(`${server} did not come back`)
        })
      )

    const kills = { web: 0, local: 0 }
    const say = (line: string) => Effect.zipRight(renderer.flush, narrate(line))
    const turn = (input: string) =>
      Effect.gen(function* () {
        yield* io.out(`you> ${input}`)
        yield* Repl.handleLine(agent, io, renderer, input)
      })

    yield* turn("Hi! Is the web server there? Echo 'hello'.")
    yield* turn("Count visit-1 on the local server.")

    yield* say("kill -9 the web server (it comes back in 1 s, while the next turn waits)")
    yield* kill(web)
    kills.web += 1
    const restart = yield* Effect.fork(
      Effect.sleep("1 second").pipe(
        Effect.zipRight(startWeb(port)),
        Effect.tap((child) => {
          web = child
          return narrate(`the web server is back (pid ${child.pid})`)
        })
      )
    )
    yield* turn("Echo 'still here' on the web server.")
    yield* Fiber.join(restart)

    yield* say("kill -9 the local stdio server between turns (Tether spawns a new one)")
    yield* killLocal
    kills.local += 1
    yield* awaitReconnected("local", 1)
    yield* turn("Count visit-2.")

    const midCall = yield* onToolCall(
      "web__slow",
      Effect.gen(function* () {
        yield* Effect.sleep("400 millis")
        yield* narrate("kill -9 the web server DURING the call (slow is read-only: safe to repeat)")
        yield* kill(web)
        kills.web += 1
        yield* Effect.sleep("700 millis")
        web = yield* startWeb(port)
        yield* narrate(`the web server is back (pid ${web.pid})`)
      })
    )
    yield* turn("Run a slow lookup on the web server.")
    yield* Fiber.join(midCall)

    const unsafe = yield* onToolCall(
      "local__count",
      Effect.gen(function* () {
        yield* Effect.sleep("400 millis")
        yield* narrate("kill -9 the local server DURING a count (not idempotent: it must not be repeated)")
        yield* killLocal
        kills.local += 1
      })
    )
    yield* turn("Count visit-3, slowly.")
    yield* Fiber.join(unsafe)

    yield* turn("Now try the failing tool.")
    yield* turn("Thanks, bye!")
    yield* renderer.flush

    // --- summary ------------------------------------------------------------------------
    const status = yield* agent.status
    const session = yield* agent.session
    const history = yield* agent.history
    const all = collected
    const results = all.filter((e): e is AgentEvent.ToolResult => e._tag === "ToolResult")
    const count = (outcome: AgentEvent.ToolOutcome) => results.filter((r) => r.outcome === outcome).length
    const summary = [
      "",
      "Summary",
      `  turns                 ${session.turns} (all answered; the conversation never restarted)`,
      `  model replies         ${all.filter((e) => e._tag === "ModelReply").length} [replay]`,
      `  tool calls            ${results.length}: ${count("ok")} ok, ${count("error")} tool error, ${count("unknown")} outcome unknown (not retried)`,
      `  server kills          web ${kills.web}, local ${kills.local}`,
      ...status.map(
        (s) =>
          `  ${`${s.server}:`.padEnd(22)}${s.state}, ${s.reconnects} reconnect(s), ${s.connectAttempts} connect attempt(s)`
      ),
      `  state changes seen    ${all.filter((e) => e._tag === "ConnectionChanged").length} (from the agent's event stream)`,
      `  session               ${session.id}: ${history.length} messages saved in ${session.location} (removed at exit)`,
      `  elapsed               ${((performance.now() - t0) / 1000).toFixed(1)} s`,
      ""
    ]
    yield* io.out(summary.join("\n"))
  }).pipe(Effect.provide(services))
})

const main = program.pipe(
  Effect.scoped,
  Effect.timeoutFail({
    duration: Duration.minutes(2),
    onTimeout: () => new Error("the demo took over 2 minutes")
  }),
  Effect.either,
  Effect.flatMap(
    Either.match({
      onLeft: (error) =>
        Effect.sync(() => {
          process.stderr.write(`demo failed: ${error instanceof Error ? error.message : String(error)}\n`)
          process.exitCode = 1
        }),
      onRight: () => Effect.void
    })
  )
)

NodeRuntime.runMain(main)
