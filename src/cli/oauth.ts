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

const login = Command.make(
  "login",
  {
    config: SharedOptions.config,
    server: Args.text({ name: "server" }),
    port: SharedOptions.integerIn("port", 0, 65_535).pipe(
      Options.withDescription(
        "Loopback port for the redirect (default: the registered one, else any free port)"
      ),
      Options.optional
    ),
    noBrowser: Options.boolean("no-browser").pipe(Options.withDescription("Only print the URL"))
  },
  (args) => Effect.flatMap(run, (r) => r.login(args))
).pipe(Command.withDescription("Log in to an OAuth server (authorization code flow, loopback redirect)"))

const status = Command.make(
  "status",
  {
    config: SharedOptions.config,
    json: Options.boolean("json").pipe(Options.withDescription("Print JSON instead of text"))
  },
  (args) => Effect.flatMap(run, (r) => r.status(args))
).pipe(Command.withDescription("Show which OAuth servers have stored tokens (never the tokens)"))

const logout = Command.make(
  "logout",
  { config: SharedOptions.config, server: Args.text({ name: "server" }) },
  (args) => Effect.flatMap(run, (r) => r.logout(args))
).pipe(Command.withDescription("Forget the stored tokens and registration of a server"))

/**
 * @since 0.1.0
 * @category commands
 */
export const authCommand = Command.make("auth").pipe(
  Command.withDescription("OAuth for remote servers: login, status, logout"),
  Command.withSubcommands([login, status, logout])
)
