/**
 * The machinery of `McpConnection`: the supervisor fiber (connect, wait for loss,
 * reconnect under the policy's schedule), the heartbeat watch, and the call path
 * (wait for Ready within the deadline, phase-aware retries, `OutcomeUnknown`).
 *
 * @internal
 */
import type { Client } from "@modelcontextprotocol/sdk/client/index.js"
import type { RequestOptions } from "@modelcontextprotocol/sdk/shared/protocol.js"
import type {
  CallToolResult,
  LoggingLevel,
  Prompt,
  Resource,
  ResourceTemplate,
  ServerNotification,
  Tool
} from "@modelcontextprotocol/sdk/types.js"
import {
  Cause,
  Duration,
  Effect,
  Either,
  Exit,
  Fiber,
  Metric,
  Option,
  PubSub,
  Runtime,
  ScheduleDecision,
  ScheduleIntervals,
  Scope,
  Stream
} from "effect"
import { ConnectionState, type ServerInfo } from "../ConnectionState.js"
import * as Errors from "../Errors.js"
import type { CallOptions, McpConnection, Stats, TypeId as McpConnectionTypeId } from "../McpConnection.js"
import * as Metrics from "../Metrics.js"
import * as Resilience from "../Resilience.js"
import * as ServerSpec from "../ServerSpec.js"
import * as Auth from "./auth.js"
import { Breaker } from "./breaker.js"
import * as Cell from "./cell.js"
import * as Calls from "./calls.js"
import { bounded, brief } from "./errorText.js"
import * as Heartbeat from "./heartbeat.js"
import * as Session from "./session.js"
import { withHotSpan } from "./tracing.js"

/** @internal */
export const TypeId: McpConnectionTypeId = Symbol.for("tether/McpConnection") as McpConnectionTypeId

/** Protocol methods that only read: always safe to send again. */
const safeMethods: ReadonlySet<string> = new Set([
  "ping",
  "tools/list",
  "resources/list",
  "resources/templates/list",
  "resources/read",
  "prompts/list",
  "prompts/get",
  "completion/complete",
  "logging/setLevel",
  "resources/subscribe",
  "resources/unsubscribe"
])

/** Errors that no amount of reconnecting fixes: go to Failed at once. */
const permanentTags: ReadonlySet<string> = new Set([
  "SpawnFailed",
  "Unauthorized",
  "AuthorizationRequired",
  "InvalidConfig",
  "InvalidResponse",
  "ProtocolError"
])

type Descriptor = Calls.Descriptor

/**
 * A one-slot mailbox where the newest offer wins, with one taker (the supervisor): what a
 * `Queue.sliding(1)` did here, without its ~1.1 KiB per connection.
 */
class Kick<A> {
  private value: A | undefined
  private waiter: ((value: A) => void) | undefined

  offer(value: A): Effect.Effect<void> {
    return Effect.sync(() => {
      const waiter = this.waiter
      if (waiter === undefined) {
        this.value = value
        return
      }
      this.waiter = undefined
      waiter(value)
    })
  }

  poll(): Effect.Effect<Option.Option<A>> {
    return Effect.sync(() => {
      const value = this.value
      this.value = undefined
      return Option.fromNullable(value)
    })
  }

  take(): Effect.Effect<A> {
    return Effect.async<A>((resume) => {
      const value = this.value
      if (value !== undefined) {
        this.value = undefined
        return resume(Effect.succeed(value))
      }
      const waiter = (v: A) => resume(Effect.succeed(v))
      this.waiter = waiter
      return Effect.sync(() => {
        if (this.waiter === waiter) this.waiter = undefined
      })
    })
  }
}

/**
 * The call path's view of a connection. A class for its `retries` getter: the counter is
 * tagged with the server on a retry, not made per connection up front (and an object
 * literal with a getter is a dictionary-mode object).
 */
