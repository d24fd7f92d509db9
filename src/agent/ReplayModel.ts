/**
 * A scripted `LanguageModel` that replays recorded model replies, for demos and offline
 * runs (`--model scripted:FILE`). The file is a JSON array; each request to the model takes
 * the next reply:
 *
 * ```json
 * [
 *   { "toolCalls": [{ "name": "fixture__echo", "arguments": { "text": "hi" } }] },
 *   { "text": "The server echoed: hi" }
 * ]
 * ```
 *
 * A reply may hold both `text` and `toolCalls`. The replies are replayed in order whatever
 * the prompt says (it is a recording, not a model); a run that needs more replies than the
 * file holds fails with a clear error. The position is per process: a resumed session
 * starts the recording again from the top.
 *
 * @since 0.1.0
 */
import { AiError, LanguageModel, type Response } from "@effect/ai"
import { FileSystem } from "@effect/platform"
import { Effect, Layer, ParseResult, Ref, Schema, Stream } from "effect"
import * as ToolCatalog from "./ToolCatalog.js"

/**
 * One recorded reply.
 *
 * @since 0.1.0
 * @category models
 */
export const Reply = Schema.Struct({
  text: Schema.optional(Schema.String),
  toolCalls: Schema.optional(
    Schema.Array(
      Schema.Struct({
        name: Schema.String,
        arguments: Schema.optionalWith(Schema.Record({ key: Schema.String, value: Schema.Unknown }), {
          default: () => ({})
        })
      })
    )
  )
}).pipe(
  Schema.filter(
    (reply) =>
      reply.text !== undefined ||
      (reply.toolCalls !== undefined && reply.toolCalls.length > 0) ||
      'a reply needs "text" or a non-empty "toolCalls"'
  )
)

/**
 * @since 0.1.0
 * @category models
 */
export type Reply = typeof Reply.Type

/**
 * The recording: a JSON array of replies.
 *
 * @since 0.1.0
 * @category models
 */
export const Recording = Schema.Array(Reply)

/**
 * The recording could not be read or is not valid.
 *
 * @since 0.1.0
 * @category errors
 */
export class RecordingError extends Schema.TaggedError<RecordingError>()("RecordingError", {
  path: Schema.String,
  message: Schema.String
}) {}

/**
 * A replaying `LanguageModel` over `replies`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (replies: ReadonlyArray<Reply>): Effect.Effect<LanguageModel.Service> =>
  Effect.gen(function* () {
    const position = yield* Ref.make(0)

    const next = Effect.flatMap(
      Ref.getAndUpdate(position, (n) => n + 1),
      (n): Effect.Effect<readonly [number, Reply], AiError.AiError> => {
        const reply = replies[n]
        return reply === undefined
          ? Effect.fail(
              new AiError.UnknownError({
                module: "ReplayModel",
                method: "generateText",
                description: `the recording is exhausted: it holds ${replies.length} replies and request ${n + 1} needs another`
              })
            )
          : Effect.succeed([n, reply] as const)
      }
    )

    const partsOf = (
      provider: LanguageModel.ProviderOptions,
      n: number,
      reply: Reply
    ): Array<Response.PartEncoded> => {
      const parts: Array<Response.PartEncoded> = []
      if (reply.text !== undefined && reply.text.length > 0) parts.push({ type: "text", text: reply.text })
      const calls = reply.toolCalls ?? []
      for (const [k, call] of calls.entries()) {
        const mapped = ToolCatalog.toolCallFor(provider.tools, call.name, call.arguments)
        parts.push({
          type: "tool-call",
          id: `replay_${n + 1}_${k + 1}`,
          name: mapped.name,
          params: mapped.params,
          providerExecuted: false,
          ...(mapped.providerName !== undefined ? { providerName: mapped.providerName } : {})
        })
      }
      parts.push({
        type: "finish",
        reason: calls.length > 0 ? "tool-calls" : "stop",
        usage: { inputTokens: undefined, outputTokens: undefined, totalTokens: undefined }
      })
      return parts
    }

    const generateText = (provider: LanguageModel.ProviderOptions) =>
      Effect.map(next, ([n, reply]) => partsOf(provider, n, reply))

    const streamText = (provider: LanguageModel.ProviderOptions) =>
      Stream.unwrap(
        Effect.map(next, ([n, reply]) =>
          Stream.fromIterable(
            partsOf(provider, n, reply).flatMap((part): Array<Response.StreamPartEncoded> =>
              part.type === "text"
                ? [
                    { type: "text-start", id: "text" },
                    { type: "text-delta", id: "text", delta: part.text },
                    { type: "text-end", id: "text" }
                  ]
                : part.type === "tool-call" || part.type === "finish"
                  ? [part]
                  : []
            )
          )
        )
      )

    return yield* LanguageModel.make({ generateText, streamText })
  })

/**
 * Reads and checks a recording file.
 *
 * @since 0.1.0
 * @category constructors
 */
export const load = (
  path: string
): Effect.Effect<ReadonlyArray<Reply>, RecordingError, FileSystem.FileSystem> =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs
      .readFileString(path)
      .pipe(
        Effect.mapError(
          (e) => new RecordingError({ path, message: `cannot read the recording ${path}: ${e.message}` })
        )
      )
    return yield* Schema.decodeUnknown(Schema.parseJson(Recording))(text).pipe(
      Effect.mapError(
        (e) =>
          new RecordingError({
            path,
            message: `the recording ${path} is not valid: ${ParseResult.TreeFormatter.formatErrorSync(e)}`
          })
      )
    )
  })

/**
 * A replaying model from a recording file.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFile = (
  path: string
): Layer.Layer<LanguageModel.LanguageModel, RecordingError, FileSystem.FileSystem> =>
  Layer.effect(LanguageModel.LanguageModel, Effect.flatMap(load(path), make))
