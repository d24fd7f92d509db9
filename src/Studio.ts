/**
 * Tether Studio: a live web page for running agents and their MCP servers.
 *
 * - {@link layer} serves the page at `/` (self-contained: its script, bundled by
 *   `npm run build` or at start from the sources, is served at `/studio.js`; nothing comes
 *   from outside), `/health`, and two
 *   WebSocket endpoints: `/runners` for agent runners and `/page` for browsers.
 * - {@link attach} links an `Agent` to a studio: it registers the session with a snapshot,
 *   streams its `AgentEvent`s, takes user messages from the page, and reconnects under the
 *   `Resilience` reconnect schedule whenever the link is lost.
 *
 * The runner is the source of truth; the studio is a cache any runner can rebuild, so a
 * restarted studio needs no disk. Status is derived from heartbeats (both links ping; a
 * side silent for `misses` intervals is dead): `online`, `busy`, `offline`, or `unknown`
 * (a heartbeat is late, or the session is known from `dataDir` but its runner has not
 * registered yet). A user message carries an id chosen by the page and is acknowledged:
 * it is delivered once (a runner never runs an id twice, across restarts when it has an
 * `idsFile`), or the page shows it refused or unconfirmed — never silently lost.
 *
 * @since 0.1.0
 */
import { FileSystem, HttpServer, type HttpServerError, Socket } from "@effect/platform"
import { Effect, Layer, Redacted, Schema, type Scope } from "effect"
import { fileURLToPath } from "node:url"
import { WebSocket as WsWebSocket } from "ws"
import type * as Agent from "./agent/Agent.js"
import type * as Resilience from "./Resilience.js"
import * as HttpListen from "./internal/httpListen.js"
import * as Runner from "./internal/studioRunner.js"
import * as Server from "./internal/studioServer.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Default 127.0.0.1. */
  readonly host?: string | undefined
  /** Default 8300; 0 picks a free port. */
  readonly port?: number | undefined
  /** How often the page pings the studio, in ms (default 2,000); 2 silent intervals: link lost. */
  readonly pageHeartbeatMs?: number | undefined
  /** How long a message waits for its agent to be reachable before it is refused (default 15 s). */
  readonly deliveryTimeoutMs?: number | undefined
  /** When set, `/runners` needs `Authorization: Bearer <key>` and the page needs the key once. */
  readonly apiKey?: Redacted.Redacted<string> | undefined
  /** Keeps the list of known sessions across restarts (shown `unknown` until they register). */
  readonly dataDir?: string | undefined
}

/**
 * The page could not be built, or the server could not start.
 *
 * @since 0.1.0
 * @category errors
 */
export class StudioError extends Schema.TaggedError<StudioError>()("StudioError", {
  reason: Schema.Literal("PageBuild"),
  message: Schema.String
}) {}

/** Written by `npm run build` next to the module (and next to the CLI bundle). */
const PAGE_BUILT = fileURLToPath(new URL("./studio-page.js", import.meta.url))
/** The page's sources, for runs from `src/` (tests, tsx). */
const PAGE_ENTRY = fileURLToPath(new URL("./internal/studioPage/main.ts", import.meta.url))

/**
 * The page's script: the prebuilt bundle when the package was built, else bundled now from
 * the sources with esbuild (plain TypeScript modules, no framework).
 *
 * @since 0.1.0
 * @category constructors
 */
