/**
 * The `tether` CLI as a user runs it: `node bin/tether.js …` in a child process, against
 * an mcp.json with a stdio fixture and an unreachable (optional) HTTP server. Checks the
 * output, the exit codes (0 ok · 1 tool error · 2 usage/config · 3 unavailable) and that
 * expected errors never print a stack trace.
 */
import { mkdtempSync, writeFileSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { beforeAll, describe, expect, it } from "vitest"
import { FIXTURE } from "./support/fixture.js"
import { type Run, runGroup } from "./support/run.js"

/**
 * Runs the CLI in its own process group; after `timeoutMs` the whole group (the CLI and
 * any server it spawned) is killed and the run reports `code: null`.
 */
const tether = (
  args: ReadonlyArray<string>,
  options: { readonly env?: Record<string, string>; readonly timeoutMs?: number } = {}
): Promise<Run> => {
  const env: NodeJS.ProcessEnv = { ...process.env, ...options.env }
  if (options.env?.TETHER_CONFIG === undefined) delete env.TETHER_CONFIG
  return runGroup(process.execPath, ["bin/tether.js", ...args], {
    cwd: resolve("."),
    env,
    timeoutMs: options.timeoutMs ?? 60_000
  })
}

const freePort = () =>
  new Promise<number>((resolvePromise) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() => resolvePromise(typeof address === "object" && address !== null ? address.port : 0))
    })
  })

const noStackTrace = (text: string) => expect(text).not.toMatch(/^ {4}at /m)

let dir: string
let config: string

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "tether-cli-"))
  config = join(dir, "mcp.json")
  writeFileSync(
    config,
    JSON.stringify(
      {
        mcpServers: {
          fixture: { command: process.execPath, args: [FIXTURE, "--transport", "stdio"] },
          dead: { url: `http://127.0.0.1:${await freePort()}/mcp`, optional: true }
        }
      },
      null,
      2
    )
  )
})

// Each run is bounded (60 s); a test makes at most two runs in a row. `tools` and `status`
// wait up to --wait for every server, and "dead" never connects: they take the whole --wait.
describe.concurrent("tether CLI", { timeout: 150_000 }, () => {
  it("tools: a table of namespaced tools", async () => {
    const run = await tether(["tools", "--config", config, "--wait", "10000"])
    expect(run).toMatchObject({ code: 0, stderr: "" })
    expect(run.stdout).toMatch(/^TOOL +DESCRIPTION/)
    expect(run.stdout).toMatch(/^fixture__echo +Echoes its input$/m)
  })

  it("tools --json: the catalogue as JSON", async () => {
    const run = await tether(["tools", "--json", "--config", config, "--wait", "10000"])
    expect(run.code).toBe(0)
    const tools = JSON.parse(run.stdout) as ReadonlyArray<{ name: string; server: string }>
    expect(tools).toContainEqual(
      expect.objectContaining({ name: "fixture__echo", server: "fixture", inputSchema: expect.anything() })
    )
  })

  it("call: prints the tool's text, exit 0", async () => {
    const run = await tether(["call", "fixture", "echo", "--args", '{"text":"hi"}', "--config", config])
    expect(run).toMatchObject({ code: 0, stdout: "hi\n", stderr: "" })
  })

  it("call: a tool error exits 1 with the tag on stderr and no stack trace", async () => {
    const run = await tether(["call", "fixture", "fail", "--config", config])
    expect(run.code).toBe(1)
    expect(run.stderr).toContain("error (ToolFailed)")
    expect(run.stderr).toContain("this tool always fails")
    noStackTrace(run.stderr)

    const json = await tether(["call", "fixture", "fail", "--json", "--config", config])
    expect(json.code).toBe(1)
    expect(JSON.parse(json.stdout)).toMatchObject({ error: { tag: "ToolFailed", server: "fixture" } })
  })

  it("call: an unknown server exits 2", async () => {
    const run = await tether(["call", "nosuch", "echo", "--config", config])
    expect(run.code).toBe(2)
    expect(run.stderr).toContain("error (UnknownServer)")
    expect(run.stderr).toContain("nosuch")
    noStackTrace(run.stderr)
  })

  it("call: --args that are not JSON exit 2 naming --args", async () => {
    const run = await tether(["call", "fixture", "echo", "--args", "not json", "--config", config])
    expect(run.code).toBe(2)
    expect(run.stderr).toContain("--args")
    noStackTrace(run.stderr)
  })

  it("a config file that is not JSON exits 2 with file:line:col", async () => {
    const bad = join(dir, "bad.json")
    writeFileSync(bad, '{\n  "mcpServers": {\n    "a": { "command": "x" } oops\n  }\n}\n')
    const run = await tether(["call", "a", "echo", "--config", bad])
    expect(run.code).toBe(2)
    expect(run.stderr).toMatch(new RegExp(`${bad.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:3:\\d+`))
    noStackTrace(run.stderr)
  })

  it("a missing config file exits 2", async () => {
    const run = await tether(["status", "--config", join(dir, "missing.json")])
    expect(run.code).toBe(2)
    expect(run.stderr).toContain("not found")
    noStackTrace(run.stderr)
  })

  it("call on an unreachable server exits 3 within its --timeout", async () => {
    const run = await tether([
      "call",
      "dead",
      "echo",
      "--args",
      '{"text":"x"}',
      "--timeout",
      "1500",
      "-c",
      config
    ])
    expect(run.code).toBe(3)
    expect(run.stderr).toMatch(/^error \(\w+\): /)
    expect(run.stderr).toContain("hint:")
    noStackTrace(run.stderr)
  })

  it("status --json lists every server with its state", async () => {
    const run = await tether(["status", "--json", "--config", config, "--wait", "10000"])
    expect(run.code).toBe(0)
    const all = JSON.parse(run.stdout) as ReadonlyArray<{ server: string; state: string; optional: boolean }>
    expect(all.map((s) => s.server)).toEqual(["fixture", "dead"])
    expect(all[0]).toMatchObject({ state: "Ready", optional: false })
    expect(all[1]).toMatchObject({ optional: true })
    expect(all[1]!.state).toMatch(/Connecting|Reconnecting|Failed/)
  })

  it("--help exits 0 for the root and every subcommand", async () => {
    const runs = await Promise.all(
      [[], ["tools"], ["call"], ["status"]].map((sub) => tether([...sub, "--help"]))
    )
    for (const [i, run] of runs.entries()) {
      expect({ i, code: run.code }).toEqual({ i, code: 0 })
      expect(run.stdout).toContain("USAGE")
    }
    expect(runs[2]!.stdout).toContain("--args")
  })

  it("help and usage errors carry no ANSI escapes when the output is not a terminal", async () => {
    const runs = await Promise.all(
      [["--help"], ["serve", "--help"], ["agent", "--help"], ["call"]].map((args) => tether(args))
    )
    for (const run of runs) {
      expect(run.stdout).not.toContain("\u001b")
      expect(run.stderr).not.toContain("\u001b")
    }
    expect(runs.map((run) => run.code)).toEqual([0, 0, 0, 2])
    expect(runs[0]!.stdout).toMatch(/^USAGE$/m)
    expect(runs[1]!.stdout).toContain("--max-body")
    expect(runs[2]!.stdout).toContain("--session-ttl")
    expect(runs[3]!.stdout + runs[3]!.stderr).toContain("Missing argument <server>")
  })

  it("usage errors exit 2", async () => {
    const missing = await tether(["call"])
    expect(missing.code).toBe(2)
    const unknown = await tether(["frobnicate"])
    expect(unknown.code).toBe(2)
  })

  it("uses TETHER_CONFIG when --config is absent", async () => {
    const run = await tether(["call", "fixture", "echo", "--args", '{"text":"from env"}'], {
      env: { TETHER_CONFIG: config }
    })
    expect(run).toMatchObject({ code: 0, stdout: "from env\n" })
  })
})

