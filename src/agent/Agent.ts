/**
 * The agent: one conversation (a session) between a user, a `LanguageModel` (from
 * @effect/ai) and the tools of every MCP server in the `McpPool`.
 *
 * A turn takes a user message and loops: ask the model (offering the pool's aggregated
 * tools, `server__tool`, with each server's own input schema); run the tool calls it asks
 * for through the pool; feed the results back (a tool error as its content, marked as a
 * failure); until the model answers without tool calls or `maxSteps` model requests have
 * been made. `OutcomeUnknown` (the link died after a non-idempotent call was sent) is told
 * to the model and shown to the user, and never retried.
 *
 * The pool is shared by every turn: an MCP server that dies between turns or during a tool
 * call is reconnected by the pool, and the conversation goes on.
 *
 * A turn is all-or-nothing for the session: if the model fails (after its retries), the
 * history stays as it was before the turn, and the error says which tools had already run.
 * After a successful turn, the history is saved to the `SessionStore`.
 *
 * Everything that happens is published as an `AgentEvent` on a `Stream` (see
 * {@link Agent.subscribe}).
 *
 * @since 0.1.0
 */
import { type AiError, LanguageModel, Prompt, type Response } from "@effect/ai"
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js"
import { Clock, Context, Duration, Effect, Layer, Option, PubSub, Ref, Schema, Stream } from "effect"
import type { Scope } from "effect"
import * as ConnectionState from "../ConnectionState.js"
import type * as Errors from "../Errors.js"
import { McpPool } from "../McpPool.js"
import type * as McpPoolTypes from "../McpPool.js"
import * as AgentEvent from "./AgentEvent.js"
import * as OpenAiCompat from "./OpenAiCompat.js"
import { type SessionStoreError, SessionStore } from "./SessionStore.js"
import * as ToolCatalog from "./ToolCatalog.js"

/**
 * What the user (and the event stream) is told about the model.
 *
 * @since 0.1.0
 * @category models
 */
export interface ModelInfo {
  /** E.g. `gpt-4o-mini @ https://api.openai.com/v1`, `replay:examples/demo.json`. */
  readonly label: string
  /** Replies are replayed from a recording (shown as `[replay]`). */
  readonly replay: boolean
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly sessionId: string
  readonly model: ModelInfo
  /** Model requests per turn before the turn is stopped (default 20). */
  readonly maxSteps?: number | undefined
  /** The system prompt; `""` sends none (default {@link DEFAULT_SYSTEM}). */
  readonly system?: string | undefined
  /**
   * How long the first turn waits for servers to be ready before listing tools (default
   * 5 s); later turns wait at most 1 s (a server that is down offers its last known tools,
   * and calls to it wait for the reconnect).
   */
  readonly toolsTimeout?: Duration.DurationInput | undefined
  /** Deadline of each tool call (default: the server's policy). */
  readonly callTimeout?: Duration.DurationInput | undefined
  /** Longest tool result text given to the model, in characters (default 16,000). */
  readonly maxToolResultChars?: number | undefined
}

/**
 * The default system prompt.
 *
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_SYSTEM =
  "You are a helpful assistant. You can call tools from MCP servers; tool names are " +
  "`server__tool`. A tool result that starts with ERROR is a failure: say so. A result that " +
  "starts with OUTCOME UNKNOWN means the connection was lost after the call was sent: it may " +
  "or may not have taken effect, and it was not retried; tell the user, and do not call it " +
  "again without asking."

/**
 * One tool call of a turn.
 *
 * @since 0.1.0
 * @category models
 */
export interface ToolCallSummary {
  readonly id: string
  readonly name: string
  readonly outcome: AgentEvent.ToolOutcome
  readonly text: string
}

/**
 * @since 0.1.0
 * @category models
 */
export interface TurnResult {
  readonly turn: number
  readonly outcome: "answer" | "step-limit"
  /** The model's answer (for `step-limit`, a note saying the turn was stopped). */
  readonly text: string
  readonly steps: number
  readonly toolCalls: ReadonlyArray<ToolCallSummary>
  /** Set when the turn succeeded but could not be saved (it is kept in memory). */
  readonly saveError?: string | undefined
}

