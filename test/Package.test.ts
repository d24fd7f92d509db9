/**
 * The package as a user gets it: `npm pack` of a copy of the repository (as a clean clone
 * has it: no dist/, so `prepack` builds), the tarball installed in a fresh consumer project
 * (from the npm cache where it can: `--prefer-offline`), and there:
 *
 * 1. a plain `.mjs` starts a `Tether` against the fixture server (stdio) and calls a tool;
 * 2. a `.cjs` `require`s it (Node ≥ 20.19 loads ES modules from `require`);
 * 3. a strict TypeScript consumer type-checks with `moduleResolution` NodeNext and Bundler
 *    (`skipLibCheck` off: the package's own declarations are checked too);
 * 4. `npx tether tools --config mcp.json` lists the fixture's tools.
 *
 * One pack and one install serve every check; the temporary directory goes at the end.
 */
import { cpSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from "node:fs"
import { rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join, relative, resolve, sep } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { FIXTURE } from "./support/fixture.js"
import { type Run, runGroup } from "./support/run.js"

/**
 * Runs a command in its own process group; after `timeoutMs` the group (the command and
 * anything it started) is killed and the run reports `code: null`.
 */
const run = (command: string, args: ReadonlyArray<string>, cwd: string, timeoutMs: number): Promise<Run> => {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_UPDATE_NOTIFIER: "1" }
  delete env.TETHER_CONFIG
  return runGroup(command, args, { cwd, env, timeoutMs })
}

const ok = (what: string, result: Run): Run => {
  if (result.code !== 0) {
    throw new Error(
      `${what} exited ${result.code}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`
    )
  }
  return result
}

const root = resolve(".")
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
  readonly devDependencies: Record<string, string>
}
const tsc = join(root, "node_modules", "typescript", "bin", "tsc")

/** What a clean clone does not have (built or installed locally). */
const notInAClone = new Set(["node_modules", ".git", "dist", ".fixtures", ".bench", "coverage", "scratch"])

let work: string
let consumer: string
let packed: ReadonlyArray<string>

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "tether-package-"))
  const repo = join(work, "repo")
  // A copy, so `prepack` (which rebuilds dist/) never touches the bundle other tests run.
  cpSync(root, repo, {
    recursive: true,
    filter: (source) => {
      const path = relative(root, source)
      return path.includes(sep) || !notInAClone.has(path)
    }
  })
  symlinkSync(join(root, "node_modules"), join(repo, "node_modules"), "dir")
  const pack = ok("npm pack", await run("npm", ["pack", "--json", "--pack-destination", work], repo, 600_000))
  const report = JSON.parse(pack.stdout.slice(pack.stdout.indexOf("[\n"))) as ReadonlyArray<{
    readonly filename: string
    readonly files: ReadonlyArray<{ readonly path: string }>
  }>
  packed = report[0]!.files.map((f) => f.path)
  const tarball = join(work, report[0]!.filename)

  consumer = join(work, "consumer")
  mkdirSync(consumer)
  writeFileSync(join(consumer, "package.json"), JSON.stringify({ name: "consumer", private: true }))
  ok(
    "npm install",
    await run(
      "npm",
      [
        "install",
        "--prefer-offline",
        "--no-audit",
        "--no-fund",
        tarball,
        `effect@${pkg.devDependencies.effect}`,
        `@effect/platform@${pkg.devDependencies["@effect/platform"]}`
      ],
      consumer,
      300_000
    )
  )
  writeFileSync(
    join(consumer, "mcp.json"),
    JSON.stringify({
      mcpServers: { fixture: { command: process.execPath, args: [FIXTURE, "--transport", "stdio"] } }
    })
  )
}, 900_000)

// The consumer's node_modules is large: removing it may take a while on a busy machine.
afterAll(async () => {
  if (work !== undefined) await rm(work, { recursive: true, force: true })
}, 300_000)

