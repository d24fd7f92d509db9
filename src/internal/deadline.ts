/**
 * A promise-returning SDK request bounded by a deadline on the Effect `Clock`: what
 * `Effect.tryPromise(...).pipe(Effect.timeoutFail(...))` does, without its race of two
 * forked fibers. Every connect runs two of these; with 500 connections the races were
 * ~12 % of the connect CPU (measured).
 *
 * On the default (live) Clock the deadline is the timer that Clock's own `sleep` sets;
 * on any other Clock (a `TestClock`) it is that Clock's `sleep`, in one forked fiber.
 *
 * @internal
 */
import { Clock, Context, DefaultServices, Duration, Effect, Exit, Fiber } from "effect"

interface Options<A, E> {
  readonly try: (signal: AbortSignal) => PromiseLike<A>
  readonly catch: (error: unknown) => E
  readonly timeoutMs: number
  readonly onTimeout: () => E
}

const liveClock: Clock.Clock = Context.get(DefaultServices.liveServices, Clock.Clock)

/** Longer than a JS timer can wait: the live Clock's `sleep` never wakes either. */
const MAX_TIMER_MILLIS = 2 ** 31 - 1

/**
 * Starts the request and arms the deadline (`arm` returns its disarm); the first of the
 * two to finish wins. Returns the canceller for `Effect.async`.
 */
const start = <A, E>(
  options: Options<A, E>,
  resume: (result: Effect.Effect<A, E>) => void,
  arm: (onDeadline: () => void) => () => void
): Effect.Effect<void> => {
  const controller = new AbortController()
  let done = false
  let disarm = (): void => {}
  const finish = (result: Effect.Effect<A, E>) => {
    if (done) return
    done = true
    disarm()
    resume(result)
  }
  disarm = arm(() => {
    if (done) return
    // Past the deadline the request is cancelled, as an interrupted tryPromise's is.
    controller.abort()
    finish(Effect.fail(options.onTimeout()))
  })
  try {
    options.try(controller.signal).then(
      (value) => finish(Effect.succeed(value)),
      (error: unknown) => finish(Effect.fail(options.catch(error)))
    )
  } catch (error) {
    finish(Effect.fail(options.catch(error)))
  }
  return Effect.sync(() => {
    done = true
    disarm()
    controller.abort()
  })
}

/** @internal */
export const tryPromiseWithin = <A, E>(options: Options<A, E>): Effect.Effect<A, E> =>
  Effect.flatMap(Effect.clock, (clock) =>
    clock === liveClock
      ? Effect.async<A, E>((resume) =>
          start(options, resume, (onDeadline) => {
            if (options.timeoutMs > MAX_TIMER_MILLIS) return () => {}
            const timer = setTimeout(onDeadline, options.timeoutMs)
            return () => clearTimeout(timer)
          })
        )
      : // A daemon, as the race's sleep was: a child of the caller, so a TestClock sees it.
        Effect.flatMap(Effect.forkDaemon(Effect.sleep(Duration.millis(options.timeoutMs))), (deadline) =>
          Effect.async<A, E>((resume) =>
            start(options, resume, (onDeadline) => {
              deadline.addObserver((exit) => {
                if (Exit.isSuccess(exit)) onDeadline()
              })
              return () => {}
            })
          ).pipe(Effect.ensuring(Fiber.interruptFork(deadline)))
        )
  )
