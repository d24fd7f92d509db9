/**
 * The bundled agent runner: `npm run agent -- --config mcp.json` (the same as
 * `tether agent`). See `src/cli/agentCommand.ts` for the options.
 *
 * LLM: any OpenAI-compatible Chat Completions endpoint, from TETHER_LLM_BASE_URL,
 * TETHER_LLM_API_KEY and TETHER_LLM_MODEL (or `--model scripted:FILE` to replay a recording).
 */
import { Command, ValidationError } from "@effect/cli"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Cause, Effect, Exit } from "effect"
import { agentCommand } from "../src/cli/agentCommand.js"
import { VERSION } from "../src/internal/version.js"

const cli = Command.run(agentCommand, { name: "tether agent", version: VERSION })

const main = Effect.suspend(() => cli(process.argv)).pipe(
  Effect.catchIf(ValidationError.isValidationError, () =>
    Effect.sync(() => {
      // @effect/cli has printed the usage problem already.
      process.exitCode = 2
    })
  ),
  Effect.provide(NodeContext.layer)
)

NodeRuntime.runMain(main, {
  disableErrorReporting: false,
  teardown: (exit, onExit) => {
    if (Exit.isFailure(exit) && !Cause.isInterruptedOnly(exit.cause)) {
      onExit(process.exitCode && process.exitCode !== 0 ? Number(process.exitCode) : 1)
    } else onExit(Number(process.exitCode ?? 0))
  }
})
