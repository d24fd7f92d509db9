/**
 * The agent runner against a real OpenAI-compatible HTTP server (test/support/llmServer.ts)
 * and real fixture MCP servers (child processes, killed and restarted). The runner itself
 * runs in-process, or as a child process (`scripts/agent.ts`) for session resume and the
 * stdin-driven REPL.
 */
import { LanguageModel, Prompt } from "@effect/ai"
import { KeyValueStore } from "@effect/platform"
import { NodeContext, NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Duration, Effect, Either, Fiber, Layer, Option, Redacted, Stream, TestClock } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import { inspect } from "node:util"
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  utimesSync,
  writeFileSync
} from "node:fs"
import { hostname, tmpdir } from "node:os"
import { join, resolve } from "node:path"
import * as Agent from "../src/agent/Agent.js"
import * as AgentEvent from "../src/agent/AgentEvent.js"
import * as OpenAiCompat from "../src/agent/OpenAiCompat.js"
import * as ReplayModel from "../src/agent/ReplayModel.js"
import * as SessionStore from "../src/agent/SessionStore.js"
import * as ToolCatalog from "../src/agent/ToolCatalog.js"
import * as McpPool from "../src/McpPool.js"
import * as ServerSpec from "../src/ServerSpec.js"
import { myFixtureChildren } from "./support/conn.js"
import { FIXTURE, readLog, specFor, spawnFixture, stdioSpec, tempLog } from "./support/fixture.js"
import { brain, completion, type LlmServer, llmServer, type Script, toolCalls } from "./support/llmServer.js"

const spec = (input: ServerSpec.Encoded) => Either.getOrThrow(ServerSpec.decodeEither(input))

const API_KEY = "sk-test-secret-1234567890"

interface Harness {
  readonly agent: Agent.Agent
  readonly pool: McpPool.McpPool
  readonly store: SessionStore.SessionStore
  readonly events: Array<AgentEvent.AgentEvent>
}

/** An in-process agent on a fresh pool, the test LLM server and an in-memory store. */
const harness = (options: {
  readonly servers: ReadonlyArray<{ readonly name: string; readonly spec: ServerSpec.Encoded }>
  readonly llm: LlmServer
  readonly sessionId?: string
  readonly maxSteps?: number
  readonly store?: SessionStore.SessionStore
  readonly timeout?: Duration.DurationInput
}) =>
  Effect.gen(function* () {
    const pool = yield* McpPool.make({
      servers: options.servers.map((s) => ({ name: s.name, spec: spec(s.spec) }))
    })
    const model = yield* OpenAiCompat.make({
      baseUrl: options.llm.url,
      model: "test-model",
      apiKey: Redacted.make(API_KEY),
      maxRetries: 3,
      retryBaseDelay: "20 millis",
      timeout: options.timeout
    }).pipe(Effect.provide(yield* httpClient))
    const store =
      options.store ?? (yield* SessionStore.make().pipe(Effect.provide(KeyValueStore.layerMemory)))
    const agent = yield* Agent.make({
      sessionId: options.sessionId ?? "test-session",
      model: { label: "test-model", replay: false },
      maxSteps: options.maxSteps,
      toolsTimeout: "3 seconds"
    }).pipe(
      Effect.provideService(McpPool.McpPool, pool),
      Effect.provideService(LanguageModel.LanguageModel, model),
      Effect.provideService(SessionStore.SessionStore, store)
    )
    const events: Array<AgentEvent.AgentEvent> = []
    const stream = yield* agent.subscribe
    yield* Effect.forkScoped(Stream.runForEach(stream, (e) => Effect.sync(() => events.push(e))))
    return { agent, pool, store, events } satisfies Harness
  })

/** The HTTP client for the life of the test's scope (its dispatcher closes with the layer). */
const httpClient = Layer.build(NodeHttpClient.layerUndici)

const waitFor = <A>(probe: () => A | undefined, what: string, timeoutMs = 20_000) =>
  Effect.gen(function* () {
    const deadline = Date.now() + timeoutMs
    while (Date.now() < deadline) {
      const value = probe()
      if (value !== undefined) return value
      yield* Effect.sleep("20 millis")
    }
    return yield* Effect.dieMessage(`timed out waiting for ${what}`)
  })

/** Waits until the collector has every event published so far. */
const settled = (h: Pick<Harness, "agent" | "events">) =>
  Effect.flatMap(h.agent.lastSeq, (target) =>
    waitFor(() => ((h.events.at(-1)?.seq ?? 0) >= target ? true : undefined), `event ${target}`)
  )

const ofTag = <T extends AgentEvent.AgentEvent["_tag"]>(
  events: ReadonlyArray<AgentEvent.AgentEvent>,
  tag: T
) => events.filter((e): e is Extract<AgentEvent.AgentEvent, { _tag: T }> => e._tag === tag)

const cmdline = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")
  } catch {
    return []
  }
}

/** Kills the stdio fixture children this test process spawned (through the pool). */
const killStdioChildren = Effect.sync(() => {
  const pids = myFixtureChildren().filter((pid) => cmdline(pid).includes("stdio"))
  for (const pid of pids) process.kill(pid, "SIGKILL")
  return pids
})

const lastRequest = (llm: LlmServer) => {
  const request = llm.requests[llm.requests.length - 1]
  if (request === undefined) throw new Error("no request")
  return request
}

