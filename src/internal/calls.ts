/**
 * The call path of a connection: wait for a session within the deadline, one attempt at a
 * time with its phase tracked, retry only what is safe, `OutcomeUnknown` otherwise, an idle
 * timeout pushed back by progress, and the consecutive-failure count of the breaker.
 *
 * @internal
 */
import type { Client } from "@modelcontextprotocol/sdk/client/index.js"
import type { RequestOptions } from "@modelcontextprotocol/sdk/shared/protocol.js"
import { Cause, Duration, Effect, Exit, Metric, Option, ScheduleDecision, ScheduleIntervals } from "effect"
import * as Errors from "../Errors.js"
import { classify } from "./classify.js"
import type { CallOptions, Progress } from "../McpConnection.js"
import * as Metrics from "../Metrics.js"
import { type Policy, retrySchedule } from "../Resilience.js"
import type { Breaker } from "./breaker.js"
import { CallSignal } from "./callSignal.js"
import { bounded, brief } from "./errorText.js"
import { type Flight, makeFlight } from "./link.js"
import * as Session from "./session.js"

/** @internal What is being called, and whether it is safe to send again once written. */
export interface Descriptor {
  readonly method: string
  readonly tool?: string | undefined
  /** Read only when an attempt failed after it was sent (a tool's hints can change). */
  readonly safe: boolean | (() => boolean)
}

/** @internal Turns a result into a failure that is not the link's fault (a tool's `isError`). */
export type Check = (descriptor: Descriptor, value: unknown) => Errors.TetherError | undefined

/** @internal One SDK request, given the SDK options (signal, timeout, progress). */
export type Run<A> = (client: Client, options: RequestOptions) => Promise<A>

/** @internal The call path's own counters (it is their only writer; `stats` reads them). */
export interface CallCounters {
  /** Calls in flight or waiting right now. */
  pending: number
  /** Calls that ended in an error. */
  errors: number
}

/** @internal */
export interface CallContext {
  readonly name: string
  readonly policy: Policy
  readonly now: () => number
  readonly awaitSession: Effect.Effect<Session.Session, Errors.TetherError>
  /** The live session when Ready, read without running an effect (the fast path). */
  readonly readyNow: () => Session.Session | undefined
  readonly noteError: (error: Errors.TetherError) => void
  /** The connection's last link failure (what a timed-out call names as its cause). */
  readonly linkError: () => Errors.TetherError | undefined
  readonly retries: Metric.Metric.Counter<number>
  /** Counts call outcomes; opens the circuit after failures in a row. */
  readonly breaker: Breaker
}

/**
 * Starts one SDK request on a session for `flight`. The link's `send` runs synchronously
 * inside the SDK's `request()`: setting `current` around it is how the link learns which
 * flight the JSON-RPC request belongs to.
 */
const startOn = <A>(
  session: Session.Session,
  flight: Flight,
  run: Run<A>,
  options: RequestOptions
): Promise<A> => {
  session.link.current = flight
  try {
    return run(session.client, options)
  } finally {
    session.link.current = undefined
  }
}

/** @internal How an attempt ended: `onValue` or `onError` runs once, the flight settled. */
interface Outcome<A> {
  readonly onValue: (value: A) => void
  readonly onError: (error: Errors.Classified) => void
}

/**
 * One attempt, outside any fiber: starts the SDK request for `flight` and reports once to
 * `outcome`, with the value or the classified failure. Returns a cancel function (true when
 * it cancelled, false when the outcome had already been reported); cancelling aborts the
 * request, which makes the SDK send notifications/cancelled. Both call paths run their
 * attempts through this one function.
 */
