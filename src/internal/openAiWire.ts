/**
 * The Chat Completions wire format: the request body built from an @effect/ai prompt and
 * tools, the Schemas of a completion and of a streamed chunk, finish reasons and usage.
 *
 * @internal
 */
import type { LanguageModel, Prompt, Response } from "@effect/ai"
import { Schema } from "effect"
import * as ToolCatalog from "../agent/ToolCatalog.js"
import type { Options } from "./openAiConfig.js"

const WireToolCall = Schema.Struct({
  id: Schema.optional(Schema.NullOr(Schema.String)),
  type: Schema.optional(Schema.NullOr(Schema.String)),
  function: Schema.Struct({
    name: Schema.String,
    arguments: Schema.optional(Schema.NullOr(Schema.Union(Schema.String, Schema.Object)))
  })
})

/** @internal */
export const WireCompletion = Schema.Struct({
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

/** @internal */
export const WireChunk = Schema.Struct({
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

/** @internal */
export type WireMessage =
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

/** @internal */
export const stringify = (value: unknown): string => {
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
 * @internal
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
 * @internal
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

/** @internal */
export const finishReasonOf = (
  reason: string | null | undefined,
  hasCalls: boolean
): Response.FinishReason => {
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

/** @internal */
export const usageOf = (usage: (typeof WireCompletion.Type)["usage"]) => ({
  inputTokens: usage?.prompt_tokens ?? undefined,
  outputTokens: usage?.completion_tokens ?? undefined,
  totalTokens: usage?.total_tokens ?? undefined
})
