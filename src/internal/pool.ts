/**
 * The machinery of `McpPool`: default connections memoized in the pool's scope, tenant
 * connections in an `RcMap` (idle TTL, capacity), the catalog and status views.
 *
 * @internal
 */
import { Duration, Effect, Either, Option, RcMap, Redacted, Scope } from "effect"
import * as Config from "../Config.js"
import * as Errors from "../Errors.js"
import * as McpConnection from "../McpConnection.js"
import type {
  CatalogEntry,
  Calls,
  ConnectionStatus,
  McpPool,
  Options,
  ServerOptions,
  Tenant,
  TypeId as PoolTypeId
} from "../McpPool.js"
import * as Resilience from "../Resilience.js"
import { TokenStore } from "./auth.js"
import * as ServerSpec from "../ServerSpec.js"
import { withHotSpan } from "./tracing.js"

/** @internal */
export const TypeId: PoolTypeId = Symbol.for("tether/McpPool") as PoolTypeId

const PLACEHOLDER = "${tenant."

/** Does this spec need a tenant to be usable (it holds `${tenant.…}` placeholders)? */
const needsTenant = (spec: ServerSpec.ServerSpec): boolean => {
  if (spec.type === "custom") return false
  const values: Array<string> =
    spec.type === "stdio"
      ? [
          spec.command,
          ...spec.args,
          ...(spec.cwd !== undefined ? [spec.cwd] : []),
          ...Object.values(spec.env ?? {}).map(Redacted.value)
        ]
      : [spec.url, ...Object.values(spec.headers ?? {}).map(Redacted.value)]
  return values.some((v) => v.includes(PLACEHOLDER))
}

const connectionOptions = (
  server: ServerOptions,
  spec: ServerSpec.ServerSpec,
  handlers: Pick<McpConnection.McpConnection.Options, "elicitation" | "sampling" | "roots">
): McpConnection.McpConnection.Options => ({
  name: server.name,
  server: spec,
  resilience: server.resilience,
  tools: server.tools,
  trustAnnotations: server.trustAnnotations,
  ...handlers
})

const statusOf = (
  server: ServerOptions,
  tenant: string | undefined,
  conn: McpConnection.McpConnection | undefined,
  startedAt: number
): Effect.Effect<ConnectionStatus> =>
  conn === undefined
    ? Effect.succeed({
        server: server.name,
        tenant,
        state: "Idle",
        detail: undefined,
        optional: server.optional ?? false,
        connectAttempts: 0,
        reconnects: 0,
        errors: 0,
        lastError: undefined,
        since: startedAt,
        pendingCalls: 0
      })
    : Effect.all([conn.state, conn.stats]).pipe(
        Effect.map(([state, stats]): ConnectionStatus => ({
          server: server.name,
          tenant,
          state: state._tag,
          detail: state,
          optional: server.optional ?? false,
          connectAttempts: stats.connectAttempts,
          reconnects: stats.reconnects,
          errors: stats.errors,
          lastError:
            stats.lastError === undefined
              ? undefined
              : { tag: stats.lastError._tag, message: stats.lastError.message, at: stats.lastErrorAt },
          since: stats.stateSince,
          pendingCalls: stats.pendingCalls
        }))
      )

/** The values are part of the key: a tenant whose values change gets a new connection. */
const tenantKey = (tenant: string, server: string, values: Readonly<Record<string, string>>) =>
  JSON.stringify([tenant, server, values])