describe("Agent (in-process)", () => {
  it.scopedLive(
    "a 20-turn conversation with tool calls against a real MCP server over HTTP",
    () =>
      Effect.gen(function* () {
        const fixture = yield* spawnFixture("http")
        const llm = yield* llmServer(brain)
        const { agent, events } = yield* harness({
          servers: [{ name: "fixture", spec: specFor("http", fixture.port) }],
          llm
        })
        for (let turn = 1; turn <= 20; turn++) {
          const result = yield* agent.send(
            turn % 2 === 1 ? `call fixture__echo {"text":"turn-${turn}"}` : `hello ${turn}`
          )
          expect(result.turn).toBe(turn)
          expect(result.outcome).toBe("answer")
          expect(result.text).toBe(turn % 2 === 1 ? `tool said: turn-${turn}` : `you said: hello ${turn}`)
        }
        const history = yield* agent.history
        expect(history).toHaveLength(10 * 4 + 10 * 2)
        // The last request carries the whole conversation: system + 58 messages + the new one.
        const last = lastRequest(llm)
        expect(last.body.messages).toHaveLength(60)
        expect(last.body.messages[0]?.role).toBe("system")
        expect(last.body.messages[1]?.content).toBe('call fixture__echo {"text":"turn-1"}')
        expect(last.body.messages[2]?.tool_calls?.[0]?.function.name).toBe("fixture__echo")
        expect(last.body.messages[3]).toMatchObject({ role: "tool", content: "turn-1" })
        // Tools: namespaced, with the server's own input schema; the key goes in the header only.
        const echo = last.body.tools?.find((t) => t.function.name === "fixture__echo")
        expect(echo?.function.parameters).toMatchObject({
          type: "object",
          properties: { text: { type: "string" } },
          required: ["text"]
        })
        expect(echo?.function.parameters).not.toHaveProperty("$schema")
        expect(last.body.tools?.map((t) => t.function.name)).not.toContain(ToolCatalog.UnknownTool.name)
        expect(last.headers.authorization).toBe(`Bearer ${API_KEY}`)
        expect(last.body.model).toBe("test-model")
        // Events: typed, ordered, JSON round-trippable.
        yield* settled({ agent, events })
        expect(ofTag(events, "TurnStarted")).toHaveLength(20)
        expect(ofTag(events, "ToolCall")).toHaveLength(10)
        expect(ofTag(events, "ToolResult").every((e) => e.outcome === "ok")).toBe(true)
        expect(ofTag(events, "ModelReply")).toHaveLength(30)
        expect(events.map((e) => e.seq)).toEqual([...events.map((e) => e.seq)].sort((a, b) => a - b))
        for (const e of events) expect(AgentEvent.decodeJson(AgentEvent.encodeJson(e))).toEqual(e)
        expect(JSON.stringify(events)).not.toContain(API_KEY)
        const info = yield* agent.session
        expect(info).toMatchObject({ id: "test-session", turns: 20, messages: 60, resumed: false })
      }),
    90_000
  )

  it.scopedLive(
    "MCP servers killed between turns (HTTP restarted, stdio respawned): the conversation continues",
    () =>
      Effect.gen(function* () {
        const fixture = yield* spawnFixture("http")
        const llm = yield* llmServer(brain)
        const { agent, events } = yield* harness({
          servers: [
            { name: "fixture", spec: specFor("http", fixture.port) },
            { name: "local", spec: stdioSpec() }
          ],
          llm
        })
        expect((yield* agent.send('call fixture__echo {"text":"one"}')).text).toBe("tool said: one")
        expect((yield* agent.send('call local__echo {"text":"two"}')).text).toBe("tool said: two")

        // HTTP: killed between turns, and still down when the next turn starts.
        yield* fixture.kill()
        const turn3 = yield* Effect.fork(agent.send('call fixture__echo {"text":"three"}'))
        // The turn is waiting for the server: its call is made and Tether is reconnecting.
        yield* waitFor(
          () =>
            ofTag(events, "ToolCall").some(
              (e) => e.name === "fixture__echo" && JSON.stringify(e.arguments).includes("three")
            ) &&
            ofTag(events, "ConnectionChanged").some(
              (e) => e.server === "fixture" && e.state === "Reconnecting"
            )
              ? true
              : undefined,
          "turn 3 waiting for the HTTP server"
        )
        yield* fixture.start
        expect((yield* Fiber.join(turn3)).text).toBe("tool said: three")

        // stdio: the child is killed between turns; the pool spawns a new one.
        const killed = yield* killStdioChildren
        expect(killed.length).toBe(1)
        expect((yield* agent.send('call local__echo {"text":"four"}')).text).toBe("tool said: four")
        expect((yield* agent.send("and five")).text).toBe("you said: and five")

        expect(yield* agent.history).toHaveLength(4 * 4 + 2)
        yield* settled({ agent, events })
        const changes = ofTag(events, "ConnectionChanged")
        expect(changes.some((e) => e.server === "fixture" && e.state === "Reconnecting")).toBe(true)
        expect(changes.some((e) => e.server === "local" && e.state === "Reconnecting")).toBe(true)
        const status = yield* agent.status
        expect(status.find((s) => s.server === "fixture")?.reconnects).toBeGreaterThanOrEqual(1)
        expect(status.find((s) => s.server === "local")?.reconnects).toBeGreaterThanOrEqual(1)
      }),
    90_000
  )

  it.scopedLive(
    "a server killed during a safe tool call: the call is retried after the reconnect",
    () =>
      Effect.gen(function* () {
        const log = tempLog()
        const fixture = yield* spawnFixture("http", { log })
        const llm = yield* llmServer(brain)
        const { agent, events } = yield* harness({
          servers: [{ name: "fixture", spec: specFor("http", fixture.port) }],
          llm
        })
        yield* agent.send('call fixture__echo {"text":"warm"}')
        const turn = yield* Effect.fork(agent.send('call fixture__slow {"ms":1500}'))
        yield* waitFor(
          () => (readLog(log).includes("slow 1500") ? true : undefined),
          "the slow call to start"
        )
        yield* fixture.kill()
        // Restarted once Tether has noticed the loss.
        yield* waitFor(
          () =>
            ofTag(events, "ConnectionChanged").some(
              (e) => e.server === "fixture" && e.state === "Reconnecting"
            )
              ? true
              : undefined,
          "the loss to be noticed"
        )
        yield* fixture.start
        const result = yield* Fiber.join(turn)
        expect(result.text).toBe("tool said: slept 1500")
        expect(result.toolCalls[0]?.outcome).toBe("ok")
        expect((yield* agent.send("next")).text).toBe("you said: next")
      }),
    90_000
  )

  it.scopedLive(
    "a server killed during a non-idempotent tool call: OutcomeUnknown is told to the model, never retried",
    () =>
      Effect.gen(function* () {
        const log = tempLog()
        const llm = yield* llmServer(brain)
        const { agent, events } = yield* harness({
          servers: [{ name: "local", spec: stdioSpec({ log }) }],
          llm
        })
        yield* agent.send('call local__echo {"text":"warm"}')
        const turn = yield* Effect.fork(agent.send('call local__count {"id":"c-1","holdMs":3000}'))
        yield* waitFor(() => (readLog(log).includes("count c-1") ? true : undefined), "the count to start")
        yield* killStdioChildren
        const result = yield* Fiber.join(turn)
        expect(result.toolCalls[0]?.outcome).toBe("unknown")
        expect(result.text).toMatch(/^tool said: OUTCOME UNKNOWN: /)
        const toolMessage = lastRequest(llm).body.messages.at(-1)
        expect(toolMessage?.role).toBe("tool")
        expect(toolMessage?.content).toContain("OUTCOME UNKNOWN")
        expect(toolMessage?.content).toContain("not retried")
        yield* settled({ agent, events })
        const resultEvent = ofTag(events, "ToolResult").find((e) => e.name === "local__count")
        expect(resultEvent).toMatchObject({ outcome: "unknown", errorTag: "OutcomeUnknown" })
        // The conversation goes on (on a respawned server), and the count ran exactly once.
        expect((yield* agent.send('call local__echo {"text":"after"}')).text).toBe("tool said: after")
        yield* Effect.sleep("300 millis")
        expect(readLog(log).filter((l) => l === "count c-1")).toHaveLength(1)
      }),
    90_000
  )

  it.scopedLive(
    "tool errors are fed back marked as errors; unknown tools too; the step limit stops a looping model",
    () =>
      Effect.gen(function* () {
        const llm = yield* llmServer(brain)
        const { agent } = yield* harness({
          servers: [{ name: "local", spec: stdioSpec() }],
          llm,
          maxSteps: 3
        })
        const failed = yield* agent.send('call local__fail {"message":"disk full"}')
        expect(failed.toolCalls[0]).toMatchObject({ outcome: "error", text: "ERROR: disk full" })
        expect(failed.text).toBe("tool said: ERROR: disk full")

        const unknown = yield* agent.send('call local__nope {"a":1}')
        expect(unknown.toolCalls[0]?.outcome).toBe("error")
        expect(unknown.toolCalls[0]?.text).toContain('no tool "local__nope"')
        // The history keeps the name the model used.
        const history = yield* agent.history
        const assistant = history.at(-3)
        expect(assistant?.role).toBe("assistant")
        expect(JSON.stringify(assistant)).toContain("local__nope")

        llm.setScript(() => toolCalls({ name: "local__echo", arguments: { text: "again" } }))
        const looping = yield* agent.send("loop forever")
        expect(looping.outcome).toBe("step-limit")
        expect(looping.steps).toBe(3)
        expect(looping.toolCalls).toHaveLength(3)
        llm.setScript(brain)
        expect((yield* agent.send("ok?")).text).toBe("you said: ok?")
      }),
    60_000
  )

  it.scopedLive(
    "transient LLM failures are retried (500s, 429 with Retry-After); malformed replies fail clearly and leave the session intact",
    () =>
      Effect.gen(function* () {
        const llm = yield* llmServer(brain)
        const { agent, events, store } = yield* harness({
          servers: [{ name: "local", spec: stdioSpec() }],
          llm
        })
        expect((yield* agent.send("first")).text).toBe("you said: first")

        // 500, 500, then a reply.
        llm.setScript((request, i) =>
          i < 2
            ? { status: 500, headers: { "retry-after": "0" }, json: { error: { message: "boom" } } }
            : brain(request, i)
        )
        let before = llm.requests.length
        expect((yield* agent.send("second")).text).toBe("you said: second")
        expect(llm.requests.length - before).toBe(3)
        yield* settled({ agent, events })
        expect(ofTag(events, "ModelRetry").map((e) => e.attempt)).toEqual([1, 2])

        // 429 with Retry-After: 1 second is honoured.
        llm.setScript((request, i) =>
          i === 0
            ? { status: 429, headers: { "retry-after": "1" }, json: { error: "slow down" } }
            : brain(request, i)
        )
        const start = Date.now()
        expect((yield* agent.send("third")).text).toBe("you said: third")
        expect(Date.now() - start).toBeGreaterThanOrEqual(900)

        const snapshot = yield* agent.history
        const stored = Option.getOrThrow(yield* store.load("test-session"))
        expect(stored.turns).toBe(3)

        const expectFailure = (
          script: Script,
          input: string,
          tag: string,
          message: RegExp,
          requests: number
        ) =>
          Effect.gen(function* () {
            llm.setScript(script)
            before = llm.requests.length
            const error = yield* Effect.flip(agent.send(input))
            expect(error._tag).toBe("TurnFailed")
            expect(error.errorTag).toBe(tag)
            expect(error.message).toMatch(message)
            expect(llm.requests.length - before).toBe(requests)
            expect(yield* agent.history).toEqual(snapshot)
            expect(Option.getOrThrow(yield* store.load("test-session")).messages).toHaveLength(
              snapshot.length
            )
            return error
          })

        yield* expectFailure(() => ({ raw: "{not json" }), "bad json", "MalformedOutput", /not JSON/, 1)
        yield* expectFailure(
          () => ({ json: { id: "x", object: "chat.completion" } }),
          "no choices",
          "MalformedOutput",
          /choices/,
          1
        )
        yield* expectFailure(
          () => ({ json: { id: "x", choices: [] } }),
          "empty choices",
          "MalformedOutput",
          /no choices/,
          1
        )
        yield* expectFailure(
          () => ({
            json: {
              choices: [
                {
                  message: {
                    content: null,
                    tool_calls: [{ id: "c", function: { name: "local__echo", arguments: "{oops" } }]
                  },
                  finish_reason: "tool_calls"
                }
              ]
            }
          }),
          "bad arguments",
          "MalformedOutput",
          /arguments of tool call local__echo are not JSON/,
          1
        )
        yield* expectFailure(
          () => ({ status: 400, json: { error: "bad request" } }),
          "4xx",
          "HttpResponseError",
          /400/,
          1
        )
        // Always 503: 1 attempt + 3 retries.
        yield* expectFailure(() => ({ status: 503, json: {} }), "down", "HttpResponseError", /503/, 4)
        // A failure after a tool ran: the turn is rolled back, and the error says what ran.
        const midTurn = yield* expectFailure(
          (request, i) => (i === 0 ? brain(request, i) : { raw: "garbage" }),
          'call local__echo {"text":"side effect"}',
          "MalformedOutput",
          /not JSON/,
          2
        )
        expect(midTurn.toolCallsRun).toEqual(["local__echo (ok)"])
        yield* settled({ agent, events })
        expect(ofTag(events, "TurnEnded").filter((e) => e.outcome === "error")).toHaveLength(7)

        llm.setScript(brain)
        expect((yield* agent.send("still there?")).text).toBe("you said: still there?")
        expect(Option.getOrThrow(yield* store.load("test-session")).turns).toBe(4)
      }),
    60_000
  )

  it.scopedLive("the model server unreachable: connect errors are retried, then fail clearly", () =>
    Effect.gen(function* () {
      const llm = yield* llmServer(brain)
      yield* Effect.promise(() => llm.close())
      const { agent, events } = yield* harness({ servers: [], llm })
      const error = yield* Effect.flip(agent.send("hello?"))
      expect(error.errorTag).toBe("HttpRequestError")
      expect(error.message).toContain("Transport")
      expect(error.message).toContain("ECONNREFUSED")
      yield* settled({ agent, events })
      expect(ofTag(events, "ModelRetry")).toHaveLength(3)
      expect(yield* agent.history).toEqual([])
    })
  )

  it.scopedLive("a model request that hangs is cut by the per-attempt timeout and retried", () =>
    Effect.gen(function* () {
      const llm = yield* llmServer((request, i) =>
        i === 0 ? { ...brain(request, i), delayMs: 3_000 } : brain(request, i)
      )
      const { agent, events } = yield* harness({ servers: [], llm, timeout: "300 millis" })
      const start = Date.now()
      expect((yield* agent.send("are you there?")).text).toBe("you said: are you there?")
      expect(Date.now() - start).toBeLessThan(2_500)
      expect(llm.requests).toHaveLength(2)
      yield* settled({ agent, events })
      expect(ofTag(events, "ModelRetry")[0]?.error).toContain("no answer within")
    })
  )

  it.scopedLive("streamText speaks server-sent events: text deltas and tool calls", () =>
    Effect.gen(function* () {
      const llm = yield* llmServer(() =>
        completion({ text: "hello world", toolCalls: [{ name: "fixture__echo", arguments: { text: "hi" } }] })
      )
      const model = yield* OpenAiCompat.make({ baseUrl: llm.url, model: "m" }).pipe(
        Effect.provide(yield* httpClient)
      )
      const { toolkit } = ToolCatalog.fromCatalogue([
        {
          name: "fixture__echo",
          server: "fixture",
          tool: { name: "echo", inputSchema: { type: "object", properties: { text: { type: "string" } } } }
        }
      ])
      const parts = Chunk.toReadonlyArray(
        yield* Stream.runCollect(
          model.streamText({ prompt: Prompt.make("hi"), toolkit, disableToolCallResolution: true })
        )
      )
      expect(lastRequest(llm).body.stream).toBe(true)
      const deltas = parts.flatMap((p) => (p.type === "text-delta" ? [p.delta] : []))
      expect(deltas.join("")).toBe("hello world")
      expect(deltas.length).toBe(2)
      const call = parts.find((p) => p.type === "tool-call")
      expect(call).toMatchObject({ name: "fixture__echo", params: { text: "hi" } })
      expect(parts.at(-1)).toMatchObject({ type: "finish", reason: "tool-calls" })
    })
  )

  it.scopedLive(
    "the replay model replays recorded replies, maps unknown tools, and says when it runs out",
    () =>
      Effect.gen(function* () {
        const pool = yield* McpPool.make({ servers: [{ name: "local", spec: spec(stdioSpec()) }] })
        const model = yield* ReplayModel.make([
          {
            toolCalls: [
              { name: "local__echo", arguments: { text: "rec" } },
              { name: "ghost__tool", arguments: {} }
            ]
          },
          { text: "replayed answer" }
        ])
        const store = yield* SessionStore.make().pipe(Effect.provide(KeyValueStore.layerMemory))
        const agent = yield* Agent.make({ sessionId: "r", model: { label: "replay", replay: true } }).pipe(
          Effect.provideService(McpPool.McpPool, pool),
          Effect.provideService(LanguageModel.LanguageModel, model),
          Effect.provideService(SessionStore.SessionStore, store)
        )
        const result = yield* agent.send("anything")
        expect(result.text).toBe("replayed answer")
        expect(result.toolCalls.map((c) => [c.name, c.outcome])).toEqual([
          ["local__echo", "ok"],
          ["ghost__tool", "error"]
        ])
        const error = yield* Effect.flip(agent.send("more"))
        expect(error.message).toContain("the recording is exhausted")
      })
  )
})

