/**
 * One MCP session: a `Link` plus an SDK `Client`, initialized, its catalog loaded and
 * its subscriptions restored. A session never outlives its link; the connection opens a
 * new one after every loss.
 *
 * @internal
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ListRootsRequestSchema,
  ErrorCode,
  McpError,
  LoggingMessageNotificationSchema,
  type LoggingLevel,
  PromptListChangedNotificationSchema,
  ResourceListChangedNotificationSchema,
  type ServerNotification,
  type Tool,
  ToolListChangedNotificationSchema
} from "@modelcontextprotocol/sdk/types.js"
import { AjvJsonSchemaValidator } from "@modelcontextprotocol/sdk/validation/ajv"
import type {
  JsonSchemaType,
  JsonSchemaValidator,
  jsonSchemaValidator
} from "@modelcontextprotocol/sdk/validation"
import { Cause, Deferred, Effect, Exit, Fiber, Option, Scope } from "effect"
import type { ServerInfo } from "../ConnectionState.js"
import type { ElicitationHandler, RootsHandler, SamplingHandler } from "../McpConnection.js"
import * as Errors from "../Errors.js"
import { classify } from "./classify.js"
import type { Policy } from "../Resilience.js"
import { describe as describeSpec, type ServerSpec } from "../ServerSpec.js"
import type { AuthManager } from "./auth.js"
import { tryPromiseWithin } from "./deadline.js"
import { Link } from "./link.js"
import { VERSION } from "./version.js"

/** @internal */
export interface Session {
  readonly generation: number
  readonly client: Client
  readonly link: Link
  readonly info: ServerInfo
  readonly scope: Scope.CloseableScope
  /** Completed (once) with the reason the link died. */
  readonly lost: LostSignal
}

/** @internal Completed once, from Effect code or from a transport callback. */
export class LostSignal {
  private done = false
  constructor(readonly deferred: Deferred.Deferred<Errors.TetherError>) {}
  get isDone(): boolean {
    return this.done
  }
  fire(error: Errors.TetherError): void {
    if (this.done) return
    this.done = true
    Deferred.unsafeDone(this.deferred, Exit.succeed(error))
  }
}

/**
 * The SDK's own validator (Ajv), built on first use: a `Client` builds one up front, ~18 KiB
 * of every connection's heap (heap snapshot of 300 connections) and a visible share of its
 * connect time, used only when a tool declares an `outputSchema` or an elicitation asks
 * for a form. Validation, when it happens, is the SDK's, unchanged.
 */
class LazyValidator implements jsonSchemaValidator {
  private ajv: AjvJsonSchemaValidator | undefined
  getValidator<T>(schema: JsonSchemaType): JsonSchemaValidator<T> {
    this.ajv ??= new AjvJsonSchemaValidator()
    return this.ajv.getValidator<T>(schema)
  }
}

/** @internal */
export const isLost = (session: Session): boolean => session.lost.isDone

/** @internal */
export const markLost = (session: Session, error: Errors.TetherError): void => session.lost.fire(error)

/** @internal What a session needs from its connection. */
export interface SessionContext {
  readonly name: string
  readonly spec: ServerSpec
  readonly policy: Policy
  readonly parentScope: Scope.Scope
  readonly now: () => number
  readonly runFork: <A, E>(effect: Effect.Effect<A, E>) => Fiber.RuntimeFiber<A, E>
  readonly onTools: (tools: ReadonlyArray<Tool>) => Effect.Effect<void>
  readonly onNotification: (notification: ServerNotification) => Effect.Effect<void>
  readonly subscriptions: ReadonlySet<string>
  readonly logLevel: () => LoggingLevel | undefined
  readonly elicitation: ElicitationHandler | undefined
  readonly sampling?: SamplingHandler | undefined
  readonly roots?: RootsHandler | undefined
  readonly auth?: AuthManager | undefined
}

const classifyFor =
  (ctx: SessionContext, link: Link) =>
  (cause: unknown): Errors.Classified => {
    const error = classify(cause, { server: ctx.name, hasSession: link.sessionId !== undefined })
    // The SDK's HTTP error has no headers; the tracked fetch kept the Retry-After.
    return error._tag === "HttpUnavailable" &&
      error.retryAfterMs === undefined &&
      link.lastRetryAfterMs !== undefined
      ? new Errors.HttpUnavailable({
          server: error.server,
          message: error.message,
          status: error.status,
          retryAfterMs: link.lastRetryAfterMs
        })
      : error
  }

