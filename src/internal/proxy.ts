/**
 * The machinery of `Proxy`: one aggregated catalog over the pool's servers, SDK `Server`s
 * (one per downstream session) whose handlers call the pool, and the watchers that turn
 * catalog changes and server notifications below into notifications above.
 *
 * The proxy owns no resilience: waiting for a reconnect, retries and `OutcomeUnknown` come
 * from the connections; this file only translates them into MCP results and errors.
 *
 * @internal
 */
import { Server } from "@modelcontextprotocol/sdk/server/index.js"
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js"
import {
  CallToolRequestSchema,
  type CallToolResult,
  type ClientCapabilities,
  ErrorCode,
  GetPromptRequestSchema,
  ListPromptsRequestSchema,
  ListResourceTemplatesRequestSchema,
  ListResourcesRequestSchema,
  ListToolsRequestSchema,
  type Prompt,
  ReadResourceRequestSchema,
  type Resource,
  RootsListChangedNotificationSchema,
  type ResourceTemplate,
  type ServerCapabilities,
  type ServerNotification,
  SubscribeRequestSchema,
  type Tool,
  UnsubscribeRequestSchema
} from "@modelcontextprotocol/sdk/types.js"
import { Cause, Data, Duration, Effect, Exit, Option, Runtime, Stream } from "effect"
import type { ConnectionState } from "../ConnectionState.js"
import * as Errors from "../Errors.js"
import type { CallOptions, McpConnection, Progress } from "../McpConnection.js"
import * as McpPool from "../McpPool.js"
import type { Options, Proxy, Session, TypeId as ProxyTypeId } from "../Proxy.js"
import { VERSION } from "./version.js"

/** @internal */
export const TypeId: ProxyTypeId = Symbol.for("tether/Proxy") as ProxyTypeId

/** The key of the structured `OutcomeUnknown` in a tool result's `_meta`. @internal */
export const OUTCOME_UNKNOWN_META = "tether/outcomeUnknown"

/** One downstream session: its SDK server and what it subscribed to. */
interface Downstream {
  readonly server: Server
  readonly sessionId: () => string | undefined
  readonly subscriptions: Set<string>
}

/** What a server offered the last time it could be asked (a down server keeps offering it). */
interface Offer {
  resources: ReadonlyArray<Resource>
  templates: ReadonlyArray<ResourceTemplate>
  prompts: ReadonlyArray<Prompt>
}

const describeState = (state: ConnectionState): string =>
  state._tag === "Reconnecting"
    ? `reconnecting (${state.lastError._tag})`
    : state._tag === "Failed"
      ? `unavailable (${state.lastError._tag})`
      : state._tag.toLowerCase()

/**
 * A Tether failure as the JSON-RPC error the downstream client gets. The upstream's own
 * JSON-RPC errors pass through with their code; everything else names the server and why.
 *
 * @internal
 */
export const toRpcFailure = (error: Errors.TetherError, what: string): RpcFailure => {
  const data = { tag: error._tag, server: error.server }
  switch (error._tag) {
    case "UnknownServer":
    case "UnknownTool":
      return rpc(ErrorCode.InvalidParams, `${what}: ${error.message}`, data)
    case "ProtocolError":
      return rpc(error.code, error.message, error.data)
    default:
      return rpc(
        ErrorCode.InternalError,
        Errors.isRecoverable(error)
          ? `${what}: upstream server ${error.server ?? "?"} is unavailable (${error._tag}: ${error.message})`
          : `${what}: upstream server ${error.server ?? "?"} failed (${error._tag}: ${error.message})`,
        error._tag === "ServerUnavailable" ? { ...data, retryAt: error.retryAt } : data
      )
  }
}

/**
 * A tool result for a call whose outcome is unknown: an error result (never a retry) that
 * says so in words, with the structured error in `_meta`.
 *
 * @internal
 */
