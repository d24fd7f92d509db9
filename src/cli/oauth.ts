/**
 * `tether auth login|status|logout`: OAuth for the remote servers of an `mcp.json`.
 *
 * `login SERVER` runs the authorization-code flow: it prints the authorization URL (and
 * opens a browser when one is available), receives the redirect on a loopback port and
 * stores the tokens in the token store (`<data dir>/auth`, files of mode 0600). Tokens are
 * never printed. Only the options live here; the code loads when a command runs.
 *
 * @since 0.1.0
 */
import { Args, Command, Options } from "@effect/cli"
import { Effect } from "effect"
import * as SharedOptions from "./options.js"

const run = Effect.promise(() => import("./oauthRun.js"))

const loginOptions = {
  config: SharedOptions.config,
  server: Args.text({ name: "server" }),
  port: SharedOptions.integerIn("port", 0, 65_535).pipe(
    Options.withDescription(
      "Loopback port for the redirect (default: the registered one, else any free port)"
    ),
    Options.optional
  ),
  noBrowser: Options.boolean("no-browser").pipe(Options.withDescription("Only print the URL"))
}

/**
 * The parsed options of `tether auth login`.
 *
 * @since 0.1.0
 * @category models
 */
export type LoginOptions = Command.Command.ParseConfig<typeof loginOptions>

const login = Command.make("login", loginOptions, (args) => Effect.flatMap(run, (r) => r.login(args))).pipe(
  Command.withDescription("Log in to an OAuth server (authorization code flow, loopback redirect)")
)

const statusOptions = {
  config: SharedOptions.config,
  json: Options.boolean("json").pipe(Options.withDescription("Print JSON instead of text"))
}

/**
 * The parsed options of `tether auth status`.
 *
 * @since 0.1.0
 * @category models
 */
export type StatusOptions = Command.Command.ParseConfig<typeof statusOptions>

const status = Command.make("status", statusOptions, (args) =>
  Effect.flatMap(run, (r) => r.status(args))
).pipe(Command.withDescription("Show which OAuth servers have stored tokens (never the tokens)"))

const logoutOptions = { config: SharedOptions.config, server: Args.text({ name: "server" }) }

/**
 * The parsed options of `tether auth logout`.
 *
 * @since 0.1.0
 * @category models
 */
export type LogoutOptions = Command.Command.ParseConfig<typeof logoutOptions>

const logout = Command.make("logout", logoutOptions, (args) =>
  Effect.flatMap(run, (r) => r.logout(args))
).pipe(Command.withDescription("Forget the stored tokens and registration of a server"))

/**
 * @since 0.1.0
 * @category commands
 */
export const authCommand = Command.make("auth").pipe(
  Command.withDescription("OAuth for remote servers: login, status, logout"),
  Command.withSubcommands([login, status, logout])
)