/**
 * Runs a handler of a server→client request. The connection's fiber set owns it (it is
 * interrupted when the connection closes) and so does the server: its cancellation stops
 * the handler. A failure rejects, which the SDK answers as a JSON-RPC error with a short
 * reason, not the handler's internals.
 */
const answer = async <A>(
  ctx: SessionContext,
  what: string,
  handler: Effect.Effect<A, unknown>,
  signal: AbortSignal
): Promise<A> => {
  const fiber = ctx.runFork(handler)
  const stop = () => void Effect.runFork(Fiber.interrupt(fiber))
  signal.addEventListener("abort", stop, { once: true })
  const exit = await Effect.runPromise(Fiber.await(fiber))
  signal.removeEventListener("abort", stop)
  if (Exit.isSuccess(exit)) return exit.value
  const failure = Cause.failureOption(exit.cause)
  const reason =
    Option.isSome(failure) && failure.value instanceof Error
      ? failure.value.message
      : Cause.isInterruptedOnly(exit.cause)
        ? "cancelled"
        : `the client's ${what} handler failed`
  throw new McpError(ErrorCode.InternalError, `${what} not answered: ${reason}`)
}

/** @internal Lists every tool, following pagination. */
export const listAllTools = (
  session: Session,
  ctx: SessionContext
): Effect.Effect<ReadonlyArray<Tool>, Errors.Classified> =>
  Effect.gen(function* () {
    const tools: Array<Tool> = []
    let cursor: string | undefined = undefined
    const timeout = ctx.policy.call.timeout
    do {
      const page: { tools: Array<Tool>; nextCursor?: string | undefined } = yield* tryPromiseWithin({
        try: (signal) =>
          session.client.listTools(cursor === undefined ? {} : { cursor }, {
            signal,
            timeout: timeout + 1_000
          }),
        catch: classifyFor(ctx, session.link),
        timeoutMs: timeout,
        onTimeout: () =>
          new Errors.RequestTimeout({
            server: ctx.name,
            message: "tools/list timed out",
            timeoutMs: timeout
          })
      })
      tools.push(...page.tools)
      cursor = page.nextCursor
    } while (cursor !== undefined && tools.length < 100_000)
    // The catalog is kept for the connection's life: without the slack the pushes left.
    return tools.slice()
  })

/**
 * Opens a session in a child scope of the connection. On failure everything it started
 * is killed before the error is returned.
 *
 * @internal
 */
