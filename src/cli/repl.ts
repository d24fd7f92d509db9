/**
 * The terminal front of the agent: renders the agent's event stream, runs slash commands,
 * and drives turns from an interactive prompt (readline), a script (one user message a
 * line) or a single `--prompt`.
 *
 * Commands: `/help`, `/tools`, `/status`, `/session`, `/reset`, `/exit` (also `/quit`).
 *
 * @since 0.1.0
 */
import { Duration, Effect, Exit, Mailbox, Option, type Scope, Stream, SubscriptionRef } from "effect"
import { createInterface } from "node:readline"
import type { Readable, Writable } from "node:stream"
import { formatStatus, formatTools } from "./format.js"
import type { Agent } from "../agent/Agent.js"
import type * as AgentEvent from "../agent/AgentEvent.js"

/**
 * Where output goes: `out` for the conversation, `err` for diagnostics. In `--prompt` mode
 * only the answer goes to `out`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Io {
  readonly out: (text: string) => Effect.Effect<void>
  readonly err: (text: string) => Effect.Effect<void>
}

/**
 * Writes to Node streams.
 *
 * @since 0.1.0
 * @category constructors
 */
export const nodeIo = (out: Writable, err: Writable = out): Io => ({
  out: (text) => Effect.sync(() => void out.write(text.endsWith("\n") ? text : `${text}\n`)),
  err: (text) => Effect.sync(() => void err.write(text.endsWith("\n") ? text : `${text}\n`))
})

const oneLine = (text: string, max = 240) => {
  const flat = text.replace(/\s*\n\s*/g, " ⏎ ").trim()
  return flat.length > max ? `${flat.slice(0, max)}…` : flat
}

const json = (value: unknown) => {
  try {
    return JSON.stringify(value) ?? ""
  } catch {
    return String(value)
  }
}

/**
 * How one event reads on a terminal, or nothing. `answer` is the turn's answer alone (all
 * that `--prompt` prints on stdout).
 *
 * @since 0.1.0
 * @category rendering
 */
export const render = (
  event: AgentEvent.AgentEvent,
  options: { readonly replay: boolean }
): { readonly text: string; readonly answer?: string } | undefined => {
  const label = options.replay ? "[replay] " : ""
  switch (event._tag) {
    case "TurnStarted":
      return undefined
    case "ModelReply": {
      // The final answer is printed with TurnEnded; text next to tool calls is shown here.
      if (event.toolCalls.length === 0 || event.text.length === 0) return undefined
      return { text: `${label}assistant: ${event.text}` }
    }
    case "ModelRetry":
      return {
        text: `  ~ model: ${oneLine(event.error, 160)}; retry ${event.attempt} in ${Math.round(event.delayMs)} ms`
      }
    case "ToolCall":
      return { text: `  → ${event.name} ${oneLine(json(event.arguments), 200)}` }
    case "ToolResult": {
      const took = `${Math.round(event.durationMs)} ms`
      switch (event.outcome) {
        case "ok":
          return { text: `  ← ${event.name} ok (${took}): ${oneLine(event.text)}` }
        case "error":
          return { text: `  ✗ ${event.name} failed (${took}): ${oneLine(event.text)}` }
        case "unknown":
          return {
            text:
              `  ⚠ ${event.name}: OUTCOME UNKNOWN (${took}): the connection was lost after the call was ` +
              `sent; it may or may not have run, and it was NOT retried. The model has been told.`
          }
      }
      return undefined
    }
    case "ConnectionChanged":
      // `Closed` is the runner shutting down, not news.
      return event.state === "Closed"
        ? undefined
        : { text: `  ~ ${event.server}: ${oneLine(event.detail, 200)}` }
    case "TurnEnded": {
      if (event.outcome === "error") {
        return {
          text:
            `error (${event.error?.tag ?? "unknown"}): ${event.error?.message ?? ""}\n` +
            `  the turn was rolled back: the session is as it was before it`
        }
      }
      return { text: `${label}assistant: ${event.text}`, answer: event.text }
    }
    case "SessionReset":
      return { text: `history cleared (session ${event.sessionId})` }
  }
}

/**
 * The renderer: prints every event of the agent as it comes, and tracks the last `seq`
 * printed so callers can wait until a turn's events are all on screen.
 *
 * @since 0.1.0
 * @category rendering
 */
export interface Renderer {
  /** Waits until every event published so far has been printed. */
  readonly flush: Effect.Effect<void>
}

