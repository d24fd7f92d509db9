/**
 * The studio server: the page, `/health`, and the two WebSocket endpoints. Its state is a
 * cache: every session's view comes from the runner that registers it, so a restarted
 * studio is whole again once its runners have reconnected.
 *
 * The registry is plain maps behind one semaphore (every change and every "subscribe +
 * snapshot" runs under it), which is what keeps a page's snapshot and the live updates
 * that follow it free of gaps and duplicates.
 *
 * @internal
 */
import { FileSystem, HttpRouter, HttpServerRequest, HttpServerResponse, type Socket } from "@effect/platform"
import { createHash, randomUUID, timingSafeEqual } from "node:crypto"
import { join } from "node:path"
import {
  Clock,
  Deferred,
  Duration,
  Effect,
  Either,
  PubSub,
  Queue,
  Redacted,
  Schedule,
  Schema,
  type Scope
} from "effect"
import * as Protocol from "./studioProtocol.js"
import * as Transcript from "./studioTranscript.js"

/** @internal */
export interface ServerOptions {
  /** How often the page pings the studio (ms); it calls the link dead after 2 silent intervals. */
  readonly pageHeartbeatMs: number
  /** How long a message waits for its agent to be reachable before it is refused (ms). */
  readonly deliveryTimeoutMs: number
  readonly apiKey: Redacted.Redacted<string> | undefined
  /** Where the list of known sessions is kept across restarts (none: memory only). */
  readonly dataDir: string | undefined
  /** The page's script (bundled). */
  readonly pageScript: string
}

interface Runner {
  readonly conn: number
  runnerId: string | undefined
  heartbeatMs: number
  misses: number
  lastBeat: number
  readonly send: (message: Protocol.ToRunner) => Effect.Effect<void>
  readonly close: Effect.Effect<void>
}

interface Session {
  readonly sessionId: string
  model: string
  transcript: Transcript.Transcript
  /** The link that registered it, while open. */
  conn: number | undefined
  runnerId: string | undefined
  /** A runner registered it since this studio started. */
  heard: boolean
  status: Protocol.Status
  detail: string
}

interface Pending {
  readonly id: string
  readonly sessionId: string
  readonly kind: "message" | "reset"
  readonly text: string
  readonly since: number
  /** The runner it was given to (it is never given to another). */
  forwardedTo: string | undefined
}

type Result = typeof Protocol.Result.Type

const digest = (s: string) => createHash("sha256").update(s).digest()
const keyMatches = (expected: Redacted.Redacted<string>, given: string) =>
  timingSafeEqual(digest(Redacted.value(expected)), digest(given))

const KEY_COOKIE = "tether_studio_key"
const MAX_RESULTS = 1_000

const encode = (message: Protocol.ToPage | Protocol.ToRunner) => JSON.stringify(message)