describe("ToolCatalog", () => {
  it("offers MCP tools under names every OpenAI-compatible API accepts, and maps them back", () => {
    const entry = (name: string) => ({
      name,
      server: name.split("__")[0] ?? "",
      tool: {
        name,
        inputSchema: { type: "object" as const, $schema: "http://json-schema.org/draft-07/schema#" }
      }
    })
    const catalog = ToolCatalog.fromCatalogue([
      entry("files__read.file"),
      entry("files__read_file"),
      entry(`long__${"x".repeat(80)}`)
    ])
    expect(catalog.names).toEqual(["files__read_file", "files__read_file_2", `long__${"x".repeat(58)}`])
    expect(catalog.resolve("files__read_file")).toBe("files__read.file")
    expect(catalog.resolve("files__read_file_2")).toBe("files__read_file")
    expect(catalog.resolve("nope")).toBeUndefined()
    const tool = catalog.toolkit.tools["files__read_file"]
    expect(tool && ToolCatalog.jsonSchemaOf(tool)).toEqual({ type: "object" })
    expect(ToolCatalog.toolCallFor(Object.values(catalog.toolkit.tools), "ghost", { a: 1 })).toEqual({
      name: ToolCatalog.UnknownTool.name,
      params: { name: "ghost", arguments: { a: 1 } },
      providerName: "ghost"
    })
  })
})