/** @internal */
export const make = (options: Options | Config.TetherConfig) =>
  Effect.gen(function* () {
    const servers = new Map(options.servers.map((s) => [s.name, s] as const))
    const names = [...servers.keys()]
    const separator = options.namespaceSeparator ?? "__"
    // A config file cannot hold a handler: only programmatic options carry one.
    const handlers = {
      elicitation: "elicitation" in options ? options.elicitation : undefined,
      sampling: "sampling" in options ? options.sampling : undefined,
      roots: "roots" in options ? options.roots : undefined
    }
    const scope = yield* Effect.scope
    // Connections open later, from callers' fibers: they get the token store the pool was built with.
    const tokenStore = yield* Effect.serviceOption(TokenStore)
    const openConnection = (connectionOptions: McpConnection.McpConnection.Options) =>
      Option.match(tokenStore, {
        onNone: () => McpConnection.make(connectionOptions),
        onSome: (store) => Effect.provideService(McpConnection.make(connectionOptions), TokenStore, store)
      })
    const startedAt = yield* Effect.clockWith((c) => c.currentTimeMillis)

    // Every spec and policy is checked before anything starts.
    for (const server of options.servers) {
      // A spec with ${tenant.…} placeholders is checked when rendered for a tenant.
      if (!needsTenant(server.spec)) {
        yield* ServerSpec.decode(server.spec, { server: server.name, path: `mcpServers.${server.name}` })
      }
      yield* Resilience.merge(server.resilience, undefined)
    }

    const unknownServer = (name: string) =>
      new Errors.UnknownServer({
        server: name,
        known: names,
        message: `no server named ${JSON.stringify(name)}; configured: ${names.join(", ") || "(none)"}`
      })

    const lookupServer = (name: string): Effect.Effect<ServerOptions, Errors.UnknownServer> => {
      const server = servers.get(name)
      return server === undefined ? Effect.fail(unknownServer(name)) : Effect.succeed(server)
    }

    // --- the default tenant: one connection per server, for the pool's lifetime ------------
    const defaults = new Map<string, McpConnection.McpConnection>()
    const getDefault = yield* Effect.cachedFunction((name: string) =>
      Effect.gen(function* () {
        const server = yield* lookupServer(name)
        if (needsTenant(server.spec)) {
          return yield* new Errors.InvalidConfig({
            server: name,
            path: `mcpServers.${name}`,
            message: `server ${name} uses \${tenant.…} placeholders: call it through forTenant(…)`
          })
        }
        const conn = yield* openConnection(connectionOptions(server, server.spec, handlers)).pipe(
          Scope.extend(scope)
        )
        defaults.set(name, conn)
        return conn
      })
    )

    // --- tenants: RcMap keyed by (tenant, server) ------------------------------------------
    const open = new Map<
      string,
      { readonly tenant: string; readonly server: ServerOptions; readonly conn: McpConnection.McpConnection }
    >()
    const maxConnections = options.maxConnections ?? 1_000
    const overloaded = (name: string) =>
      new Errors.Overloaded({
        server: name,
        limit: maxConnections,
        message: `the pool already holds its maximum of ${maxConnections} open tenant connections`
      })
    // Connections counted from creation until their close has *finished*. RcMap's own
    // capacity frees a slot when an idle entry is dropped, before its transport is closed,
    // so under load more than `maxConnections` links were open at once (the pool bench saw
    // 231 of 200). This count is the cap.
    let live = 0
    const tenants = yield* RcMap.make({
      lookup: (key: string) =>
        Effect.gen(function* () {
          const [tenant, name, given] = JSON.parse(key) as [string, string, Record<string, string>]
          const server = yield* lookupServer(name)
          const values = { id: tenant, ...given }
          const spec = yield* Config.renderTenant(server.spec, values, { server: name })
          if (live >= maxConnections) return yield* overloaded(name)
          live += 1
          // Registered first, so it runs last: after the connection below has closed.
          yield* Effect.addFinalizer(() =>
            Effect.sync(() => {
              live -= 1
              open.delete(key)
            })
          )
          const conn = yield* openConnection(connectionOptions(server, spec, handlers))
          open.set(key, { tenant, server, conn })
          return conn
        }),
      idleTimeToLive:
        options.idleTimeToLive === undefined ? Duration.minutes(5) : Duration.decode(options.idleTimeToLive)
    })

    const tenantConnection = (tenant: Tenant, name: string) => {
      const key = tenantKey(tenant.id, name, tenant.values ?? {})
      // RcMap keeps a failed lookup for the idle TTL like a live one: drop it, so the next
      // call (after Overloaded, or a fixed config) tries again.
      return RcMap.get(tenants, key).pipe(Effect.tapError(() => RcMap.invalidate(tenants, key)))
    }

    // --- the call surface, shared by the default tenant and each tenant --------------------
    const calls = (
      connection: (
        name: string
      ) => Effect.Effect<
        McpConnection.McpConnection,
        Errors.UnknownServer | Errors.InvalidConfig | Errors.Overloaded,
        Scope.Scope
      >,
      selectable: (server: ServerOptions) => boolean,
      statusEffect: Effect.Effect<ReadonlyArray<ConnectionStatus>>
    ): Calls => {
      const withConnection = <A, E>(
        name: string,
        f: (conn: McpConnection.McpConnection) => Effect.Effect<A, E>
      ) => Effect.scoped(Effect.flatMap(connection(name), f))

      const callTool: Calls["callTool"] = (name, tool, args, callOptions) =>
        withConnection(name, (conn) =>
          Effect.gen(function* () {
            const known = yield* conn.tools
            if (known.length > 0 && !known.some((t) => t.name === tool)) {
              // The catalog may be stale: ask once before calling the tool unknown.
              const fresh = yield* conn.listTools(callOptions)
              if (!fresh.some((t) => t.name === tool)) {
                return yield* new Errors.UnknownTool({
                  server: name,
                  tool,
                  message: `server ${name} has no tool ${JSON.stringify(tool)}`
                })
              }
            }
            return yield* conn.callTool(tool, args, callOptions)
          })
        ).pipe(withHotSpan("McpPool.callTool", { server: name, tool }))

      const split = (qualified: string): Either.Either<readonly [string, string], Errors.UnknownServer> => {
        const server = [...names]
          .sort((a, b) => b.length - a.length)
          .find((n) => qualified.startsWith(`${n}${separator}`))
        return server === undefined
          ? Either.left(
              new Errors.UnknownServer({
                server: qualified,
                known: names,
                message: `${JSON.stringify(qualified)} does not start with a server name and "${separator}"; servers: ${names.join(", ")}`
              })
            )
          : Either.right([server, qualified.slice(server.length + separator.length)] as const)
      }

      const tools: Calls["tools"] = (toolOptions) =>
        Effect.gen(function* () {
          const selected =
            toolOptions?.server !== undefined
              ? [yield* lookupServer(toolOptions.server)]
              : options.servers.filter(selectable)
          const timeout = toolOptions?.timeout ?? "5 seconds"
          const perServer = yield* Effect.forEach(
            selected,
            (server) =>
              withConnection(server.name, (conn) =>
                // An optional server that is not up contributes what it last had, at once.
                (server.optional === true && toolOptions?.server === undefined
                  ? conn.awaitReady({ timeout: "200 millis" })
                  : conn.awaitReady({ timeout })
                ).pipe(
                  Effect.ignore,
                  Effect.zipRight(conn.tools),
                  Effect.map((list) =>
                    list.map((tool): CatalogEntry => ({
                      name: `${server.name}${separator}${tool.name}`,
                      server: server.name,
                      tool
                    }))
                  )
                )
              ).pipe(Effect.orElseSucceed((): ReadonlyArray<CatalogEntry> => [])),
            { concurrency: "unbounded" }
          )
          return perServer.flat()
        })

      return {
        connection,
        callTool,
        call: (qualified, args, callOptions) =>
          Either.match(split(qualified), {
            onLeft: (e) => Effect.fail(e),
            onRight: ([server, tool]) => callTool(server, tool, args, callOptions)
          }),
        tools,
        status: statusEffect,
        reconnect: (name) => withConnection(name, (conn) => conn.reconnect)
      }
    }

    const defaultStatus = Effect.suspend(() =>
      Effect.forEach(
        options.servers.filter((s) => !needsTenant(s.spec)),
        (server) => statusOf(server, undefined, defaults.get(server.name), startedAt)
      )
    )
    const tenantStatus = (tenant: string | undefined) =>
      Effect.suspend(() =>
        Effect.forEach(
          [...open.values()].filter((e) => tenant === undefined || e.tenant === tenant),
          (e) => statusOf(e.server, e.tenant, e.conn, startedAt)
        )
      )

    const defaultCalls = calls(getDefault, (s) => !needsTenant(s.spec), defaultStatus)

    // Eager servers start connecting now, each in its own supervisor fiber.
    for (const server of options.servers) {
      if (server.lazy !== true && !needsTenant(server.spec)) {
        yield* getDefault(server.name).pipe(Effect.catchTag("UnknownServer", Effect.die))
      }
    }

    const pool: McpPool = {
      [TypeId]: TypeId,
      ...defaultCalls,
      servers: names,
      separator,
      forTenant: (tenant: Tenant) => {
        return calls(
          (name) => Effect.zipRight(lookupServer(name), tenantConnection(tenant, name)),
          () => true,
          tenantStatus(tenant.id)
        )
      },
      statusAll: Effect.map(Effect.all([defaultStatus, tenantStatus(undefined)]), ([a, b]) => [...a, ...b]),
      pendingCalls: Effect.suspend(() =>
        Effect.map(
          Effect.forEach([...defaults.values(), ...[...open.values()].map((e) => e.conn)], (c) => c.stats),
          (all) => all.reduce((n, s) => n + s.pendingCalls, 0)
        )
      )
    }
    return pool
  })

/** @internal */
export const fromFile = (path: string) => Effect.flatMap(Config.load(path), make)