class CallContext implements Calls.CallContext {
  readonly name: string
  readonly policy: Calls.CallContext["policy"]
  readonly now: () => number
  readonly awaitSession: Calls.CallContext["awaitSession"]
  readonly readyNow: Calls.CallContext["readyNow"]
  readonly noteError: Calls.CallContext["noteError"]
  readonly linkError: Calls.CallContext["linkError"]
  readonly breaker: Breaker

  constructor(fields: Omit<Calls.CallContext, "retries">) {
    this.name = fields.name
    this.policy = fields.policy
    this.now = fields.now
    this.awaitSession = fields.awaitSession
    this.readyNow = fields.readyNow
    this.noteError = fields.noteError
    this.linkError = fields.linkError
    this.breaker = fields.breaker
  }

  get retries(): Metric.Metric.Counter<number> {
    return Metric.tagged(Metrics.retries, "server", this.name)
  }
}

/** What `make` builds per connection; the streams are the class's getters. */
type Members = Omit<McpConnection, McpConnectionTypeId | "changes" | "toolChanges" | "notifications">

/**
 * The connection's public face. A class, not an object literal: a literal with getters is
 * a dictionary-mode object (~1.6 KiB per connection, measured); here the getters are on
 * the prototype and build their stream per use, not per connection up front.
 */
class Connection implements McpConnection {
  readonly [TypeId]: McpConnectionTypeId = TypeId
  readonly name: string
  readonly spec: McpConnection["spec"]
  readonly policy: McpConnection["policy"]
  readonly state: McpConnection["state"]
  readonly stats: McpConnection["stats"]
  readonly awaitReady: McpConnection["awaitReady"]
  readonly tools: McpConnection["tools"]
  readonly callTool: McpConnection["callTool"]
  readonly listTools: McpConnection["listTools"]
  readonly listResources: McpConnection["listResources"]
  readonly listResourceTemplates: McpConnection["listResourceTemplates"]
  readonly readResource: McpConnection["readResource"]
  readonly listPrompts: McpConnection["listPrompts"]
  readonly getPrompt: McpConnection["getPrompt"]
  readonly subscribe: McpConnection["subscribe"]
  readonly unsubscribe: McpConnection["unsubscribe"]
  readonly setLogLevel: McpConnection["setLogLevel"]
  readonly ping: McpConnection["ping"]
  readonly reconnect: McpConnection["reconnect"]
  readonly rootsChanged: McpConnection["rootsChanged"]

  constructor(
    private readonly stateCell: Cell.Cell<ConnectionState>,
    private readonly toolsCell: Cell.Cell<ReadonlyArray<Tool>>,
    private readonly notificationHub: Effect.Effect<PubSub.PubSub<ServerNotification>>,
    members: Members
  ) {
    this.name = members.name
    this.spec = members.spec
    this.policy = members.policy
    this.state = members.state
    this.stats = members.stats
    this.awaitReady = members.awaitReady
    this.tools = members.tools
    this.callTool = members.callTool
    this.listTools = members.listTools
    this.listResources = members.listResources
    this.listResourceTemplates = members.listResourceTemplates
    this.readResource = members.readResource
    this.listPrompts = members.listPrompts
    this.getPrompt = members.getPrompt
    this.subscribe = members.subscribe
    this.unsubscribe = members.unsubscribe
    this.setLogLevel = members.setLogLevel
    this.ping = members.ping
    this.reconnect = members.reconnect
    this.rootsChanged = members.rootsChanged
  }

  get changes(): Stream.Stream<ConnectionState> {
    return this.stateCell.changes
  }

  get toolChanges(): Stream.Stream<ReadonlyArray<Tool>> {
    return this.toolsCell.changes
  }

  get notifications(): Stream.Stream<ServerNotification> {
    return Stream.unwrap(Effect.map(this.notificationHub, (hub) => Stream.fromPubSub(hub)))
  }
}

