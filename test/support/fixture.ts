/**
 * Real fixture servers for tests: spawned as child processes, killed, paused (SIGSTOP)
 * and restarted on the same port. Every process is killed when the test's scope closes.
 */
import { Effect, type Scope } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, readFileSync, readdirSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import type * as ServerSpec from "../../src/ServerSpec.js"

export const FIXTURE = resolve(".fixtures/server.mjs")

export type NetKind = "http" | "sse" | "ws"

/** A fresh temporary file path for the fixture's event log (count ids, cancellations). */
export const tempLog = (): string => join(mkdtempSync(join(tmpdir(), "tether-test-")), "events.log")

/** Lines of the fixture's event log (empty if none yet). */
export const readLog = (file: string): ReadonlyArray<string> => {
  try {
    return readFileSync(file, "utf8")
      .split("\n")
      .filter((l) => l.length > 0)
  } catch {
    return []
  }
}

export const stdioSpec = (options: { readonly log?: string } = {}): ServerSpec.Encoded => ({
  type: "stdio",
  command: process.execPath,
  args: [FIXTURE, "--transport", "stdio", ...(options.log !== undefined ? ["--log", options.log] : [])]
})

export const freePort: Effect.Effect<number> = Effect.async<number>((resume) => {
  const server = createServer()
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})

export const urlFor = (kind: NetKind, port: number): string =>
  kind === "http"
    ? `http://127.0.0.1:${port}/mcp`
    : kind === "sse"
      ? `http://127.0.0.1:${port}/sse`
      : `ws://127.0.0.1:${port}/`

export const specFor = (kind: NetKind, port: number): ServerSpec.Encoded =>
  kind === "ws" ? { type: "websocket", url: urlFor(kind, port) } : { type: kind, url: urlFor(kind, port) }

export interface Fixture {
  readonly port: number
  readonly pid: () => number | undefined
  /** Kill with a signal (default SIGKILL) and wait for the exit. */
  readonly kill: (signal?: NodeJS.Signals) => Effect.Effect<void>
  /** Start again on the same port (after a kill). */
  readonly start: Effect.Effect<void, Error>
  readonly pause: Effect.Effect<void>
  readonly resume: Effect.Effect<void>
}

interface LaunchOptions {
  readonly args: ReadonlyArray<string>
  readonly env?: Record<string, string>
  /** Printed on stdout or stderr once the server listens. */
  readonly ready: RegExp
  readonly what: string
  /** How long it may take to be ready (default 15 s). */
  readonly startTimeoutMs?: number
}

const launch = (options: LaunchOptions): Promise<ChildProcess> =>
  new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [...options.args], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, ...options.env }
    })
    let out = ""
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`${options.what} did not start: ${out}`))
    }, options.startTimeoutMs ?? 15_000)
    const onData = (chunk: Buffer) => {
      out += chunk.toString()
      if (options.ready.test(out)) {
        clearTimeout(timer)
        child.stdout?.removeListener("data", onData)
        child.stderr?.removeListener("data", onData)
        child.stdout?.resume()
        child.stderr?.resume()
        resolvePromise(child)
      }
    }
    child.stdout?.on("data", onData)
    child.stderr?.on("data", onData)
    child.once("exit", (code) => {
      clearTimeout(timer)
      reject(new Error(`${options.what} exited with ${code} before it was ready: ${out}`))
    })
  })

const waitExit = (child: ChildProcess): Promise<void> =>
  child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise((r) => child.once("exit", () => r()))

/** Spawns a fixture server over a network transport; killed when the scope closes. */
export const spawnFixture = (
  kind: NetKind,
  options: { readonly port?: number; readonly log?: string } = {}
): Effect.Effect<Fixture, Error, Scope.Scope> =>
  spawnServer(
    (port) => ({
      what: `fixture ${kind}`,
      args: [
        FIXTURE,
        "--transport",
        kind,
        "--port",
        String(port),
        ...(options.log !== undefined ? ["--log", options.log] : [])
      ],
      ready: /READY/
    }),
    options.port
  )

/** The reference server `@modelcontextprotocol/server-everything` (stdio or Streamable HTTP). */
export const EVERYTHING = resolve("node_modules/@modelcontextprotocol/server-everything/dist/index.js")

export const spawnEverythingHttp = (port?: number): Effect.Effect<Fixture, Error, Scope.Scope> =>
  spawnServer(
    (p) => ({
      what: "server-everything",
      args: [EVERYTHING, "streamableHttp"],
      env: { PORT: String(p) },
      ready: /listening on port/
    }),
    port
  )

/** Spawns a server process on a port; restartable on the same port; killed with the scope. */
export const spawnServer = (
  make: (port: number) => LaunchOptions,
  fixedPort?: number
): Effect.Effect<Fixture, Error, Scope.Scope> =>
  Effect.gen(function* () {
    const port = fixedPort ?? (yield* freePort)
    let child: ChildProcess | undefined
    const start = Effect.tryPromise({
      try: async () => {
        child = await launch(make(port))
      },
      catch: (e) => (e instanceof Error ? e : new Error(String(e)))
    })
    const kill = (signal: NodeJS.Signals = "SIGKILL") =>
      Effect.promise(async () => {
        const c = child
        if (c === undefined) return
        c.kill("SIGCONT")
        c.kill(signal)
        await waitExit(c)
      })
    yield* Effect.acquireRelease(start, () => kill("SIGKILL"))
    return {
      port,
      pid: () => child?.pid,
      kill,
      start,
      pause: Effect.sync(() => child?.kill("SIGSTOP")),
      resume: Effect.sync(() => child?.kill("SIGCONT"))
    }
  })

/**
 * Pids of every live descendant of `root` (from /proc), for orphan checks. `skip` leaves
 * out a process and its subtree (the bench skips tsx's own esbuild service).
 */
export const descendants = (
  root: number = process.pid,
  skip: (pid: number) => boolean = () => false
): ReadonlyArray<number> => {
  const parentOf = new Map<number, number>()
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8")
      // Field 4 is the ppid; the command (field 2) may hold spaces, so split after ')'.
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
      if (fields[0] === "Z") continue
      parentOf.set(Number(entry), Number(fields[1]))
    } catch {
      // The process ended while we looked.
    }
  }
  const found: Array<number> = []
  const visit = (pid: number) => {
    for (const [child, parent] of parentOf) {
      if (parent === pid && !skip(child)) {
        found.push(child)
        visit(child)
      }
    }
  }
  visit(root)
  return found
}

/** Pids of fixture servers whose command line names this fixture (any parent). */
export const fixtureProcesses = (): ReadonlyArray<number> =>
  readdirSync("/proc")
    .filter((e) => /^\d+$/.test(e))
    .flatMap((e) => {
      try {
        const cmd = readFileSync(`/proc/${e}/cmdline`, "utf8")
        const stat = readFileSync(`/proc/${e}/stat`, "utf8")
        const zombie = stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")
        return !zombie && cmd.includes(FIXTURE) ? [Number(e)] : []
      } catch {
        return []
      }
    })
