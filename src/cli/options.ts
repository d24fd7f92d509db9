/**
 * Options every `tether` command shares, and the API-key options of the commands that
 * listen (`serve`, and any other server command): `--api-key`, `--api-key-file`,
 * `--no-auth`, with `TETHER_API_KEY` as the fallback. Only option definitions live here:
 * this module loads for `tether --help`.
 *
 * @since 0.1.0
 */
import { Options } from "@effect/cli"
import { Option } from "effect"
// Light: the OpenAPI document's constants, no gateway code.
import * as OpenApi from "../internal/openapi.js"

/**
 * `--config`/`-c`: the mcp.json (default: `TETHER_CONFIG`, else `./mcp.json`).
 *
 * @since 0.1.0
 * @category options
 */
export const config = Options.text("config").pipe(
  Options.withAlias("c"),
  Options.withDescription("Path to the mcp.json (default: TETHER_CONFIG, else ./mcp.json)"),
  Options.optional
)

/**
 * An integer option that must lie in `min..max`; anything else is a usage error (exit 2)
 * that names the option and the range.
 *
 * @since 0.1.0
 * @category combinators
 */
export const integerIn = (name: string, min: number, max: number): Options.Options<number> =>
  Options.integer(name).pipe(
    Options.filterMap(
      (n) => (Number.isInteger(n) && n >= min && n <= max ? Option.some(n) : Option.none()),
      `--${name} must be a whole number from ${min} to ${max}`
    )
  )

/**
 * `--host`: the address a listening command binds (default 127.0.0.1, this machine only).
 *
 * @since 0.1.0
 * @category options
 */
export const host = (description: string): Options.Options<string> =>
  Options.text("host").pipe(Options.withDefault("127.0.0.1"), Options.withDescription(description))

/**
 * `--max-body`: the largest request body a listening command accepts, 1 byte to 1 GiB
 * (default 1 MiB).
 *
 * @since 0.1.0
 * @category options
 */
export const maxBody: Options.Options<number> = integerIn("max-body", 1, 1024 * 1024 * 1024).pipe(
  Options.withDefault(1024 * 1024),
  Options.withDescription("Largest request body in bytes")
)

/**
 * The API-key options, to spread into a command's options:
 * `Command.make("serve", { ...SharedOptions.auth, … })`; `Auth.resolveApiKey` (in
 * `auth.ts`, loaded when the command runs) turns them into the key.
 *
 * @since 0.1.0
 * @category options
 */
export const auth = {
  apiKey: Options.redacted("api-key").pipe(
    Options.withDescription("Require Authorization: Bearer <key> (also TETHER_API_KEY)"),
    Options.optional
  ),
  apiKeyFile: Options.file("api-key-file", { exists: "yes" }).pipe(
    Options.withDescription("Read the API key from this file (keeps it out of `ps` and shell history)"),
    Options.optional
  ),
  noAuth: Options.boolean("no-auth").pipe(
    Options.withDescription("Serve without an API key (every route open to whoever can connect)")
  )
}

/**
 * The largest deadline a command or request may ask for (`--timeout`, `--wait`,
 * `--wait-ready`, `x-tether-timeout-ms`): one hour, in ms.
 *
 * @since 0.1.0
 * @category constants
 */
export const MAX_TIMEOUT_MS: number = OpenApi.MAX_TIMEOUT_MS
