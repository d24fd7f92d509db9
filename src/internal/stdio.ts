/**
 * A stdio client transport written by hand rather than the SDK's `StdioClientTransport`,
 * because Tether needs what the SDK's does not give: the child in its own process group
 * (so grandchildren such as `npx` → `node` die with it), SIGTERM-then-SIGKILL of the whole
 * group with a configurable grace, an immediate kill for a hung (SIGSTOPped) child, the
 * exit code and a stderr tail in the error, and a process-wide registry that kills every
 * live group if the host process exits. Framing is the SDK's, with a cheaper decoder
 * (`jsonRpc.ts`).
 *
 * @internal
 */
import { getDefaultEnvironment } from "@modelcontextprotocol/sdk/client/stdio.js"
import { serializeMessage } from "@modelcontextprotocol/sdk/shared/stdio.js"
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js"
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js"
import { type ChildProcess, spawn } from "node:child_process"
import { existsSync, statSync } from "node:fs"
import { LineBuffer } from "./jsonRpc.js"
import { ChildExitedError, SpawnError } from "./linkErrors.js"

const live = new Set<number>()
let exitHookInstalled = false

const killGroup = (pid: number, signal: NodeJS.Signals): void => {
  try {
    process.kill(-pid, signal)
  } catch {
    // ESRCH: the group is already gone.
  }
}

const installExitHook = (): void => {
  if (exitHookInstalled) return
  exitHookInstalled = true
  // Last line of defence against orphans: whatever way the host exits, no child group
  // we started outlives it.
  process.on("exit", () => {
    for (const pid of live) killGroup(pid, "SIGKILL")
  })
}

/** @internal The pids of stdio server groups this process has alive (for tests and status). */
export const livePids = (): ReadonlyArray<number> => [...live]

/** @internal */
export interface StdioOptions {
  readonly command: string
  readonly args: ReadonlyArray<string>
  readonly env: Record<string, string>
  readonly cwd: string | undefined
  readonly graceMs: number
}

const STDERR_TAIL = 2_000

/** @internal */
export class StdioTransport implements Transport {
  onclose?: () => void
  onerror?: (error: Error) => void
  onmessage?: (message: JSONRPCMessage) => void

  private child: ChildProcess | undefined
  private readonly buffer = new LineBuffer()
  private stderrTail = ""
  private closing = false
  private closed = false
  private exited: Promise<void> | undefined

  constructor(private readonly options: StdioOptions) {}

  get pid(): number | undefined {
    return this.child?.pid
  }

  start(): Promise<void> {
    const { args, command, cwd, env } = this.options
    if (cwd !== undefined && !(existsSync(cwd) && statSync(cwd).isDirectory())) {
      return Promise.reject(
        new SpawnError(command, "ENOENT", `working directory ${JSON.stringify(cwd)} does not exist`)
      )
    }
    installExitHook()
    return new Promise((resolve, reject) => {
      const child = spawn(command, [...args], {
        env: { ...getDefaultEnvironment(), ...env },
        cwd,
        stdio: ["pipe", "pipe", "pipe"],
        detached: true,
        shell: false
      })
      this.child = child
      this.exited = new Promise((done) => child.once("close", () => done()))
      let started = false
      child.once("error", (error: NodeJS.ErrnoException) => {
        if (!started) {
          const detail =
            error.code === "ENOENT"
              ? `command not found: ${JSON.stringify(command)} (not on PATH and not a file)`
              : error.code === "EACCES"
                ? `command ${JSON.stringify(command)} is not executable`
                : `could not start ${JSON.stringify(command)}: ${error.message}`
          this.closed = true
          reject(new SpawnError(command, error.code, detail))
          return
        }
        this.onerror?.(error)
      })
      child.once("spawn", () => {
        started = true
        if (child.pid !== undefined) live.add(child.pid)
        resolve()
      })
      child.on("close", (code, signal) => {
        if (child.pid !== undefined) live.delete(child.pid)
        if (!started) return
        if (!this.closing) this.onerror?.(new ChildExitedError(code, signal, this.stderrTail.trim()))
        this.finish()
      })
      child.stdout?.on("data", (chunk: Buffer) => {
        const overflow = this.buffer.append(chunk)
        if (overflow !== undefined) {
          this.onerror?.(overflow)
          return
        }
        for (;;) {
          let message: JSONRPCMessage | null
          try {
            message = this.buffer.readMessage()
          } catch (error) {
            this.onerror?.(error instanceof Error ? error : new Error(String(error)))
            continue
          }
          if (message === null) break
          this.onmessage?.(message)
        }
      })
      child.stderr?.on("data", (chunk: Buffer) => {
        this.stderrTail = (this.stderrTail + chunk.toString("utf8")).slice(-STDERR_TAIL)
      })
      // EPIPE on a dead child: the 'close' handler reports the exit.
      child.stdin?.on("error", () => {})
    })
  }

  send(message: JSONRPCMessage): Promise<void> {
    const child = this.child
    const stdin = child?.stdin
    if (
      this.closed ||
      child === undefined ||
      child.exitCode !== null ||
      child.signalCode !== null ||
      stdin === undefined ||
      stdin === null ||
      !stdin.writable
    ) {
      return Promise.reject(new Error("Not connected"))
    }
    // Settle when the bytes reached the pipe (or failed to: EPIPE from a child that just
    // died), so a request to a dead child counts as never sent and can be retried.
    return new Promise((resolve, reject) => {
      stdin.write(serializeMessage(message), (error) => (error ? reject(error) : resolve()))
    })
  }

  /** Graceful: end stdin, SIGTERM the group, SIGKILL it after the grace period. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closing = true
    const child = this.child
    if (
      child === undefined ||
      child.pid === undefined ||
      child.exitCode !== null ||
      child.signalCode !== null
    ) {
      this.finish()
      return
    }
    const pid = child.pid
    child.stdin?.end()
    killGroup(pid, "SIGTERM")
    const exited = this.exited ?? Promise.resolve()
    let timer: NodeJS.Timeout | undefined
    const graceOver = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), this.options.graceMs)
    })
    const outcome = await Promise.race([exited.then(() => "exited" as const), graceOver])
    clearTimeout(timer)
    // The leader may be gone while its group lives on (e.g. a shell wrapper): kill the
    // group regardless of how the leader ended.
    killGroup(pid, "SIGKILL")
    if (outcome === "timeout") await exited
    this.finish()
  }

  /** Forced: the link is dead or hung; SIGKILL the group now. */
  async kill(): Promise<void> {
    if (this.closed) return
    this.closing = true
    const pid = this.child?.pid
    if (pid !== undefined) killGroup(pid, "SIGKILL")
    await (this.exited ?? Promise.resolve())
    this.finish()
  }

  private finish(): void {
    if (this.closed) return
    this.closed = true
    this.onclose?.()
  }
}
