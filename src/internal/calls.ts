/**
 * The call path of a connection: wait for a session within the deadline, one attempt at a
 * time with its phase tracked, retry only what is safe, `OutcomeUnknown` otherwise, an idle
 * timeout pushed back by progress, and the consecutive-failure count of the breaker.
 *
 * @internal
 */
import type { Client } from "@modelcontextprotocol/sdk/client/index.js"
import type { RequestOptions } from "@modelcontextprotocol/sdk/shared/protocol.js"
import { Cause, Duration, Effect, Exit, Metric, Option } from "effect"
import * as Errors from "../Errors.js"
import type { CallOptions, Progress } from "../McpConnection.js"
import * as Metrics from "../Metrics.js"
import type { Policy } from "../Resilience.js"
import { type Flight, makeFlight } from "./link.js"
import * as Session from "./session.js"

/** @internal What is being called, and whether it is safe to send again once written. */
export interface Descriptor {
  readonly method: string
  readonly tool?: string | undefined
  readonly safe: boolean
}

/** @internal One SDK request, given the SDK options (signal, timeout, progress). */
export type Run<A> = (client: Client, options: RequestOptions) => Promise<A>

/** @internal Counters shared with the connection (read by `stats`). */
export interface Counters {
  pending: number
  waiting: number
  errors: number
  lastError: Errors.TetherError | undefined
}

/** @internal */
export interface CallContext {
  readonly name: string
  readonly policy: Policy
  readonly now: () => number
  readonly counters: Counters
  readonly awaitSession: Effect.Effect<Session.Session, Errors.TetherError>
  /** The live session when Ready, read without running an effect (the fast path). */
  readonly readyNow: () => Session.Session | undefined
  readonly noteError: (error: Errors.TetherError) => void
  readonly retries: Metric.Metric.Counter<number>
  /** Opens the circuit because of `error`; false when there was no live session to drop. */
  readonly trip: (error: Errors.TetherError) => Effect.Effect<boolean>
}

const toMillis = (input: Duration.DurationInput | undefined, fallback: number): number =>
  input === undefined ? fallback : Duration.toMillis(Duration.decode(input))

/** @internal */
export const makeRequest = (ctx: CallContext) => {
  const { counters, name, noteError, now, policy } = ctx
  const awaitSession = ctx.awaitSession
  let consecutiveFailures = 0

  const retryDelay = (retry: number): number =>
    retry <= 1
      ? 0
      : Math.min(
          policy.reconnect.maxDelay,
          policy.reconnect.initialDelay * policy.reconnect.factor ** (retry - 2)
        )

  const countsForBreaker = (e: Errors.TetherError): boolean =>
    e._tag === "OutcomeUnknown" ||
    (Errors.isRecoverable(e) && e._tag !== "ServerUnavailable" && e._tag !== "Overloaded")

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
    const call = Effect.tryPromise({
      try: (signal) => {
        // `send` runs synchronously inside the SDK's request(): this is how the link
        // knows which flight the JSON-RPC request belongs to.
        session.link.current = flight
        try {
          return run(session.client, {
            signal,
            timeout: sdkTimeout,
            ...(onprogress !== undefined ? { onprogress } : {})
          })
        } finally {
          session.link.current = undefined
        }
      },
      catch: (e) => Errors.classify(e, { server: name, hasSession: session.link.sessionId !== undefined })
    })
    // Racing forks fibers: only pay for it when an idle limit was asked for.
    const watched =
      idleMs === undefined
        ? call
        : Effect.raceFirst(
            idleWatch(descriptor, idleMs, () => lastProgressAt),
            call
          )
    return watched.pipe(Effect.ensuring(Effect.sync(() => session.link.settle(flight))))
  }

  const request = <A>(
    descriptor: Descriptor,
    run: Run<A>,
    callOptions?: CallOptions
  ): Effect.Effect<A, Errors.TetherError> =>
    Effect.suspend(() => {
      const deadline = toMillis(callOptions?.timeout, policy.call.timeout)
      const idleMs =
        callOptions?.idleTimeout === undefined ? undefined : toMillis(callOptions.idleTimeout, deadline)
      counters.pending += 1
      const started = now()
      const deadlineAt = started + deadline
      const remaining = () => deadlineAt - now()
      let lastError: Errors.TetherError | undefined
      const timedOut = () =>
        lastError ??
        new Errors.RequestTimeout({
          server: name,
          timeoutMs: deadline,
          message:
            `${descriptor.tool ?? descriptor.method} on ${name} did not complete within ${deadline} ms` +
            (counters.lastError !== undefined
              ? ` (last connection error: ${counters.lastError._tag}: ${counters.lastError.message})`
              : "")
        })
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
      const attempts = Effect.gen(function* () {
        let retries = 0
        for (;;) {
          const session = yield* waitForSession
          const flight = makeFlight()
          const exit = yield* Effect.exit(
            attempt(session, flight, descriptor, run, Math.max(1, remaining()), callOptions, idleMs)
          )
          if (Exit.isSuccess(exit)) return exit.value
          const failure = Cause.failureOption(exit.cause)
          if (Option.isNone(failure)) return yield* Effect.failCause(exit.cause as Cause.Cause<never>)
          const error = failure.value
          // The SDK's timer fired: this is the call's deadline, not a link problem.
          if (error._tag === "RequestTimeout" && remaining() <= 0) return yield* Effect.fail(timedOut())
          lastError = error
          if (Errors.isLinkFailure(error)) Session.markLost(session, error)
          if (!Errors.isRecoverable(error)) return yield* Effect.fail(error)
          if (flight.phase === "sent" && !descriptor.safe) {
            return yield* new Errors.OutcomeUnknown({
              server: name,
              method: descriptor.method,
              tool: descriptor.tool,
              requestId: flight.requestId,
              cause: `${error._tag}: ${error.message}`,
              message: `${descriptor.tool ?? descriptor.method} on ${name} may or may not have run: the link failed after the request was sent (${error._tag}: ${error.message}); not retried`
            })
          }
          if (retries >= policy.call.maxRetries) return yield* Effect.fail(error)
          retries += 1
          yield* Metric.update(Metric.tagged(ctx.retries, "tool", descriptor.tool ?? descriptor.method), 1)
          const wait = Math.max(flight.retryAfterMs ?? 0, retryDelay(retries))
          if (wait >= remaining()) {
            yield* Effect.sleep(Duration.millis(Math.max(0, remaining())))
            return yield* Effect.fail(timedOut())
          }
          if (wait > 0) yield* Effect.sleep(Duration.millis(wait))
        }
      })
      return attempts.pipe(
        Effect.tapBoth({
          onSuccess: () => Effect.sync(() => (consecutiveFailures = 0)),
          onFailure: (e) =>
            Effect.gen(function* () {
              counters.errors += 1
              noteError(e)
              if (!countsForBreaker(e)) return
              consecutiveFailures += 1
              if (consecutiveFailures < policy.breaker.failureThreshold) return
              if (yield* ctx.trip(e)) consecutiveFailures = 0
            })
        }),
        Effect.onExit((exit) =>
          descriptor.method === "tools/call"
            ? Effect.void
            : Metrics.recordCall(
                name,
                descriptor.method,
                Exit.isSuccess(exit) ? undefined : Option.getOrUndefined(Cause.failureOption(exit.cause)),
                now() - started
              )
        ),
        Effect.ensuring(Effect.sync(() => (counters.pending -= 1)))
      )
    })

  return request
}