export const outcomeUnknownResult = (error: Errors.OutcomeUnknown): CallToolResult => ({
  isError: true,
  content: [
    {
      type: "text",
      text:
        `The outcome of ${error.tool ?? error.method} on ${error.server ?? "the upstream server"} is unknown: ` +
        `the connection failed after the request was sent, so it may or may not have run. ` +
        `It was not retried. (${error.cause ?? error.message})`
    }
  ],
  _meta: {
    [OUTCOME_UNKNOWN_META]: {
      _tag: error._tag,
      server: error.server,
      method: error.method,
      tool: error.tool,
      requestId: error.requestId,
      cause: error.cause,
      message: error.message
    }
  }
})

/**
 * A JSON-RPC error for the downstream client. The SDK answers a handler's rejection with
 * its `code`, `message` and `data`; unlike the SDK's `McpError`, this one does not put
 * "MCP error N:" in front of the message (the client's SDK adds that itself).
 *
 * @internal
 */
export class RpcFailure extends Data.TaggedError("RpcFailure")<{
  readonly code: number
  readonly message: string
  readonly data?: unknown
}> {}

const rpc = (code: number, message: string, data?: unknown) =>
  new RpcFailure(data === undefined ? { code, message } : { code, message, data })

/** The SDK handlers reject with an `RpcFailure`: that is how the SDK answers a JSON-RPC error. */
const rejectionOf = (cause: Cause.Cause<RpcFailure>): RpcFailure => {
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure)) return failure.value
  if (Cause.isInterruptedOnly(cause)) return rpc(ErrorCode.RequestTimeout, "request cancelled")
  return rpc(ErrorCode.InternalError, `tether proxy: ${Cause.pretty(cause).split("\n")[0]}`)
}

/** @internal The failure a sampling request gets when no downstream client can sample. */
export const noSampler = (): Error =>
  new Error("no downstream client that declared the sampling capability has a tool call in flight")

