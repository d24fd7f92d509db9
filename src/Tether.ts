/**
 * The Promise API for hosts that are not written with Effect (Express, Fastify, Hono,
 * plain `node:http`): ONE `ManagedRuntime` holding an `McpPool`, created at start-up and
 * used by every request. Never create one per request: the sessions live in it.
 *
 * @example
 * ```ts
 * import { Tether } from "tether-mcp"
 *
 * const tether = await Tether.start({ config: "./mcp.json" })
 * const result = await tether.callTool("files", "read", { path: "a.txt" })
 * process.on("SIGTERM", () => void tether.close())
 * ```
 *
 * Rejections are the tagged errors themselves (`Error` objects with `_tag` and fields):
 * `err._tag === "OutcomeUnknown"`, `err.server`, …
 *
 * @since 0.1.0
 */
import { NodeContext, NodeFileSystem } from "@effect/platform-node"
import type { CallToolResult, ElicitRequest, ElicitResult } from "@modelcontextprotocol/sdk/types.js"
import { Cause, Duration, Effect, Either, Exit, Layer, ManagedRuntime, Schedule } from "effect"
import * as Auth from "./Auth.js"
import * as Config from "./Config.js"
import * as Errors from "./Errors.js"
import type { Progress } from "./McpConnection.js"
import * as McpPool from "./McpPool.js"

/**
 * Per-call options of the Promise API.
 *
 * @since 0.1.0
 * @category models
 */
export interface CallOptions {
  /** Total deadline in ms (default: the server's policy, 60 s). */
  readonly timeout?: number | undefined
  /** No-progress limit in ms. */
  readonly idleTimeout?: number | undefined
  /** Declare the call safe to repeat after a lost link. */
  readonly idempotent?: boolean | undefined
  readonly onProgress?: ((progress: Progress) => void) | undefined
  /** Aborting it cancels the call (the server receives `notifications/cancelled`). */
  readonly signal?: AbortSignal | undefined
}

/**
 * The calls of one tenant, or of the default tenant.
 *
 * @since 0.1.0
 * @category models
 */