/**
 * Starts rendering (for the life of the scope). With `answerOnly`, everything but the
 * answer goes to `err`.
 *
 * @since 0.1.0
 * @category rendering
 */
export const startRenderer = (
  agent: Agent,
  io: Io,
  options: { readonly answerOnly?: boolean } = {}
): Effect.Effect<Renderer, never, Scope.Scope> =>
  Effect.gen(function* () {
    const rendered = yield* SubscriptionRef.make(0)
    const events = yield* agent.subscribe
    // A server that stays down retries many times: show the first attempt of a run of the
    // same failure, not every one.
    const lastReconnecting = new Map<string, string>()
    const repeated = (event: AgentEvent.AgentEvent) => {
      if (event._tag !== "ConnectionChanged") return false
      if (event.state !== "Reconnecting") {
        lastReconnecting.delete(event.server)
        return false
      }
      const failure = event.detail.replace(/attempt \d+, /, "")
      const same = lastReconnecting.get(event.server) === failure
      lastReconnecting.set(event.server, failure)
      return same
    }
    yield* events.pipe(
      Stream.runForEach((event) =>
        Effect.gen(function* () {
          const line = repeated(event) ? undefined : render(event, { replay: agent.model.replay })
          if (line !== undefined) {
            if (options.answerOnly !== true) yield* io.out(line.text)
            else if (line.answer !== undefined) yield* io.out(line.answer)
            else yield* io.err(line.text)
          }
          yield* SubscriptionRef.set(rendered, event.seq)
        })
      ),
      Effect.forkScoped
    )
    const flush = Effect.flatMap(agent.lastSeq, (target) =>
      rendered.changes.pipe(
        Stream.takeUntil((n) => n >= target),
        Stream.runDrain,
        Effect.timeoutOption(Duration.seconds(5)),
        Effect.asVoid
      )
    )
    return { flush }
  })

/**
 * The help text.
 *
 * @since 0.1.0
 * @category constants
 */
export const HELP = [
  "commands:",
  "  /tools     the tools offered to the model (server__tool)",
  "  /status    the state of every MCP server",
  "  /session   this session: id, turns, where it is stored",
  "  /reset     clear the history of this session",
  "  /help      this text",
  "  /exit      leave (the session is saved after every turn; resume it with --session ID)",
  "anything else is sent to the model."
].join("\n")

/**
 * A one-line description of the session, for the banner and `/session`.
 *
 * @since 0.1.0
 * @category rendering
 */
export const describeSession = (agent: Agent) =>
  Effect.map(agent.session, (s) =>
    [
      `session ${s.id}${s.resumed ? " (resumed)" : " (new)"}: ${s.turns} turn(s), ${s.messages} message(s)`,
      `  model: ${agent.model.replay ? "[replay] " : ""}${agent.model.label}, at most ${agent.maxSteps} steps a turn`,
      `  stored in ${s.location}, expires after ${Duration.format(s.ttl)} idle`,
      `  resume with: --session ${s.id}`
    ].join("\n")
  )

/**
 * What happened to one line of input: `continue` after a command, `saved` after a turn
 * that succeeded and was saved, `unsaved` after a turn that succeeded (its answer was
 * shown) but could not be saved, `failed` after a turn that failed (rolled back).
 *
 * @since 0.1.0
 * @category models
 */
export type LineResult = "continue" | "saved" | "exit" | "failed" | "unsaved"

/**
 * What a run of several lines did.
 *
 * @since 0.1.0
 * @category models
 */
export interface RunSummary {
  /** Turns that failed (rolled back). */
  readonly failures: number
  /** Turns whose save failed. */
  readonly saveFailures: number
  /** Whether the last save failed: turns since the last good save exist only in memory. */
  readonly unsaved: boolean
}

const summarize = () => {
  let failures = 0
  let saveFailures = 0
  let unsaved = false
  return {
    add: (result: LineResult) => {
      if (result === "failed") failures += 1
      if (result === "unsaved") saveFailures += 1
      // Every save writes the whole history: a good one makes up for earlier failed ones.
      if (result === "unsaved") unsaved = true
      if (result === "saved") unsaved = false
    },
    get: (): RunSummary => ({ failures, saveFailures, unsaved })
  }
}

/**
 * Handles one line: a slash command or a user message (a turn).
 *
 * @since 0.1.0
 * @category running
 */
