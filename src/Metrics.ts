/**
 * The metrics Tether records, as Effect `Metric`s. Export them with any Effect metrics
 * exporter; the gateway serves them as Prometheus text through @effect/opentelemetry.
 *
 * Labels stay low-cardinality: `server`, `tool`, `outcome`, `reason`, `state`. Never a
 * tenant, session or request id.
 *
 * @since 0.1.0
 */
import { Effect, FiberRef, Metric, MetricBoundaries, MetricLabel } from "effect"
import { globalValue } from "effect/GlobalValue"
import type { ConnectionState } from "./ConnectionState.js"
import type * as Errors from "./Errors.js"

const seconds = MetricBoundaries.exponential({ start: 0.001, factor: 2, count: 16 })

/**
 * 1 for the state the connection is in, 0 for the others (label `state`).
 *
 * @since 0.1.0
 * @category metrics
 */
export const connectionState = Metric.gauge("tether_connection_state", {
  description: "1 for the current state of each connection (label state), 0 otherwise"
})

/**
 * @since 0.1.0
 * @category metrics
 */
export const connectAttempts = Metric.counter("tether_connect_attempts", {
  description: "Connect attempts by outcome (ok, error)",
  incremental: true
})

/**
 * @since 0.1.0
 * @category metrics
 */
export const reconnects = Metric.counter("tether_reconnects", {
  description: "Links lost, by reason (the error tag that ended the session)",
  incremental: true
})

/**
 * @since 0.1.0
 * @category metrics
 */
export const recoverySeconds = Metric.histogram(
  "tether_recovery_seconds",
  seconds,
  "Time from a lost link to Ready again"
)

/**
 * @since 0.1.0
 * @category metrics
 */
export const heartbeatSeconds = Metric.histogram(
  "tether_heartbeat_rtt_seconds",
  seconds,
  "Heartbeat ping round trip"
)

/**
 * 1 while the circuit is open (the connection is Failed and calls fail fast).
 *
 * @since 0.1.0
 * @category metrics
 */
export const circuitOpen = Metric.gauge("tether_circuit_open", { description: "1 while calls fail fast" })

/**
 * @since 0.1.0
 * @category metrics
 */
export const calls = Metric.counter("tether_calls", {
  description:
    "Calls by server, tool and outcome (ok, tool_error, protocol_error, outcome_unknown, timeout, unavailable)",
  incremental: true
})

/**
 * @since 0.1.0
 * @category metrics
 */
export const callSeconds = Metric.histogram(
  "tether_call_duration_seconds",
  seconds,
  "Call duration, waiting included"
)

/**
 * @since 0.1.0
 * @category metrics
 */
export const retries = Metric.counter("tether_call_retries", {
  description: "Attempts beyond the first, by server and tool",
  incremental: true
})

const states: ReadonlyArray<ConnectionState["_tag"]> = [
  "Connecting",
  "Ready",
  "Reconnecting",
  "Failed",
  "Closed"
]

/**
 * Records a state change of `server` (the state gauge and the circuit gauge).
 *
 * @since 0.1.0
 * @category recording
 */
export const recordState = (server: string, state: ConnectionState): Effect.Effect<void> =>
  Effect.forEach(
    states,
    (s) =>
      Metric.set(
        connectionState.pipe(Metric.tagged("server", server), Metric.tagged("state", s)),
        s === state._tag ? 1 : 0
      ),
    { discard: true }
  ).pipe(
    Effect.zipRight(
      Metric.set(circuitOpen.pipe(Metric.tagged("server", server)), state._tag === "Failed" ? 1 : 0)
    )
  )

const stateLabels: ReadonlyArray<MetricLabel.MetricLabel> = states.map((s) => MetricLabel.make("state", s))

/**
 * `recordState` for one server, as a function that records each change: what it records
 * is the same, but its label arrays are made once (on the first change), so each update
 * finds its metric hook at once instead of building a new metric key (building keys was
 * about a tenth of the Effect runtime's time in a connect, profiled with 500 connections).
 *
 * @internal
 */