/** @internal */
export const make = (options: Options = {}) =>
  Effect.gen(function* () {
    const pool = yield* McpPool.McpPool
    const runtime = yield* Effect.runtime<never>()
    const runExit = Runtime.runPromiseExit(runtime)
    const listWait = Duration.decode(options.listWait ?? "5 seconds")
    const multi = pool.servers.length > 1
    const prefixOf = (server: string): string =>
      options.prefixes?.[server] ?? (multi ? `${server}${pool.separator}` : "")
    // Longest prefix first, so `a__b__` wins over `a__` when both are configured.
    const byPrefix = [...pool.servers].sort((a, b) => prefixOf(b).length - prefixOf(a).length)

    const connections = new Map<string, McpConnection>()
    for (const server of pool.servers) {
      // Servers that need a tenant (`${tenant.…}`) cannot be proxied without one: left out.
      const conn = yield* Effect.scoped(pool.connection(server)).pipe(
        Effect.tapError((e) => Effect.logWarning(`proxy: leaving out ${server}: ${e.message}`)),
        Effect.option
      )
      if (Option.isSome(conn)) connections.set(server, conn.value)
    }
    const servers = [...connections.keys()]
    const offers = new Map<string, Offer>(
      servers.map((s) => [s, { resources: [], templates: [], prompts: [] }])
    )
    const sessions = new Set<Downstream>()
    /** Sessions with a tool call in flight, oldest first (an upstream elicitation asks the newest). */
    const calling: Array<Downstream> = []
    /** The newest session in a tool call whose client declared a capability. */
    const asker = (declared: (caps: ClientCapabilities) => boolean) =>
      [...calling].reverse().find((d) => {
        const caps = d.server.getClientCapabilities()
        return caps !== undefined && declared(caps)
      })
    options.relay?.bind({
      elicitation: (params) =>
        Effect.suspend(() => {
          const target = asker((c) => c.elicitation !== undefined)
          if (target === undefined) return Effect.succeed({ action: "decline" as const })
          return Effect.tryPromise({
            try: (signal) => target.server.elicitInput(params, { signal }),
            catch: (e) => e
          })
        }),
      sampling: (params) =>
        Effect.suspend(() => {
          const target = asker((c) => c.sampling !== undefined)
          if (target === undefined) return Effect.fail(noSampler())
          return Effect.tryPromise({
            try: (signal) => target.server.createMessage(params, { signal }),
            catch: (e) => e
          })
        }),
      roots: () =>
        Effect.suspend(() => {
          // Servers often ask for roots outside any tool call (after initialize, after
          // list_changed): then the only session with roots answers, if there is one.
          const withRoots = [...sessions].filter((d) => d.server.getClientCapabilities()?.roots !== undefined)
          const target =
            asker((c) => c.roots !== undefined) ?? (withRoots.length === 1 ? withRoots[0] : undefined)
          if (target === undefined) return Effect.succeed([])
          return Effect.tryPromise({
            try: (signal) => target.server.listRoots(undefined, { signal }),
            catch: (e) => e
          }).pipe(Effect.map((result) => result.roots))
        })
    })

    const run = <A>(effect: Effect.Effect<A, RpcFailure>, signal?: AbortSignal): Promise<A> =>
      runExit(effect, signal === undefined ? undefined : { signal }).then((exit) =>
        Exit.isSuccess(exit) ? exit.value : Promise.reject(rejectionOf(exit.cause))
      )

    const broadcast = (send: (d: Downstream) => Promise<void>) =>
      Effect.forEach([...sessions], (d) => Effect.promise(() => send(d).catch(() => undefined)), {
        concurrency: "unbounded",
        discard: true
      })

    // --- the catalog ---------------------------------------------------------------------
    /** A server's connection once it had its first chance to connect (bounded by `listWait`). */
    const settled = (server: string, conn: McpConnection) =>
      Effect.gen(function* () {
        const state = yield* conn.state
        if (state._tag === "Connecting" && (yield* conn.tools).length === 0) {
          yield* conn.awaitReady({ timeout: listWait }).pipe(Effect.ignore)
          return yield* conn.state
        }
        return state
      }).pipe(Effect.annotateLogs("server", server))

    const marked = <T extends { description?: string | undefined }>(
      item: T,
      server: string,
      state: ConnectionState
    ): T =>
      state._tag === "Ready"
        ? item
        : {
            ...item,
            description: `${item.description ?? ""}${item.description ? " " : ""}[tether: ${server} is ${describeState(state)}; calls wait for it within their deadline]`
          }

    const toolsOf = (server: string, conn: McpConnection) =>
      Effect.map(Effect.zip(settled(server, conn), conn.tools), ([state, tools]) =>
        tools.map((tool): Tool => marked({ ...tool, name: `${prefixOf(server)}${tool.name}` }, server, state))
      )

    const listTools = Effect.forEach(servers, (s) => toolsOf(s, connections.get(s)!), {
      concurrency: "unbounded"
    }).pipe(Effect.map((all) => all.flat()))

    /** Refreshes one server's resources, templates and prompts; keeps the last ones on failure. */
    const refreshOffer = (server: string, conn: McpConnection) =>
      Effect.gen(function* () {
        const offer = offers.get(server)!
        const state = yield* settled(server, conn)
        if (state._tag !== "Ready") return offer
        const caps = state.server.capabilities
        const quick: CallOptions = { timeout: "10 seconds" }
        const keep = <A>(effect: Effect.Effect<A, Errors.TetherError>, last: A) =>
          effect.pipe(
            Effect.tapError((e) => Effect.logDebug(`proxy: listing ${server} failed: ${e.message}`)),
            Effect.orElseSucceed(() => last)
          )
        const [resources, templates, prompts] = yield* Effect.all(
          [
            caps.resources === undefined
              ? Effect.succeed([])
              : keep(conn.listResources(quick), offer.resources),
            caps.resources === undefined
              ? Effect.succeed([])
              : keep(conn.listResourceTemplates(quick), offer.templates),
            caps.prompts === undefined ? Effect.succeed([]) : keep(conn.listPrompts(quick), offer.prompts)
          ],
          { concurrency: "unbounded" }
        )
        const fresh: Offer = { resources, templates, prompts }
        offers.set(server, fresh)
        return fresh
      })

    const offerList = <A>(pick: (offer: Offer) => ReadonlyArray<A>, rename: (server: string, a: A) => A) =>
      Effect.forEach(
        servers,
        (s) =>
          Effect.map(refreshOffer(s, connections.get(s)!), (offer) => pick(offer).map((a) => rename(s, a))),
        { concurrency: "unbounded" }
      ).pipe(Effect.map((all) => all.flat()))

    const renamed = <A extends { name: string }>(server: string, a: A): A => ({
      ...a,
      name: `${prefixOf(server)}${a.name}`
    })

    // --- routing ---------------------------------------------------------------------------
    /** Which server a prefixed name belongs to, and the name there. */
    const route = (name: string, has: (server: string, local: string) => boolean) => {
      for (const server of byPrefix) {
        const prefix = prefixOf(server)
        if (prefix.length > 0 && name.startsWith(prefix)) return { server, local: name.slice(prefix.length) }
      }
      const unprefixed = byPrefix.filter((s) => prefixOf(s).length === 0)
      const holder =
        unprefixed.find((s) => has(s, name)) ?? (unprefixed.length === 1 ? unprefixed[0] : undefined)
      return holder === undefined ? undefined : { server: holder, local: name }
    }

    const unknownName = (kind: string, name: string) =>
      rpc(ErrorCode.InvalidParams, `unknown ${kind} ${JSON.stringify(name)}`)

    /** Which server serves a resource URI (URIs are not renamed): listed, else templated, else the only one. */
    const routeUri = (uri: string): string | undefined => {
      for (const server of servers) {
        if (offers.get(server)!.resources.some((r) => r.uri === uri)) return server
      }
      for (const server of servers) {
        const templated = offers
          .get(server)!
          .templates.some((t) => uri.startsWith(t.uriTemplate.split("{")[0] ?? t.uriTemplate))
        if (templated) return server
      }
      return servers.length === 1 ? servers[0] : undefined
    }

    const toolsNow = new Map<string, ReadonlyArray<Tool>>()
    const callTool = (
      name: string,
      args: Record<string, unknown> | undefined,
      progress: ((p: Progress) => void) | undefined
    ) =>
      Effect.gen(function* () {
        const target = route(name, (s, local) => (toolsNow.get(s) ?? []).some((t) => t.name === local))
        if (target === undefined) return yield* Effect.fail(unknownName("tool", name))
        // Straight to the connection, not `pool.callTool`: a name the catalog does not
        // know goes to the server too, which answers it as it would a direct client.
        return yield* connections
          .get(target.server)!
          .callTool(target.local, args, progress === undefined ? undefined : { onProgress: progress })
          .pipe(
            Effect.catchTags({
              ToolFailed: (e) => Effect.succeed(e.result as CallToolResult),
              OutcomeUnknown: (e) => Effect.succeed(outcomeUnknownResult(e))
            }),
            Effect.mapError((e) => toRpcFailure(e, `tools/call ${name}`))
          )
      })

    const withUri = <A>(
      uri: string,
      what: string,
      f: (conn: McpConnection) => Effect.Effect<A, Errors.TetherError>
    ): Effect.Effect<A, RpcFailure> =>
      Effect.gen(function* () {
        let server = routeUri(uri)
        if (server === undefined) {
          // Not seen yet: ask every server once, then route.
          yield* offerList(
            (o) => o.resources,
            (_, r) => r
          )
          server = routeUri(uri)
        }
        if (server === undefined) {
          return yield* Effect.fail(rpc(ErrorCode.InvalidParams, `no upstream server offers ${uri}`))
        }
        return yield* f(connections.get(server)!).pipe(
          Effect.mapError((e) => toRpcFailure(e, `${what} ${uri}`))
        )
      })

    // --- watchers: catalog changes and notifications below → notifications above ----------
    const toolKey = () =>
      JSON.stringify(
        servers.map((s) =>
          (toolsNow.get(s) ?? []).map((t) => [t.name, t.description, t.inputSchema, t.outputSchema])
        )
      )
    let sentToolKey = toolKey()
    const toolsChanged = Effect.suspend(() => {
      const key = toolKey()
      if (key === sentToolKey) return Effect.void
      sentToolKey = key
      return broadcast((d) => d.server.sendToolListChanged())
    })

    const offerKey = (offer: Offer) => JSON.stringify([offer.resources, offer.templates])
    /** After a reconnect the catalog may differ: compare, and say so when it did. */
    const recheckOffer = (server: string, conn: McpConnection) =>
      Effect.gen(function* () {
        const before = offers.get(server)!
        const after = yield* refreshOffer(server, conn)
        if (offerKey(before) !== offerKey(after)) yield* broadcast((d) => d.server.sendResourceListChanged())
        if (JSON.stringify(before.prompts) !== JSON.stringify(after.prompts)) {
          yield* broadcast((d) => d.server.sendPromptListChanged())
        }
      })

    const onNotification = (server: string, n: ServerNotification) => {
      switch (n.method) {
        case "notifications/message":
          return broadcast((d) =>
            d.server.sendLoggingMessage({ ...n.params, logger: n.params.logger ?? server }, d.sessionId())
          )
        case "notifications/resources/updated": {
          const uri = n.params.uri
          return broadcast((d) =>
            d.subscriptions.has(uri) ? d.server.sendResourceUpdated({ uri }) : Promise.resolve()
          )
        }
        case "notifications/resources/list_changed":
          return Effect.zipRight(
            refreshOffer(server, connections.get(server)!),
            broadcast((d) => d.server.sendResourceListChanged())
          )
        case "notifications/prompts/list_changed":
          return Effect.zipRight(
            refreshOffer(server, connections.get(server)!),
            broadcast((d) => d.server.sendPromptListChanged())
          )
        default:
          return Effect.void
      }
    }

    for (const server of servers) {
      const conn = connections.get(server)!
      yield* conn.toolChanges.pipe(
        Stream.runForEach((tools) =>
          Effect.zipRight(
            Effect.sync(() => toolsNow.set(server, tools)),
            toolsChanged
          )
        ),
        Effect.forkScoped
      )
      yield* conn.notifications.pipe(
        Stream.runForEach((n) => onNotification(server, n)),
        Effect.forkScoped
      )
      yield* conn.changes.pipe(
        Stream.filter((s) => s._tag === "Ready" && s.generation > 1),
        Stream.runForEach(() => recheckOffer(server, conn)),
        Effect.forkScoped
      )
    }

    // --- resource subscriptions, shared by the sessions that asked for them -------------------
    const subscribers = new Map<string, number>()
    const subscribe = (d: Downstream, uri: string) =>
      withUri(uri, "resources/subscribe", (conn) =>
        d.subscriptions.has(uri)
          ? Effect.void
          : Effect.zipRight(
              (subscribers.get(uri) ?? 0) === 0 ? conn.subscribe(uri) : Effect.void,
              Effect.sync(() => {
                d.subscriptions.add(uri)
                subscribers.set(uri, (subscribers.get(uri) ?? 0) + 1)
              })
            )
      )
    const unsubscribe = (d: Downstream, uri: string) =>
      withUri(uri, "resources/unsubscribe", (conn) => {
        if (!d.subscriptions.delete(uri)) return Effect.void
        const left = (subscribers.get(uri) ?? 1) - 1
        if (left > 0) {
          subscribers.set(uri, left)
          return Effect.void
        }
        subscribers.delete(uri)
        return conn.unsubscribe(uri)
      })

    // --- one SDK server per downstream session ---------------------------------------------
    const capabilities = (stateless: boolean): ServerCapabilities => ({
      tools: { listChanged: !stateless },
      resources: { subscribe: !stateless, listChanged: !stateless },
      prompts: { listChanged: !stateless },
      logging: {}
    })

    /** With one server, its instructions are the proxy's (read when a session starts). */
    const instructions = (): string | undefined => {
      if (servers.length !== 1) return undefined
      const state = Runtime.runSync(runtime)(connections.get(servers[0]!)!.state)
      return state._tag === "Ready" ? state.server.instructions : undefined
    }

    const connect = (transport: Transport, sessionOptions?: { readonly stateless?: boolean | undefined }) =>
      Effect.suspend(() => {
        const stateless = sessionOptions?.stateless ?? false
        const text = instructions()
        const server = new Server(
          { name: options.name ?? "tether-proxy", version: options.version ?? VERSION },
          { capabilities: capabilities(stateless), ...(text !== undefined ? { instructions: text } : {}) }
        )
        const downstream: Downstream = {
          server,
          sessionId: () => transport.sessionId,
          subscriptions: new Set()
        }

        server.setRequestHandler(ListToolsRequestSchema, () =>
          run(Effect.map(listTools, (tools) => ({ tools })))
        )
        server.setRequestHandler(CallToolRequestSchema, (request, extra) => {
          const token = request.params._meta?.progressToken
          const progress =
            token === undefined
              ? undefined
              : (p: Progress) =>
                  void extra
                    .sendNotification({
                      method: "notifications/progress",
                      params: {
                        progressToken: token,
                        progress: p.progress,
                        ...(p.total !== undefined ? { total: p.total } : {}),
                        ...(p.message !== undefined ? { message: p.message } : {})
                      }
                    })
                    .catch(() => undefined)
          calling.push(downstream)
          return run(callTool(request.params.name, request.params.arguments, progress), extra.signal).finally(
            () => {
              calling.splice(calling.indexOf(downstream), 1)
            }
          )
        })
        server.setRequestHandler(ListResourcesRequestSchema, () =>
          run(
            Effect.map(
              offerList((o) => o.resources, renamed),
              (resources) => ({ resources })
            )
          )
        )
        server.setRequestHandler(ListResourceTemplatesRequestSchema, () =>
          run(
            Effect.map(
              offerList((o) => o.templates, renamed),
              (resourceTemplates) => ({ resourceTemplates })
            )
          )
        )
        server.setRequestHandler(ReadResourceRequestSchema, (request, extra) =>
          run(
            withUri(request.params.uri, "resources/read", (conn) => conn.readResource(request.params.uri)),
            extra.signal
          )
        )
        server.setRequestHandler(ListPromptsRequestSchema, () =>
          run(
            Effect.map(
              offerList((o) => o.prompts, renamed),
              (prompts) => ({ prompts })
            )
          )
        )
        server.setRequestHandler(GetPromptRequestSchema, (request, extra) => {
          const name = request.params.name
          const target = route(name, (s, local) => offers.get(s)!.prompts.some((p) => p.name === local))
          if (target === undefined) return Promise.reject(unknownName("prompt", name))
          return run(
            connections
              .get(target.server)!
              .getPrompt(target.local, request.params.arguments)
              .pipe(Effect.mapError((e) => toRpcFailure(e, `prompts/get ${name}`))),
            extra.signal
          )
        })
        server.setRequestHandler(SubscribeRequestSchema, (request) =>
          run(Effect.as(subscribe(downstream, request.params.uri), {}))
        )
        server.setRequestHandler(UnsubscribeRequestSchema, (request) =>
          run(Effect.as(unsubscribe(downstream, request.params.uri), {}))
        )
        server.setNotificationHandler(RootsListChangedNotificationSchema, () =>
          run(
            Effect.forEach(connections.values(), (conn) => conn.rootsChanged, {
              concurrency: "unbounded",
              discard: true
            })
          )
        )

        const release = () => {
          if (!sessions.delete(downstream)) return
          for (const uri of [...downstream.subscriptions]) {
            void run(unsubscribe(downstream, uri)).catch(() => undefined)
          }
        }
        server.onclose = release
        // A stateless session gets no notifications: there is nowhere to send them.
        if (!stateless) sessions.add(downstream)
        const session: Session = {
          close: Effect.promise(() => {
            release()
            return server.close()
          })
        }
        return Effect.promise(() => server.connect(transport)).pipe(Effect.as(session))
      })

    const proxy: Proxy = {
      [TypeId]: TypeId,
      servers,
      connect,
      sessions: Effect.sync(() => sessions.size)
    }
    return proxy
  })