export const buildPage: Effect.Effect<string, StudioError, FileSystem.FileSystem> = Effect.gen(function* () {
  const fs = yield* FileSystem.FileSystem
  if (yield* fs.exists(PAGE_BUILT).pipe(Effect.orElseSucceed(() => false))) {
    return yield* fs
      .readFileString(PAGE_BUILT)
      .pipe(
        Effect.mapError(
          (e) => new StudioError({ reason: "PageBuild", message: `cannot read ${PAGE_BUILT}: ${e.message}` })
        )
      )
  }
  return yield* Effect.tryPromise({
    try: async () => {
      const esbuild = await import("esbuild")
      const result = await esbuild.build({
        entryPoints: [PAGE_ENTRY],
        bundle: true,
        write: false,
        format: "iife",
        platform: "browser",
        target: "es2022",
        minify: true,
        logLevel: "silent"
      })
      return result.outputFiles[0]?.text ?? ""
    },
    catch: (e) =>
      new StudioError({
        reason: "PageBuild",
        message: `no prebuilt page (${PAGE_BUILT}) and cannot bundle ${PAGE_ENTRY}: ${e instanceof Error ? e.message : String(e)}`
      })
  })
})

/**
 * Serves the studio on the Node HTTP server; prints `LISTENING <host>:<port>` once bound.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options = {}
): Layer.Layer<never, StudioError | HttpServerError.ServeError, FileSystem.FileSystem> =>
  Layer.unwrapScoped(
    Effect.gen(function* () {
      const pageScript = yield* buildPage
      const { app } = yield* Server.makeApp({
        pageHeartbeatMs: options.pageHeartbeatMs ?? 2_000,
        deliveryTimeoutMs: options.deliveryTimeoutMs ?? 15_000,
        apiKey: options.apiKey,
        dataDir: options.dataDir,
        pageScript
      })
      return HttpServer.serve(app)
    })
  ).pipe((served) => HttpListen.listen(served, options, 8300))

/**
 * The runner's link to a studio.
 *
 * @since 0.1.0
 * @category models
 */
export type LinkState = Runner.LinkState

/**
 * @since 0.1.0
 * @category models
 */
export const LinkState = Runner.LinkState

/**
 * What {@link attach} gives back: the link's state, as it changes.
 *
 * @since 0.1.0
 * @category models
 */
export type Attached = Runner.Attached

/**
 * @since 0.1.0
 * @category models
 */
export interface AttachOptions {
  /** The studio's runner endpoint (`ws://127.0.0.1:8300/runners`; a bare `ws://host:port` gets `/runners`). */
  readonly url: string
  /** Ping interval in ms (default 5,000); the studio shows the agent offline after `misses` silent intervals. */
  readonly heartbeatMs?: number | undefined
  /** Default 2. */
  readonly misses?: number | undefined
  /** Default: the default reconnect policy without an elapsed bound (a runner never gives up). */
  readonly reconnect?: Resilience.Policy["reconnect"] | undefined
  readonly apiKey?: Redacted.Redacted<string> | undefined
  /** Where accepted message ids are kept, so a restarted runner never runs one twice. */
  readonly idsFile?: string | undefined
}

/**
 * The runner endpoint for a studio address: `ws://h:p` → `ws://h:p/runners`.
 *
 * @since 0.1.0
 * @category utils
 */
export const runnersUrl = (url: string): string => {
  const parsed = new URL(url)
  if (parsed.pathname === "/" || parsed.pathname === "") parsed.pathname = "/runners"
  return parsed.toString()
}

/**
 * Links the agent to a studio for the life of the scope (reconnecting as needed).
 *
 * @since 0.1.0
 * @category constructors
 */
export const attach = (
  agent: Agent.Agent,
  options: AttachOptions
): Effect.Effect<Attached, never, Scope.Scope | FileSystem.FileSystem> => {
  const key = options.apiKey
  // The `ws` client, so the key can travel as a header (browsers' WebSocket cannot set one).
  const constructor = Layer.succeed(
    Socket.WebSocketConstructor,
    (url, protocols) =>
      new WsWebSocket(url, protocols, {
        headers: key === undefined ? {} : { authorization: `Bearer ${Redacted.value(key)}` }
      }) as unknown as globalThis.WebSocket
  )
  return Runner.attach(agent, {
    url: runnersUrl(options.url),
    heartbeatMs: options.heartbeatMs,
    misses: options.misses,
    reconnect: options.reconnect,
    idsFile: options.idsFile
  }).pipe(Effect.provide(constructor))
}