/**
 * The model failed (after its retries). The session is as it was before the turn.
 *
 * @since 0.1.0
 * @category errors
 */
export class TurnFailed extends Schema.TaggedError<TurnFailed>()("TurnFailed", {
  turn: Schema.Number,
  /** The @effect/ai error tag: `HttpRequestError`, `HttpResponseError`, `MalformedOutput`, … */
  errorTag: Schema.String,
  message: Schema.String,
  /** Tool calls that ran before the failure (their effects are not undone). */
  toolCallsRun: Schema.Array(Schema.String)
}) {}

/**
 * @since 0.1.0
 * @category models
 */
export interface SessionInfo {
  readonly id: string
  readonly turns: number
  readonly messages: number
  readonly createdAt: number
  readonly updatedAt: number | undefined
  /** The session existed in the store when the agent started. */
  readonly resumed: boolean
  readonly location: string
  readonly ttl: Duration.Duration
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Agent {
  readonly sessionId: string
  readonly model: ModelInfo
  readonly maxSteps: number
  /** Runs one turn. Turns are serialized. */
  readonly send: (input: string) => Effect.Effect<TurnResult, TurnFailed>
  /** Clears the history (and saves the empty session). */
  readonly reset: Effect.Effect<void, SessionStoreError>
  readonly session: Effect.Effect<SessionInfo>
  readonly history: Effect.Effect<ReadonlyArray<Prompt.Message>>
  readonly tools: Effect.Effect<ReadonlyArray<McpPoolTypes.CatalogEntry>>
  readonly status: Effect.Effect<ReadonlyArray<McpPoolTypes.ConnectionStatus>>
  /** Subscribes now (nothing published after this returns is missed) for the scope's life. */
  readonly subscribe: Effect.Effect<Stream.Stream<AgentEvent.AgentEvent>, never, Scope.Scope>
  /** The events from when the stream is run. */
  readonly events: Stream.Stream<AgentEvent.AgentEvent>
  /** The `seq` of the last event published (0 before the first). */
  readonly lastSeq: Effect.Effect<number>
}

/**
 * @since 0.1.0
 * @category tags
 */
export const Agent: Context.Tag<Agent, Agent> = Context.GenericTag<Agent>("tether/agent/Agent")

interface State {
  readonly createdAt: number
  readonly updatedAt: number | undefined
  readonly turns: number
  readonly messages: ReadonlyArray<Prompt.Message>
}

/** The text of a tool result for the model: text parts as they are, anything else as JSON. */
export const toolResultText = (result: CallToolResult | unknown): string => {
  if (typeof result !== "object" || result === null) return String(result)
  const r = result as Partial<CallToolResult>
  const parts = Array.isArray(r.content)
    ? r.content.map((c) => (c.type === "text" ? c.text : JSON.stringify(c)))
    : []
  if (parts.length === 0 && r.structuredContent !== undefined) return JSON.stringify(r.structuredContent)
  return parts.join("\n")
}

const truncate = (text: string, max: number) =>
  text.length > max ? `${text.slice(0, max)}\n[… ${text.length - max} more characters cut]` : text

const describeError = (
  error: Errors.TetherError
): { readonly outcome: AgentEvent.ToolOutcome; readonly text: string } => {
  switch (error._tag) {
    case "ToolFailed": {
      const text = toolResultText(error.result)
      return { outcome: "error", text: `ERROR: ${text.length > 0 ? text : error.message}` }
    }
    case "OutcomeUnknown":
      return {
        outcome: "unknown",
        text:
          `OUTCOME UNKNOWN: ${error.message}. The request was sent but the connection was lost ` +
          "before the answer: it may or may not have run. It was not retried."
      }
    default:
      return { outcome: "error", text: `ERROR (${error._tag}): ${error.message}` }
  }
}

/**
 * Starts an agent on one session: loads it from the store (or starts it empty), and starts
 * watching the pool's connections. Lives as long as the scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options
): Effect.Effect<
  Agent,
  SessionStoreError,
  McpPool | LanguageModel.LanguageModel | SessionStore | Scope.Scope
> =>
  Effect.gen(function* () {
    const pool = yield* McpPool
    const model = yield* LanguageModel.LanguageModel
    const store = yield* SessionStore
    const scope = yield* Effect.scope
    const sessionId = options.sessionId
    const maxSteps = options.maxSteps ?? 20
    const system = options.system ?? DEFAULT_SYSTEM
    const toolsTimeout = Duration.decode(options.toolsTimeout ?? "5 seconds")
    let listedOnce = false
    const maxChars = options.maxToolResultChars ?? 16_000

    yield* Effect.ignore(store.prune)
    const stored = yield* store.load(sessionId)
    const now = yield* Clock.currentTimeMillis
    const state = yield* Ref.make<State>(
      Option.match(stored, {
        onNone: () => ({ createdAt: now, updatedAt: undefined, turns: 0, messages: [] }),
        onSome: (s) => ({
          createdAt: s.createdAt,
          updatedAt: s.updatedAt,
          turns: s.turns,
          messages: s.messages
        })
      })
    )
    const resumed = Option.isSome(stored)

    // --- events ---------------------------------------------------------------------------
    const hub = yield* Effect.acquireRelease(PubSub.unbounded<AgentEvent.AgentEvent>(), PubSub.shutdown)
    const seq = yield* Ref.make(0)
    const emit = (make: (common: { readonly seq: number; readonly at: number }) => AgentEvent.AgentEvent) =>
      Effect.gen(function* () {
        const at = yield* Clock.currentTimeMillis
        const n = yield* Ref.updateAndGet(seq, (x) => x + 1)
        yield* PubSub.publish(hub, make({ seq: n, at }))
      }).pipe(Effect.uninterruptible)

    // --- connection watchers --------------------------------------------------------------
    const watched = new Set<string>()
    const watch = (server: string) =>
      Effect.suspend(() => {
        if (watched.has(server)) return Effect.void
        watched.add(server)
        return Effect.scoped(
          Effect.flatMap(pool.connection(server), (conn) =>
            conn.changes.pipe(
              Stream.changesWith((a, b) => a === b),
              Stream.runForEach((s) =>
                emit(
                  (c) =>
                    new AgentEvent.ConnectionChanged({
                      ...c,
                      server,
                      state: s._tag,
                      detail: ConnectionState.describe(s)
                    })
                )
              )
            )
          )
        ).pipe(Effect.ignore, Effect.forkIn(scope), Effect.asVoid)
      })
    const watchActive = Effect.flatMap(pool.status, (all) =>
      Effect.forEach(
        all.filter((s) => s.tenant === undefined && s.state !== "Idle"),
        (s) => watch(s.server),
        { discard: true }
      )
    )
    yield* watchActive

    // --- one tool call ----------------------------------------------------------------------
    const runTool = (
      turn: number,
      call: Response.ToolCallParts<Record<string, ToolCatalog.AnyTool>>,
      catalog: ToolCatalog.Catalog
    ) =>
      Effect.gen(function* () {
        // What the model asked for (its name for the tool), and the pool's name for it.
        const requested =
          call.name === ToolCatalog.UnknownTool.name
            ? (call.params as { readonly name: string; readonly arguments: unknown })
            : { name: call.name, arguments: call.params }
        const target = catalog.resolve(requested.name)
        const shown = target ?? requested.name
        const args =
          typeof requested.arguments === "object" &&
          requested.arguments !== null &&
          !Array.isArray(requested.arguments)
            ? (requested.arguments as Record<string, unknown>)
            : {}
        const started = yield* Clock.currentTimeMillis
        yield* emit(
          (c) =>
            new AgentEvent.ToolCall({
              ...c,
              sessionId,
              turn,
              id: call.id,
              name: shown,
              arguments: args
            })
        )
        const result: {
          readonly outcome: AgentEvent.ToolOutcome
          readonly text: string
          readonly tag?: string
        } =
          target === undefined
            ? {
                outcome: "error",
                tag: "UnknownTool",
                text: `ERROR (UnknownTool): there is no tool ${JSON.stringify(requested.name)}; the tools are: ${catalog.names.join(", ") || "(none)"}`
              }
            : yield* pool
                .call(
                  target,
                  args,
                  options.callTimeout !== undefined ? { timeout: options.callTimeout } : undefined
                )
                .pipe(
                  Effect.match({
                    onSuccess: (r) => ({ outcome: "ok" as const, text: toolResultText(r) }),
                    onFailure: (e) => ({ ...describeError(e), tag: e._tag })
                  })
                )
        const text = truncate(result.text, maxChars)
        const ended = yield* Clock.currentTimeMillis
        yield* watchActive
        yield* emit(
          (c) =>
            new AgentEvent.ToolResult({
              ...c,
              sessionId,
              turn,
              id: call.id,
              name: shown,
              outcome: result.outcome,
              text,
              ...(result.tag !== undefined ? { errorTag: result.tag } : {}),
              durationMs: ended - started
            })
        )
        return {
          summary: { id: call.id, name: shown, outcome: result.outcome, text } as ToolCallSummary,
          part: Prompt.toolResultPart({
            id: call.id,
            name: requested.name,
            isFailure: result.outcome !== "ok",
            result: text,
            providerExecuted: false
          })
        }
      })

    // --- one turn ---------------------------------------------------------------------------
    const turnLock = yield* Effect.makeSemaphore(1)

    const send = (input: string): Effect.Effect<TurnResult, TurnFailed> =>
      turnLock.withPermits(1)(
        Effect.gen(function* () {
          const before = yield* Ref.get(state)
          const turn = before.turns + 1
          yield* emit((c) => new AgentEvent.TurnStarted({ ...c, sessionId, turn, input }))

          const entries = yield* pool
            .tools({ timeout: listedOnce ? Duration.min(toolsTimeout, Duration.seconds(1)) : toolsTimeout })
            .pipe(Effect.orElseSucceed(() => []))
          listedOnce = true
          yield* watchActive
          const catalog = ToolCatalog.fromCatalog(entries)

          const messages: Array<Prompt.Message> = [
            ...before.messages,
            Prompt.userMessage({ content: [Prompt.textPart({ text: input })] })
          ]
          const calls: Array<ToolCallSummary> = []
          let steps = 0
          let text = ""
          let outcome: "answer" | "step-limit" = "answer"

          const onRetry = (info: OpenAiCompat.RetryInfo) =>
            emit(
              (c) =>
                new AgentEvent.ModelRetry({
                  ...c,
                  sessionId,
                  turn,
                  attempt: info.attempt,
                  delayMs: info.delayMs,
                  error: info.error
                })
            )

          /** The turn's last event, with what it came to so far. */
          const turnEnded = (
            ended: AgentEvent.TurnEnded["outcome"],
            answer: string,
            error?: { readonly tag: string; readonly message: string }
          ) =>
            emit(
              (c) =>
                new AgentEvent.TurnEnded({
                  ...c,
                  sessionId,
                  turn,
                  outcome: ended,
                  text: answer,
                  steps,
                  toolCalls: calls.length,
                  ...(error !== undefined ? { error } : {})
                })
            )

