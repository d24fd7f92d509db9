/**
 * Spans on the hot call path, made only when someone can see them.
 *
 * @internal
 */
import { Effect, type Tracer } from "effect"

// The tracer every Effect runtime starts with. Its spans are kept nowhere, yet making one
// (random ids, a clock read, a copied context) costs about 12 µs: more than all of the
// call path's own book-keeping, measured in the benchmarks.
const nativeTracer: Tracer.Tracer = Effect.runSync(Effect.tracer)

/**
 * `Effect.withSpan` (no stack capture) when a tracer other than Effect's built-in one is
 * installed (OpenTelemetry, a test tracer); the effect unchanged otherwise.
 *
 * @internal
 */
export const withHotSpan =
  (name: string, attributes: Record<string, unknown>) =>
  <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.tracerWith((tracer) =>
      tracer === nativeTracer ? self : Effect.withSpan(self, name, { attributes, captureStackTrace: false })
    )
