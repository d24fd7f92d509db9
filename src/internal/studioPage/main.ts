/// <reference lib="dom" />
/**
 * The studio page (bundled to `/studio.js`): plain DOM code, no framework, nothing from
 * outside. It keeps its own resilient link to the studio: pings every `heartbeatMs`, calls
 * the link dead after two silent intervals or a close, says so at once (`studio-link`:
 * `disconnected`) and greys the agents out, and reconnects with a capped backoff. Messages
 * typed while the link is down wait in an outbox and are sent, with the id they were given
 * when typed, once it is back; the studio and the runner answer an id they saw before
 * instead of running it again.
 *
 * The backoff is written here by hand (the default fast phase of `Resilience`'s reconnect
 * policy: immediate, then ×1.5 from 100 ms, capped at 1 s) because bundling Effect's
 * `Schedule` would multiply the page's size.
 *
 * @internal
 */
import type { SessionView, ToPage } from "../studioProtocol.js"
import * as Transcript from "../studioTranscript.js"

interface Outgoing {
  readonly id: string
  readonly sessionId: string
  readonly kind: "message" | "reset"
  readonly text: string
  /** `pending`: not sent yet (no link); `sending`: sent, no answer yet. */
  status: "pending" | "sending" | "queued" | "delivered" | "refused" | "unconfirmed"
  reason: string
}

const config = JSON.parse(document.getElementById("studio-config")?.textContent ?? "{}") as {
  readonly heartbeatMs?: number
}
const heartbeatMs = config.heartbeatMs ?? 2_000

const byTestId = (id: string): HTMLElement => {
  const el = document.querySelector<HTMLElement>(`[data-testid="${id}"]`)
  if (el === null) throw new Error(`the page has no ${id}`)
  return el
}
const linkEl = byTestId("studio-link")
const linkDetailEl = byTestId("studio-link-detail")
const agentsEl = byTestId("agents")
const messagesEl = byTestId("messages")
const formEl = byTestId("chat-form") as HTMLFormElement
const inputEl = byTestId("chat-input") as HTMLInputElement
const resetEl = byTestId("chat-reset")

const sessions = new Map<string, SessionView>()
const outbox = new Map<string, Outgoing>()
let selected: string | undefined
let connected = false
let socket: WebSocket | undefined
let lastHeard = 0
let attempt = 0

const el = (tag: string, attrs: Record<string, string>, ...children: Array<Node | string>) => {
  const node = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v)
  for (const c of children) node.append(c)
  return node
}

// --- rendering ------------------------------------------------------------------------------
const renderLink = () => {
  linkEl.textContent = connected ? "connected" : "disconnected"
  linkEl.className = `link ${connected ? "connected" : "disconnected"}`
  linkDetailEl.textContent = connected ? "" : attempt > 0 ? `reconnecting (attempt ${attempt})` : "connecting"
}

const renderAgents = () => {
  agentsEl.classList.toggle("stale", !connected)
  agentsEl.replaceChildren()
  if (sessions.size === 0) {
    agentsEl.append(
      el("div", { class: "detail" }, "no agents yet: start one with tether agent --studio ws://…")
    )
  }
  for (const s of sessions.values()) {
    // Without the studio, nothing is known now: the last status is shown as a stale hint only.
    const status = connected ? s.status : "unknown"
    // An agent that is not reachable cannot vouch for its servers: their states are last known.
    const live = status === "online" || status === "busy"
    const servers = el(
      "ul",
      { class: `servers${live ? "" : " stale"}`, title: live ? "" : "last known states" },
      ...s.transcript.servers.map((srv) =>
        el(
          "li",
          {
            "data-testid": "server-row",
            "data-server": srv.name,
            "data-state": srv.state,
            title: srv.detail
          },
          `${srv.name} `,
          el("span", { class: `badge s-${srv.state}` }, srv.state),
          srv.reconnects > 0 ? ` reconnects: ${srv.reconnects}` : ""
        )
      )
    )
    const row = el(
      "div",
      {
        class: `agent${s.sessionId === selected ? " selected" : ""}`,
        "data-testid": "agent-row",
        "data-session": s.sessionId,
        "data-status": status,
        title: connected ? s.detail : `studio unreachable; last known: ${s.status}`
      },
      el("strong", {}, s.sessionId),
      " ",
      el("span", { class: `badge s-${status}`, "data-testid": "agent-status" }, status),
      el("div", { class: "detail" }, s.model),
      el("div", { class: "detail" }, connected ? s.detail : `last known: ${s.status}`),
      servers
    )
    row.addEventListener("click", () => {
      selected = s.sessionId
      render()
    })
    agentsEl.append(row)
  }
}

const toolText = (item: Extract<Transcript.Item, { kind: "tool" }>) => {
  const outcome =
    item.outcome === "unknown"
      ? "OUTCOME UNKNOWN (may or may not have run; not retried)"
      : item.outcome === "running"
        ? "running…"
        : item.outcome
  return `tool ${item.name}(${item.arguments}) → ${outcome}${item.text.length > 0 ? `\n${item.text}` : ""}`
}