          const failed = (error: AiError.AiError) =>
            Effect.gen(function* () {
              const message = error.message
              yield* turnEnded("error", "", { tag: error._tag, message })
              return yield* new TurnFailed({
                turn,
                errorTag: error._tag,
                message,
                toolCallsRun: calls.map((c) => `${c.name} (${c.outcome})`)
              })
            })

          while (true) {
            if (steps >= maxSteps) {
              outcome = "step-limit"
              text = `[stopped: the model was still calling tools after ${maxSteps} steps]`
              break
            }
            steps += 1
            const prompt = Prompt.fromMessages(
              system.length > 0 ? [Prompt.systemMessage({ content: system }), ...messages] : messages
            )
            const response = yield* model
              .generateText({ prompt, toolkit: catalog.toolkit, disableToolCallResolution: true })
              .pipe(
                Effect.provideService(OpenAiCompat.RetryObserver, { onRetry }),
                Effect.catchAll((e) => failed(e as AiError.AiError))
              )
            const toolCalls = response.toolCalls
            yield* emit(
              (c) =>
                new AgentEvent.ModelReply({
                  ...c,
                  sessionId,
                  turn,
                  step: steps,
                  text: response.text,
                  toolCalls: toolCalls.map((call) => ({
                    id: call.id,
                    name: call.providerName ?? call.name
                  })),
                  finishReason: response.finishReason,
                  model: options.model.label,
                  replay: options.model.replay
                })
            )
            messages.push(
              Prompt.assistantMessage({
                content: [
                  ...(response.text.length > 0 ? [Prompt.textPart({ text: response.text })] : []),
                  ...toolCalls.map((call) =>
                    call.name === ToolCatalog.UnknownTool.name
                      ? Prompt.toolCallPart({
                          id: call.id,
                          name: (call.params as { name: string }).name,
                          params: (call.params as { arguments: unknown }).arguments,
                          providerExecuted: false
                        })
                      : Prompt.toolCallPart({
                          id: call.id,
                          name: call.name,
                          params: call.params,
                          providerExecuted: false
                        })
                  )
                ]
              })
            )
            if (toolCalls.length === 0) {
              text = response.text
              break
            }
            const results = yield* Effect.forEach(toolCalls, (call) => runTool(turn, call, catalog))
            calls.push(...results.map((r) => r.summary))
            messages.push(Prompt.toolMessage({ content: results.map((r) => r.part) }))
          }

