/**
 * The pool's aggregated MCP tools as @effect/ai `Tool`s: one per catalog entry, named
 * `server__tool`, whose JSON Schema is the server's own `inputSchema` (so the model sees
 * exactly what the server declared), plus a reserved tool that catches calls to names the
 * model made up.
 *
 * The agent resolves tool calls itself (`disableToolCallResolution`), so these tools carry
 * no handlers: the toolkit exists to tell the provider what to offer and to let
 * `LanguageModel` decode the reply.
 *
 * @since 0.1.0
 */
import { type Toolkit, Tool } from "@effect/ai"
import { Effect, Schema } from "effect"
import type { CatalogEntry } from "../McpPool.js"

/**
 * Any JSON object: the parameters of an MCP tool are checked by its server, not here.
 * The `jsonSchema` annotation replaces what would be derived, with the server's schema.
 */
const parametersFor = (inputSchema: unknown) =>
  Schema.Struct({}, Schema.Record({ key: Schema.String, value: Schema.Unknown })).annotations({
    jsonSchema: stripSchemaKeyword(inputSchema)
  })

/** `$schema` confuses some OpenAI-compatible servers (llama.cpp grammar builder); drop it. */
const stripSchemaKeyword = (schema: unknown): object => {
  if (typeof schema !== "object" || schema === null || Array.isArray(schema)) {
    return { type: "object", properties: {} }
  }
  const { $schema: _ignored, ...rest } = schema as Record<string, unknown>
  return rest
}

/**
 * The reserved tool a provider maps a call to when the model names a tool it was not
 * offered: `params` keeps the name and arguments the model used. It is never offered.
 *
 * @since 0.1.0
 * @category tools
 */
export const UnknownTool = Tool.make("tether_unknown_tool", {
  description: "reserved: a call to a tool that was not offered",
  parameters: { name: Schema.String, arguments: Schema.Unknown }
})

/**
 * @since 0.1.0
 * @category models
 */
export type AnyTool = Tool.Any

/**
 * A toolkit without handlers (the agent resolves calls itself), and the way back from the
 * name the model sees to the pool's catalog name.
 *
 * @since 0.1.0
 * @category models
 */
export interface Catalog {
  readonly toolkit: Toolkit.WithHandler<Record<string, Tool.Any>>
  /** The catalog name (`server__tool`) of a name offered to the model. */
  readonly resolve: (modelName: string) => string | undefined
  /** The names offered to the model. */
  readonly names: ReadonlyArray<string>
}

/**
 * The name the model sees: OpenAI-style APIs accept `[A-Za-z0-9_-]{1,64}`, so anything
 * else (dots, slashes, long names) is replaced; collisions get a numeric suffix.
 *
 * @since 0.1.0
 * @category utils
 */
export const modelNameOf = (name: string, taken: ReadonlySet<string>): string => {
  const base = name.replace(/[^A-Za-z0-9_-]/g, "_").slice(0, 64) || "tool"
  if (!taken.has(base)) return base
  for (let n = 2; ; n++) {
    const candidate = `${base.slice(0, 64 - String(n).length - 1)}_${n}`
    if (!taken.has(candidate)) return candidate
  }
}

/**
 * Builds the toolkit offered to the model from the pool's catalog.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromCatalog = (entries: ReadonlyArray<CatalogEntry>): Catalog => {
  const tools: Record<string, Tool.Any> = {}
  const back = new Map<string, string>()
  const taken = new Set<string>([UnknownTool.name])
  for (const entry of entries) {
    const name = modelNameOf(entry.name, taken)
    taken.add(name)
    back.set(name, entry.name)
    tools[name] = Tool.make(name, {
      description: entry.tool.description ?? entry.tool.title ?? `${entry.tool.name} on ${entry.server}`
    }).setParameters(parametersFor(entry.tool.inputSchema))
  }
  tools[UnknownTool.name] = UnknownTool
  return {
    toolkit: {
      tools,
      handle: (name) => Effect.dieMessage(`tool ${String(name)} is resolved by the agent, not the toolkit`)
    },
    resolve: (modelName) => back.get(modelName),
    names: [...back.keys()]
  }
}

/**
 * @deprecated use {@link fromCatalog}
 * @since 0.1.0
 * @category constructors
 */
export const fromCatalogue = fromCatalog

/**
 * The tools a provider should put in its request: all but the reserved one.
 *
 * @since 0.1.0
 * @category utils
 */
export const offered = (tools: ReadonlyArray<Tool.Any>): ReadonlyArray<Tool.Any> =>
  tools.filter((tool) => tool.name !== UnknownTool.name)

/**
 * What a provider emits for a tool call named `name` with `params`: as is when the tool
 * was offered (or when the request has no reserved tool to map to), otherwise a call to
 * {@link UnknownTool} that remembers the name.
 *
 * @since 0.1.0
 * @category utils
 */
export const toolCallFor = (
  tools: ReadonlyArray<Tool.Any>,
  name: string,
  params: unknown
): { readonly name: string; readonly params: unknown; readonly providerName?: string } => {
  if (tools.some((tool) => tool.name === name)) return { name, params }
  if (!tools.some((tool) => tool.name === UnknownTool.name)) return { name, params }
  return { name: UnknownTool.name, params: { name, arguments: params }, providerName: name }
}

/**
 * The JSON Schema of a tool's parameters, as a provider sends it.
 *
 * @since 0.1.0
 * @category utils
 */
export const jsonSchemaOf = (tool: Tool.Any): object =>
  Tool.getJsonSchemaFromSchemaAst(tool.parametersSchema.ast) as object
