/**
 * The HTTP side of the OpenAI-compatible provider: POSTs a body to `{baseUrl}/chat/completions`
 * through @effect/platform's `HttpClient` (a non-2xx status is a failed attempt, with the
 * provider's body as a sanitized excerpt), and runs attempts under the retry `Schedule`,
 * telling the `RetryObserver` about each retry.
 *
 * @internal
 */
import { AiError } from "@effect/ai"
import { HttpClient, HttpClientRequest } from "@effect/platform"
import {
  Clock,
  Context,
  Duration,
  Effect,
  Redacted,
  Schedule,
  ScheduleDecision,
  ScheduleIntervals
} from "effect"
import { parseRetryAfter } from "./linkErrors.js"
import type { Options } from "./openAiConfig.js"
import {
  AttemptFailed,
  describeCause,
  MODULE,
  requestDetails,
  snippet,
  TRANSIENT_STATUS,
  transportFailed
} from "./openAiError.js"

/** @internal One retry about to happen, for whoever wants to show it. */
export interface RetryInfo {
  /** 1 for the first retry. */
  readonly attempt: number
  readonly delayMs: number
  readonly error: string
}

/**
 * Told about every retry of a model request. The agent sets it around its requests to
 * turn retries into events; by default nobody listens.
 *
 * @internal
 */
export class RetryObserver extends Context.Reference<RetryObserver>()(
  "tether/agent/OpenAiCompat/RetryObserver",
  {
    defaultValue: (): { readonly onRetry: (info: RetryInfo) => Effect.Effect<void> } => ({
      onRetry: () => Effect.void
    })
  }
) {}

/**
 * The retry policy: jittered exponential from `base`, capped at `max`, at least the
 * server's `Retry-After`, at most `maxRetries` times, only for transient failures.
 */
const retryPolicy = (maxRetries: number, base: Duration.Duration, max: Duration.Duration) =>
  Schedule.exponential(base, 2).pipe(
    Schedule.jittered,
    Schedule.intersect(
      Schedule.identity<AttemptFailed>().pipe(
        Schedule.addDelay((failed) => Duration.millis(failed.retryAfterMs ?? 0))
      )
    ),
    Schedule.modifyDelay((_, delay) => Duration.min(delay, max)),
    Schedule.intersect(Schedule.recurs(maxRetries)),
    Schedule.whileInput((failed: AttemptFailed) => failed.transient)
  )

/** @internal The client of one endpoint. */
export const makeClient = Effect.fnUntraced(function* (options: Options) {
  const client = yield* HttpClient.HttpClient
  const url = `${options.baseUrl.replace(/\/+$/, "")}/chat/completions`
  const maxRetries = options.maxRetries ?? 4
  const base = Duration.decode(options.retryBaseDelay ?? "500 millis")
  const maxDelay = Duration.decode(options.maxRetryDelay ?? "30 seconds")
  const timeout = Duration.decode(options.timeout ?? "120 seconds")

  // The provider may echo the key back in an error body (OpenAI does, partly masked).
  const secrets = options.apiKey !== undefined ? [Redacted.value(options.apiKey)] : []
  const baseRequest = HttpClientRequest.post(url).pipe(
    HttpClientRequest.acceptJson,
    options.apiKey !== undefined
      ? HttpClientRequest.bearerToken(Redacted.value(options.apiKey))
      : (request) => request
  )

  /** Sends the request; a non-2xx status becomes an `AttemptFailed`. */
  const send = (method: string, body: Record<string, unknown>) =>
    Effect.gen(function* () {
      const response = yield* client.execute(HttpClientRequest.bodyUnsafeJson(baseRequest, body)).pipe(
        Effect.mapError(
          (error) =>
            new AttemptFailed(
              error._tag === "RequestError"
                ? new AiError.HttpRequestError({
                    module: MODULE,
                    method,
                    reason: error.reason,
                    // Built by hand: the platform error holds the request, Authorization included.
                    request: requestDetails(url),
                    description: error.description ?? describeCause(error.cause)
                  })
                : new AiError.UnknownError({ module: MODULE, method, description: error.message }),
              error._tag === "RequestError" && error.reason === "Transport",
              undefined
            )
        ),
        Effect.timeoutFail({
          duration: timeout,
          onTimeout: () => transportFailed(method, url, `no answer within ${Duration.format(timeout)}`)
        })
      )
      if (response.status >= 200 && response.status < 300) return response
      const text = yield* Effect.orElseSucceed(response.text, () => "")
      const now = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
      const retryAfterMs = parseRetryAfter(response.headers["retry-after"], now)
      return yield* Effect.fail(
        new AttemptFailed(
          new AiError.HttpResponseError({
            module: MODULE,
            method,
            reason: "StatusCode",
            request: requestDetails(url),
            response: { status: response.status, headers: {} },
            body: snippet(text, 300, secrets),
            description: `the model server answered ${response.status}${
              response.status === 401 || response.status === 403 ? " (check TETHER_LLM_API_KEY)" : ""
            }${text.length > 0 ? `: ${snippet(text, 300, secrets)}` : ""}`
          }),
          TRANSIENT_STATUS.has(response.status),
          retryAfterMs
        )
      )
    })

  /** Runs one attempt under the retry policy, telling the observer about each retry. */
  const withRetries = <A>(method: string, attempt: Effect.Effect<A, AttemptFailed>) =>
    Effect.gen(function* () {
      const observer = yield* RetryObserver
      let retries = 0
      return yield* attempt.pipe(
        Effect.retry(
          retryPolicy(maxRetries, base, maxDelay).pipe(
            Schedule.zipWith(Schedule.identity<AttemptFailed>(), (_, failed) => failed),
            Schedule.onDecision((failed, decision) =>
              ScheduleDecision.isDone(decision)
                ? Effect.void
                : Effect.flatMap(Clock.currentTimeMillis, (now) => {
                    retries += 1
                    return observer.onRetry({
                      attempt: retries,
                      delayMs: Math.max(0, ScheduleIntervals.start(decision.intervals) - now),
                      error: failed.error.message.split("\n")[0] ?? failed.error._tag
                    })
                  })
            )
          )
        ),
        Effect.mapError((failed) => failed.error),
        Effect.withSpan(`OpenAiCompat.${method}`, { attributes: { url, model: options.model } })
      )
    })

  return { url, timeout, secrets, send, withRetries } as const
})