describe("the npm package", { timeout: 180_000 }, () => {
  it("ships dist/, bin/, README, LICENSE, CHANGELOG and package.json only", () => {
    const top = new Set(packed.map((path) => path.split("/")[0]))
    expect([...top].sort()).toEqual(["CHANGELOG.md", "LICENSE", "README.md", "bin", "dist", "package.json"])
    expect(packed).toContain("dist/index.js")
    expect(packed).toContain("dist/index.d.ts")
    expect(packed).toContain("dist/index.js.map")
    expect(packed).toContain("dist/bin/tether.mjs")
    expect(
      packed.filter((path) => /test|bench|\.ci|scripts|\.ts$/.test(path) && !path.endsWith(".d.ts"))
    ).toEqual([])
  })

  it("a plain .mjs starts Tether against the fixture server and calls a tool", async () => {
    writeFileSync(
      join(consumer, "start.mjs"),
      [
        'import { Tether } from "tether-mcp"',
        'const tether = await Tether.start({ config: "./mcp.json" })',
        "try {",
        '  const result = await tether.callTool("fixture", "echo", { text: "from the tarball" })',
        "  console.log(JSON.stringify(result.content))",
        "} finally {",
        "  await tether.close()",
        "}"
      ].join("\n")
    )
    const result = ok("node start.mjs", await run(process.execPath, ["start.mjs"], consumer, 60_000))
    expect(JSON.parse(result.stdout)).toEqual([{ type: "text", text: "from the tarball" }])
  })

  it("require() from a .cjs loads the library; internal modules stay closed", async () => {
    writeFileSync(
      join(consumer, "require.cjs"),
      [
        'const { Errors, McpConnection, McpPool, Tether } = require("tether-mcp")',
        'const { layer } = require("tether-mcp/McpPool")',
        "console.log([typeof Tether.start, typeof McpConnection.make, typeof McpPool.layer, typeof layer, typeof Errors.ToolFailed].join())",
        "try {",
        '  require("tether-mcp/internal/connection")',
        '  console.log("internal: open")',
        "} catch (e) {",
        "  console.log(`internal: ${e.code}`)",
        "}"
      ].join("\n")
    )
    const result = ok("node require.cjs", await run(process.execPath, ["require.cjs"], consumer, 60_000))
    expect(result.stdout.trim().split("\n")).toEqual([
      "function,function,function,function,function",
      "internal: ERR_PACKAGE_PATH_NOT_EXPORTED"
    ])
  })

  it("a strict TypeScript consumer type-checks with NodeNext and with Bundler resolution", async () => {
    writeFileSync(
      join(consumer, "consumer.ts"),
      [
        'import { Effect, Layer } from "effect"',
        'import { Errors, McpConnection, McpPool, Tether } from "tether-mcp"',
        "",
        "export const echo: Effect.Effect<unknown, Errors.TetherError> = Effect.scoped(",
        "  Effect.gen(function* () {",
        "    const conn = yield* McpConnection.make({",
        '      name: "fixture",',
        '      server: { type: "stdio", command: "node", args: ["server.mjs"] }',
        "    })",
        '    return yield* conn.callTool("echo", { text: "hi" })',
        "  })",
        ').pipe(Effect.catchTag("ToolFailed", (e: Errors.ToolFailed) => Effect.succeed(e.result)))',
        "",
        "export const pool: Layer.Layer<McpPool.McpPool, Errors.InvalidConfig> = McpPool.layer({ servers: [] })",
        "",
        'export const started: Promise<Tether.Tether> = Tether.start({ config: "./mcp.json" })',
        ""
      ].join("\n")
    )
    const base = {
      strict: true,
      exactOptionalPropertyTypes: true,
      noUncheckedIndexedAccess: true,
      skipLibCheck: false,
      noEmit: true,
      // `lib` stays the default for the target (it includes the DOM, which the declarations of
      // @effect/platform and the MCP SDK refer to: Transferable, HeadersInit).
      target: "ES2022"
    }
    writeFileSync(
      join(consumer, "tsconfig.nodenext.json"),
      JSON.stringify({
        compilerOptions: { ...base, module: "NodeNext", moduleResolution: "NodeNext" },
        files: ["consumer.ts"]
      })
    )
    writeFileSync(
      join(consumer, "tsconfig.bundler.json"),
      JSON.stringify({
        compilerOptions: { ...base, module: "ESNext", moduleResolution: "Bundler" },
        files: ["consumer.ts"]
      })
    )
    const [nodeNext, bundler] = await Promise.all([
      run(process.execPath, [tsc, "-p", "tsconfig.nodenext.json"], consumer, 170_000),
      run(process.execPath, [tsc, "-p", "tsconfig.bundler.json"], consumer, 170_000)
    ])
    expect({ code: nodeNext.code, out: nodeNext.stdout }).toEqual({ code: 0, out: "" })
    expect({ code: bundler.code, out: bundler.stdout }).toEqual({ code: 0, out: "" })
  })

  it("npx tether tools --config mcp.json lists the fixture's tools", async () => {
    const result = ok(
      "npx tether tools",
      await run("npx", ["--no-install", "tether", "tools", "--config", "mcp.json"], consumer, 60_000)
    )
    expect(result.stdout).toMatch(/^fixture__echo +Echoes its input$/m)
    expect(result.stderr).toBe("")
  })
})
