/**
 * The call-failure circuit breaker of one connection: it counts calls that failed in a row
 * on a live link and, at the threshold, opens: calls fail fast with `ServerUnavailable`
 * (never another call's error) while one fiber probes the server with `ping` on the
 * reconnect schedule. The first answered probe closes it. Opening never tears the link
 * down: only a probe that finds the link dead does (or the heartbeat, which keeps running).
 *
 * @internal
 */
import {
  Cause,
  Duration,
  Effect,
  Exit,
  Option,
  type Schedule,
  ScheduleDecision,
  ScheduleIntervals
} from "effect"
import { ConnectionState } from "../ConnectionState.js"
import * as Errors from "../Errors.js"
import { pingWithin } from "./heartbeat.js"
import type { Policy } from "../Resilience.js"
import { bounded, brief } from "./errorText.js"
import * as Session from "./session.js"

/** @internal What a failed call tells the breaker. */
export interface Failure {
  readonly error: Errors.TetherError
  /** At least one attempt reached a session (a call that only waited says nothing new). */
  readonly attempted: boolean
  /** The call ended at its deadline, and that deadline was the caller's own. */
  readonly ownDeadlineMs: number | undefined
}

/** @internal */
export interface BreakerContext {
  readonly name: string
  readonly policy: Policy
  readonly now: () => number
  readonly schedule: Schedule.Schedule<Duration.Duration, unknown>
  /** The live session, if any (the one a trip would concern). */
  readonly live: () => Session.Session | undefined
  readonly setState: (state: ConnectionState) => Effect.Effect<void>
}

interface Open {
  readonly session: Session.Session
  lastError: Errors.TetherError
  retryAt: number
}

/** The error a breaker reports: the link failure under an `OutcomeUnknown`, never the call's own verdict. */
const reasonOf = (error: Errors.TetherError): Errors.TetherError =>
  error._tag === "OutcomeUnknown" && Errors.isTetherError(error.cause) ? error.cause : error

/** @internal */
export class Breaker {
  private failures = 0
  private open: Open | undefined

  constructor(private readonly ctx: BreakerContext) {}

  /** Open on a session that is still alive. */
  get isOpen(): boolean {
    const open = this.open
    return open !== undefined && !Session.isLost(open.session)
  }

  /** A call got an answer: the server works. */
  success(): void {
    this.failures = 0
  }

  /** The error for a call refused while open. */
  refusal(): Errors.ServerUnavailable {
    const { name, now } = this.ctx
    const open = this.open
    const retryAt = Math.max(open?.retryAt ?? now(), now())
    const cause = open?.lastError
    const why = cause === undefined ? "" : ` (${brief(cause)})`
    return new Errors.ServerUnavailable({
      server: name,
      retryAt,
      lastError: cause === undefined ? undefined : brief(cause),
      cause,
      message: bounded(
        `${name} is failing every call${why}; the circuit is open, next probe at ${new Date(retryAt).toISOString()}`
      )
    })
  }

  /** Counts a failed call; opens at the threshold, while a live session exists. */
  failure(failure: Failure): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (!this.counts(failure)) return Effect.void
      this.failures += 1
      if (this.failures < this.ctx.policy.breaker.failureThreshold || this.isOpen) return Effect.void
      const session = this.ctx.live()
      if (session === undefined) return Effect.void
      this.failures = 0
      return this.trip(session, reasonOf(failure.error))
    })
  }

  private counts({ attempted, error, ownDeadlineMs }: Failure): boolean {
    if (!attempted) return false
    if (ownDeadlineMs !== undefined && ownDeadlineMs < this.ctx.policy.breaker.minTimeout) return false
    if (error._tag === "OutcomeUnknown") return true
    return Errors.isRecoverable(error) && error._tag !== "ServerUnavailable" && error._tag !== "Overloaded"
  }

  private trip(session: Session.Session, lastError: Errors.TetherError): Effect.Effect<void> {
    const { now, policy, schedule } = this.ctx
    const open: Open = { session, lastError, retryAt: now() }
    this.open = open
    const publish = Effect.suspend(() =>
      this.ctx.setState(
        ConnectionState.Failed({ lastError: open.lastError, since: now(), retryAt: open.retryAt })
      )
    )
    const probe = Effect.gen(this, function* () {
      // The failures that opened the circuit were just now: skip the schedule's immediate try.
      let [state] = yield* schedule.step(now(), lastError, schedule.initial)
      yield* Effect.logDebug(`circuit open: ${brief(lastError)}`)
      for (;;) {
        const [next, , decision] = yield* schedule.step(now(), open.lastError, state)
        state = next
        // Past the schedule's end the link is still alive: keep probing at the slowest pace.
        const wait = ScheduleDecision.isContinue(decision)
          ? Math.max(0, ScheduleIntervals.start(decision.intervals) - now())
          : policy.reconnect.maxDelay
        open.retryAt = now() + wait
        yield* publish
        yield* Effect.sleep(Duration.millis(wait))
        const exit = yield* Effect.exit(ping(session, this.ctx))
        if (Exit.isSuccess(exit)) {
          // Ready first, then closed: a call in between is refused, never sent to a gap.
          yield* this.ctx.setState(
            ConnectionState.Ready({ server: session.info, since: now(), generation: session.generation })
          )
          this.open = undefined
          this.failures = 0
          yield* Effect.logDebug("circuit closed: the server answered a probe")
          return
        }
        const error = Cause.failureOption(exit.cause)
        if (Option.isNone(error)) return
        open.lastError = error.value
        if (Errors.isLinkFailure(error.value)) {
          // The link itself is gone: the supervisor reconnects (and owns the state from here).
          Session.markLost(session, error.value)
          return
        }
      }
    })
    // The probe lives as long as the session: losing the session ends it.
    return Effect.zipRight(publish, Effect.asVoid(Effect.forkIn(probe, session.scope)))
  }
}

/** One `ping`, bounded by the heartbeat's timeout. */
const ping = (session: Session.Session, ctx: BreakerContext): Effect.Effect<void, Errors.TetherError> =>
  pingWithin(session, {
    server: ctx.name,
    timeoutMs: ctx.policy.heartbeat.timeout,
    what: "probe ping",
    hasSession: session.link.sessionId !== undefined
  })
