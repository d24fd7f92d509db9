/**
 * The gateway's OpenAPI document, built from the live tool catalog. It is assembled as
 * plain data rather than through @effect/platform's `HttpApi`/`OpenApi`, because the
 * routes and their request schemas (each tool's JSON Schema) are only known at run time
 * and change when servers reconnect or send `tools/list_changed`.
 *
 * @internal
 */
import type { CatalogEntry } from "../McpPool.js"
import { VERSION } from "./version.js"

/** @internal The largest `x-tether-timeout-ms` (and CLI `--timeout`) accepted: one hour. */
export const MAX_TIMEOUT_MS = 3_600_000

const errorSchema = {
  type: "object",
  properties: {
    error: {
      type: "object",
      properties: {
        tag: { type: "string" },
        message: { type: "string" },
        server: { type: "string" },
        may_have_run: { type: "boolean" }
      },
      required: ["tag", "message"]
    }
  },
  required: ["error"]
} as const

const callToolResultSchema = {
  type: "object",
  description: "The MCP CallToolResult, as the tool gave it",
  properties: {
    content: { type: "array", items: { type: "object" } },
    structuredContent: { type: "object" },
    isError: { type: "boolean" }
  },
  required: ["content"]
} as const

const errorResponse = (description: string) => ({
  description,
  content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } }
})

/** @internal */
export const document = (
  entries: ReadonlyArray<CatalogEntry>,
  options: { readonly secured: boolean; readonly healthOpen: boolean }
): Record<string, unknown> => {
  const security = options.secured ? [{ bearer: [] }] : []
  const paths: Record<string, unknown> = {
    "/health": {
      get: {
        summary: "Whether every required MCP server is Ready",
        ...(options.secured && !options.healthOpen ? { security } : { security: [] }),
        responses: {
          "200": { description: "All required servers are Ready" },
          "503": { description: "At least one required server is not Ready" }
        }
      }
    },
    "/metrics": {
      get: {
        summary: "Prometheus metrics",
        security,
        responses: { "200": { description: "Prometheus text format", content: { "text/plain": {} } } }
      }
    },
    "/admin/servers/{name}/reconnect": {
      post: {
        summary: "Drop the server's session and connect again",
        security,
        parameters: [{ name: "name", in: "path", required: true, schema: { type: "string" } }],
        responses: { "202": { description: "Reconnect started" }, "404": errorResponse("Unknown server") }
      }
    }
  }
  for (const entry of entries) {
    paths[`/${encodeURIComponent(entry.server)}/${encodeURIComponent(entry.tool.name)}`] = {
      post: {
        operationId: entry.name,
        summary: entry.tool.title ?? entry.tool.name,
        ...(entry.tool.description !== undefined ? { description: entry.tool.description } : {}),
        tags: [entry.server],
        security,
        parameters: [
          {
            name: "x-tether-timeout-ms",
            in: "header",
            required: false,
            description: "Deadline of the call in milliseconds",
            schema: { type: "integer", minimum: 1, maximum: MAX_TIMEOUT_MS }
          }
        ],
        requestBody: {
          required: true,
          content: { "application/json": { schema: entry.tool.inputSchema } }
        },
        responses: {
          "200": {
            description: "The tool's result (also when the tool reported an error: see isError)",
            content: { "application/json": { schema: { $ref: "#/components/schemas/CallToolResult" } } }
          },
          "400": errorResponse(
            `Malformed JSON body, or x-tether-timeout-ms not a whole number from 1 to ${MAX_TIMEOUT_MS}`
          ),
          "401": errorResponse("Missing or wrong API key"),
          "404": errorResponse("Unknown server or tool"),
          "413": errorResponse("Body too large"),
          "422": errorResponse("Arguments do not match the tool's input schema"),
          "502": errorResponse(
            "The call may or may not have run (OutcomeUnknown), or the server answered badly"
          ),
          "503": errorResponse("Server unavailable; see Retry-After"),
          "504": errorResponse("The call did not complete in time")
        }
      }
    }
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "Tether MCP gateway",
      version: VERSION,
      description: "MCP tools as plain HTTP, with reconnects, safe retries and health."
    },
    paths,
    components: {
      schemas: { Error: errorSchema, CallToolResult: callToolResultSchema },
      securitySchemes: { bearer: { type: "http", scheme: "bearer" } }
    }
  }
}

const escape = (s: string) =>
  s.replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] ?? c
  )

/**
 * A self-contained docs page (no CDN: the gateway must work offline).
 *
 * @internal
 */
export const docsPage = (entries: ReadonlyArray<CatalogEntry>): string => {
  const rows = entries
    .map(
      (e) =>
        `<section><h2><code>POST /${escape(e.server)}/${escape(e.tool.name)}</code></h2>` +
        `<p>${escape(e.tool.description ?? "")}</p>` +
        `<pre>${escape(JSON.stringify(e.tool.inputSchema, null, 2))}</pre></section>`
    )
    .join("\n")
  return `<!doctype html><html><head><meta charset="utf-8"><title>Tether gateway</title>
<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}pre{background:#f4f4f4;padding:.5rem;overflow:auto}</style>
</head><body><h1>Tether gateway</h1>
<p>Each tool is <code>POST /{server}/{tool}</code> with its arguments as the JSON body. Machine-readable: <a href="/openapi.json">/openapi.json</a>.</p>
${rows}
</body></html>`
}
