/**
 * A `LanguageModel` (from @effect/ai) for any OpenAI-compatible Chat Completions endpoint:
 * OpenAI, Ollama, vLLM, llama.cpp server, LM Studio, OpenRouter… It POSTs
 * `{baseUrl}/chat/completions` with the conversation and the offered tools through
 * @effect/platform's `HttpClient`, and turns the reply into @effect/ai response parts.
 *
 * Why not @effect/ai-openai: its `OpenAiLanguageModel` (0.41) speaks only the Responses API
 * (`POST /responses`), which chat-completions-only servers (llama.cpp, LM Studio, older
 * Ollama) do not have. This provider is small and speaks the API all of them share.
 *
 * - Transient failures (connect errors, per-attempt timeouts, 408/409/425/429/500/502/503/
 *   504) are retried with a jittered, capped exponential `Schedule` bounded by `maxRetries`;
 *   a `Retry-After` header (seconds or HTTP date) lengthens the wait. Other statuses fail at
 *   once with `HttpResponseError`.
 * - A reply that is not JSON, has no `choices`, or has a tool call whose `arguments` are not
 *   a JSON object fails with `MalformedOutput`, saying what was wrong.
 * - The API key is `Redacted`: it goes into the `Authorization` header and nowhere else
 *   (errors carry the URL and status, never the headers we sent).
 *
 * Environment (see {@link config}): `TETHER_LLM_BASE_URL` (default
 * `https://api.openai.com/v1`), `TETHER_LLM_API_KEY`, `TETHER_LLM_MODEL`,
 * `TETHER_LLM_MAX_RETRIES` (4), `TETHER_LLM_TIMEOUT_MS` (120000), `TETHER_LLM_RETRY_BASE_MS` (500).
 *
 * @since 0.1.0
 */
import { AiError, LanguageModel, type Prompt, type Response, type Tool } from "@effect/ai"
import { HttpClient, HttpClientRequest, type HttpClientResponse } from "@effect/platform"
import {
  Clock,
  Config,
  type ConfigError,
  Context,
  Duration,
  Effect,
  Layer,
  Option,
  ParseResult,
  Redacted,
  Schedule,
  ScheduleDecision,
  ScheduleIntervals,
  Schema,
  Stream
} from "effect"
import { excerpt } from "../internal/excerpt.js"
import * as ToolCatalog from "./ToolCatalog.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** E.g. `https://api.openai.com/v1`, `http://localhost:11434/v1`. */
  readonly baseUrl: string
  readonly model: string
  readonly apiKey?: Redacted.Redacted | undefined
  /** Retries of a transient failure (default 4). */
  readonly maxRetries?: number | undefined
  /** The first retry delay, doubled each time (default 500 ms). */
  readonly retryBaseDelay?: Duration.DurationInput | undefined
  /** The longest wait between attempts, `Retry-After` included (default 30 s). */
  readonly maxRetryDelay?: Duration.DurationInput | undefined
  /** Deadline of one attempt (default 120 s). */
  readonly timeout?: Duration.DurationInput | undefined
  readonly temperature?: number | undefined
}

/**
 * One retry about to happen, for whoever wants to show it.
 *
 * @since 0.1.0
 * @category models
 */
export interface RetryInfo {
  /** 1 for the first retry. */
  readonly attempt: number
  readonly delayMs: number
  readonly error: string
}

/**
 * Told about every retry of a model request. The agent sets it around its requests to
 * turn retries into events; by default nobody listens.
 *
 * @since 0.1.0
 * @category references
 */
export class RetryObserver extends Context.Reference<RetryObserver>()(
  "tether/agent/OpenAiCompat/RetryObserver",
  {
    defaultValue: (): { readonly onRetry: (info: RetryInfo) => Effect.Effect<void> } => ({
      onRetry: () => Effect.void
    })
  }
) {}

// ---------------------------------------------------------------------------
// The wire format
// ---------------------------------------------------------------------------