describe("SessionStore", () => {
  it.scoped("idle sessions expire after the TTL; prune removes them", () =>
    Effect.gen(function* () {
      const store = yield* SessionStore.make({ ttl: "1 hour" }).pipe(
        Effect.provide(KeyValueStore.layerMemory)
      )
      const messages = [Prompt.userMessage({ content: [Prompt.textPart({ text: "hi" })] })]
      yield* store.save({ id: "a", createdAt: 0, turns: 1, messages })
      yield* TestClock.adjust(Duration.minutes(30))
      yield* store.save({ id: "b", createdAt: 0, turns: 1, messages })
      expect(Option.isSome(yield* store.load("a"))).toBe(true)
      yield* TestClock.adjust(Duration.minutes(45))
      expect((yield* store.list).map((s) => s.id)).toEqual(["b"])
      expect(Option.isNone(yield* store.load("a"))).toBe(true)
      yield* TestClock.adjust(Duration.hours(2))
      expect(yield* store.prune).toBe(1)
      expect(Option.isNone(yield* store.load("b"))).toBe(true)
      const invalid = yield* Effect.flip(store.load("../etc/passwd"))
      expect(invalid.reason).toBe("InvalidId")
    })
  )

  it.scopedLive(
    "on disk: atomic writes (no temp files left, stale ones swept), a damaged file is reported",
    () =>
      Effect.gen(function* () {
        const dir = mkdtempSync(join(tmpdir(), "tether-sessions-"))
        const stale = join(dir, "session-x.123-abc.tmp")
        writeFileSync(stale, "half a wri")
        utimesSync(stale, new Date(Date.now() - 3_600_000), new Date(Date.now() - 3_600_000))
        const store = yield* Effect.provide(
          SessionStore.SessionStore,
          SessionStore.layerFileSystem(dir, { ttl: "7 days" }).pipe(Layer.provide(NodeContext.layer))
        )
        expect(existsSync(stale)).toBe(false)
        const messages = [
          Prompt.userMessage({ content: [Prompt.textPart({ text: "hi" })] }),
          Prompt.assistantMessage({
            content: [
              Prompt.toolCallPart({ id: "c1", name: "a__b", params: { x: 1 }, providerExecuted: false })
            ]
          }),
          Prompt.toolMessage({
            content: [
              Prompt.toolResultPart({
                id: "c1",
                name: "a__b",
                isFailure: true,
                result: "ERROR: no",
                providerExecuted: false
              })
            ]
          })
        ]
        for (let i = 1; i <= 20; i++) yield* store.save({ id: "disk", createdAt: 1, turns: i, messages })
        expect(readdirSync(dir).sort()).toEqual(["index", "session-disk"])
        const loaded = Option.getOrThrow(yield* store.load("disk"))
        expect(loaded.turns).toBe(20)
        expect(loaded.messages).toEqual(messages)
        writeFileSync(join(dir, "session-broken"), '{"version":1,"id":"broken","mess')
        const damaged = yield* Effect.flip(store.load("broken"))
        expect(damaged.reason).toBe("Corrupt")
        expect(damaged.message).toContain("session broken is stored but cannot be read")
      })
  )
})