/** @internal */
export const makeApp = (options: ServerOptions) =>
  Effect.gen(function* () {
    const studioId = randomUUID()
    const lock = yield* Effect.makeSemaphore(1)
    const locked = lock.withPermits(1)
    const sessions = new Map<string, Session>()
    const runners = new Map<number, Runner>()
    const pending = new Map<string, Pending>()
    const results = new Map<string, Result>()
    const pages = yield* Effect.acquireRelease(PubSub.unbounded<Protocol.ToPage>(), PubSub.shutdown)
    let nextConn = 0
    const fs = yield* FileSystem.FileSystem
    const knownFile =
      options.dataDir === undefined ? undefined : join(options.dataDir, "studio-sessions.json")

    // --- known sessions (optional disk) -------------------------------------------------
    if (knownFile !== undefined) {
      const known = yield* fs.readFileString(knownFile).pipe(
        Effect.map((text) =>
          Schema.decodeUnknownEither(
            Schema.parseJson(Schema.Array(Schema.Struct({ sessionId: Schema.String, model: Schema.String })))
          )(text)
        ),
        Effect.orElseSucceed(() => Either.right([]))
      )
      for (const s of Either.getOrElse(known, () => [])) {
        sessions.set(s.sessionId, {
          sessionId: s.sessionId,
          model: s.model,
          transcript: Transcript.empty,
          conn: undefined,
          runnerId: undefined,
          heard: false,
          status: "unknown",
          detail: "known from an earlier run; its runner has not registered since the studio started"
        })
      }
    }
    const saveKnown =
      knownFile === undefined
        ? Effect.void
        : fs.makeDirectory(options.dataDir!, { recursive: true }).pipe(
            Effect.zipRight(
              Effect.suspend(() =>
                fs.writeFileString(
                  `${knownFile}.tmp`,
                  JSON.stringify(
                    [...sessions.values()].map((s) => ({ sessionId: s.sessionId, model: s.model }))
                  )
                )
              )
            ),
            Effect.zipRight(fs.rename(`${knownFile}.tmp`, knownFile)),
            Effect.catchAll((e) => Effect.logWarning(`studio: cannot save the session list: ${e.message}`))
          )

    // --- status ---------------------------------------------------------------------------
    const view = (s: Session): Protocol.SessionView => ({
      sessionId: s.sessionId,
      model: s.model,
      status: s.status,
      detail: s.detail,
      transcript: s.transcript
    })

    /** The status that heartbeats justify now: never the last one seen, when silence says otherwise. */
    const judge = (s: Session, now: number): { status: Protocol.Status; detail: string } => {
      const runner = s.conn === undefined ? undefined : runners.get(s.conn)
      if (runner === undefined) {
        return s.heard
          ? { status: "offline", detail: "its runner disconnected" }
          : { status: "unknown", detail: s.detail }
      }
      const silence = now - runner.lastBeat
      const ago = `last heartbeat ${(silence / 1000).toFixed(1)} s ago`
      if (silence > runner.heartbeatMs * runner.misses) return { status: "offline", detail: `silent: ${ago}` }
      if (silence > runner.heartbeatMs * 1.5)
        return { status: "unknown", detail: `a heartbeat is late: ${ago}` }
      return s.transcript.busy
        ? { status: "busy", detail: "a turn is running" }
        : { status: "online", detail: "" }
    }

    const refresh = (s: Session, now: number) =>
      Effect.suspend(() => {
        const next = judge(s, now)
        if (next.status === s.status && (next.status !== "unknown" || next.detail === s.detail)) {
          return Effect.void
        }
        s.status = next.status
        s.detail = next.detail
        return PubSub.publish(pages, { _tag: "StatusChanged", sessionId: s.sessionId, ...next })
      })

    const settle = (p: Pending, status: Result["status"], reason: string) =>
      Effect.suspend(() => {
        const result: Result = { _tag: "Result", id: p.id, sessionId: p.sessionId, status, reason }
        if (status !== "queued") {
          pending.delete(p.id)
          results.set(p.id, result)
          if (results.size > MAX_RESULTS) results.delete(results.keys().next().value!)
        }
        return PubSub.publish(pages, result)
      })

    /** Gives a pending request to the session's runner if it can take it now. */
    const tryForward = (p: Pending) =>
      Effect.suspend(() => {
        const s = sessions.get(p.sessionId)
        const runner = s?.conn === undefined ? undefined : runners.get(s.conn)
        if (s === undefined || runner === undefined || runner.runnerId === undefined) return Effect.void
        if (s.status === "offline") return Effect.void
        if (p.forwardedTo !== undefined && p.forwardedTo !== runner.runnerId) {
          // Another runner process now has the session: the first one may have run it.
          return settle(
            p,
            "unconfirmed",
            "it was given to the agent's previous runner, which went away before confirming: it may or may not have run, and it is not sent again"
          )
        }
        p.forwardedTo = runner.runnerId
        return runner.send({ _tag: "Deliver", id: p.id, sessionId: p.sessionId, kind: p.kind, text: p.text })
      })

    /** Every tick: statuses from heartbeats, silent links closed, old requests settled. */
    const tick = locked(
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        for (const runner of runners.values()) {
          if (now - runner.lastBeat > runner.heartbeatMs * runner.misses) yield* runner.close
        }
        for (const s of sessions.values()) yield* refresh(s, now)
        for (const p of [...pending.values()]) {
          if (now - p.since <= options.deliveryTimeoutMs) continue
          yield* p.forwardedTo === undefined
            ? settle(
                p,
                "refused",
                sessions.has(p.sessionId)
                  ? `not delivered: the agent was not reachable for ${Math.round(options.deliveryTimeoutMs / 1000)} s`
                  : `not delivered: no runner registered session ${JSON.stringify(p.sessionId)} within ${Math.round(options.deliveryTimeoutMs / 1000)} s`
              )
            : settle(
                p,
                "unconfirmed",
                "given to the agent, which did not confirm it: it may or may not run, and it is not sent again"
              )
        }
      })
    )
    yield* tick.pipe(Effect.repeat(Schedule.spaced(Duration.millis(100))), Effect.forkScoped)

    // --- runner messages --------------------------------------------------------------------
    const onRunner = (runner: Runner, message: Protocol.FromRunner) =>
      locked(
        Effect.gen(function* () {
          const now = yield* Clock.currentTimeMillis
          runner.lastBeat = now
          switch (message._tag) {
            case "Ping":
              return yield* runner.send({ _tag: "Pong" })
            case "Register": {
              runner.runnerId = message.runnerId
              runner.heartbeatMs = message.heartbeatMs
              runner.misses = message.misses
              for (const snap of message.sessions) {
                const before = sessions.get(snap.sessionId)
                if (before?.conn !== undefined && before.conn !== runner.conn) {
                  // Two runners claim one session: the newer link wins; the older is closed.
                  const other = runners.get(before.conn)
                  if (other !== undefined) yield* other.close
                }
                const s: Session = {
                  sessionId: snap.sessionId,
                  model: snap.model,
                  transcript: snap.transcript,
                  conn: runner.conn,
                  runnerId: message.runnerId,
                  heard: true,
                  status: "unknown",
                  detail: ""
                }
                const next = judge(s, now)
                s.status = next.status
                s.detail = next.detail
                sessions.set(snap.sessionId, s)
                yield* PubSub.publish(pages, { _tag: "SessionChanged", session: view(s) })
              }
              yield* saveKnown
              for (const p of [...pending.values()]) {
                if (message.sessions.some((s) => s.sessionId === p.sessionId)) yield* tryForward(p)
              }
              return
            }
            case "Event": {
              const s = sessions.get(message.sessionId)
              if (s === undefined || s.conn !== runner.conn) return
              const event = message.event as Transcript.EventJson
              if (event.seq <= s.transcript.seq) return
              if (event.seq !== s.transcript.seq + 1) {
                return yield* runner.send({
                  _tag: "Resync",
                  reason: `session ${s.sessionId}: got event ${event.seq} after ${s.transcript.seq}`
                })
              }
              s.transcript = Transcript.apply(s.transcript, event, message.messageId)
              yield* PubSub.publish(pages, message)
              return yield* refresh(s, now)
            }
            case "Ack": {
              const p = pending.get(message.id)
              if (p === undefined) return
              return yield* message.status === "rejected"
                ? settle(p, "refused", `the agent refused it: ${message.reason ?? "no reason given"}`)
                : settle(p, "delivered", "the agent took it")
            }
          }
        })
      )

    const runnerLost = (runner: Runner) =>
      locked(
        Effect.gen(function* () {
          runners.delete(runner.conn)
          const now = yield* Clock.currentTimeMillis
          for (const s of sessions.values()) {
            if (s.conn !== runner.conn) continue
            s.conn = undefined
            yield* refresh(s, now)
          }
        })
      )

    // --- page messages ------------------------------------------------------------------------
    const onPage = (send: (m: Protocol.ToPage) => Effect.Effect<void>, message: Protocol.FromPage) =>
      Effect.gen(function* () {
        if (message._tag === "Ping") return yield* send({ _tag: "Pong" })
        const id = message.id
        const done = results.get(id)
        if (done !== undefined) return yield* send(done)
        const inFlight = pending.get(id)
        if (inFlight !== undefined) {
          return yield* send({
            _tag: "Result",
            id,
            sessionId: inFlight.sessionId,
            status: "queued",
            reason: "already on its way"
          })
        }
        const now = yield* Clock.currentTimeMillis
        const p: Pending = {
          id,
          sessionId: message.sessionId,
          kind: message._tag === "Send" ? "message" : "reset",
          text: message._tag === "Send" ? message.text : "/reset",
          since: now,
          forwardedTo: undefined
        }
        // A session the studio does not know (yet) may be one whose runner has not
        // re-registered after a studio restart: it waits like any other.
        pending.set(id, p)
        yield* settle(p, "queued", "waiting for the agent")
        yield* tryForward(p)
      }).pipe(locked)

    // --- sockets ------------------------------------------------------------------------------
    /**
     * Runs one socket until it closes or `stop` is called: frames are taken in order by one
     * fiber (the socket would fork one per frame), and sent in order by another, so a slow
     * peer never holds the registry lock.
     */
    const runSocket = (
      socket: Socket.Socket,
      start: (
        send: (text: string) => Effect.Effect<void>,
        stop: Effect.Effect<void>
      ) => Effect.Effect<(frame: string) => Effect.Effect<void>, never, Scope.Scope>
    ) =>
      Effect.scoped(
        Effect.gen(function* () {
          const write = yield* socket.writer
          const stopped = yield* Deferred.make<void>()
          const outgoing = yield* Queue.unbounded<string>()
          const incoming = yield* Queue.unbounded<string>()
          yield* Queue.take(outgoing).pipe(
            Effect.flatMap(write),
            Effect.forever,
            Effect.ignore,
            Effect.forkScoped
          )
          const onFrame = yield* start(
            (text) => Queue.offer(outgoing, text).pipe(Effect.asVoid),
            Deferred.succeed(stopped, undefined).pipe(Effect.asVoid)
          )
          yield* Queue.take(incoming).pipe(Effect.flatMap(onFrame), Effect.forever, Effect.forkScoped)
          const decoder = new TextDecoder()
          yield* socket
            .runRaw((data) => {
              Queue.unsafeOffer(incoming, typeof data === "string" ? data : decoder.decode(data))
            })
            .pipe(Effect.ignore, Effect.raceFirst(Deferred.await(stopped)))
        })
      )

    const authorized = (request: HttpServerRequest.HttpServerRequest, allowCookie: boolean) => {
      const key = options.apiKey
      if (key === undefined) return true
      const bearer = /^Bearer\s+(.+)$/i.exec(request.headers["authorization"] ?? "")
      if (bearer !== null && keyMatches(key, bearer[1]!.trim())) return true
      if (!allowCookie) return false
      const cookie = request.cookies[KEY_COOKIE]
      return cookie !== undefined && keyMatches(key, cookie)
    }

    const unauthorized = HttpServerResponse.unsafeJson(
      {
        error: {
          tag: "Unauthorized",
          message: "missing or wrong API key (send Authorization: Bearer <key>, or open /?key=<key> once)"
        }
      },
      { status: 401, headers: { "www-authenticate": 'Bearer realm="tether-studio"' } }
    )

    const badFrame = (where: string, text: string) =>
      Effect.logWarning(`studio: ignored a malformed ${where} frame (${text.length} characters)`)

    /** A WebSocket endpoint: the key is checked (from a cookie too on page routes), then `runSocket`. */
    const socketRoute = (allowCookie: boolean, start: Parameters<typeof runSocket>[1]) =>
      Effect.gen(function* () {
        const request = yield* HttpServerRequest.HttpServerRequest
        if (!authorized(request, allowCookie)) return unauthorized
        yield* runSocket(yield* request.upgrade, start)
        return HttpServerResponse.empty()
      })

    const runnerRoute = socketRoute(false, (send, stop) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const runner: Runner = {
          conn: nextConn++,
          runnerId: undefined,
          heartbeatMs: 5_000,
          misses: 2,
          lastBeat: now,
          send: (m) => send(encode(m)),
          close: stop
        }
        yield* locked(Effect.sync(() => runners.set(runner.conn, runner)))
        yield* Effect.addFinalizer(() => runnerLost(runner))
        yield* runner.send({ _tag: "Welcome", studioId })
        return (frame: string) =>
          Either.match(Protocol.decodeFromRunner(frame), {
            onLeft: () => badFrame("runner", frame),
            onRight: (message) => onRunner(runner, message)
          })
      })
    )

    const pageRoute = socketRoute(true, (sendText, stop) =>
      Effect.gen(function* () {
        const send = (m: Protocol.ToPage) => sendText(encode(m))
        // Subscribe and snapshot under the lock: every change after the snapshot is queued.
        const updates = yield* locked(
          Effect.gen(function* () {
            const sub = yield* PubSub.subscribe(pages)
            yield* send({ _tag: "Hello", studioId, sessions: [...sessions.values()].map(view) })
            return sub
          })
        )
        yield* Queue.take(updates).pipe(Effect.flatMap(send), Effect.forever, Effect.forkScoped)
        // The page pings every `pageHeartbeatMs`; a page silent for 3 intervals is gone.
        let lastBeat = yield* Clock.currentTimeMillis
        yield* Effect.gen(function* () {
          const now = yield* Clock.currentTimeMillis
          if (now - lastBeat > options.pageHeartbeatMs * 3) yield* stop
        }).pipe(
          Effect.repeat({ schedule: Schedule.spaced(Duration.millis(options.pageHeartbeatMs)) }),
          Effect.forkScoped
        )
        return (frame: string) =>
          Effect.gen(function* () {
            lastBeat = yield* Clock.currentTimeMillis
            yield* Either.match(Protocol.decodeFromPage(frame), {
              onLeft: () => badFrame("page", frame),
              onRight: (message) => onPage(send, message)
            })
          })
      })
    )

    const health = locked(
      Effect.sync(() =>
        HttpServerResponse.unsafeJson({
          status: "ok",
          studioId,
          runners: runners.size,
          sessions: [...sessions.values()].map((s) => ({
            session: s.sessionId,
            status: s.status,
            detail: s.detail
          }))
        })
      )
    )

    const html = pageHtml(options.pageHeartbeatMs)
    const index = Effect.gen(function* () {
      const request = yield* HttpServerRequest.HttpServerRequest
      const key = options.apiKey
      if (key !== undefined) {
        const given = new URL(request.url, "http://studio").searchParams.get("key")
        if (given !== null) {
          if (!keyMatches(key, given)) return unauthorized
          // The key leaves the address bar at once and lives on as an HttpOnly cookie.
          return yield* HttpServerResponse.empty({ status: 303, headers: { location: "/" } }).pipe(
            HttpServerResponse.setCookie(KEY_COOKIE, given, { httpOnly: true, sameSite: "strict", path: "/" })
          )
        }
        if (!authorized(request, true)) return unauthorized
      }
      return HttpServerResponse.html(html)
    })

    const script = HttpServerResponse.text(options.pageScript, {
      contentType: "text/javascript; charset=utf-8"
    })

    const app = HttpRouter.empty.pipe(
      HttpRouter.get("/", index),
      HttpRouter.get("/studio.js", Effect.succeed(script)),
      HttpRouter.get("/health", health),
      HttpRouter.get("/runners", runnerRoute),
      HttpRouter.get("/page", pageRoute),
      Effect.catchAll(() => HttpServerResponse.empty({ status: 400 }))
    )
    return { studioId, app }
  })

