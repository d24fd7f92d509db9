/**
 * Terminal output of the CLI: tables, tool results, errors and exit codes.
 *
 * @since 0.1.0
 */
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js"
import * as Errors from "../Errors.js"
import type * as McpPool from "../McpPool.js"

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
  return `error (${error._tag}): ${error.message}${hint}`
}

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
export const formatTools = (entries: ReadonlyArray<McpPool.CatalogueEntry>): string =>
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
      s.lastError === undefined ? "-" : `${s.lastError.tag}: ${s.lastError.message.split("\n")[0]}`
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
