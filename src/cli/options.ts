/**
 * Options every `tether` command shares.
 *
 * @since 0.1.0
 */
import { Options } from "@effect/cli"

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