// ---------------------------------------------------------------------------
// The real runner, as a child process
// ---------------------------------------------------------------------------

const AGENT = resolve("scripts/agent.ts")

interface ChildResult {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

const children = new Set<ChildProcess>()

/** Runs `scripts/agent.ts`; killed (with its process group) after `timeoutMs` or on scope close. */
const runAgent = (
  args: ReadonlyArray<string>,
  options: {
    readonly env: Record<string, string>
    readonly stdin?: ReadonlyArray<string>
    readonly timeoutMs?: number
  }
) =>
  Effect.acquireUseRelease(
    Effect.sync(() => {
      const child = spawn(process.execPath, ["--import", "tsx", AGENT, ...args], {
        env: { ...process.env, TETHER_CONFIG: "", ...options.env },
        stdio: ["pipe", "pipe", "pipe"],
        detached: true
      })
      children.add(child)
      return child
    }),
    (child) =>
      Effect.async<ChildResult>((resume) => {
        let stdout = ""
        let stderr = ""
        child.stdout?.on("data", (c: Buffer) => (stdout += c.toString()))
        child.stderr?.on("data", (c: Buffer) => (stderr += c.toString()))
        const timer = setTimeout(() => {
          stderr += "\n[test: timed out, killed]"
          killGroup(child)
        }, options.timeoutMs ?? 45_000)
        child.once("exit", (code) => {
          clearTimeout(timer)
          // Let the pipes drain.
          setTimeout(() => resume(Effect.succeed({ code, stdout, stderr })), 50)
        })
        if (options.stdin !== undefined) {
          for (const line of options.stdin) child.stdin?.write(`${line}\n`)
        }
        child.stdin?.end()
      }),
    (child) =>
      Effect.sync(() => {
        killGroup(child)
        children.delete(child)
      })
  )

const killGroup = (child: ChildProcess) => {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return
  try {
    process.kill(-child.pid, "SIGKILL")
  } catch {
    child.kill("SIGKILL")
  }
}

const workspace = () => {
  const dir = mkdtempSync(join(tmpdir(), "tether-agent-"))
  const config = join(dir, "mcp.json")
  writeFileSync(
    config,
    JSON.stringify({
      mcpServers: { local: { command: process.execPath, args: [FIXTURE, "--transport", "stdio"] } }
    })
  )
  return { dir, config, data: join(dir, "data") }
}

const llmEnv = (llm: LlmServer) => ({
  TETHER_LLM_BASE_URL: llm.url,
  TETHER_LLM_MODEL: "child-model",
  TETHER_LLM_API_KEY: API_KEY
})

describe("the agent runner (child process)", () => {
  it.scopedLive(
    "--prompt prints the answer; a restarted runner with --session resumes the history",
    () =>
      Effect.gen(function* () {
        const llm = yield* llmServer(brain)
        const ws = workspace()
        const common = ["--config", ws.config, "--data-dir", ws.data, "--session", "resume-1"]
        const first = yield* runAgent([...common, "--prompt", 'call local__echo {"text":"remember-me"}'], {
          env: llmEnv(llm)
        })
        expect(first.stderr).toContain("session resume-1 (new)")
        expect(first.stdout.trim()).toBe("tool said: remember-me")
        expect(first.code).toBe(0)

        const second = yield* runAgent([...common, "--prompt", "what did I ask?"], { env: llmEnv(llm) })
        expect(second.code).toBe(0)
        expect(second.stderr).toContain("session resume-1 (resumed, 1 turn(s))")
        expect(second.stdout.trim()).toBe("you said: what did I ask?")
        const sent = lastRequest(llm).body.messages
        expect(sent.map((m) => m.role)).toEqual(["system", "user", "assistant", "tool", "assistant", "user"])
        expect(sent[1]?.content).toBe('call local__echo {"text":"remember-me"}')
        expect(sent[3]?.content).toBe("remember-me")
        expect(sent[4]?.content).toBe("tool said: remember-me")

        // Another session id starts empty; the key never shows in any output.
        const other = yield* runAgent(
          ["--config", ws.config, "--data-dir", ws.data, "--session", "other", "--prompt", "hi"],
          { env: llmEnv(llm) }
        )
        expect(lastRequest(llm).body.messages).toHaveLength(2)
        for (const r of [first, second, other]) {
          expect(r.stdout + r.stderr).not.toContain(API_KEY)
        }
        expect(readdirSync(join(ws.data, "sessions")).sort()).toEqual([
          "index",
          "session-other",
          "session-resume-1"
        ])

        // A failing model: exit code 1, a clear error, and the session file is untouched.
        llm.setScript(() => ({ raw: "not json at all" }))
        const before = readFileSync(join(ws.data, "sessions", "session-resume-1"), "utf8")
        const failed = yield* runAgent([...common, "--prompt", "break"], { env: llmEnv(llm) })
        expect(failed.code).toBe(1)
        expect(failed.stderr).toContain("error (MalformedOutput)")
        expect(failed.stderr).toContain("the turn was rolled back")
        expect(readFileSync(join(ws.data, "sessions", "session-resume-1"), "utf8")).toBe(before)
      }),
    120_000
  )

  it.scopedLive(
    "the interactive REPL driven through stdin: turns, /tools, /status, /session, /reset, /help, /exit",
    () =>
      Effect.gen(function* () {
        const llm = yield* llmServer(brain)
        const ws = workspace()
        const result = yield* runAgent(
          ["--config", ws.config, "--data-dir", ws.data, "--session", "repl-1"],
          {
            env: llmEnv(llm),
            stdin: [
              'call local__echo {"text":"alpha"}',
              "/tools",
              "/status",
              "/session",
              "/reset",
              "hello beta",
              "/help",
              "/nope",
              "/exit",
              "never sent"
            ]
          }
        )
        expect(result.code).toBe(0)
        const out = result.stdout
        expect(out).toContain("tether agent · session repl-1 (new)")
        expect(out).toContain('  → local__echo {"text":"alpha"}')
        expect(out).toContain("  ← local__echo ok")
        expect(out).toContain("assistant: tool said: alpha")
        expect(out).toMatch(/local__echo\s+Echoes its input/)
        expect(out).toMatch(/local\s+Ready/)
        expect(out).toContain("session repl-1 (new): 1 turn(s), 4 message(s)")
        expect(out).toContain("history cleared (session repl-1)")
        expect(out).toContain("assistant: you said: hello beta")
        expect(out).toContain("/reset     clear the history")
        expect(out).toContain("unknown command /nope")
        expect(out).toContain("you> ")
        expect(out).not.toContain("never sent")
        // After /reset, the model saw only the new message.
        expect(lastRequest(llm).body.messages.map((m) => m.role)).toEqual(["system", "user"])
        expect(llm.requests).toHaveLength(3)
      }),
    60_000
  )

  it.scopedLive(
    "--script with --model scripted:FILE replays offline, labelled [replay]",
    () =>
      Effect.gen(function* () {
        const ws = workspace()
        const recording = join(ws.dir, "replay.json")
        writeFileSync(
          recording,
          JSON.stringify([
            { toolCalls: [{ name: "local__echo", arguments: { text: "from the recording" } }] },
            { text: "Recorded answer." }
          ])
        )
        const script = join(ws.dir, "script.txt")
        writeFileSync(script, "# a comment\nfirst question\n\n/session\n")
        const result = yield* runAgent(
          [
            "--config",
            ws.config,
            "--data-dir",
            ws.data,
            "--model",
            `scripted:${recording}`,
            "--script",
            script
          ],
          { env: { TETHER_LLM_MODEL: "" } }
        )
        expect(result.code).toBe(0)
        expect(result.stdout).toContain("you> first question")
        expect(result.stdout).toContain("  ← local__echo ok")
        expect(result.stdout).toContain("[replay] assistant: Recorded answer.")
        expect(result.stdout).toContain("model: [replay] replay of")
        expect(result.stdout).not.toContain("a comment")
      }),
    60_000
  )

  it.scopedLive(
    "setup errors are clear and exit with 2",
    () =>
      Effect.gen(function* () {
        const ws = workspace()
        const noModel = yield* runAgent(["--config", ws.config, "--data-dir", ws.data, "--prompt", "x"], {
          env: { TETHER_LLM_MODEL: "" }
        })
        expect(noModel.code).toBe(2)
        expect(noModel.stderr).toContain("no model: set TETHER_LLM_MODEL")
        const badTtl = yield* runAgent(
          ["--config", ws.config, "--data-dir", ws.data, "--session-ttl", "soon", "--prompt", "x"],
          { env: { TETHER_LLM_MODEL: "m" } }
        )
        expect(badTtl.code).toBe(2)
        expect(badTtl.stderr).toContain("--session-ttl")
      }),
    60_000
  )
})

// ---------------------------------------------------------------------------
// Sessions: one runner per session, failed saves, damaged files
// ---------------------------------------------------------------------------

/** A runner left running (stdin open) until the test ends it; killed with its group on scope close. */
const startRunner = (
  args: ReadonlyArray<string>,
  options: { readonly env: Record<string, string>; readonly uid?: number | undefined }
) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const child = spawn(process.execPath, ["--import", "tsx", AGENT, ...args], {
        env: { ...process.env, TETHER_CONFIG: "", ...options.env },
        stdio: ["pipe", "pipe", "pipe"],
        detached: true,
        ...(options.uid !== undefined ? { uid: options.uid, gid: options.uid } : {})
      })
      children.add(child)
      let stdout = ""
      let stderr = ""
      child.stdout?.on("data", (c: Buffer) => (stdout += c.toString()))
      child.stderr?.on("data", (c: Buffer) => (stderr += c.toString()))
      const exited = new Promise<number | null>((resolve) =>
        child.once("exit", (code) => setTimeout(() => resolve(code), 50))
      )
      return {
        child,
        stdout: () => stdout,
        stderr: () => stderr,
        /** Waits until stdout shows `text` (the runner printed it), or fails after 45 s. */
        printed: (text: string) =>
          waitFor(() => (stdout.includes(text) ? true : undefined), `"${text}" (stderr: ${stderr})`, 45_000),
        exit: Effect.promise(() => exited)
      }
    }),
    ({ child }) =>
      Effect.sync(() => {
        killGroup(child)
        children.delete(child)
      })
  )