const WireToolCall = Schema.Struct({
  id: Schema.optional(Schema.NullOr(Schema.String)),
  type: Schema.optional(Schema.NullOr(Schema.String)),
  function: Schema.Struct({
    name: Schema.String,
    arguments: Schema.optional(Schema.NullOr(Schema.Union(Schema.String, Schema.Object)))
  })
})

const WireCompletion = Schema.Struct({
  id: Schema.optional(Schema.NullOr(Schema.String)),
  model: Schema.optional(Schema.NullOr(Schema.String)),
  choices: Schema.Array(
    Schema.Struct({
      message: Schema.Struct({
        content: Schema.optional(Schema.NullOr(Schema.String)),
        reasoning_content: Schema.optional(Schema.NullOr(Schema.String)),
        tool_calls: Schema.optional(Schema.NullOr(Schema.Array(WireToolCall)))
      }),
      finish_reason: Schema.optional(Schema.NullOr(Schema.String))
    })
  ),
  usage: Schema.optional(
    Schema.NullOr(
      Schema.Struct({
        prompt_tokens: Schema.optional(Schema.NullOr(Schema.Number)),
        completion_tokens: Schema.optional(Schema.NullOr(Schema.Number)),
        total_tokens: Schema.optional(Schema.NullOr(Schema.Number))
      })
    )
  )
})

const WireChunk = Schema.Struct({
  choices: Schema.optional(
    Schema.NullOr(
      Schema.Array(
        Schema.Struct({
          delta: Schema.optional(
            Schema.NullOr(
              Schema.Struct({
                content: Schema.optional(Schema.NullOr(Schema.String)),
                tool_calls: Schema.optional(
                  Schema.NullOr(
                    Schema.Array(
                      Schema.Struct({
                        index: Schema.optional(Schema.Number),
                        id: Schema.optional(Schema.NullOr(Schema.String)),
                        function: Schema.optional(
                          Schema.NullOr(
                            Schema.Struct({
                              name: Schema.optional(Schema.NullOr(Schema.String)),
                              arguments: Schema.optional(Schema.NullOr(Schema.String))
                            })
                          )
                        )
                      })
                    )
                  )
                )
              })
            )
          ),
          finish_reason: Schema.optional(Schema.NullOr(Schema.String))
        })
      )
    )
  ),
  usage: WireCompletion.fields.usage
})

type WireMessage =
  | { readonly role: "system" | "user"; readonly content: string }
  | {
      readonly role: "assistant"
      readonly content: string | null
      readonly tool_calls?: ReadonlyArray<{
        readonly id: string
        readonly type: "function"
        readonly function: { readonly name: string; readonly arguments: string }
      }>
    }
  | { readonly role: "tool"; readonly tool_call_id: string; readonly content: string }

const stringify = (value: unknown): string => {
  if (typeof value === "string") return value
  try {
    return JSON.stringify(value) ?? String(value)
  } catch {
    return String(value)
  }
}

/**
 * The Chat Completions `messages` for a prompt. Reasoning parts are not sent back; file
 * parts become a placeholder (this provider sends text only).
 *
 * @since 0.1.0
 * @category utils
 */
export const toMessages = (prompt: Prompt.Prompt): ReadonlyArray<WireMessage> => {
  const messages: Array<WireMessage> = []
  for (const message of prompt.content) {
    switch (message.role) {
      case "system":
        messages.push({ role: "system", content: message.content })
        break
      case "user":
        messages.push({
          role: "user",
          content: message.content
            .map((part) => (part.type === "text" ? part.text : `[file ${part.fileName ?? part.mediaType}]`))
            .join("\n")
        })
        break
      case "assistant": {
        const text = message.content.flatMap((part) => (part.type === "text" ? [part.text] : [])).join("")
        const calls = message.content.flatMap((part) =>
          part.type === "tool-call" && !part.providerExecuted
            ? [
                {
                  id: part.id,
                  type: "function" as const,
                  function: { name: part.name, arguments: stringify(part.params ?? {}) }
                }
              ]
            : []
        )
        messages.push(
          calls.length > 0
            ? { role: "assistant", content: text.length > 0 ? text : null, tool_calls: calls }
            : { role: "assistant", content: text }
        )
        break
      }
      case "tool":
        for (const part of message.content) {
          const text = stringify(part.result)
          messages.push({
            role: "tool",
            tool_call_id: part.id,
            content: part.isFailure && typeof part.result !== "string" ? `Error: ${text}` : text
          })
        }
        break
    }
  }
  return messages
}