const renderMessages = () => {
  const view = selected === undefined ? undefined : sessions.get(selected)
  const stick = messagesEl.scrollTop + messagesEl.clientHeight >= messagesEl.scrollHeight - 20
  messagesEl.replaceChildren()
  const shown = new Set<string>()
  for (const item of view?.transcript.items ?? []) {
    if (item.kind === "user") {
      if (item.messageId !== undefined) shown.add(item.messageId)
      messagesEl.append(
        el("div", { class: "msg user", "data-testid": "message", "data-role": "user" }, item.text)
      )
    } else if (item.kind === "assistant") {
      messagesEl.append(
        el("div", { class: "msg assistant", "data-testid": "message", "data-role": "assistant" }, item.text)
      )
    } else if (item.kind === "tool") {
      messagesEl.append(
        el(
          "div",
          {
            class: `msg tool ${item.outcome}`,
            "data-testid": "message",
            "data-role": "tool",
            "data-outcome": item.outcome
          },
          toolText(item)
        )
      )
    } else {
      messagesEl.append(el("div", { class: "msg notice", "data-testid": "notice" }, item.text))
    }
  }
  // Messages not (yet) in the transcript: waiting, or refused/unconfirmed, visibly.
  for (const out of outbox.values()) {
    if (shown.has(out.id)) {
      // The transcript has it now (and a history reloaded from disk later has no ids).
      outbox.delete(out.id)
      continue
    }
    if (out.sessionId !== selected) continue
    if (out.kind === "reset" && out.status === "delivered") continue
    messagesEl.append(
      el(
        "div",
        {
          class: "msg user",
          "data-testid": "message",
          "data-role": "user",
          "data-delivery": out.status,
          "data-id": out.id
        },
        out.text,
        " ",
        el("span", { class: `badge s-${out.status}`, title: out.reason }, out.status),
        out.reason.length > 0 && out.status !== "delivered" ? el("div", { class: "detail" }, out.reason) : ""
      )
    )
  }
  if (stick) messagesEl.scrollTop = messagesEl.scrollHeight
}

const render = () => {
  if (selected === undefined || !sessions.has(selected)) selected = sessions.keys().next().value
  renderLink()
  renderAgents()
  renderMessages()
}

// --- the link -------------------------------------------------------------------------------
const sendFrame = (frame: unknown) => {
  if (socket !== undefined && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(frame))
}

const flushOutbox = () => {
  for (const out of outbox.values()) {
    if (out.status !== "pending" && out.status !== "sending" && out.status !== "queued") continue
    out.status = "sending"
    sendFrame(
      out.kind === "reset"
        ? { _tag: "Reset", id: out.id, sessionId: out.sessionId }
        : { _tag: "Send", id: out.id, sessionId: out.sessionId, text: out.text }
    )
  }
}

const onMessage = (message: ToPage) => {
  switch (message._tag) {
    case "Hello":
      // Sessions this studio has not heard of (it restarted; their runners have not
      // re-registered yet) stay listed, as unknown, until they do.
      for (const s of sessions.values()) {
        sessions.set(s.sessionId, {
          ...s,
          status: "unknown",
          detail: "the studio has not heard from this agent since the link was lost"
        })
      }
      for (const s of message.sessions) sessions.set(s.sessionId, s)
      connected = true
      attempt = 0
      flushOutbox()
      break
    case "SessionChanged":
      sessions.set(message.session.sessionId, message.session)
      break
    case "StatusChanged": {
      const s = sessions.get(message.sessionId)
      if (s !== undefined) sessions.set(s.sessionId, { ...s, status: message.status, detail: message.detail })
      break
    }
    case "Event": {
      const s = sessions.get(message.sessionId)
      if (s !== undefined) {
        sessions.set(s.sessionId, {
          ...s,
          transcript: Transcript.apply(s.transcript, message.event, message.messageId)
        })
      }
      break
    }
    case "Result": {
      const out = outbox.get(message.id)
      if (out !== undefined) {
        out.status = message.status
        out.reason = message.reason
      }
      break
    }
    case "Pong":
      return
  }
  render()
}

const lose = () => {
  if (socket !== undefined) {
    socket.onclose = null
    socket.onmessage = null
    socket.close()
    socket = undefined
  }
  if (connected) {
    connected = false
    for (const out of outbox.values()) if (out.status === "sending") out.status = "pending"
  }
  render()
  attempt += 1
  const delay = attempt === 1 ? 0 : Math.min(1_000, 100 * 1.5 ** (attempt - 2)) * (0.8 + Math.random() * 0.2)
  setTimeout(connect, delay)
}

const connect = () => {
  const url = `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/page`
  const ws = new WebSocket(url)
  socket = ws
  lastHeard = Date.now()
  ws.onmessage = (event) => {
    lastHeard = Date.now()
    onMessage(JSON.parse(String(event.data)) as ToPage)
  }
  ws.onclose = () => lose()
  render()
}

setInterval(() => {
  if (socket === undefined) return
  if (Date.now() - lastHeard > heartbeatMs * 2) return lose()
  sendFrame({ _tag: "Ping" })
}, heartbeatMs)

// --- input ----------------------------------------------------------------------------------
const submit = (kind: "message" | "reset", text: string) => {
  if (selected === undefined) return
  const out: Outgoing = {
    id: crypto.randomUUID(),
    sessionId: selected,
    kind,
    text,
    status: "pending",
    reason: connected ? "" : "the studio is unreachable: it is sent when the link is back"
  }
  outbox.set(out.id, out)
  if (connected) flushOutbox()
  render()
}

formEl.addEventListener("submit", (event) => {
  event.preventDefault()
  const text = inputEl.value.trim()
  if (text.length === 0) return
  inputEl.value = ""
  submit(text === "/reset" ? "reset" : "message", text)
})
resetEl.addEventListener("click", () => submit("reset", "/reset"))

connect()
