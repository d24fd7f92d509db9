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
import { AiError, LanguageModel, type Response, type Tool } from "@effect/ai"
import { Sse } from "@effect/experimental"
import type { HttpClient, HttpClientResponse } from "@effect/platform"
import { type ConfigError, Duration, Effect, Layer, ParseResult, Schema, Stream } from "effect"
import * as internalClient from "../internal/openAiClient.js"
import * as internalConfig from "../internal/openAiConfig.js"
import { malformed, MODULE, snippet, transportError, transportFailed } from "../internal/openAiError.js"
import {
  finishReasonOf,
  requestBody,
  stringify,
  usageOf,
  WireChunk,
  WireCompletion
} from "../internal/openAiWire.js"
import * as ToolCatalog from "./ToolCatalog.js"

/**
 * @since 0.1.0
 * @category models
 */
export type Options = internalConfig.Options

/**
 * One retry about to happen, for whoever wants to show it.
 *
 * @since 0.1.0
 * @category models
 */
export type RetryInfo = internalClient.RetryInfo

/**
 * Told about every retry of a model request. The agent sets it around its requests to
 * turn retries into events; by default nobody listens.
 *
 * @since 0.1.0
 * @category references
 */
export { RetryObserver } from "../internal/openAiClient.js"

/**
 * The Chat Completions `messages` for a prompt, and the request body for a prompt and its
 * tools.
 *
 * @since 0.1.0
 * @category utils
 */
export { requestBody, toMessages } from "../internal/openAiWire.js"

/**
 * The options from the environment: `TETHER_LLM_BASE_URL`, `TETHER_LLM_API_KEY` (blank =
 * none), `TETHER_LLM_MODEL` (required unless `model` is given), `TETHER_LLM_MAX_RETRIES`,
 * `TETHER_LLM_TIMEOUT_MS`, `TETHER_LLM_RETRY_BASE_MS`.
 *
 * @since 0.1.0
 * @category config
 */
export const config = internalConfig.config

/**
 * Builds the `LanguageModel` service.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<LanguageModel.Service, never, HttpClient.HttpClient> =>
  Effect.gen(function* () {
    const { send, timeout, url, withRetries } = yield* internalClient.makeClient(options)

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
            Effect.mapError(() =>
              transportFailed("generateText", url, "the connection broke while reading the reply")
            ),
            Effect.timeoutFail({
              duration: timeout,
              onTimeout: () =>
                transportFailed(
                  "generateText",
                  url,
                  `the reply body did not arrive within ${Duration.format(timeout)}`
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
        Stream.mapError(() =>
          transportError("streamText", url, "the connection broke while streaming the reply")
        ),
        Stream.decodeText(),
        // Server-sent events (multi-line data, comments, ids) by @effect/experimental's parser.
        Stream.pipeThroughChannel(Sse.makeChannel()),
        Stream.mapEffect((event) => onData(event.data.trim())),
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

/**
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (overrides?: {
  readonly model?: string | undefined
}): Layer.Layer<LanguageModel.LanguageModel, ConfigError.ConfigError, HttpClient.HttpClient> =>
  Layer.unwrapEffect(Effect.map(config(overrides), layer))