describe("agent sessions: nothing lost, nothing claimed falsely", () => {
  it.scopedLive(
    "a second runner on a session in use fails at once (exit 2, naming the holder); a dead holder's lock is taken over",
    () =>
      Effect.gen(function* () {
        const llm = yield* llmServer(brain)
        const ws = workspace()
        const common = ["--config", ws.config, "--data-dir", ws.data, "--session", "shared"]
        const lockFile = join(ws.data, "sessions", "session-shared.lock")

        const first = yield* startRunner(common, { env: llmEnv(llm) })
        yield* first.printed("type /help for commands")
        const second = yield* runAgent([...common, "--prompt", "from the second"], { env: llmEnv(llm) })
        expect(second.code).toBe(2)
        expect(second.stderr).toContain(`session shared is in use by pid ${first.child.pid} on ${hostname()}`)
        expect(second.stdout).toBe("")
        expect(llm.requests).toHaveLength(0)

        first.child.stdin?.end("from the first\n/exit\n")
        expect(yield* first.exit).toBe(0)
        expect(first.stdout()).toContain("assistant: you said: from the first")
        expect(first.stdout()).toContain("session shared saved")
        expect(existsSync(lockFile)).toBe(false)

        // A runner killed -9 leaves its lock behind; the pid is gone, so the lock is stale.
        const killed = yield* startRunner(common, { env: llmEnv(llm) })
        yield* killed.printed("type /help for commands")
        killGroup(killed.child)
        yield* killed.exit
        expect(existsSync(lockFile)).toBe(true)
        const fourth = yield* runAgent([...common, "--prompt", "after the crash"], { env: llmEnv(llm) })
        expect(fourth.code).toBe(0)
        expect(fourth.stderr).toContain("session shared (resumed, 1 turn(s))")
        expect(existsSync(lockFile)).toBe(false)
        const saved = JSON.parse(readFileSync(join(ws.data, "sessions", "session-shared"), "utf8")) as {
          turns: number
        }
        expect(saved.turns).toBe(2)
      }),
    120_000
  )

  it.scopedLive(
    'a save that fails is an error: exit 1, the answer still shown, never "saved"',
    () =>
      Effect.gen(function* () {
        const llm = yield* llmServer(brain)
        const ws = workspace()
        const sessions = join(ws.data, "sessions")
        mkdirSync(sessions, { recursive: true })
        // Read-only for the runner; root ignores modes, so as root the runner runs as nobody.
        const uid = process.getuid?.() === 0 ? 65534 : undefined
        chmodSync(ws.dir, 0o755)
        chmodSync(ws.config, 0o644)
        chmodSync(ws.data, 0o755)
        chmodSync(sessions, 0o555)
        const common = ["--config", ws.config, "--data-dir", ws.data, "--session", "ro"]

        const prompt = yield* startRunner([...common, "--prompt", "keep me"], { env: llmEnv(llm), uid })
        expect(yield* prompt.exit).toBe(1)
        expect(prompt.stdout().trim()).toBe("you said: keep me")
        expect(prompt.stderr()).toContain("was NOT saved")

        const script = join(ws.dir, "script.txt")
        writeFileSync(script, "one\ntwo\n")
        chmodSync(script, 0o644)
        const scripted = yield* startRunner([...common, "--script", script], { env: llmEnv(llm), uid })
        expect(yield* scripted.exit).toBe(1)
        expect(scripted.stdout()).toContain("assistant: you said: two")
        expect(scripted.stdout()).not.toContain("saved; resume with")
        expect(scripted.stderr()).toContain("error: session ro was NOT saved")
        expect(readdirSync(sessions)).toEqual([])
      }),
    90_000
  )

  it.scopedLive("a damaged session file is named; a garbage index is rebuilt from the sessions", () =>
    Effect.gen(function* () {
      const dir = mkdtempSync(join(tmpdir(), "tether-sessions-"))
      const open = SessionStore.SessionStore.pipe(
        Effect.provide(SessionStore.layerFileSystem(dir).pipe(Layer.provide(NodeContext.layer)))
      )
      const store = yield* open
      const messages = [Prompt.userMessage({ content: [Prompt.textPart({ text: "hi" })] })]
      yield* store.save({ id: "a", createdAt: 1, turns: 1, messages })
      yield* store.save({ id: "b", createdAt: 1, turns: 2, messages })
      writeFileSync(join(dir, "session-broken"), "{ not json")
      const damaged = yield* Effect.flip(store.load("broken"))
      expect(damaged.reason).toBe("Corrupt")
      expect(damaged.message).toContain(join(dir, "session-broken"))

      writeFileSync(join(dir, "index"), "\u0000garbage")
      const reopened = yield* open
      expect((yield* reopened.list).map((s) => [s.id, s.turns]).sort()).toEqual([
        ["a", 1],
        ["b", 2]
      ])
      yield* reopened.save({ id: "c", createdAt: 1, turns: 3, messages })
      expect(Object.keys(JSON.parse(readFileSync(join(dir, "index"), "utf8")) as object).sort()).toEqual([
        "a",
        "b",
        "c"
      ])
    })
  )
})

