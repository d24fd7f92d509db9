/**
 * A command whose code loads only when it runs: its options are parsed here, then the
 * module that does the work is imported, so `tether --help` parses none of it.
 *
 * @since 0.1.0
 */
import { Command } from "@effect/cli"
import { Effect, type Types } from "effect"

/**
 * `Command.make(name, options)` with a handler that `load`s the command's code first.
 *
 * ```ts
 * lazyCommand("serve", options, () => import("./serveRun.js").then((m) => m.run), "Serve …")
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const lazyCommand = <Name extends string, const Config extends Command.Command.Config, E, R>(
  name: Name,
  options: Config,
  load: () => Promise<
    (parsed: Types.Simplify<Command.Command.ParseConfig<Config>>) => Effect.Effect<void, E, R>
  >,
  description: string
) =>
  Command.make(name, options, (parsed) => Effect.flatMap(Effect.promise(load), (run) => run(parsed))).pipe(
    Command.withDescription(description)
  )
