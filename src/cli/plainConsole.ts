/**
 * @effect/cli renders help and usage errors with ANSI styles whatever the output is; piped
 * into a file, a pager or another program they are noise. This keeps them for terminals and
 * strips them everywhere else (and when `NO_COLOR` is set, see https://no-color.org).
 *
 * @since 0.1.0
 */
import { type Console, Effect } from "effect"

// CSI sequences (colours, bold…): ESC [ parameters final-byte.
const ansi = new RegExp(`${String.fromCharCode(27)}\\[[0-9;?]*[ -/]*[@-~]`, "g")

/**
 * The text without ANSI escape sequences.
 *
 * @since 0.1.0
 * @category utils
 */
export const strip = (text: string): string => text.replace(ansi, "")

const plain = (args: ReadonlyArray<unknown>): Array<unknown> =>
  args.map((arg) => (typeof arg === "string" ? strip(arg) : arg))

/**
 * Whether text written to `stream` should keep its styles.
 *
 * @since 0.1.0
 * @category utils
 */
export const styled = (stream: { readonly isTTY?: boolean }): boolean =>
  stream.isTTY === true && (process.env.NO_COLOR ?? "") === ""

/**
 * Runs `effect` with a `Console` that strips ANSI styles from what goes to stdout and stderr
 * when that stream is not a terminal.
 *
 * @since 0.1.0
 * @category combinators
 */
export const whenNotTerminal = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.consoleWith((console) => {
    const out = styled(process.stdout)
    const err = styled(process.stderr)
    if (out && err) return effect
    const unsafe = console.unsafe
    type Method = "log" | "info" | "debug" | "error" | "warn"
    const write =
      (method: Method, keep: boolean) =>
      (...args: ReadonlyArray<unknown>): void =>
        unsafe[method](...(keep ? args : plain(args)))
    const log = write("log", out)
    const info = write("info", out)
    const debug = write("debug", out)
    const error = write("error", err)
    const warn = write("warn", err)
    const wrapped: Console.Console = {
      ...console,
      log: (...args) => Effect.sync(() => log(...args)),
      info: (...args) => Effect.sync(() => info(...args)),
      debug: (...args) => Effect.sync(() => debug(...args)),
      error: (...args) => Effect.sync(() => error(...args)),
      warn: (...args) => Effect.sync(() => warn(...args)),
      unsafe: { ...unsafe, log, info, debug, error, warn }
    }
    return Effect.withConsole(effect, wrapped)
  })
