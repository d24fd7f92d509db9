/**
 * Serving an `@effect/platform` app on a Node HTTP server, the way every listening part of
 * Tether does (gateway, proxy, studio): bind `host:port`, then print `LISTENING host:port`
 * on stdout once bound (tests and scripts wait for that line; with port 0 it names the port
 * the system picked).
 *
 * @internal
 */
import { HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Console, Layer } from "effect"
import { createServer } from "node:http"

/** @internal Prints where the server listens. */
export const announce = HttpServer.addressFormattedWith((address) =>
  Console.log(`LISTENING ${address.replace(/^http:\/\//, "")}`)
)

/** @internal Serves `served` (an `HttpServer.serve(…)` layer) on `host` (default 127.0.0.1) and `port` (default `defaultPort`). */
export const listen = <E, R>(
  served: Layer.Layer<never, E, R>,
  options: { readonly host?: string | undefined; readonly port?: number | undefined },
  defaultPort: number
) =>
  // The line comes after `served` is built (not beside it): a client that connects on
  // seeing it finds the routes there.
  Layer.effectDiscard(announce).pipe(
    Layer.provide(served),
    Layer.provide(
      NodeHttpServer.layer(() => createServer(), {
        port: options.port ?? defaultPort,
        host: options.host ?? "127.0.0.1"
      })
    )
  )