export const open = (ctx: SessionContext, generation: number): Effect.Effect<Session, Errors.Classified> =>
  Effect.gen(function* () {
    const scope = yield* Scope.fork(ctx.parentScope, { _tag: "Sequential" })
    const lost = new LostSignal(yield* Deferred.make<Errors.TetherError>())
    // Building the link runs a `custom` spec's factory, which is user code: if it throws,
    // that is permanent (no retry loop) and the session's scope is closed at once.
    const link: Link = yield* Effect.try({
      try: () =>
        new Link(ctx.spec, {
          server: ctx.name,
          graceMs: ctx.policy.closeGrace,
          openTimeoutMs: ctx.policy.connectTimeout,
          now: ctx.now,
          onLost: (cause) => lost.fire(classifyFor(ctx, link)(cause)),
          auth: ctx.auth
        }),
      catch: (e) =>
        new Errors.SpawnFailed({
          server: ctx.name,
          command: describeSpec(ctx.spec),
          message: `${ctx.name}: could not create the transport (${describeSpec(ctx.spec)}): ${e instanceof Error ? e.message : String(e)}`
        })
    }).pipe(Effect.tapError(() => Scope.close(scope, Exit.void)))
    yield* Scope.addFinalizer(
      scope,
      Effect.promise(() => link.close())
    )
    const classify = classifyFor(ctx, link)
    const connectTimeout = ctx.policy.connectTimeout

    const opened = Effect.gen(function* () {
      const { elicitation, roots, sampling } = ctx
      // A capability is declared only when there is a handler to answer it.
      const client = new Client(
        { name: "tether", version: VERSION },
        {
          capabilities: {
            ...(elicitation === undefined ? {} : { elicitation: { form: { applyDefaults: true } } }),
            ...(sampling === undefined ? {} : { sampling: {} }),
            ...(roots === undefined ? {} : { roots: { listChanged: true } })
          },
          jsonSchemaValidator: new LazyValidator()
        }
      )
      client.onerror = () => {}
      if (elicitation !== undefined) {
        client.setRequestHandler(ElicitRequestSchema, (request, extra) =>
          answer(ctx, "elicitation", elicitation(request.params), extra.signal)
        )
      }
      if (sampling !== undefined) {
        client.setRequestHandler(CreateMessageRequestSchema, (request, extra) =>
          answer(ctx, "sampling", sampling(request.params), extra.signal)
        )
      }
      if (roots !== undefined) {
        client.setRequestHandler(ListRootsRequestSchema, (_request, extra) =>
          answer(
            ctx,
            "roots/list",
            Effect.map(roots(), (list) => ({ roots: [...list] })),
            extra.signal
          )
        )
      }
      yield* tryPromiseWithin({
        try: () => client.connect(link, { timeout: connectTimeout + 1_000 }),
        catch: classify,
        timeoutMs: connectTimeout,
        onTimeout: () =>
          new Errors.RequestTimeout({
            server: ctx.name,
            message: `no answer to initialize within ${connectTimeout} ms`,
            timeoutMs: connectTimeout
          })
      })
      const version = client.getServerVersion()
      const capabilities = client.getServerCapabilities() ?? {}
      const info: ServerInfo = {
        name: version?.name ?? "unknown",
        version: version?.version ?? "unknown",
        protocolVersion: link.protocolVersion,
        capabilities,
        instructions: client.getInstructions()
      }
      const session: Session = { generation, client, link, info, scope, lost }

      // Built when a list_changed comes, not kept per session up front.
      const refreshTools = () =>
        listAllTools(session, ctx).pipe(
          Effect.flatMap(ctx.onTools),
          Effect.catchAll((error) => Effect.logDebug("tools/list failed", error.message))
        )
      client.setNotificationHandler(ToolListChangedNotificationSchema, async (n) => {
        ctx.runFork(Effect.zipRight(ctx.onNotification(n), refreshTools()))
      })
      client.setNotificationHandler(ResourceListChangedNotificationSchema, async (n) => {
        ctx.runFork(ctx.onNotification(n))
      })
      client.setNotificationHandler(PromptListChangedNotificationSchema, async (n) => {
        ctx.runFork(ctx.onNotification(n))
      })
      client.setNotificationHandler(LoggingMessageNotificationSchema, async (n) => {
        ctx.runFork(
          ctx
            .onNotification(n)
            .pipe(
              Effect.zipRight(Effect.logDebug("server log", n.params.level, n.params.data)),
              Effect.annotateLogs("server", ctx.name)
            )
        )
      })
      client.fallbackNotificationHandler = async (n) => {
        ctx.runFork(ctx.onNotification(n as ServerNotification))
      }

      // The session is rebuilt after every reconnect: catalog, subscriptions and log level.
      if (capabilities.tools !== undefined) {
        const tools = yield* listAllTools(session, ctx).pipe(
          Effect.catchIf(
            (e) => !Errors.isRecoverable(e),
            (e) => Effect.as(Effect.logWarning(`tools/list failed: ${e.message}`), [] as ReadonlyArray<Tool>)
          )
        )
        yield* ctx.onTools(tools)
      }
      const restore = <A>(what: string, run: (signal: AbortSignal) => Promise<A>) =>
        Effect.tryPromise({ try: run, catch: classify }).pipe(
          Effect.timeout(connectTimeout),
          Effect.catchAll((e) => Effect.logWarning(`could not restore ${what}: ${e.message}`))
        )
      for (const uri of ctx.subscriptions) {
        yield* restore(`subscription ${uri}`, (signal) => client.subscribeResource({ uri }, { signal }))
      }
      const level = ctx.logLevel()
      if (level !== undefined && capabilities.logging !== undefined) {
        yield* restore("log level", (signal) => client.setLoggingLevel(level, { signal }))
      }
      return session
    })

    return yield* opened.pipe(
      Effect.onExit((exit) =>
        Exit.isSuccess(exit)
          ? Effect.void
          : Effect.promise(() => link.kill()).pipe(Effect.zipRight(Scope.close(scope, exit)))
      )
    )
  })

/** @internal Waits for the reason the link died. */
export const awaitLost = (session: Session): Effect.Effect<Errors.TetherError> =>
  Deferred.await(session.lost.deferred)

/** @internal Closes the session's scope (graceful close of the link, unless already killed). */
export const close = (session: Session): Effect.Effect<void> => Scope.close(session.scope, Exit.void)
