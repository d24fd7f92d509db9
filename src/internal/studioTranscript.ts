/**
 * A session as a person sees it: the chat items, whether a turn is running, the MCP
 * servers' states. One pure reducer over `AgentEvent`s, shared by the runner (which builds
 * the snapshot it sends), the studio (which keeps a copy it can lose) and the page (which
 * renders it). It imports nothing, so the page bundle stays small.
 *
 * @internal
 */

/** An `AgentEvent` as JSON (its encoded form); only the fields the reducer reads. */
export interface EventJson {
  readonly _tag: string
  readonly seq: number
  readonly at: number
  readonly turn?: number | undefined
  readonly input?: string | undefined
  readonly text?: string | undefined
  readonly id?: string | undefined
  readonly name?: string | undefined
  readonly arguments?: unknown | undefined
  readonly outcome?: string | undefined
  readonly errorTag?: string | undefined
  readonly server?: string | undefined
  readonly state?: string | undefined
  readonly detail?: string | undefined
  /** `{ tag, message }` on `TurnEnded`, a string on `ModelRetry`. */
  readonly error?: unknown
  readonly attempt?: number
  readonly delayMs?: number
}

/** One line of the chat. */
export type Item =
  | {
      readonly kind: "user"
      readonly turn: number
      readonly text: string
      /** The studio message id that started the turn (none for history loaded from disk). */
      readonly messageId?: string
    }
  | { readonly kind: "assistant"; readonly turn: number; readonly text: string }
  | {
      readonly kind: "tool"
      readonly turn: number
      readonly id: string
      readonly name: string
      readonly arguments: string
      /** `running` until its result arrives; `unknown` is `OutcomeUnknown`. */
      readonly outcome: "running" | "ok" | "error" | "unknown"
      readonly text: string
      readonly errorTag?: string
    }
  | { readonly kind: "notice"; readonly text: string }

/** An MCP server of the runner, as its `ConnectionChanged` events tell it. */
export interface ServerView {
  readonly name: string
  readonly state: string
  readonly detail: string
  /** Times it went from Ready to Reconnecting. */
  readonly reconnects: number
}

export interface Transcript {
  /** The `seq` of the last event applied (0: none). */
  readonly seq: number
  readonly busy: boolean
  readonly items: ReadonlyArray<Item>
  readonly servers: ReadonlyArray<ServerView>
}

export const empty: Transcript = { seq: 0, busy: false, items: [], servers: [] }

/** Longest text kept per item: the page is a view, the runner keeps the whole history. */
const MAX_TEXT = 4_000

const clip = (text: string) => (text.length > MAX_TEXT ? `${text.slice(0, MAX_TEXT)}…` : text)

const args = (value: unknown): string => {
  try {
    return clip(JSON.stringify(value ?? {}))
  } catch {
    return "(arguments not serializable)"
  }
}

const describeError = (error: unknown): string => {
  if (typeof error !== "object" || error === null) return "error"
  const e = error as { readonly tag?: unknown; readonly message?: unknown }
  return `${typeof e.tag === "string" ? e.tag : "error"}: ${typeof e.message === "string" ? e.message : ""}`
}

const updateServer = (servers: ReadonlyArray<ServerView>, event: EventJson): ReadonlyArray<ServerView> => {
  const name = event.server ?? "?"
  const state = event.state ?? "?"
  const before = servers.find((s) => s.name === name)
  const next: ServerView = {
    name,
    state,
    detail: event.detail ?? "",
    reconnects:
      (before?.reconnects ?? 0) +
      (before !== undefined && before.state === "Ready" && state !== "Ready" ? 1 : 0)
  }
  return before === undefined ? [...servers, next] : servers.map((s) => (s.name === name ? next : s))
}

/**
 * Applies one event. `messageId` is the studio message that started a turn (runner-side
 * knowledge, carried with `TurnStarted`).
 */
export const apply = (t: Transcript, event: EventJson, messageId?: string): Transcript => {
  const turn = event.turn ?? 0
  const base = { ...t, seq: Math.max(t.seq, event.seq) }
  switch (event._tag) {
    case "TurnStarted":
      return {
        ...base,
        busy: true,
        items: [
          ...t.items,
          messageId === undefined
            ? { kind: "user", turn, text: clip(event.input ?? "") }
            : { kind: "user", turn, text: clip(event.input ?? ""), messageId }
        ]
      }
    case "ModelReply":
      return (event.text ?? "").length > 0
        ? { ...base, items: [...t.items, { kind: "assistant", turn, text: clip(event.text ?? "") }] }
        : base
    case "ModelRetry":
      return {
        ...base,
        items: [
          ...t.items,
          {
            kind: "notice",
            text: `model retry ${event.attempt ?? "?"} in ${event.delayMs ?? "?"} ms: ${typeof event.error === "string" ? event.error : ""}`
          }
        ]
      }
    case "ToolCall":
      return {
        ...base,
        items: [
          ...t.items,
          {
            kind: "tool",
            turn,
            id: event.id ?? "",
            name: event.name ?? "",
            arguments: args(event.arguments),
            outcome: "running",
            text: ""
          }
        ]
      }
    case "ToolResult": {
      const outcome = event.outcome === "ok" || event.outcome === "unknown" ? event.outcome : "error"
      return {
        ...base,
        items: t.items.map((item) =>
          item.kind === "tool" && item.id === event.id && item.outcome === "running"
            ? {
                ...item,
                outcome,
                text: clip(event.text ?? ""),
                ...(event.errorTag !== undefined ? { errorTag: event.errorTag } : {})
              }
            : item
        )
      }
    }
    case "TurnEnded":
      return {
        ...base,
        busy: false,
        items:
          event.outcome === "error"
            ? [
                ...t.items,
                {
                  kind: "notice",
                  text: `turn ${turn} failed: ${describeError(event.error)}; the session is as it was before it`
                }
              ]
            : event.outcome === "step-limit"
              ? [...t.items, { kind: "assistant", turn, text: clip(event.text ?? "") }]
              : t.items
      }
    case "SessionReset":
      return { ...base, busy: false, items: [{ kind: "notice", text: "session reset" }] }
    case "ConnectionChanged":
      return { ...base, servers: updateServer(t.servers, event) }
    default:
      return base
  }
}