describe("OpenAiCompat: provider error bodies", () => {
  it.scopedLive("are shown as a bounded excerpt with every echoed secret masked", () =>
    Effect.gen(function* () {
      const echoed = {
        error: {
          message: `Incorrect API key provided: ${API_KEY}. Authorization: Bearer ${API_KEY}`,
          api_key: "sk-other-secret-abcdefgh",
          password: "hunter2-hunter2",
          proxy: "http://admin:pa55word@proxy.internal:3128",
          padding: "x".repeat(20_000)
        }
      }
      const llm = yield* llmServer(() => ({ status: 401, json: echoed }))
      const model = yield* OpenAiCompat.make({
        baseUrl: llm.url,
        model: "m",
        apiKey: Redacted.make(API_KEY),
        maxRetries: 0
      }).pipe(Effect.provide(yield* httpClient))
      const error = yield* Effect.flip(model.generateText({ prompt: "hi" }))
      const shown = `${error.message}\n${inspect(error, { depth: 10 })}\n${JSON.stringify(error)}`
      for (const secret of [API_KEY, "sk-other-secret-abcdefgh", "hunter2-hunter2", "pa55word"]) {
        expect(shown).not.toContain(secret)
      }
      expect(error.message).toContain("the model server answered 401 (check TETHER_LLM_API_KEY)")
      expect(error.message).toContain("Incorrect API key provided: ***")
      expect(error.message.length).toBeLessThan(1_000)
      expect(shown).not.toContain("x".repeat(2_000))
    })
  )
})