export const stateRecorder = (server: string): ((state: ConnectionState) => Effect.Effect<void>) => {
  let labels:
    | {
        readonly states: ReadonlyArray<Array<MetricLabel.MetricLabel>>
        readonly circuit: Array<MetricLabel.MetricLabel>
      }
    | undefined
  return (state) =>
    FiberRef.getWith(FiberRef.currentMetricLabels, (fiberLabels) => {
      // Fiber-level labels (`Effect.tagMetrics`) are part of every key: the general path.
      if (fiberLabels.length > 0) return recordState(server, state)
      return Effect.sync(() => {
        if (labels === undefined) {
          const serverLabel = MetricLabel.make("server", server)
          labels = { states: stateLabels.map((s) => [serverLabel, s]), circuit: [serverLabel] }
        }
        for (let i = 0; i < states.length; i++) {
          connectionState.unsafeUpdate(states[i] === state._tag ? 1 : 0, labels.states[i]!)
        }
        circuitOpen.unsafeUpdate(state._tag === "Failed" ? 1 : 0, labels.circuit)
      })
    })
}

/**
 * The `outcome` label of a finished call.
 *
 * @since 0.1.0
 * @category recording
 */
export const outcomeOf = (error: Errors.TetherError | undefined): string => {
  if (error === undefined) return "ok"
  switch (error._tag) {
    case "ToolFailed":
      return "tool_error"
    case "ProtocolError":
    case "InvalidResponse":
    case "UnknownTool":
      return "protocol_error"
    case "OutcomeUnknown":
      return "outcome_unknown"
    case "RequestTimeout":
      return "timeout"
    default:
      return "unavailable"
  }
}

/**
 * Records one finished call, synchronously (the call path runs it inside a callback).
 * Labels are `server`, `tool` and `outcome`; fiber-level metric labels are not added.
 *
 * @since 0.1.0
 * @category recording
 */
export const unsafeRecordCall = (
  server: string,
  tool: string,
  error: Errors.TetherError | undefined,
  durationMs: number
): void => {
  const outcome = outcomeOf(error)
  calls.unsafeUpdate(
    1,
    cached(`c|${server}|${tool}|${outcome}`, () => [
      MetricLabel.make("server", server),
      MetricLabel.make("tool", tool),
      MetricLabel.make("outcome", outcome)
    ])
  )
  callSeconds.unsafeUpdate(
    durationMs / 1000,
    cached(`d|${server}|${tool}`, () => [MetricLabel.make("server", server), MetricLabel.make("tool", tool)])
  )
}

// `Metric.tagged` builds a new label array, hence a new metric key to hash and look up, on
// every update: on the call path that cost showed in the benchmarks. A metric caches its
// hook per label array *instance*, so each (server, tool, outcome) label array is built once.
// The labels are low-cardinality by design, which also bounds this cache.
// One cache per process even if this module is loaded twice (two copies of the package).
const taggedCache = globalValue(Symbol.for("tether/Metrics/tagged"), () => new Map<string, unknown>())
const cached = <M>(key: string, make: () => M): M => {
  const hit = taggedCache.get(key)
  if (hit !== undefined) return hit as M
  const made = make()
  taggedCache.set(key, made)
  return made
}

/**
 * OAuth token refreshes by server and outcome: `ok`, `invalid_grant` (the authorization
 * server refused: a login is needed), `rate_limited` (429/503 with Retry-After: waited,
 * not hammered), `error` (anything else). Tokens themselves never reach a metric.
 *
 * @since 0.1.0
 * @category metrics
 */
export const tokenRefreshes = Metric.counter("tether_oauth_refreshes", {
  description: "OAuth token refreshes by server and outcome (ok, invalid_grant, rate_limited, error)",
  incremental: true
})
