/**
 * Dead-link detection: `ping` a session when the server has been silent for `interval`;
 * `misses` pings in a row slower than `timeout` mean a half-open link, which is marked
 * lost so the supervisor kills it and reconnects.
 *
 * The waiting is shared: one ticker fiber per `Clock` (so a `TestClock` drives its own)
 * sleeps until the earliest session is due and checks it; a session's own fiber exists
 * only while it is being pinged. A sleeping fiber and its timer per session were ~6.5 KiB
 * of every connection's heap (measured with 300 idle WebSocket connections).
 *
 * @internal
 */
import { Cause, type Clock, Duration, Effect, Exit, Fiber, Metric, Option, Scope } from "effect"
import { globalValue } from "effect/GlobalValue"
import * as Errors from "../Errors.js"
import * as Metrics from "../Metrics.js"
import { classify } from "./classify.js"
import { tryPromiseWithin } from "./deadline.js"
import type { Policy } from "../Resilience.js"
import * as Session from "./session.js"

/** @internal */
export interface Options {
  readonly server: string
  readonly policy: Policy["heartbeat"]
  readonly now: () => number
  /** Runs a session's ping round in its connection's runtime (its logger, tracer, Clock). */
  readonly runFork: <A, E>(effect: Effect.Effect<A, E>) => Fiber.RuntimeFiber<A, E>
}

/** One watched session: in the ticker's heap while idle, out of it while being pinged. */
interface Watch {
  readonly session: Session.Session
  readonly options: Options
  /** When its silence reaches `interval`, as last computed. */
  dueAt: number
  /** Position in the heap; -1 when not in it. */
  index: number
  removed: boolean
}

/** The ticker's wake-up: the instant it sleeps until, and its fiber once forked. */
interface Ticker {
  at: number
  fiber: Fiber.RuntimeFiber<void> | undefined
}

/** The sessions of one `Clock`, in a binary min-heap on `dueAt`. */
class Heartbeats {
  private readonly heap: Array<Watch> = []
  private ticker: Ticker | undefined

  constructor(private readonly now: () => number) {}

  /** Starts watching `session` until its scope closes. */
  watch(session: Session.Session, options: Options): Effect.Effect<void> {
    return Effect.suspend(() => {
      const watch: Watch = {
        session,
        options,
        dueAt: session.link.lastActivity + options.policy.interval,
        index: -1,
        removed: false
      }
      this.push(watch)
      return Effect.zipRight(Scope.addFinalizer(session.scope, this.unwatch(watch)), this.wakeBy(watch.dueAt))
    })
  }

  private unwatch(watch: Watch): Effect.Effect<void> {
    return Effect.suspend(() => {
      watch.removed = true
      this.remove(watch)
      // Nothing left to watch: no timer may keep the process alive.
      const ticker = this.ticker
      if (this.heap.length > 0 || ticker === undefined) return Effect.void
      this.ticker = undefined
      return ticker.fiber === undefined ? Effect.void : Fiber.interruptFork(ticker.fiber)
    })
  }

  /** Makes sure a ticker wakes no later than `at` (a later one is replaced). */
  private wakeBy(at: number): Effect.Effect<void> {
    return Effect.suspend(() => {
      const current = this.ticker
      if (current !== undefined && current.at <= at) return Effect.void
      const ticker: Ticker = { at, fiber: undefined }
      this.ticker = ticker
      return Effect.forkDaemon(this.tick(ticker)).pipe(
        Effect.flatMap((fiber) => {
          ticker.fiber = fiber
          // Replaced while forking, or the last watch left: this one is not needed.
          if (this.ticker !== ticker) return Fiber.interruptFork(fiber)
          return current?.fiber === undefined ? Effect.void : Fiber.interruptFork(current.fiber)
        })
      )
    })
  }

  private tick(ticker: Ticker): Effect.Effect<void> {
    return Effect.gen(this, function* () {
      for (;;) {
        const wait = ticker.at - this.now()
        if (wait > 0) yield* Effect.sleep(Duration.millis(wait))
        if (this.ticker !== ticker) return
        const now = this.now()
        for (let first = this.heap[0]; first !== undefined && first.dueAt <= now; first = this.heap[0]) {
          this.remove(first)
          this.check(first, now)
        }
        const next = this.heap[0]
        if (next === undefined) {
          this.ticker = undefined
          return
        }
        ticker.at = next.dueAt
      }
    })
  }

  /** A due watch: silent for `interval` (ping it), or heard from since (due later). */
  private check(watch: Watch, now: number): void {
    if (watch.removed || Session.isLost(watch.session)) return
    const { session, options } = watch
    const lastActivity = session.link.lastActivity
    if (now - lastActivity < options.policy.interval) {
      watch.dueAt = lastActivity + options.policy.interval
      this.push(watch)
      return
    }
    // The round lives in the session's scope: losing or closing the session ends it.
    options.runFork(Effect.forkIn(this.round(watch), session.scope))
  }

