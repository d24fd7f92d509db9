/**
 * The README's snippets, run as written. Only fenced blocks marked with an HTML comment on
 * the lines before them are checked (see CONTRIBUTING.md, "README snippets"):
 *
 * - `<!-- doc-test: file NAME -->`: the block is a file (a config) the other snippets use;
 *   it is written as NAME in the sandbox.
 * - `<!-- doc-test: run [server=N] [port=P] [llm=P] [expect=TEXT]… -->`: a `sh` block run
 *   by bash (`set -e`: every command must succeed) in a sandbox holding the repository's
 *   `bin`, `scripts`, `examples`, `src` and `node_modules` and the `file` snippets, with
 *   HOME in the sandbox and stdin empty. `server=N`: the N-th command is a server, run in
 *   the background until the block ends; the next commands start once it listens on P.
 *   `port=P`: P is replaced by a free port. `llm=P`: P is replaced by the port of a test
 *   OpenAI-compatible model server. `expect=TEXT`: the output must contain TEXT; a
 *   `# prints: TEXT` comment in the block is an expectation too.
 *
 * Every process a snippet starts is ended (its HOME is the sandbox, so none escapes).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawn } from "node:child_process"
import { mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { brain, llmServer } from "./support/llmServer.js"

interface Snippet {
  readonly kind: "file" | "run"
  readonly argument: string | undefined
  readonly options: ReadonlyMap<string, ReadonlyArray<string>>
  readonly body: string
  /** 1-based line of the marker, for messages. */
  readonly line: number
}

const MARKER = /^<!--\s*doc-test:\s*(file|run)\b(.*?)-->\s*$/

/** Every marked block of a markdown text. */
export const snippets = (markdown: string): ReadonlyArray<Snippet> => {
  const lines = markdown.split("\n")
  const out: Array<Snippet> = []
  for (let i = 0; i < lines.length; i++) {
    const marker = MARKER.exec(lines[i] ?? "")
    if (marker === null) continue
    // Prettier puts a blank line between the comment and the fence.
    let open = i + 1
    while (open < lines.length && (lines[open] ?? "").trim() === "") open++
    const fence = lines[open] ?? ""
    if (!fence.startsWith("```"))
      throw new Error(`README.md:${i + 1}: a doc-test marker must be right above a fenced block`)
    const end = lines.findIndex((l, j) => j > open && l.startsWith("```"))
    if (end < 0) throw new Error(`README.md:${i + 1}: the fenced block is not closed`)
    const options = new Map<string, Array<string>>()
    let argument: string | undefined
    for (const token of (marker[2] ?? "").matchAll(/(?:(\w+)=)?("[^"]*"|'[^']*'|\S+)/g)) {
      const raw = token[2] ?? ""
      const value = /^["'].*["']$/.test(raw) ? raw.slice(1, -1) : raw
      if (token[1] === undefined) argument = value
      else options.set(token[1], [...(options.get(token[1]) ?? []), value])
    }
    out.push({
      kind: marker[1] as "file" | "run",
      argument,
      options,
      body: lines.slice(open + 1, end).join("\n"),
      line: i + 1
    })
    i = end
  }
  return out
}

const README = readFileSync(resolve("README.md"), "utf8")
const all = snippets(README)

const freePort = () =>
  new Promise<number>((resolvePort) => {
    const server = createServer()
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolvePort(port))
    })
  })

/** A sandbox with the repository's runnable parts linked in and the `file` snippets written. */
const sandbox = () => {
  const dir = mkdtempSync(join(tmpdir(), "tether-readme-"))
  for (const entry of [
    "bin",
    "scripts",
    "examples",
    "src",
    "node_modules",
    "package.json",
    "tsconfig.json"
  ]) {
    symlinkSync(resolve(entry), join(dir, entry))
  }
  for (const s of all)
    if (s.kind === "file" && s.argument !== undefined) writeFileSync(join(dir, s.argument), s.body)
  return dir
}

/** Logical commands of a block: `\` continuations joined, blank and comment-only lines dropped. */
const commands = (body: string): Array<string> => {
  const out: Array<string> = []
  let current = ""
  for (const line of body.split("\n")) {
    current += current.length > 0 ? `\n${line}` : line
    if (line.endsWith("\\")) continue
    if (current.trim().length > 0 && !current.trim().startsWith("#")) out.push(current)
    current = ""
  }
  return out
}