export const handleLine = (
  agent: Agent,
  io: Io,
  renderer: Renderer,
  raw: string
): Effect.Effect<LineResult> =>
  Effect.gen(function* () {
    const line = raw.trim()
    if (line.length === 0) return "continue"
    if (line.startsWith("/")) {
      const [command] = line.slice(1).split(/\s+/)
      switch (command) {
        case "exit":
        case "quit":
          return "exit"
        case "help":
          yield* io.out(HELP)
          return "continue"
        case "tools":
          yield* io.out(formatTools(yield* agent.tools))
          return "continue"
        case "status":
          yield* io.out(formatStatus(yield* agent.status))
          return "continue"
        case "session":
          yield* io.out(yield* describeSession(agent))
          return "continue"
        case "reset": {
          const reset = yield* Effect.either(agent.reset)
          yield* renderer.flush
          if (reset._tag === "Left") yield* io.err(`error: ${reset.left.message}`)
          return "continue"
        }
        default:
          yield* io.out(`unknown command ${line.split(/\s+/)[0]}; /help lists them`)
          return "continue"
      }
    }
    const result = yield* Effect.either(agent.send(line))
    yield* renderer.flush
    if (result._tag === "Left") {
      if (result.left.toolCallsRun.length > 0) {
        yield* io.err(`  tool calls that had already run: ${result.left.toolCallsRun.join(", ")}`)
      }
      return "failed"
    }
    if (result.right.saveError !== undefined) {
      yield* io.err(`error: the turn is kept in memory but was NOT saved: ${result.right.saveError}`)
      return "unsaved"
    }
    return "saved"
  })

/**
 * Runs one turn and prints the answer (on `out`; everything else on `err`).
 *
 * @since 0.1.0
 * @category running
 */
export const runPrompt = (
  agent: Agent,
  io: Io,
  prompt: string
): Effect.Effect<RunSummary, never, Scope.Scope> =>
  Effect.gen(function* () {
    const renderer = yield* startRenderer(agent, io, { answerOnly: true })
    const summary = summarize()
    summary.add(yield* handleLine(agent, io, renderer, prompt))
    return summary.get()
  })

/**
 * Runs each line of a script as if typed (blank lines and lines starting with `#` are
 * skipped). Succeeds with the number of failed turns.
 *
 * @since 0.1.0
 * @category running
 */
export const runScript = (
  agent: Agent,
  io: Io,
  lines: ReadonlyArray<string>
): Effect.Effect<RunSummary, never, Scope.Scope> =>
  Effect.gen(function* () {
    const renderer = yield* startRenderer(agent, io)
    const summary = summarize()
    for (const line of lines) {
      const trimmed = line.trim()
      if (trimmed.length === 0 || trimmed.startsWith("#")) continue
      yield* io.out(`you> ${trimmed}`)
      const result = yield* handleLine(agent, io, renderer, trimmed)
      summary.add(result)
      if (result === "exit") break
    }
    return summary.get()
  })

/**
 * The interactive loop on `input`/`output` (stdin/stdout): reads a line, handles it,
 * until `/exit` or the end of input. Ctrl-C ends the program (the session was saved after
 * the last completed turn).
 *
 * @since 0.1.0
 * @category running
 */
export const runInteractive = (
  agent: Agent,
  io: Io,
  streams: { readonly input: Readable; readonly output: Writable; readonly terminal?: boolean }
): Effect.Effect<RunSummary, never, Scope.Scope> =>
  Effect.gen(function* () {
    const renderer = yield* startRenderer(agent, io)
    const lines = yield* Mailbox.make<string>()
    const rl = yield* Effect.acquireRelease(
      Effect.sync(() =>
        createInterface({
          input: streams.input,
          output: streams.output,
          terminal: streams.terminal ?? false,
          prompt: "you> "
        })
      ),
      (rl) => Effect.sync(() => rl.close())
    )
    rl.on("line", (line) => lines.unsafeOffer(line))
    rl.on("close", () => lines.unsafeDone(Exit.void))
    rl.on("SIGINT", () => process.kill(process.pid, "SIGINT"))

    yield* io.out("type /help for commands")
    const summary = summarize()
    while (true) {
      yield* Effect.sync(() => rl.prompt())
      const next = yield* Effect.option(lines.take)
      if (Option.isNone(next)) {
        yield* io.out("")
        break
      }
      const result = yield* handleLine(agent, io, renderer, next.value)
      summary.add(result)
      if (result === "exit") break
    }
    return summary.get()
  })
