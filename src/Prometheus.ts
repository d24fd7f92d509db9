/**
 * Tether's Effect metrics as Prometheus text, through @effect/opentelemetry and the
 * OpenTelemetry Prometheus exporter (its serializer writes the exposition format; nothing
 * here is hand-written text).
 *
 * @since 0.1.0
 */
import * as OtelMetrics from "@effect/opentelemetry/Metrics"
import * as OtelResource from "@effect/opentelemetry/Resource"
import { PrometheusExporter, PrometheusSerializer } from "@opentelemetry/exporter-prometheus"
import { Context, Effect, Layer } from "effect"
import { VERSION } from "./internal/version.js"

/**
 * Renders every metric of the process in the Prometheus text format.
 *
 * @since 0.1.0
 * @category tags
 */
export class Prometheus extends Context.Tag("tether/Prometheus")<
  Prometheus,
  { readonly render: Effect.Effect<string> }
>() {}

/**
 * Registers an OpenTelemetry metric reader over Effect's metric registry (no HTTP server
 * of its own) and provides {@link Prometheus}.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<Prometheus> = Layer.unwrapEffect(
  Effect.sync(() => {
    const exporter = new PrometheusExporter({ preventServerStart: true })
    const serializer = new PrometheusSerializer()
    const reader = OtelMetrics.layer(() => exporter).pipe(
      Layer.provide(OtelResource.layer({ serviceName: "tether", serviceVersion: VERSION }))
    )
    const render = Effect.promise(async () => {
      const { resourceMetrics } = await exporter.collect()
      return serializer.serialize(resourceMetrics)
    })
    return Layer.merge(reader, Layer.succeed(Prometheus, { render }))
  })
)