const launch = <A>(
  session: Session.Session,
  flight: Flight,
  run: Run<A>,
  server: string,
  timeout: number,
  onprogress: ((p: Progress) => void) | undefined,
  outcome: Outcome<A>
): (() => boolean) => {
  const signal = new CallSignal()
  let finished = false
  /** True for the one caller that ends the attempt (an outcome or a cancel). */
  const finish = (): boolean => {
    if (finished) return false
    finished = true
    session.link.settle(flight)
    return true
  }
  const options: RequestOptions = { signal: signal.asAbortSignal(), timeout }
  if (onprogress !== undefined) options.onprogress = onprogress
  let promise: Promise<A>
  try {
    promise = startOn(session, flight, run, options)
  } catch (e) {
    promise = Promise.reject(e)
  }
  promise.then(
    (value) => {
      if (finish()) outcome.onValue(value)
    },
    (e: unknown) => {
      if (!finish()) return
      // Outside any fiber: whatever happens, the outcome is reported (a call must never hang).
      let error: Errors.Classified
      try {
        error = classify(e, { server, hasSession: session.link.sessionId !== undefined })
      } catch {
        error = new Errors.InvalidResponse({ server, message: "unexpected failure" })
      }
      outcome.onError(error)
    }
  )
  return () => {
    if (!finish()) return false
    signal.abort()
    return true
  }
}

const toMillis = (input: Duration.DurationInput | undefined, fallback: number): number =>
  input === undefined ? fallback : Duration.toMillis(Duration.decode(input))