describe.concurrent("tether CLI: failures a script can see", { timeout: 150_000 }, () => {
  const PASSWORD = "cli-s3cret-pw"
  let broken: string

  beforeAll(async () => {
    broken = join(dir, "broken.json")
    writeFileSync(
      broken,
      JSON.stringify({
        mcpServers: {
          missing: { command: "tether-no-such-command-xyz" },
          sec: { url: `http://bob:${PASSWORD}@127.0.0.1:${await freePort()}/mcp`, optional: true }
        }
      })
    )
  })

  it("call --timeout -1 is a usage error (exit 2), not an unreachable server", async () => {
    const run = await tether(["call", "fixture", "echo", "--timeout", "-1", "--config", config])
    expect(run.code).toBe(2)
    expect(run.stderr).toContain("--timeout")
    noStackTrace(run.stderr)
  })

  it("tools and status exit 3 with the SpawnFailed reason in one line when a required server cannot start", async () => {
    const [tools, status] = await Promise.all([
      tether(["tools", "--config", broken, "--wait", "3000"]),
      tether(["status", "--json", "--config", broken, "--wait", "3000"])
    ])
    for (const run of [tools, status]) {
      expect(run.code).toBe(3)
      const lines = run.stderr.trim().split("\n")
      expect(lines).toHaveLength(1)
      expect(lines[0]).toMatch(/^error \(SpawnFailed\): missing .*tether-no-such-command-xyz/)
      noStackTrace(run.stderr)
    }
    // The password of a server URL shows nowhere, not even in JSON.
    expect(status.stdout).toContain("127.0.0.1")
    for (const run of [tools, status]) expect(run.stdout + run.stderr).not.toContain(PASSWORD)
  })

  it("call on a server whose URL holds a password never prints the password", async () => {
    const [text, json] = await Promise.all([
      tether(["call", "sec", "echo", "--timeout", "3000", "--config", broken]),
      tether(["call", "sec", "echo", "--json", "--timeout", "3000", "--config", broken])
    ])
    for (const run of [text, json]) {
      expect(run.code).not.toBe(0)
      expect(run.stdout + run.stderr).toContain("127.0.0.1")
      expect(run.stdout + run.stderr).not.toContain(PASSWORD)
    }
  })
})