const toolChoiceOf = (choice: LanguageModel.ProviderOptions["toolChoice"]): unknown => {
  if (typeof choice === "string") return choice
  if ("tool" in choice) return { type: "function", function: { name: choice.tool } }
  return choice.mode === "required" ? "required" : "auto"
}

/**
 * The request body for a prompt and its tools.
 *
 * @since 0.1.0
 * @category utils
 */
export const requestBody = (
  options: Pick<Options, "model" | "temperature">,
  provider: Pick<LanguageModel.ProviderOptions, "prompt" | "tools" | "toolChoice">,
  stream: boolean
): Record<string, unknown> => {
  const tools = ToolCatalog.offered(provider.tools)
  return {
    model: options.model,
    messages: toMessages(provider.prompt),
    ...(options.temperature !== undefined ? { temperature: options.temperature } : {}),
    ...(tools.length > 0
      ? {
          tools: tools.map((tool) => ({
            type: "function",
            function: {
              name: tool.name,
              ...(tool.description !== undefined ? { description: tool.description } : {}),
              parameters: ToolCatalog.jsonSchemaOf(tool)
            }
          })),
          tool_choice: toolChoiceOf(provider.toolChoice)
        }
      : {}),
    ...(stream ? { stream: true, stream_options: { include_usage: true } } : {})
  }
}

const finishReasonOf = (reason: string | null | undefined, hasCalls: boolean): Response.FinishReason => {
  switch (reason) {
    case "stop":
      return hasCalls ? "tool-calls" : "stop"
    case "length":
      return "length"
    case "tool_calls":
    case "function_call":
      return "tool-calls"
    case "content_filter":
      return "content-filter"
    case null:
    case undefined:
      return hasCalls ? "tool-calls" : "unknown"
    default:
      return "other"
  }
}

const usageOf = (usage: (typeof WireCompletion.Type)["usage"]) => ({
  inputTokens: usage?.prompt_tokens ?? undefined,
  outputTokens: usage?.completion_tokens ?? undefined,
  totalTokens: usage?.total_tokens ?? undefined
})

// ---------------------------------------------------------------------------
// Errors and retries
// ---------------------------------------------------------------------------

const MODULE = "OpenAiCompat"

/** One failed attempt: the error to surface, and whether another attempt may help. */
class AttemptFailed {
  readonly _tag = "AttemptFailed"
  constructor(
    readonly error: AiError.AiError,
    readonly transient: boolean,
    readonly retryAfterMs: number | undefined
  ) {}
}

const TRANSIENT_STATUS: ReadonlySet<number> = new Set([408, 409, 425, 429, 500, 502, 503, 504])

/** `Retry-After` in ms: delta seconds or an HTTP date. */
export const parseRetryAfter = (value: string | undefined, now: number): number | undefined => {
  if (value === undefined || value.trim() === "") return undefined
  const seconds = Number(value)
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000)
  const date = Date.parse(value)
  return Number.isNaN(date) ? undefined : Math.max(0, date - now)
}

const requestDetails = (url: string) => ({
  method: "POST" as const,
  url,
  urlParams: [],
  hash: Option.none<string>(),
  headers: { "content-type": "application/json" }
})

const malformed = (method: string, description: string, cause?: unknown) =>
  new AttemptFailed(
    new AiError.MalformedOutput({
      module: MODULE,
      method,
      description,
      ...(cause !== undefined ? { cause } : {})
    }),
    false,
    undefined
  )