/** The page: its markup, styles and settings; the behaviour is `/studio.js`. */
const pageHtml = (heartbeatMs: number) => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Tether Studio</title>
<style>
body{margin:0;font:14px/1.4 system-ui,sans-serif;color:#1d2330;background:#f4f5f7}
header{display:flex;gap:12px;align-items:center;padding:10px 16px;background:#1d2330;color:#fff}
header h1{font-size:16px;margin:0;flex:1}
.link{padding:2px 8px;border-radius:10px;font-weight:600}
.link.connected{background:#1f8f4e}.link.disconnected,.link.reconnecting{background:#c0392b}
main{display:grid;grid-template-columns:320px 1fr;gap:12px;padding:12px;height:calc(100vh - 70px);box-sizing:border-box}
.panel{background:#fff;border-radius:6px;padding:10px;overflow:auto}
.agents.stale{opacity:.45;filter:grayscale(1)}
.agent{border:1px solid #dde;border-radius:6px;padding:8px;margin-bottom:8px;cursor:pointer}
.agent.selected{border-color:#3465a4;box-shadow:0 0 0 1px #3465a4}
.badge{display:inline-block;padding:0 6px;border-radius:8px;font-size:12px;font-weight:600;color:#fff;background:#888}
.s-online,.s-Ready,.s-ok,.s-delivered{background:#1f8f4e}.s-busy,.s-queued,.s-running,.s-sending{background:#3465a4}
.s-offline,.s-Failed,.s-error,.s-refused{background:#c0392b}.s-unknown,.s-Reconnecting,.s-Connecting,.s-unconfirmed,.s-pending{background:#b7791f}
.servers{margin:6px 0 0;padding-left:16px;font-size:12px}.servers.stale{opacity:.5}.servers.stale::before{content:"last known:";font-style:italic}
.detail{font-size:12px;color:#667}
.chat{display:flex;flex-direction:column}
.messages{flex:1;overflow:auto}
.msg{margin:6px 0;padding:6px 10px;border-radius:6px;white-space:pre-wrap;word-break:break-word}
.msg.user{background:#e3ecf8;margin-left:15%}.msg.assistant{background:#eef0f2;margin-right:15%}
.msg.tool{background:#fff8e6;font-family:ui-monospace,monospace;font-size:12px}.msg.notice{color:#667;font-style:italic}
.msg.tool.unknown{background:#fde8e8;border:1px solid #c0392b}
form{display:flex;gap:6px;margin-top:8px}
input{flex:1;padding:8px;border:1px solid #bbc;border-radius:4px}
button{padding:8px 14px;border:0;border-radius:4px;background:#3465a4;color:#fff;cursor:pointer}
button.secondary{background:#667}
</style>
</head>
<body>
<header><h1>Tether Studio</h1><span class="detail" data-testid="studio-link-detail"></span><span class="link disconnected" data-testid="studio-link">disconnected</span></header>
<main>
<section class="panel agents" data-testid="agents"><div class="detail">no agents yet: start one with <code>tether agent --studio ws://…/runners</code></div></section>
<section class="panel chat"><div class="messages" data-testid="messages"></div>
<form data-testid="chat-form"><input data-testid="chat-input" placeholder="Message (or /reset)" autocomplete="off"><button type="submit" data-testid="chat-send">Send</button><button type="button" class="secondary" data-testid="chat-reset">Reset</button></form>
</section>
</main>
<script id="studio-config" type="application/json">${JSON.stringify({ heartbeatMs })}</script>
<script src="/studio.js"></script>
</body>
</html>
`