/** @internal */
export const makeRequest = (ctx: CallContext) => {
  const { name, noteError, now, policy } = ctx
  const counters: CallCounters = { pending: 0, errors: 0 }
  const awaitSession = ctx.awaitSession
  const breaker = ctx.breaker

  // Retries are spaced by the policy's Schedule (the same module builds the reconnect one).
  const retryPlan = retrySchedule(policy)

  /** Fails when no progress (nor answer) came for `idleMs`; progress moves `last()` on. */
  const idleWatch = (descriptor: Descriptor, idleMs: number | undefined, last: () => number) =>
    idleMs === undefined
      ? Effect.never
      : Effect.gen(function* () {
          for (;;) {
            const left = last() + idleMs - now()
            if (left <= 0) {
              return yield* new Errors.RequestTimeout({
                server: name,
                timeoutMs: idleMs,
                message: `${descriptor.tool ?? descriptor.method} on ${name}: no progress for ${idleMs} ms`
              })
            }
            yield* Effect.sleep(Duration.millis(left))
          }
        })

  /** The call's total deadline in ms: its own `timeout`, else the policy's. */
  const deadlineOf = (callOptions: CallOptions | undefined): number =>
    callOptions?.timeout === undefined ? policy.call.timeout : toMillis(callOptions.timeout, 0)

  /** One attempt on one session; the flight records how far the request got. */
  const attempt = <A>(
    session: Session.Session,
    flight: Flight,
    descriptor: Descriptor,
    run: Run<A>,
    sdkTimeout: number,
    callOptions: CallOptions | undefined,
    idleMs: number | undefined
  ): Effect.Effect<A, Errors.Classified> => {
    let lastProgressAt = now()
    const userProgress = callOptions?.onProgress
    const onprogress =
      userProgress === undefined && idleMs === undefined
        ? undefined
        : (p: Progress) => {
            lastProgressAt = now()
            userProgress?.(p)
          }
    const call = Effect.async<A, Errors.Classified>((resume) => {
      const cancel = launch(session, flight, run, name, sdkTimeout, onprogress, {
        onValue: (value) => resume(Effect.succeed(value)),
        onError: (error) => resume(Effect.fail(error))
      })
      return Effect.sync(cancel)
    })
    // Racing forks fibers: only pay for it when an idle limit was asked for.
    return idleMs === undefined
      ? call
      : Effect.raceFirst(
          idleWatch(descriptor, idleMs, () => lastProgressAt),
          call
        )
  }

  const isSafe = (descriptor: Descriptor): boolean =>
    typeof descriptor.safe === "boolean" ? descriptor.safe : descriptor.safe()
  const labelOf = (descriptor: Descriptor) => descriptor.tool ?? descriptor.method

  /**
   * Book-keeping of a call the server answered (a success for the breaker, even when the
   * check turns the answer into a failure), and the call's outcome. Both paths end here.
   */
  const answered = <A>(
    descriptor: Descriptor,
    started: number,
    value: A,
    check: Check | undefined
  ): Effect.Effect<A, Errors.TetherError> => {
    const failure = check?.(descriptor, value)
    breaker.success()
    Metrics.unsafeRecordCall(name, labelOf(descriptor), failure, now() - started)
    return failure === undefined ? Effect.succeed(value) : Effect.fail(failure)
  }

  /** The first failed attempt of the fast path, handed over to the general path. */
  interface FirstFailure {
    readonly session: Session.Session
    readonly flight: Flight
    readonly error: Errors.Classified
  }

  /**
   * The general path: waits for a session, retries what is safe, spaces retries, opens the
   * circuit after failures in a row. It counts itself in `counters.pending` from acquire
   * to release, so no interruption can leave the count off.
   */
  const general = <A>(
    descriptor: Descriptor,
    run: Run<A>,
    callOptions: CallOptions | undefined,
    check: Check | undefined,
    started: number,
    first: FirstFailure | undefined
  ): Effect.Effect<A, Errors.TetherError> =>
    Effect.suspend(() => {
      const deadline = deadlineOf(callOptions)
      const idleMs =
        callOptions?.idleTimeout === undefined ? undefined : toMillis(callOptions.idleTimeout, deadline)
      const deadlineAt = started + deadline
      const remaining = () => deadlineAt - now()
      let lastError: Errors.TetherError | undefined
      // Whether an attempt reached a session, and whether the call ended at its deadline:
      // what the breaker needs to judge the failure.
      let attempted = first !== undefined
      let atDeadline = false
      const timedOut = () => {
        atDeadline = true
        if (lastError !== undefined) return lastError
        // The link's last failure is named once, briefly, and kept whole as `cause`: a
        // call's error never embeds another call's message, so messages stay bounded.
        const cause = ctx.linkError()
        return new Errors.RequestTimeout({
          server: name,
          timeoutMs: deadline,
          cause,
          message: bounded(
            `${labelOf(descriptor)} on ${name} did not complete within ${deadline} ms` +
              (cause !== undefined ? ` (last connection error: ${brief(cause)})` : "")
          )
        })
      }
      // The deadline is enforced in two places rather than by one `timeoutFail` around
      // everything, which forks a fiber and a timer per call (the benchmarks showed it):
      // waits (for Ready, between retries) are Effect timeouts on the Clock; an attempt
      // in flight is bounded by the SDK's own request timeout, set to what is left, which
      // also sends notifications/cancelled when it fires.
      const waitForSession = Effect.suspend(() => {
        const ready = ctx.readyNow()
        if (ready !== undefined) return Effect.succeed(ready)
        const left = remaining()
        return left <= 0
          ? Effect.fail(timedOut())
          : awaitSession.pipe(Effect.timeoutFail({ duration: Duration.millis(left), onTimeout: timedOut }))
      })
      let retryState = retryPlan.initial
      /** What to do after a failed attempt: fail now, or wait and go round again. */
      const afterFailure = (
        session: Session.Session,
        flight: Flight,
        error: Errors.Classified
      ): Effect.Effect<void, Errors.TetherError> => {
        // The SDK's timer fired: this is the call's deadline, not a link problem.
        if (error._tag === "RequestTimeout" && remaining() <= 0) return Effect.fail(timedOut())
        lastError = error
        if (Errors.isLinkFailure(error)) Session.markLost(session, error)
        if (!Errors.isRecoverable(error)) return Effect.fail(error)
        if (flight.phase === "sent" && !isSafe(descriptor)) {
          return new Errors.OutcomeUnknown({
            server: name,
            method: descriptor.method,
            tool: descriptor.tool,
            requestId: flight.requestId,
            cause: error,
            message: bounded(
              `${labelOf(descriptor)} on ${name} may or may not have run: the link failed after the request was sent (${brief(error)}); not retried`
            )
          })
        }
        return retryPlan.step(now(), error, retryState).pipe(
          Effect.flatMap(([state, , decision]) => {
            retryState = state
            if (ScheduleDecision.isDone(decision)) return Effect.fail(error)
            const delay = Math.max(0, ScheduleIntervals.start(decision.intervals) - now())
            const wait = Math.max(flight.retryAfterMs ?? 0, delay)
            return Effect.zipRight(
              Metric.update(Metric.tagged(ctx.retries, "tool", labelOf(descriptor)), 1),
              wait >= remaining()
                ? Effect.zipRight(
                    Effect.sleep(Duration.millis(Math.max(0, remaining()))),
                    Effect.fail(timedOut())
                  )
                : wait > 0
                  ? Effect.sleep(Duration.millis(wait))
                  : Effect.void
            )
          })
        )
      }
      const attempts = Effect.gen(function* () {
        if (first !== undefined) yield* afterFailure(first.session, first.flight, first.error)
        for (;;) {
          const session = yield* waitForSession
          attempted = true
          const flight = makeFlight()
          const exit = yield* Effect.exit(
            attempt(session, flight, descriptor, run, Math.max(1, remaining()), callOptions, idleMs)
          )
          if (Exit.isSuccess(exit)) return exit.value
          const failure = Cause.failureOption(exit.cause)
          if (Option.isNone(failure)) return yield* Effect.failCause(exit.cause as Cause.Cause<never>)
          yield* afterFailure(session, flight, failure.value)
        }
      })
      const body = attempts.pipe(
        Effect.matchEffect({
          onSuccess: (value) => Effect.suspend(() => answered(descriptor, started, value, check)),
          onFailure: (e) =>
            Effect.suspend(() => {
              counters.errors += 1
              noteError(e)
              Metrics.unsafeRecordCall(name, labelOf(descriptor), e, now() - started)
              return Effect.zipRight(
                breaker.failure({
                  error: e,
                  attempted,
                  ownDeadlineMs: atDeadline && callOptions?.timeout !== undefined ? deadline : undefined
                }),
                Effect.fail(e)
              )
            })
        })
      )
      return Effect.acquireUseRelease(
        Effect.sync(() => (counters.pending += 1)),
        () => body,
        () => Effect.sync(() => (counters.pending -= 1))
      )
    })

  /**
   * One request. When the session is Ready and no progress is asked for, the first attempt
   * is one `Effect.async` around the SDK promise with its book-keeping done synchronously:
   * the per-call cost of the Effect plumbing (fibers, timers, several combinators) showed
   * in the benchmarks as a third of the call time. Any failure of that attempt is handed to
   * the general path, which decides exactly as if it had made the attempt itself.
   */
  const request = <A>(
    descriptor: Descriptor,
    run: Run<A>,
    callOptions?: CallOptions,
    check?: Check
  ): Effect.Effect<A, Errors.TetherError> =>
    Effect.async<A, Errors.TetherError>((resume) => {
      const started = now()
      const session =
        callOptions?.onProgress === undefined && callOptions?.idleTimeout === undefined
          ? ctx.readyNow()
          : undefined
      if (session === undefined) {
        resume(general(descriptor, run, callOptions, check, started, undefined))
        return
      }
      // Counted while this attempt is in flight; handed back before resuming, so that the
      // general path (which counts itself) never sees it counted twice.
      counters.pending += 1
      const flight = makeFlight()
      // Outside any fiber: a throw here would hang the call and surface as an unhandled
      // rejection, so every path ends in `resume`, a defect if need be.
      const cancel = launch(session, flight, run, name, Math.max(1, deadlineOf(callOptions)), undefined, {
        onValue: (value) => {
          counters.pending -= 1
          try {
            resume(answered(descriptor, started, value, check))
          } catch (defect) {
            resume(Effect.die(defect))
          }
        },
        onError: (error) => {
          counters.pending -= 1
          resume(general(descriptor, run, callOptions, check, started, { session, flight, error }))
        }
      })
      return Effect.sync(() => {
        if (cancel()) counters.pending -= 1
      })
    })

  return { request, counters: counters as Readonly<CallCounters> }
}