/** The innermost useful message of a transport failure (`connect ECONNREFUSED 127.0.0.1:1`). */
const describeCause = (cause: unknown): string => {
  const messages: Array<string> = []
  let current: unknown = cause
  for (let depth = 0; depth < 4 && current instanceof Error; depth++) {
    const code = (current as { readonly code?: unknown }).code
    messages.push(
      typeof code === "string" && !current.message.includes(code)
        ? `${current.message} (${code})`
        : current.message
    )
    current = current.cause
  }
  return messages.length > 0 ? messages.join(": ") : "the request could not be sent"
}

/** What the provider sent, for an error: bounded, with secrets it may echo masked. */
const snippet = (text: string, max = 300, secrets?: ReadonlyArray<string>) => excerpt(text, { max, secrets })

/**
 * The retry policy: jittered exponential from `base`, capped at `max`, at least the
 * server's `Retry-After`, at most `maxRetries` times, only for transient failures.
 */
const retryPolicy = (maxRetries: number, base: Duration.Duration, max: Duration.Duration) =>
  Schedule.exponential(base, 2).pipe(
    Schedule.jittered,
    Schedule.intersect(
      Schedule.identity<AttemptFailed>().pipe(
        Schedule.addDelay((failed) => Duration.millis(failed.retryAfterMs ?? 0))
      )
    ),
    Schedule.modifyDelay((_, delay) => Duration.min(delay, max)),
    Schedule.intersect(Schedule.recurs(maxRetries)),
    Schedule.whileInput((failed: AttemptFailed) => failed.transient)
  )

// ---------------------------------------------------------------------------
// The provider
// ---------------------------------------------------------------------------