  /** Pings until one is answered (back to waiting) or the link is declared dead. */
  private round(watch: Watch): Effect.Effect<void> {
    const { session, options } = watch
    const { misses, timeout } = options.policy
    const { now, server } = options
    return Effect.gen(this, function* () {
      let missed = 0
      while (!Session.isLost(session)) {
        const pingStart = now()
        const exit = yield* Effect.exit(pingWithin(session, { server, timeoutMs: timeout, what: "ping" }))
        if (Exit.isSuccess(exit)) {
          // Tagged here, not per connection up front: a ping comes at most once an interval.
          yield* Metric.update(
            Metric.tagged(Metrics.heartbeatSeconds, "server", server),
            (now() - pingStart) / 1000
          )
          if (watch.removed || Session.isLost(session)) return
          watch.dueAt = session.link.lastActivity + options.policy.interval
          this.push(watch)
          return yield* this.wakeBy(watch.dueAt)
        }
        const error = Cause.failureOption(exit.cause)
        if (Option.isSome(error) && Errors.isLinkFailure(error.value)) {
          Session.markLost(session, error.value)
          return
        }
        missed += 1
        yield* Effect.logDebug(`heartbeat missed ${missed}/${misses}`)
        if (missed >= misses) {
          Session.markLost(
            session,
            new Errors.HeartbeatMissed({
              server,
              misses: missed,
              message: `${missed} heartbeat ping(s) unanswered within ${timeout} ms: the link is dead`
            })
          )
          return
        }
      }
    })
  }

  // --- the heap ------------------------------------------------------------

  private push(watch: Watch): void {
    watch.index = this.heap.length
    this.heap.push(watch)
    this.up(watch.index)
  }

  private remove(watch: Watch): void {
    const i = watch.index
    if (i < 0) return
    watch.index = -1
    const last = this.heap.pop()!
    if (i === this.heap.length) return
    this.heap[i] = last
    last.index = i
    this.down(i)
    this.up(last.index)
  }

  private up(i: number): void {
    const heap = this.heap
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (heap[parent]!.dueAt <= heap[i]!.dueAt) return
      this.swap(i, parent)
      i = parent
    }
  }

  private down(i: number): void {
    const heap = this.heap
    for (;;) {
      const left = 2 * i + 1
      const right = left + 1
      let least = i
      if (left < heap.length && heap[left]!.dueAt < heap[least]!.dueAt) least = left
      if (right < heap.length && heap[right]!.dueAt < heap[least]!.dueAt) least = right
      if (least === i) return
      this.swap(i, least)
      i = least
    }
  }

  private swap(i: number, j: number): void {
    const heap = this.heap
    const a = heap[i]!
    const b = heap[j]!
    heap[i] = b
    heap[j] = a
    a.index = j
    b.index = i
  }
}

/**
 * One `ping` of `session`, failed with `RequestTimeout` ("WHAT timed out") past `timeoutMs`
 * (the request is then cancelled). The heartbeat's pings and the breaker's probe.
 *
 * @internal
 */
export const pingWithin = (
  session: Session.Session,
  options: {
    readonly server: string
    readonly timeoutMs: number
    readonly what: string
    /** Passed to `classify`: a 404 then means the session expired. */
    readonly hasSession?: boolean | undefined
  }
): Effect.Effect<void, Errors.Classified> => {
  const { hasSession, server, timeoutMs, what } = options
  return tryPromiseWithin({
    try: (signal) => session.client.ping({ signal, timeout: timeoutMs + 1_000 }),
    catch: (e) => classify(e, hasSession === undefined ? { server } : { server, hasSession }),
    timeoutMs,
    onTimeout: () => new Errors.RequestTimeout({ server, message: `${what} timed out`, timeoutMs })
  }).pipe(Effect.asVoid)
}

/** One `Heartbeats` per `Clock`, even if this module is loaded twice. */
const byClock = globalValue(
  Symbol.for("tether/heartbeat/byClock"),
  () => new WeakMap<Clock.Clock, Heartbeats>()
)

/**
 * Watches `session` until its scope closes: pinged after `interval` of silence, marked
 * lost after `misses` unanswered pings or a ping that failed with a link failure.
 *
 * @internal
 */
export const watch = (session: Session.Session, options: Options): Effect.Effect<void> =>
  Effect.flatMap(Effect.clock, (clock) => {
    let heartbeats = byClock.get(clock)
    if (heartbeats === undefined) {
      heartbeats = new Heartbeats(() => clock.unsafeCurrentTimeMillis())
      byClock.set(clock, heartbeats)
    }
    return heartbeats.watch(session, options)
  })