const toMillis = (input: Duration.DurationInput | undefined, fallback: number): number =>
  input === undefined ? fallback : Duration.toMillis(Duration.decode(input))

/** @internal */
export const make = (options: McpConnection.Options) =>
  Effect.gen(function* () {
    const name = options.name
    const spec = yield* ServerSpec.decode(options.server, { server: name, path: `${name}` })
    // No policy given: the defaults, one object for every such connection (decoding `{}`
    // again per connection was a visible share of connect time, and its heap).
    const policy = yield* (
      options.resilience === undefined
        ? Either.right(Resilience.defaultPolicy)
        : Resilience.merge(options.resilience)
    ).pipe(
      Either.mapLeft(
        (e) =>
          new Errors.InvalidConfig({
            server: name,
            path: e.path,
            issues: e.issues,
            message: `${name}: ${e.message}`
          })
      )
    )
    const trustAnnotations = options.trustAnnotations ?? true
    const overrides = options.tools ?? {}

    const clock = yield* Effect.clock
    const now = () => clock.unsafeCurrentTimeMillis()
    const scope = yield* Effect.scope
    // The connection's runtime (its context, fiber refs and flags, captured here): the
    // supervisor and the fibers of server requests and notifications run in it.
    const runtime = yield* Effect.runtime<never>()
    /**
     * Fibers started for the server (handlers of its requests, notification fan-out),
     * interrupted when the connection closes: what a `FiberSet` did here, with the set made
     * on first use (most connections never get a server request; a FiberSet per
     * connection was ~1 KiB of heap).
     */
    let handlers: Set<Fiber.RuntimeFiber<unknown, unknown>> | undefined
    let handlersClosed = false
    const runFork = <A, E>(effect: Effect.Effect<A, E>): Fiber.RuntimeFiber<A, E> => {
      // Closed: nothing more starts (the fiber returned is already interrupted).
      if (handlersClosed) return Runtime.runFork(runtime)(Effect.interrupt)
      const fiber = Runtime.runFork(runtime)(effect)
      const running = (handlers ??= new Set())
      running.add(fiber)
      fiber.addObserver(() => running.delete(fiber))
      return fiber
    }
    yield* Scope.addFinalizer(
      scope,
      Effect.suspend(() => {
        handlersClosed = true
        return handlers === undefined ? Effect.void : Fiber.interruptAll(handlers)
      })
    )

    const state = new Cell.Cell<ConnectionState>(ConnectionState.Connecting({ attempt: 1 }))
    /** The catalog; the call path reads `tools.value` synchronously; `setTools` is its only writer. */
    const tools = new Cell.Cell<ReadonlyArray<Tool>>([])
    // A slow subscriber loses the oldest notifications past 128. (1,024 slots cost 16 KiB
    // per connection, a sixth of its heap, measured with 1,000 connections.) Made by the
    // first subscriber: a notification published before any subscription reaches no one
    // either way, and the 128 slots are 2 KiB of every connection nobody listens to.
    let notifications: PubSub.PubSub<ServerNotification> | undefined
    const notificationHub = Effect.suspend(() =>
      notifications !== undefined
        ? Effect.succeed(notifications)
        : Effect.map(PubSub.sliding<ServerNotification>(128), (made) => (notifications ??= made))
    )
    const kick = new Kick<"demand" | "manual">()
    const counters = {
      connectAttempts: 0,
      reconnects: 0,
      lastError: undefined as Errors.TetherError | undefined,
      lastErrorAt: undefined as number | undefined,
      waiting: 0,
      stateSince: now()
    }
    /** The last failure of the link itself (not of a call), named by timed-out calls. */
    let linkError: Errors.TetherError | undefined
    /**
     * The session while Ready: set and cleared only by the supervisor's serve step, read
     * synchronously by the call path (one owner, no mirror of a Ref).
     */
    let readySession: Session.Session | undefined
    const setTools = (list: ReadonlyArray<Tool>) => Effect.sync(() => tools.unsafeSet(list))
    const subscriptions = new Set<string>()
    let logLevel: LoggingLevel | undefined

    /** The reason a manual `reconnect` gives the session it ends (compared by identity). */
    let manualReason: Errors.TetherError | undefined
    const requestReconnect = (session: Session.Session) => {
      // Already ending for a real reason: that reason stands.
      if (Session.isLost(session)) return
      manualReason = new Errors.ConnectionLost({
        server: name,
        message: "reconnect requested",
        reason: "Closed"
      })
      Session.markLost(session, manualReason)
    }

    const noteError = (error: Errors.TetherError) => {
      counters.lastError = error
      counters.lastErrorAt = now()
    }

    const auth = yield* Auth.forSpec(name, spec, now)
    const sessionContext: Session.SessionContext = {
      name,
      spec,
      policy,
      parentScope: scope,
      now,
      runFork: (effect) => runFork(effect),
      onTools: (list) => setTools(list),
      onNotification: (n) =>
        Effect.suspend(() => (notifications === undefined ? Effect.void : PubSub.publish(notifications, n))),
      subscriptions,
      logLevel: () => logLevel,
      elicitation: options.elicitation,
      sampling: options.sampling,
      roots: options.roots,
      auth
    }

    // -----------------------------------------------------------------------
    // Supervisor: the only fiber that opens and closes sessions.
    // -----------------------------------------------------------------------
    const schedule = Resilience.reconnectSchedule(policy.reconnect)
    const recordState = Metrics.stateRecorder(name)
    const setState = (s: ConnectionState) =>
      Effect.suspend(() => {
        counters.stateSince = now()
        state.unsafeSet(s)
        return recordState(s)
      })

    const readyNow = (): Session.Session | undefined =>
      readySession !== undefined && !Session.isLost(readySession) && !breaker.isOpen
        ? readySession
        : undefined

    const breaker = new Breaker({ name, policy, now, schedule, live: () => readyNow(), setState })

    /**
     * One outage as the supervisor sees it: the reconnect schedule's progress and the last
     * link failure. It outlives a quick successive loss (the backoff goes on) and starts
     * over once a session stayed up for `resetAfter`, after a manual reconnect, or after the
     * circuit opened.
     */
    interface Outage {
      schedule: unknown
      attempt: number
      lastError: Errors.TetherError | undefined
      lostAt: number | undefined
    }
    const freshOutage = (lostAt: number | undefined): Outage => ({
      schedule: schedule.initial,
      attempt: 0,
      lastError: undefined,
      lostAt
    })
    /** Sessions opened so far (the next one's generation is this + 1). */
    let generation = 0

    const noteLinkFailure = (outage: Outage, failure: Errors.TetherError) =>
      Effect.suspend(() => {
        outage.lastError = failure
        linkError = failure
        noteError(failure)
        return Effect.logDebug(`link down: ${brief(failure)}`).pipe(Effect.annotateLogs("server", name))
      })

    /** One connect attempt. */
    const connectOnce = (outage: Outage): Effect.Effect<Either.Either<Session.Session, Errors.TetherError>> =>
      Effect.gen(function* () {
        outage.attempt += 1
        if (outage.lastError === undefined)
          yield* setState(ConnectionState.Connecting({ attempt: outage.attempt }))
        counters.connectAttempts += 1
        const opened = yield* Effect.exit(Session.open(sessionContext, generation + 1))
        // Metrics are tagged where they are recorded, not up front: five tagged metrics were
        // ~2.5 KiB of every connection, most of them never updated.
        yield* Metric.update(
          Metrics.connectAttempts.pipe(
            Metric.tagged("server", name),
            Metric.tagged("outcome", Exit.isSuccess(opened) ? "ok" : "error")
          ),
          1
        )
        if (Exit.isSuccess(opened)) return Either.right(opened.value)
        return Either.left<Errors.TetherError>(
          Cause.failureOption(opened.cause).pipe(
            Option.getOrElse(
              () =>
                new Errors.ConnectionLost({
                  server: name,
                  message: bounded(Cause.pretty(opened.cause)),
                  reason: "Closed"
                })
            )
          )
        )
      })

    /** Waits the schedule's next delay (or `Retry-After`) in Reconnecting; false once the schedule is done. */
    const backOff = (outage: Outage, failure: Errors.TetherError): Effect.Effect<boolean> =>
      Effect.gen(function* () {
        const [next, , decision] = yield* schedule.step(now(), failure, outage.schedule)
        outage.schedule = next
        if (!ScheduleDecision.isContinue(decision)) return false
        const retryAfter = failure._tag === "HttpUnavailable" ? (failure.retryAfterMs ?? 0) : 0
        const wait = Math.max(0, ScheduleIntervals.start(decision.intervals) - now(), retryAfter)
        yield* setState(
          ConnectionState.Reconnecting({
            attempt: outage.attempt + 1,
            lastError: failure,
            nextRetryAt: now() + wait
          })
        )
        // A manual reconnect (or a call's demand) cuts the wait short.
        yield* Effect.raceFirst(Effect.sleep(Duration.millis(wait)), kick.take())
        return true
      })

    /**
     * Connect-with-retry: attempts under the schedule, starting from `lost` (the failure that
     * ended the last session) when there is one. None when it gives up: a permanent error, a
     * failed probe, or the schedule is exhausted.
     */
    const connectWithRetry = (
      outage: Outage,
      probe: boolean,
      lost: Errors.TetherError | undefined
    ): Effect.Effect<Option.Option<Session.Session>> =>
      Effect.gen(function* () {
        let failure = lost
        for (;;) {
          if (failure !== undefined) {
            if (permanentTags.has(failure._tag) || probe) return Option.none()
            if (!(yield* backOff(outage, failure))) return Option.none()
          }
          const opened = yield* connectOnce(outage)
          if (Either.isRight(opened)) return Option.some(opened.right)
          failure = opened.left
          yield* noteLinkFailure(outage, failure)
        }
      })

    /** Serve-a-session: Ready until the link is lost (or a manual reconnect); then tear it down. */
    const serve = (session: Session.Session, outage: Outage) =>
      Effect.gen(function* () {
        generation += 1
        if (generation > 1) counters.reconnects += 1
        outage.attempt = 0
        readySession = session
        if (policy.heartbeat.enabled) {
          yield* Heartbeat.watch(session, { server: name, policy: policy.heartbeat, now, runFork })
        }
        const readySince = now()
        if (outage.lostAt !== undefined)
          yield* Metric.update(
            Metric.tagged(Metrics.recoverySeconds, "server", name),
            (readySince - outage.lostAt) / 1000
          )
        outage.lostAt = undefined
        yield* setState(ConnectionState.Ready({ server: session.info, since: readySince, generation }))
        yield* Effect.logDebug("connection ready").pipe(Effect.annotateLogs({ server: name, generation }))
        // One wait, for the session's end: a manual `reconnect` ends it too (racing the
        // kick mailbox kept two more fibers per Ready connection, ~10 KiB each).
        const queued = yield* kick.poll()
        if (Option.isSome(queued) && queued.value === "manual") requestReconnect(session)
        const reason = yield* Session.awaitLost(session)
        const manual = reason === manualReason
        Session.markLost(session, reason)
        readySession = undefined
        // A dead or hung link is killed at once; a manual reconnect closes politely.
        if (!manual) yield* Effect.promise(() => session.link.kill())
        yield* Session.close(session)
        yield* Metric.update(
          Metrics.reconnects.pipe(Metric.tagged("server", name), Metric.tagged("reason", reason._tag)),
          1
        )
        // A session that stayed up for `resetAfter` was a recovery: back off from scratch.
        return { reason, fresh: manual || now() - readySince >= policy.reconnect.resetAfter }
      })

    /** Circuit-open: Failed until a call's demand (a one-attempt probe) or a manual reconnect. */
    const circuitOpen = (failure: Errors.TetherError): Effect.Effect<"demand" | "manual"> =>
      Effect.gen(function* () {
        const since = now()
        yield* setState(
          ConnectionState.Failed({ lastError: failure, since, retryAt: since + policy.breaker.cooldown })
        )
        return yield* kick.take()
      })

    const supervisor = Effect.gen(function* () {
      let outage = freshOutage(undefined)
      let probe = false
      let lost: Errors.TetherError | undefined
      for (;;) {
        const session = yield* connectWithRetry(outage, probe, lost)
        probe = false
        lost = undefined
        if (Option.isNone(session)) {
          const failure = outage.lastError ?? closedError()
          probe = (yield* circuitOpen(failure)) === "demand"
          outage = freshOutage(outage.lostAt)
          continue
        }
        const end = yield* serve(session.value, outage)
        if (end.fresh) outage.schedule = schedule.initial
        outage.lostAt = now()
        lost = end.reason
        yield* noteLinkFailure(outage, end.reason)
      }
    })

    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        readySession = undefined
        return setState(ConnectionState.Closed())
      })
    )
    // Started from the connection's runtime, not forked from this fiber: a child fiber keeps
    // its parent reachable (Effect's fork observer), and `make`'s fiber ends when it returns;
    // kept alive by the supervisor it was ~1 KiB of every connection. Interrupted (and
    // awaited) on close, where `forkScoped` would have.
    const supervisorFiber = Runtime.runFork(runtime)(supervisor)
    yield* Scope.addFinalizer(scope, Fiber.interrupt(supervisorFiber))

    // -----------------------------------------------------------------------
    // Calls
    // -----------------------------------------------------------------------
    const closedError = () =>
      new Errors.ConnectionLost({ server: name, message: "connection closed", reason: "Closed" })

    /** Decides, for one state, whether a call can go now, must wait, or fails fast. */
    const admit = (s: ConnectionState): Effect.Effect<Option.Option<Session.Session>, Errors.TetherError> => {
      switch (s._tag) {
        case "Ready":
          return Effect.sync(() =>
            readySession !== undefined && !Session.isLost(readySession)
              ? Option.some(readySession)
              : Option.none()
          )
        case "Connecting":
        case "Reconnecting":
          return Effect.succeed(Option.none())
        case "Closed":
          return Effect.fail(closedError())
        case "Failed": {
          // Open on a live link: the breaker probes by itself; refused calls learn when.
          if (breaker.isOpen) return Effect.fail(breaker.refusal())
          if (now() < s.retryAt) {
            // A permanent error is the server's answer to every call; anything else (a link
            // failure) is the reason the circuit is open, given as data, not as this call's error.
            return Effect.fail(
              Errors.isRecoverable(s.lastError) || s.lastError._tag === "OutcomeUnknown"
                ? new Errors.ServerUnavailable({
                    server: name,
                    retryAt: s.retryAt,
                    lastError: brief(s.lastError),
                    cause: s.lastError,
                    message: bounded(
                      `${name} is unavailable (${brief(s.lastError)}); next try after ${new Date(s.retryAt).toISOString()}`
                    )
                  })
                : s.lastError
            )
          }
          // Cooldown over: this call is the probe that starts connecting again.
          return kick.offer("demand").pipe(Effect.as(Option.none()))
        }
      }
    }

    /**
     * Admits on every state after `from`, in order (as a subscriber of `changes` would),
     * until one admits: a walk of the state's history, no stream. Each state is admitted
     * once: admitting a Failed state past its cooldown asks for a probe, and asking twice
     * would run two.
     */
    const admitAfter = (from: Cell.Node<ConnectionState>) =>
      Effect.gen(function* () {
        let node = from
        for (;;) {
          node = yield* Cell.next(node)
          const admitted = yield* admit(node.value)
          if (Option.isSome(admitted)) return admitted.value
        }
      })

    const awaitSession: Effect.Effect<Session.Session, Errors.TetherError> = Effect.gen(function* () {
      const seen = state.current
      const first = yield* admit(seen.value)
      if (Option.isSome(first)) return first.value
      if (counters.waiting >= policy.call.maxQueued) {
        return yield* new Errors.Overloaded({
          server: name,
          limit: policy.call.maxQueued,
          message: `${counters.waiting} calls already wait for ${name} to reconnect (limit ${policy.call.maxQueued})`
        })
      }
      counters.waiting += 1
      return yield* admitAfter(seen).pipe(Effect.ensuring(Effect.sync(() => (counters.waiting -= 1))))
    })

    const isToolSafe = (tool: string, perCall: boolean | undefined): boolean => {
      if (perCall !== undefined) return perCall
      const override = overrides[tool]?.idempotent
      if (override !== undefined) return override
      if (!trustAnnotations) return false
      const annotations = tools.value.find((t) => t.name === tool)?.annotations
      return annotations?.readOnlyHint === true || annotations?.idempotentHint === true
    }

    /** A tool's own error result is a failure of the call, not of the link. */
    const toolResult: Calls.Check = (descriptor, value) => {
      const result = value as CallToolResult
      if (result.isError !== true) return undefined
      const text = result.content
        .flatMap((c) => (c.type === "text" ? [c.text] : []))
        .join("\n")
        .slice(0, 500)
      return new Errors.ToolFailed({
        server: name,
        tool: descriptor.tool ?? "",
        result,
        message: `tool ${descriptor.tool} on ${name} reported an error${text.length > 0 ? `: ${text}` : ""}`
      })
    }

    const { counters: callCounters, request } = Calls.makeRequest(
      new CallContext({
        readyNow,
        name,
        policy,
        now,
        awaitSession,
        noteError,
        linkError: () => linkError,
        breaker
      })
    )

    const method = (m: string): Descriptor => ({ method: m, safe: safeMethods.has(m) })

    const paginate = <T>(
      m: string,
      fetchPage: (
        client: Client,
        cursor: string | undefined,
        o: RequestOptions
      ) => Promise<{ nextCursor?: string | undefined } & Record<string, unknown>>,
      key: string,
      callOptions?: CallOptions
    ): Effect.Effect<ReadonlyArray<T>, Errors.TetherError> =>
      Effect.gen(function* () {
        const items: Array<T> = []
        let cursor: string | undefined
        do {
          const page = yield* request(method(m), (client, o) => fetchPage(client, cursor, o), callOptions)
          items.push(...((page[key] ?? []) as Array<T>))
          cursor = page.nextCursor
        } while (cursor !== undefined)
        return items
      })

    const cursorParams = (cursor: string | undefined) => (cursor === undefined ? {} : { cursor })

    const connection = new Connection(state, tools, notificationHub, {
      name,
      spec,
      policy,
      state: Effect.sync(() => state.value),
      stats: Effect.sync((): Stats => ({
        connectAttempts: counters.connectAttempts,
        reconnects: counters.reconnects,
        errors: callCounters.errors,
        lastError: counters.lastError,
        lastErrorAt: counters.lastErrorAt,
        pendingCalls: callCounters.pending,
        stateSince: counters.stateSince
      })),
      awaitReady: (o) => {
        const deadline = toMillis(o?.timeout, policy.call.timeout)
        return awaitSession.pipe(
          Effect.map((s): ServerInfo => s.info),
          Effect.timeoutFail({
            duration: Duration.millis(deadline),
            // The link's own last failure, never another call's error.
            onTimeout: () =>
              linkError ??
              new Errors.RequestTimeout({
                server: name,
                timeoutMs: deadline,
                message: `${name} not ready within ${deadline} ms`
              })
          })
        )
      },
      tools: Effect.sync(() => tools.value),
      callTool: (tool, args, o) =>
        (
          request(
            { method: "tools/call", tool, safe: () => isToolSafe(tool, o?.idempotent) },
            (client, ro) => client.callTool({ name: tool, arguments: args ?? {} }, undefined, ro),
            o,
            toolResult
          ) as Effect.Effect<CallToolResult, Errors.TetherError>
        ).pipe(withHotSpan("McpConnection.callTool", { server: name, tool })),
      listTools: (o) =>
        paginate<Tool>(
          "tools/list",
          (c, cursor, ro) => c.listTools(cursorParams(cursor), ro),
          "tools",
          o
        ).pipe(
          Effect.tap((list) => setTools(list)),
          Effect.withSpan("McpConnection.listTools", {
            attributes: { server: name },
            captureStackTrace: false
          })
        ),
      listResources: (o) =>
        paginate<Resource>(
          "resources/list",
          (c, cursor, ro) => c.listResources(cursorParams(cursor), ro),
          "resources",
          o
        ),
      listResourceTemplates: (o) =>
        paginate<ResourceTemplate>(
          "resources/templates/list",
          (c, cursor, ro) => c.listResourceTemplates(cursorParams(cursor), ro),
          "resourceTemplates",
          o
        ),
      readResource: (uri, o) => request(method("resources/read"), (c, ro) => c.readResource({ uri }, ro), o),
      listPrompts: (o) =>
        paginate<Prompt>(
          "prompts/list",
          (c, cursor, ro) => c.listPrompts(cursorParams(cursor), ro),
          "prompts",
          o
        ),
      getPrompt: (prompt, args, o) =>
        request(
          method("prompts/get"),
          (c, ro) => c.getPrompt({ name: prompt, arguments: args ?? {} }, ro),
          o
        ),
      subscribe: (uri, o) =>
        request(method("resources/subscribe"), (c, ro) => c.subscribeResource({ uri }, ro), o).pipe(
          Effect.tap(() => Effect.sync(() => subscriptions.add(uri))),
          Effect.asVoid
        ),
      unsubscribe: (uri, o) =>
        request(method("resources/unsubscribe"), (c, ro) => c.unsubscribeResource({ uri }, ro), o).pipe(
          Effect.tap(() => Effect.sync(() => subscriptions.delete(uri))),
          Effect.asVoid
        ),
      setLogLevel: (level, o) =>
        request(method("logging/setLevel"), (c, ro) => c.setLoggingLevel(level, ro), o).pipe(
          Effect.tap(() => Effect.sync(() => (logLevel = level))),
          Effect.asVoid
        ),
      ping: (o) =>
        Effect.gen(function* () {
          const start = now()
          yield* request(method("ping"), (c, ro) => c.ping(ro), o)
          return now() - start
        }),
      reconnect: Effect.suspend(() => {
        const session = readySession
        if (session !== undefined && !Session.isLost(session)) {
          requestReconnect(session)
          return Effect.void
        }
        return kick.offer("manual").pipe(Effect.asVoid)
      }),
      rootsChanged: Effect.suspend(() => {
        const session = readySession
        if (options.roots === undefined || session === undefined || Session.isLost(session))
          return Effect.void
        // A notification has no answer: a lost link is noticed by the supervisor, not here.
        return Effect.promise(() => session.client.sendRootsListChanged().catch(() => undefined))
      })
    })
    return connection
  }).pipe(
    // No stack trace: the supervisor keeps this span as its parent for the connection's
    // life, and the captured stack was ~1.4 KiB of every connection's heap.
    Effect.withSpan("McpConnection.make", { attributes: { server: options.name }, captureStackTrace: false })
  )
