/**
 * The heartbeat fiber of one session: `ping` when the server has been silent for
 * `interval`; `misses` pings in a row slower than `timeout` mean a half-open link, which
 * is marked lost so the supervisor kills it and reconnects.
 *
 * @internal
 */
import { Cause, Duration, Effect, Exit, Metric, Option } from "effect"
import * as Errors from "../Errors.js"
import * as Metrics from "../Metrics.js"
import { classify } from "./classify.js"
import type { Policy } from "../Resilience.js"
import * as Session from "./session.js"

/** @internal */
export const run = (
  session: Session.Session,
  options: {
    readonly server: string
    readonly policy: Policy["heartbeat"]
    readonly now: () => number
  }
): Effect.Effect<void> =>
  Effect.gen(function* () {
    const { interval, misses, timeout } = options.policy
    const { now, server } = options
    let missed = 0
    while (!Session.isLost(session)) {
      const idle = now() - session.link.lastActivity
      if (missed === 0 && idle < interval) {
        yield* Effect.sleep(Duration.millis(interval - idle))
        continue
      }
      const pingStart = now()
      const exit = yield* Effect.exit(
        Effect.tryPromise({
          try: (signal) => session.client.ping({ signal, timeout: timeout + 1_000 }),
          catch: (e) => classify(e, { server })
        }).pipe(
          Effect.timeoutFail({
            duration: Duration.millis(timeout),
            onTimeout: () =>
              new Errors.RequestTimeout({ server, message: "ping timed out", timeoutMs: timeout })
          })
        )
      )
      if (Exit.isSuccess(exit)) {
        missed = 0
        // Tagged here, not per connection up front: a ping comes at most once an interval.
        yield* Metric.update(
          Metric.tagged(Metrics.heartbeatSeconds, "server", server),
          (now() - pingStart) / 1000
        )
        continue
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