export interface Calls {
  readonly callTool: (
    server: string,
    tool: string,
    args?: Record<string, unknown>,
    options?: CallOptions
  ) => Promise<CallToolResult>
  /** By namespaced name (`server__tool`). */
  readonly call: (
    name: string,
    args?: Record<string, unknown>,
    options?: CallOptions
  ) => Promise<CallToolResult>
  readonly listTools: (server?: string) => Promise<ReadonlyArray<McpPool.CatalogEntry>>
  readonly status: () => Promise<ReadonlyArray<McpPool.ConnectionStatus>>
  readonly reconnect: (server: string) => Promise<void>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Tether extends Calls {
  /** The same calls on one tenant's own connections (`${tenant.*}` filled from `values`). */
  readonly forTenant: (id: string, values?: Readonly<Record<string, string>>) => Calls
  /** Status of every connection, tenants included. */
  readonly statusAll: () => Promise<ReadonlyArray<McpPool.ConnectionStatus>>
  /** Runs any Effect that needs the pool, on the same runtime. */
  readonly run: <A, E>(
    effect: Effect.Effect<A, E, McpPool.McpPool>,
    options?: { readonly signal?: AbortSignal | undefined }
  ) => Promise<A>
  readonly runtime: ManagedRuntime.ManagedRuntime<McpPool.McpPool, Errors.InvalidConfig>
  /**
   * Stops taking calls, lets calls in flight finish for up to `graceMs` (default 5 s),
   * then closes every transport and reaps every child process.
   */
  readonly close: (options?: { readonly graceMs?: number }) => Promise<void>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface StartOptions {
  /**
   * A path to an `mcp.json`, or its content as an object. Default: `TETHER_CONFIG`, else
   * `./mcp.json`.
   */
  readonly config?: string | Record<string, unknown> | undefined
  /**
   * Answers servers' elicitation requests (forms a server asks the client to fill in);
   * see `McpConnection.Options.elicitation`. A rejection is sent back as an error.
   */
  readonly onElicitation?: ((request: ElicitRequest["params"]) => Promise<ElicitResult>) | undefined
}

const toPromiseOptions = (o: CallOptions | undefined) => ({
  timeout: o?.timeout,
  idleTimeout: o?.idleTimeout,
  idempotent: o?.idempotent,
  onProgress: o?.onProgress
})

/** Rejects with the tagged error itself, not a FiberFailure wrapper. */
const settle = <A, E>(exit: Exit.Exit<A, E>): Promise<A> =>
  Exit.isSuccess(exit)
    ? Promise.resolve(exit.value)
    : Promise.reject(
        Either.match(Cause.failureOrCause(exit.cause), {
          onLeft: (error): unknown => error,
          onRight: (cause): unknown => Cause.squash(cause)
        })
      )

/**
 * Starts Tether: decodes the config (rejecting with `InvalidConfig` listing every
 * problem), then starts connecting eager servers in the background.
 *
 * @since 0.1.0
 * @category constructors
 */
export const start = async (options: StartOptions = {}): Promise<Tether> => {
  const configEffect: Effect.Effect<Config.TetherConfig, Errors.InvalidConfig> =
    typeof options.config === "object"
      ? Config.fromObject(options.config, { source: "config object" })
      : Effect.flatMap(Config.envOverrides, (env) =>
          Config.load(
            typeof options.config === "string" ? options.config : (env.configPath ?? "./mcp.json")
          ).pipe(Effect.provide(NodeFileSystem.layer))
        )
  const onElicitation = options.onElicitation
  const elicitation =
    onElicitation === undefined
      ? undefined
      : (request: ElicitRequest["params"]) => Effect.tryPromise(() => onElicitation(request))
  const layer = Layer.scoped(
    McpPool.McpPool,
    Effect.flatMap(configEffect, (config) => McpPool.make({ ...config, elicitation }))
  ).pipe(
    // OAuth servers use the tokens `tether auth login` stored (`<data dir>/auth`).
    Layer.provide(Layer.provide(Auth.layerDefault, NodeContext.layer))
  )
  const runtime = ManagedRuntime.make(layer)
  // Build now, so a bad config rejects `start` instead of the first call.
  const built = await runtime.runPromiseExit(McpPool.McpPool)
  if (Exit.isFailure(built)) {
    await runtime.dispose()
    return settle(built) as never
  }

  let closing: Promise<void> | undefined
  let inFlight = 0
  const closedError = () =>
    new Errors.ConnectionLost({ message: "Tether is closed or closing: no new calls", reason: "Closed" })

  const run = <A, E>(
    effect: Effect.Effect<A, E, McpPool.McpPool>,
    runOptions?: { readonly signal?: AbortSignal | undefined }
  ) => {
    if (closing !== undefined) return Promise.reject(closedError())
    inFlight += 1
    const signal = runOptions?.signal
    return runtime
      .runPromiseExit(effect, signal !== undefined ? { signal } : {})
      .then((exit) =>
        // Aborted: reject with the signal's reason (an `AbortError`), as `fetch` does.
        signal?.aborted === true && Exit.isInterrupted(exit) ? Promise.reject<A>(signal.reason) : settle(exit)
      )
      .finally(() => {
        inFlight -= 1
      })
  }

  const callsOf = (select: (pool: McpPool.McpPool) => McpPool.Calls): Calls => ({
    callTool: (server, tool, args, o) =>
      run(
        Effect.flatMap(McpPool.McpPool, (pool) =>
          select(pool).callTool(server, tool, args, toPromiseOptions(o))
        ),
        { signal: o?.signal }
      ),
    call: (name, args, o) =>
      run(
        Effect.flatMap(McpPool.McpPool, (pool) => select(pool).call(name, args, toPromiseOptions(o))),
        {
          signal: o?.signal
        }
      ),
    listTools: (server) =>
      run(
        Effect.flatMap(McpPool.McpPool, (pool) => select(pool).tools(server === undefined ? {} : { server }))
      ),
    status: () => run(Effect.flatMap(McpPool.McpPool, (pool) => select(pool).status)),
    reconnect: (server) => run(Effect.flatMap(McpPool.McpPool, (pool) => select(pool).reconnect(server)))
  })

  const close = (closeOptions?: { readonly graceMs?: number }): Promise<void> => {
    if (closing !== undefined) return closing
    const graceMs = closeOptions?.graceMs ?? 5_000
    // Drain on the runtime itself (its Clock), then dispose it: scopes close, transports
    // close, children are reaped.
    const drain = Effect.sync(() => inFlight).pipe(
      Effect.repeat({ until: (n) => n === 0, schedule: Schedule.spaced("10 millis") }),
      Effect.timeout(Duration.millis(graceMs)),
      Effect.ignore
    )
    closing = runtime.runPromise(drain).then(() => runtime.dispose())
    return closing
  }

  return {
    ...callsOf((pool) => pool),
    forTenant: (id, values) => callsOf((pool) => pool.forTenant({ id, values })),
    statusAll: () => run(Effect.flatMap(McpPool.McpPool, (pool) => pool.statusAll)),
    run,
    runtime,
    close
  }
}