          // Commit: the turn is in the history, then on disk.
          const next: State = { ...before, turns: turn, messages }
          yield* Ref.set(state, next)
          const saved = yield* store
            .save({ id: sessionId, createdAt: before.createdAt, turns: turn, messages })
            .pipe(Effect.either)
          if (saved._tag === "Right") yield* Ref.set(state, { ...next, updatedAt: saved.right.updatedAt })
          yield* turnEnded(outcome, text)
          return {
            turn,
            outcome,
            text,
            steps,
            toolCalls: calls,
            ...(saved._tag === "Left" ? { saveError: saved.left.message } : {})
          }
        })
      )

    const reset = turnLock.withPermits(1)(
      Effect.gen(function* () {
        const before = yield* Ref.get(state)
        const now = yield* Clock.currentTimeMillis
        yield* Ref.set(state, { createdAt: now, updatedAt: before.updatedAt, turns: 0, messages: [] })
        const saved = yield* store.save({ id: sessionId, createdAt: now, turns: 0, messages: [] })
        yield* Ref.update(state, (s) => ({ ...s, updatedAt: saved.updatedAt }))
        yield* emit((c) => new AgentEvent.SessionReset({ ...c, sessionId }))
      })
    )

    return {
      sessionId,
      model: options.model,
      maxSteps,
      send,
      reset,
      session: Effect.map(Ref.get(state), (s) => ({
        id: sessionId,
        turns: s.turns,
        messages: s.messages.length,
        createdAt: s.createdAt,
        updatedAt: s.updatedAt,
        resumed,
        location: store.location,
        ttl: store.ttl
      })),
      history: Effect.map(Ref.get(state), (s) => s.messages),
      tools: pool.tools({ timeout: toolsTimeout }).pipe(Effect.orElseSucceed(() => [])),
      status: pool.status,
      subscribe: Stream.fromPubSub(hub, { scoped: true }),
      events: Stream.fromPubSub(hub),
      lastSeq: Ref.get(seq)
    }
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options
): Layer.Layer<Agent, SessionStoreError, McpPool | LanguageModel.LanguageModel | SessionStore> =>
  Layer.scoped(Agent, make(options))