/** Pids whose environment says HOME=`home` (everything a snippet started, at any depth). */
const processesWithHome = (home: string): Array<number> => {
  const pids: Array<number> = []
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue
    try {
      if (readFileSync(`/proc/${name}/environ`, "utf8").split("\0").includes(`HOME=${home}`))
        pids.push(Number(name))
    } catch {
      // gone, or not ours to read
    }
  }
  return pids
}

const signalAll = (pids: ReadonlyArray<number>, signal: NodeJS.Signals) => {
  for (const pid of pids) {
    try {
      process.kill(pid, signal)
    } catch {
      // already gone
    }
  }
}

/** Ends every process of the sandbox: SIGTERM (servers reap their children), then SIGKILL. */
const endAll = async (home: string) => {
  signalAll(processesWithHome(home), "SIGTERM")
  for (let i = 0; i < 100 && processesWithHome(home).length > 0; i++) {
    await new Promise((r) => setTimeout(r, 50))
  }
  signalAll(processesWithHome(home), "SIGKILL")
}

const runBlock = (script: string, home: string, timeoutMs: number) =>
  new Promise<{ code: number | null; output: string }>((resolveRun) => {
    const child = spawn("bash", ["-c", script], {
      cwd: home,
      env: {
        PATH: process.env["PATH"] ?? "/usr/bin:/bin",
        HOME: home,
        TMPDIR: process.env["TMPDIR"] ?? tmpdir(),
        npm_config_cache: process.env["npm_config_cache"] ?? join(process.env["HOME"] ?? home, ".npm"),
        npm_config_offline: "true"
      },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let output = ""
    child.stdout.on("data", (c: Buffer) => (output += c.toString()))
    child.stderr.on("data", (c: Buffer) => (output += c.toString()))
    const timer = setTimeout(() => {
      output += "\n[test: timed out]"
      void endAll(home)
    }, timeoutMs)
    child.once("exit", (code) => {
      clearTimeout(timer)
      setTimeout(() => resolveRun({ code, output }), 50)
    })
  })

describe("README snippets run as written", () => {
  it("the marked blocks are found (a marker out of place fails here)", () => {
    expect(all.filter((s) => s.kind === "file").map((s) => s.argument)).toContain("mcp.json")
    expect(all.filter((s) => s.kind === "run").length).toBeGreaterThanOrEqual(4)
    expect(() => snippets("<!-- doc-test: run -->\nnot a fence\n")).toThrow(/right above a fenced block/)
  })

  for (const snippet of all.filter((s) => s.kind === "run")) {
    const title = `README.md:${snippet.line}: ${commands(snippet.body)[0]?.slice(0, 60) ?? ""}`
    it.scopedLive(
      title,
      () =>
        Effect.gen(function* () {
          const home = sandbox()
          yield* Effect.addFinalizer(() =>
            Effect.promise(async () => {
              await endAll(home)
              rmSync(home, { recursive: true, force: true })
            })
          )
          let body = snippet.body
          for (const port of snippet.options.get("port") ?? []) {
            const free = yield* Effect.promise(freePort)
            body = body.replace(new RegExp(`\\b${port}\\b`, "g"), String(free))
          }
          for (const port of snippet.options.get("llm") ?? []) {
            const llm = yield* llmServer(brain)
            body = body.replace(new RegExp(`\\b${port}\\b`, "g"), new URL(llm.url).port)
          }
          const listed = commands(body)
          const server = Number(snippet.options.get("server")?.[0] ?? 0)
          const serverPort = /--port (\d+)|PORT=(\d+)/.exec(listed[server - 1] ?? "")
          const lines = listed.flatMap((command, i) => {
            if (i + 1 !== server) return [command]
            const port = serverPort?.[1] ?? serverPort?.[2]
            if (port === undefined) throw new Error(`${title}: the server command names no port`)
            return [
              `{\n${command}\n} &`,
              `for i in $(seq 1 600); do (exec 3<>/dev/tcp/127.0.0.1/${port}) 2>/dev/null && break; sleep 0.1; done`
            ]
          })
          const script = ["set -e -o pipefail", ...lines].join("\n")
          const result = yield* Effect.promise(() => runBlock(script, home, 200_000))
          expect(result.code, result.output).toBe(0)
          const expected = [
            ...(snippet.options.get("expect") ?? []),
            ...[...snippet.body.matchAll(/# prints: (.+)$/gm)].map((m) => (m[1] ?? "").trim())
          ]
          for (const text of expected) expect(result.output).toContain(text)
        }),
      240_000
    )
  }
})
