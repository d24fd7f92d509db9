/**
 * The code of `tether auth login|status|logout` (options in `oauth.ts`, loaded when one of
 * them runs): OAuth for the remote servers of an `mcp.json`.
 *
 * `login SERVER` runs the authorization-code flow: it prints the authorization URL (and
 * opens a browser when one is available), receives the redirect on a loopback port and
 * stores the tokens in the token store (`<data dir>/auth`, files of mode 0600). Tokens are
 * never printed.
 *
 * @since 0.1.0
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { Console, Effect, Option } from "effect"
import { spawn } from "node:child_process"
import * as Auth from "../Auth.js"
import * as Errors from "../Errors.js"
import { failWith, loadConfig } from "./common.js"
import type { LoginOptions, LogoutOptions, StatusOptions } from "./oauth.js"

const oauthServers = (config: Option.Option<string>) =>
  Effect.map(loadConfig(config), (loaded) =>
    loaded.servers.flatMap((s) => (Auth.isOAuth(s.spec) ? [{ name: s.name, spec: s.spec }] : []))
  )

const findServer = (config: Option.Option<string>, name: string) =>
  Effect.gen(function* () {
    const loaded = yield* loadConfig(config)
    const server = loaded.servers.find((s) => s.name === name)
    if (server === undefined) {
      return yield* new Errors.UnknownServer({
        server: name,
        known: loaded.servers.map((s) => s.name),
        message: `no server named ${JSON.stringify(name)}; configured: ${loaded.servers.map((s) => s.name).join(", ") || "(none)"}`
      })
    }
    return server
  })

/** Opens the URL in a browser when this machine seems to have one; never fails. */
const openBrowser = (url: string): Effect.Effect<void> =>
  Effect.sync(() => {
    const command =
      process.platform === "darwin"
        ? "open"
        : process.platform === "win32"
          ? "explorer"
          : process.env["DISPLAY"] !== undefined || process.env["WAYLAND_DISPLAY"] !== undefined
            ? "xdg-open"
            : undefined
    if (command === undefined) return
    const child = spawn(command, [url], { stdio: "ignore", detached: true })
    child.on("error", () => {})
    child.unref()
  })

/**
 * Runs a handler with the token store; an expected failure is one line and an exit code.
 */
const handled = <A, E extends Errors.TetherError, R>(effect: Effect.Effect<A, E, R>) =>
  effect.pipe(Effect.catchAll(failWith), Effect.provide(Auth.layerDefault), Effect.provide(NodeContext.layer))

/**
 * @since 0.1.0
 * @category handlers
 */
export const login = ({ config, noBrowser, port, server }: LoginOptions) =>
  handled(
    Effect.gen(function* () {
      const found = yield* findServer(config, server)
      const result = yield* Auth.login({
        server,
        spec: found.spec,
        port: Option.getOrUndefined(port),
        onUrl: (url) =>
          Effect.zipRight(
            Console.log(`Open this URL to authorize ${server}:\n\n  ${url}\n\nWaiting for the redirect…`),
            noBrowser ? Effect.void : openBrowser(url)
          )
      })
      const expires =
        result.expiresAt === undefined
          ? ""
          : ` (access token valid until ${new Date(result.expiresAt).toISOString()})`
      yield* Console.log(`Logged in to ${server}${expires}. Tokens stored in ${Auth.dataDirectory()}/auth.`)
    })
  )

/**
 * @since 0.1.0
 * @category handlers
 */
export const status = ({ config, json }: StatusOptions) =>
  handled(
    Effect.gen(function* () {
      const servers = yield* oauthServers(config)
      const all = yield* Effect.forEach(servers, (s) => Auth.status(s.name, s.spec))
      if (json) return yield* Console.log(JSON.stringify(all, null, 2))
      if (all.length === 0) return yield* Console.log('No server has "auth": { "type": "oauth" }.')
      for (const s of all) {
        const state = s.loggedIn
          ? `logged in${s.expiresAt === undefined ? "" : `, access token ${s.expiresAt > Date.now() ? "valid until" : "expired at"} ${new Date(s.expiresAt).toISOString()}`}${s.refreshable ? ", refreshable" : ""}`
          : s.grantType === "client_credentials"
            ? "no token yet (fetched on connect)"
            : `not logged in: run tether auth login ${s.server}`
        yield* Console.log(
          `${s.server}  ${s.grantType}  ${state}${s.scope === undefined ? "" : `  scope: ${s.scope}`}`
        )
      }
    })
  )

/**
 * @since 0.1.0
 * @category handlers
 */
export const logout = ({ config, server }: LogoutOptions) =>
  handled(
    Effect.gen(function* () {
      yield* findServer(config, server)
      yield* Auth.logout(server)
      yield* Console.log(`Forgot the stored authorization of ${server}.`)
    })
  )
