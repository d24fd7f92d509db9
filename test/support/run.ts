/**
 * Runs a command as a child process in its own process group, for the tests that run the
 * CLI or npm as a user would (`cli.test.ts`, `Package.test.ts`).
 */
import { spawn } from "node:child_process"

export interface Run {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/**
 * Runs `command` in its own process group; after `timeoutMs` the whole group (the command
 * and anything it started) is killed and the run reports `code: null`. A command that
 * cannot start reports `code: -1` with the reason on stderr.
 */
export const runGroup = (
  command: string,
  args: ReadonlyArray<string>,
  options: { readonly cwd: string; readonly env: NodeJS.ProcessEnv; readonly timeoutMs: number }
): Promise<Run> =>
  new Promise((resolvePromise) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()))
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()))
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, "SIGKILL")
      } catch {
        // already gone
      }
    }, options.timeoutMs)
    child.once("error", (error) => {
      clearTimeout(timer)
      resolvePromise({ code: -1, stdout, stderr: `${stderr}${error.message}` })
    })
    child.once("close", (code) => {
      clearTimeout(timer)
      resolvePromise({ code, stdout, stderr })
    })
  })