/**
 * Builds the `LanguageModel` service.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<LanguageModel.Service, never, HttpClient.HttpClient> =>
  Effect.gen(function* () {
    const client = yield* HttpClient.HttpClient
    const url = `${options.baseUrl.replace(/\/+$/, "")}/chat/completions`
    const maxRetries = options.maxRetries ?? 4
    const base = Duration.decode(options.retryBaseDelay ?? "500 millis")
    const maxDelay = Duration.decode(options.maxRetryDelay ?? "30 seconds")
    const timeout = Duration.decode(options.timeout ?? "120 seconds")

    // The provider may echo the key back in an error body (OpenAI does, partly masked).
    const secrets = options.apiKey !== undefined ? [Redacted.value(options.apiKey)] : []
    const baseRequest = HttpClientRequest.post(url).pipe(
      HttpClientRequest.acceptJson,
      options.apiKey !== undefined
        ? HttpClientRequest.bearerToken(Redacted.value(options.apiKey))
        : (request) => request
    )

    /** Sends the request; a non-2xx status becomes an `AttemptFailed`. */
    const send = (method: string, body: Record<string, unknown>) =>
      Effect.gen(function* () {
        const response = yield* client.execute(HttpClientRequest.bodyUnsafeJson(baseRequest, body)).pipe(
          Effect.mapError(
            (error) =>
              new AttemptFailed(
                error._tag === "RequestError"
                  ? new AiError.HttpRequestError({
                      module: MODULE,
                      method,
                      reason: error.reason,
                      // Built by hand: the platform error holds the request, Authorization included.
                      request: requestDetails(url),
                      description: error.description ?? describeCause(error.cause)
                    })
                  : new AiError.UnknownError({ module: MODULE, method, description: error.message }),
                error._tag === "RequestError" && error.reason === "Transport",
                undefined
              )
          ),
          Effect.timeoutFail({
            duration: timeout,
            onTimeout: () =>
              new AttemptFailed(
                new AiError.HttpRequestError({
                  module: MODULE,
                  method,
                  reason: "Transport",
                  request: requestDetails(url),
                  description: `no answer within ${Duration.format(timeout)}`
                }),
                true,
                undefined
              )
          })
        )
        if (response.status >= 200 && response.status < 300) return response
        const text = yield* Effect.orElseSucceed(response.text, () => "")
        const now = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
        const retryAfterMs = parseRetryAfter(response.headers["retry-after"], now)
        return yield* Effect.fail(
          new AttemptFailed(
            new AiError.HttpResponseError({
              module: MODULE,
              method,
              reason: "StatusCode",
              request: requestDetails(url),
              response: { status: response.status, headers: {} },
              body: snippet(text, 300, secrets),
              description: `the model server answered ${response.status}${
                response.status === 401 || response.status === 403 ? " (check TETHER_LLM_API_KEY)" : ""
              }${text.length > 0 ? `: ${snippet(text, 300, secrets)}` : ""}`
            }),
            TRANSIENT_STATUS.has(response.status),
            retryAfterMs
          )
        )
      })

    /** Runs one attempt under the retry policy, telling the observer about each retry. */
    const withRetries = <A>(method: string, attempt: Effect.Effect<A, AttemptFailed>) =>
      Effect.gen(function* () {
        const observer = yield* RetryObserver
        let retries = 0
        return yield* attempt.pipe(
          Effect.retry(
            retryPolicy(maxRetries, base, maxDelay).pipe(
              Schedule.zipWith(Schedule.identity<AttemptFailed>(), (_, failed) => failed),
              Schedule.onDecision((failed, decision) =>
                ScheduleDecision.isDone(decision)
                  ? Effect.void
                  : Effect.flatMap(Clock.currentTimeMillis, (now) => {
                      retries += 1
                      return observer.onRetry({
                        attempt: retries,
                        delayMs: Math.max(0, ScheduleIntervals.start(decision.intervals) - now),
                        error: failed.error.message.split("\n")[0] ?? failed.error._tag
                      })
                    })
              )
            )
          ),
          Effect.mapError((failed) => failed.error),
          Effect.withSpan(`OpenAiCompat.${method}`, { attributes: { url, model: options.model } })
        )
      })

    const parseCompletion = (method: string, text: string) =>
      Effect.gen(function* () {
        if (text.trim() === "") return yield* Effect.fail(malformed(method, "the reply body is empty"))
        const json = yield* Effect.try({
          try: (): unknown => JSON.parse(text),
          catch: (e) =>
            malformed(
              method,
              `the reply is not JSON (${e instanceof Error ? e.message : String(e)}): ${snippet(text, 200)}`
            )
        })
        if (typeof json === "object" && json !== null && "error" in json) {
          return yield* Effect.fail(
            malformed(method, `the reply is an error object: ${snippet(stringify(json.error))}`)
          )
        }
        const completion = yield* Schema.decodeUnknown(WireCompletion)(json).pipe(
          Effect.mapError((error) =>
            malformed(
              method,
              `the reply is not a chat completion: ${ParseResult.TreeFormatter.formatErrorSync(error)}`,
              error
            )
          )
        )
        const choice = completion.choices[0]
        if (choice === undefined) {
          return yield* Effect.fail(malformed(method, "the reply has no choices"))
        }
        return { completion, choice }
      })

    const parseArguments = (method: string, name: string, raw: unknown) =>
      Effect.gen(function* () {
        if (raw === undefined || raw === null || raw === "") return {}
        const value =
          typeof raw === "string"
            ? yield* Effect.try({
                try: (): unknown => JSON.parse(raw),
                catch: () =>
                  malformed(method, `the arguments of tool call ${name} are not JSON: ${snippet(raw, 200)}`)
              })
            : raw
        if (typeof value !== "object" || value === null || Array.isArray(value)) {
          return yield* Effect.fail(
            malformed(
              method,
              `the arguments of tool call ${name} are not a JSON object: ${snippet(stringify(value), 200)}`
            )
          )
        }
        return value
      })

    const toolCallPart = (
      tools: ReadonlyArray<Tool.Any>,
      id: string,
      name: string,
      params: unknown
    ): Response.ToolCallPartEncoded => {
      const mapped = ToolCatalog.toolCallFor(tools, name, params)
      return {
        type: "tool-call",
        id,
        name: mapped.name,
        params: mapped.params,
        providerExecuted: false,
        ...(mapped.providerName !== undefined ? { providerName: mapped.providerName } : {})
      }
    }

    const generateText = (provider: LanguageModel.ProviderOptions) =>
      withRetries(
        "generateText",
        Effect.gen(function* () {
          const response = yield* send("generateText", requestBody(options, provider, false))
          const text = yield* response.text.pipe(
            Effect.mapError(
              () =>
                new AttemptFailed(
                  new AiError.HttpRequestError({
                    module: MODULE,
                    method: "generateText",
                    reason: "Transport",
                    request: requestDetails(url),
                    description: "the connection broke while reading the reply"
                  }),
                  true,
                  undefined
                )
            ),
            Effect.timeoutFail({
              duration: timeout,
              onTimeout: () =>
                new AttemptFailed(
                  new AiError.HttpRequestError({
                    module: MODULE,
                    method: "generateText",
                    reason: "Transport",
                    request: requestDetails(url),
                    description: `the reply body did not arrive within ${Duration.format(timeout)}`
                  }),
                  true,
                  undefined
                )
            })
          )
          const { choice, completion } = yield* parseCompletion("generateText", text)
          const parts: Array<Response.PartEncoded> = []
          if (choice.message.reasoning_content) {
            parts.push({ type: "reasoning", text: choice.message.reasoning_content })
          }
          if (choice.message.content) parts.push({ type: "text", text: choice.message.content })
          const calls = choice.message.tool_calls ?? []
          for (const [index, call] of calls.entries()) {
            const params = yield* parseArguments("generateText", call.function.name, call.function.arguments)
            parts.push(toolCallPart(provider.tools, call.id ?? `call_${index}`, call.function.name, params))
          }
          parts.push({
            type: "finish",
            reason: finishReasonOf(choice.finish_reason, calls.length > 0),
            usage: usageOf(completion.usage)
          })
          return parts
        })
      )

    const streamText = (provider: LanguageModel.ProviderOptions) =>
      Stream.unwrap(
        Effect.map(
          withRetries("streamText", send("streamText", requestBody(options, provider, true))),
          (response) => streamParts(provider, response)
        )
      )

    const streamParts = (
      provider: LanguageModel.ProviderOptions,
      response: HttpClientResponse.HttpClientResponse
    ): Stream.Stream<Response.StreamPartEncoded, AiError.AiError> => {
      const calls = new Map<number, { id: string; name: string; args: string }>()
      let textStarted = false
      let finish: string | null | undefined
      let usage: (typeof WireCompletion.Type)["usage"]
      const fail = (description: string) =>
        new AiError.MalformedOutput({ module: MODULE, method: "streamText", description })
      const onData = (
        data: string
      ): Effect.Effect<ReadonlyArray<Response.StreamPartEncoded>, AiError.AiError> =>
        Effect.gen(function* () {
          if (data === "[DONE]") return []
          const json = yield* Effect.try({
            try: (): unknown => JSON.parse(data),
            catch: () => fail(`a stream event is not JSON: ${snippet(data, 200)}`)
          })
          const chunk = yield* Schema.decodeUnknown(WireChunk)(json).pipe(
            Effect.mapError((e) =>
              fail(
                `a stream event is not a chat completion chunk: ${ParseResult.TreeFormatter.formatErrorSync(e)}`
              )
            )
          )
          if (chunk.usage) usage = chunk.usage
          const out: Array<Response.StreamPartEncoded> = []
          for (const choice of chunk.choices ?? []) {
            if (choice.finish_reason) finish = choice.finish_reason
            const delta = choice.delta
            if (delta?.content) {
              if (!textStarted) {
                textStarted = true
                out.push({ type: "text-start", id: "text" })
              }
              out.push({ type: "text-delta", id: "text", delta: delta.content })
            }
            for (const call of delta?.tool_calls ?? []) {
              const index = call.index ?? 0
              const current = calls.get(index) ?? { id: call.id ?? `call_${index}`, name: "", args: "" }
              if (call.id) current.id = call.id
              if (call.function?.name) current.name += call.function.name
              if (call.function?.arguments) current.args += call.function.arguments
              calls.set(index, current)
            }
          }
          return out
        })
      const end = Effect.suspend(() =>
        Effect.gen(function* () {
          const out: Array<Response.StreamPartEncoded> = []
          if (textStarted) out.push({ type: "text-end", id: "text" })
          for (const call of calls.values()) {
            const params = yield* parseArguments("streamText", call.name, call.args).pipe(
              Effect.mapError((failed) => failed.error)
            )
            out.push(toolCallPart(provider.tools, call.id, call.name, params))
          }
          out.push({ type: "finish", reason: finishReasonOf(finish, calls.size > 0), usage: usageOf(usage) })
          return out
        })
      )
      return response.stream.pipe(
        Stream.mapError(
          () =>
            new AiError.HttpRequestError({
              module: MODULE,
              method: "streamText",
              reason: "Transport",
              request: requestDetails(url),
              description: "the connection broke while streaming the reply"
            })
        ),
        Stream.decodeText(),
        Stream.splitLines,
        Stream.filter((line) => line.startsWith("data:")),
        Stream.mapEffect((line) => onData(line.slice(5).trim())),
        Stream.flattenIterables,
        Stream.concat(Stream.flattenIterables(Stream.fromEffect(end)))
      )
    }

    return yield* LanguageModel.make({ generateText, streamText })
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options
): Layer.Layer<LanguageModel.LanguageModel, never, HttpClient.HttpClient> =>
  Layer.effect(LanguageModel.LanguageModel, make(options))

