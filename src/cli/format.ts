/**
 * Terminal output of the CLI: tables, tool results, errors and exit codes.
 *
 * @since 0.1.0
 */
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js"
import * as ConnectionState from "../ConnectionState.js"
import * as Errors from "../Errors.js"
import type * as McpPool from "../McpPool.js"
import { excerpt, redactUrlCredentials, safeMessage } from "../internal/redact.js"

/**
 * The exit code for an error: 1 tool/business, 2 usage/config, 3 server unavailable.
 *
 * @since 0.1.0
 * @category utils
 */
export const exitCodeOf = (error: Errors.TetherError): 1 | 2 | 3 => {
  switch (error._tag) {
    case "InvalidConfig":
    case "UnknownServer":
      return 2
    case "ToolFailed":
    case "ProtocolError":
    case "UnknownTool":
    case "InvalidResponse":
    case "OutcomeUnknown":
      return 1
    default:
      return 3
  }
}

/**
 * One error for a human: the tag, the message, and a hint where there is one.
 *
 * @since 0.1.0
 * @category utils
 */
export const formatError = (error: Errors.TetherError): string => {
  const hint =
    error._tag === "OutcomeUnknown"
      ? "\nhint: the call may have run; check before calling it again"
      : Errors.isRecoverable(error)
        ? "\nhint: the server is unreachable or unhealthy; `tether status` shows every server's state"
        : ""
  return `error (${error._tag}): ${safeMessage(error)}${hint}`
}

/**
 * One error as JSON (`--json`): its fields, with the message (and any text a server
 * wrote: `lastError`, `cause`, `data`) as a bounded, sanitized excerpt.
 *
 * @since 0.1.0
 * @category utils
 */
export const errorJson = (error: Errors.TetherError): { readonly error: Record<string, unknown> } => {
  const fields: Record<string, unknown> = { ...error }
  for (const key of ["lastError", "cause"]) {
    const value = fields[key]
    if (typeof value === "string") fields[key] = excerpt(value)
  }
  if (error._tag === "ProtocolError" && error.data !== undefined) {
    fields["data"] = excerpt(typeof error.data === "string" ? error.data : (JSON.stringify(error.data) ?? ""))
  }
  if (error._tag === "SpawnFailed") fields["command"] = redactUrlCredentials(error.command)
  return { error: { ...fields, tag: error._tag, message: safeMessage(error) } }
}

/**
 * A server's status as JSON (`status --json`), its last error sanitized like {@link errorJson}.
 *
 * @since 0.1.0
 * @category utils
 */
export const statusJson = (s: McpPool.ConnectionStatus): Record<string, unknown> => ({
  ...s,
  lastError:
    s.lastError === undefined ? undefined : { ...s.lastError, message: excerpt(s.lastError.message) },
  detail: s.detail === undefined ? undefined : excerpt(ConnectionState.describe(s.detail))
})

const pad = (rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length))) ?? []
  return rows
    .map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join("  "))
    .join("\n")
}

/**
 * @since 0.1.0
 * @category utils
 */
export const formatTools = (entries: ReadonlyArray<McpPool.CatalogEntry>): string =>
  entries.length === 0
    ? "no tools (is any server reachable? try `tether status`)"
    : pad([
        ["TOOL", "DESCRIPTION"],
        ...entries.map((e) => [e.name, (e.tool.description ?? "").split("\n")[0] ?? ""])
      ])

/**
 * @since 0.1.0
 * @category utils
 */
export const formatStatus = (all: ReadonlyArray<McpPool.ConnectionStatus>): string =>
  pad([
    ["SERVER", "STATE", "ATTEMPTS", "RECONNECTS", "LAST ERROR"],
    ...all.map((s) => [
      s.tenant === undefined ? s.server : `${s.server} (${s.tenant})`,
      s.state,
      String(s.connectAttempts),
      String(s.reconnects),
      s.lastError === undefined ? "-" : excerpt(`${s.lastError.tag}: ${s.lastError.message}`, 200)
    ])
  ])

/**
 * A tool result as text: its text parts, and a note for other parts.
 *
 * @since 0.1.0
 * @category utils
 */
export const renderResult = (result: CallToolResult): string =>
  result.content.map((c) => (c.type === "text" ? c.text : `[${c.type} content]`)).join("\n")