const DEFAULT_BASE_URL = "https://api.openai.com/v1"

/**
 * The options from the environment: `TETHER_LLM_BASE_URL`, `TETHER_LLM_API_KEY` (blank =
 * none), `TETHER_LLM_MODEL` (required unless `model` is given), `TETHER_LLM_MAX_RETRIES`,
 * `TETHER_LLM_TIMEOUT_MS`, `TETHER_LLM_RETRY_BASE_MS`.
 *
 * @since 0.1.0
 * @category config
 */
export const config = (overrides?: { readonly model?: string | undefined }): Config.Config<Options> =>
  Config.all({
    baseUrl: Config.string("TETHER_LLM_BASE_URL").pipe(
      Config.withDefault(DEFAULT_BASE_URL),
      Config.map((url) => (url.trim() === "" ? DEFAULT_BASE_URL : url.trim()))
    ),
    apiKey: Config.redacted("TETHER_LLM_API_KEY").pipe(
      Config.option,
      Config.map(Option.filter((key) => Redacted.value(key).trim() !== "")),
      Config.map(Option.getOrUndefined)
    ),
    model:
      overrides?.model !== undefined
        ? Config.succeed(overrides.model)
        : Config.string("TETHER_LLM_MODEL").pipe(
            Config.map((model) => model.trim()),
            Config.validate({ message: "TETHER_LLM_MODEL is blank", validation: (model) => model.length > 0 })
          ),
    maxRetries: Config.integer("TETHER_LLM_MAX_RETRIES").pipe(Config.withDefault(4)),
    timeout: Config.integer("TETHER_LLM_TIMEOUT_MS").pipe(
      Config.withDefault(120_000),
      Config.map(Duration.millis)
    ),
    retryBaseDelay: Config.integer("TETHER_LLM_RETRY_BASE_MS").pipe(
      Config.withDefault(500),
      Config.map(Duration.millis)
    )
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (overrides?: {
  readonly model?: string | undefined
}): Layer.Layer<LanguageModel.LanguageModel, ConfigError.ConfigError, HttpClient.HttpClient> =>
  Layer.unwrapEffect(Effect.map(config(overrides), layer))
