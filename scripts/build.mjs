/**
 * `npm run build` (also `prepack`): the package as it ships.
 *
 * - `dist/**`: the library, compiled by tsc from `src/` (ES modules, `.d.ts`, source maps), so
 *   the declarations are exactly what the compiler checked; new modules under `src/` are
 *   picked up without edits (`tsconfig.build.json` includes the whole folder).
 * - `dist/bin/tether.mjs`: the `tether` CLI as one esbuild bundle that `bin/tether.js` runs
 *   with plain Node: no TypeScript compile at start, one file to parse instead of hundreds.
 * - `dist/studio-page.js`, `dist/bin/studio-page.js`: the Tether Studio page's script (a
 *   browser bundle), next to the library module and the CLI bundle that serve it.
 *
 * `node scripts/build.mjs --cli` builds only the CLI bundle (the test setup and `bin/tether.js`
 * in a clone do that). Plain JavaScript on purpose: it runs before anything is compiled and
 * without tsx.
 */
import { execFileSync } from "node:child_process"
import { renameSync, rmSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")

/** Where `bin/tether.js` looks for the CLI. */
export const CLI_BUNDLE = join(root, "dist", "bin", "tether.mjs")

/** The studio page's script, next to the module that serves it (`Studio.ts` reads it). */
const STUDIO_PAGE = "studio-page.js"

/** Bundles the studio page (a browser script) to `outfile`. */
export const buildStudioPage = async (outfile) => {
  const { build } = await import("esbuild")
  const temporary = `${outfile}.${process.pid}.tmp`
  await build({
    absWorkingDir: root,
    entryPoints: ["src/internal/studioPage/main.ts"],
    bundle: true,
    platform: "browser",
    format: "iife",
    target: "es2022",
    minify: true,
    legalComments: "none",
    outfile: temporary,
    logLevel: "warning"
  })
  renameSync(temporary, outfile)
}

/**
 * Bundles `src/cli/main.ts` with every dependency into {@link CLI_BUNDLE}. Written to a
 * temporary name and renamed, so a `tether` starting meanwhile never reads half a file.
 */
export const buildCli = async () => {
  const { build } = await import("esbuild")
  await buildStudioPage(join(dirname(CLI_BUNDLE), STUDIO_PAGE))
  const temporary = `${CLI_BUNDLE}.${process.pid}.tmp`
  await build({
    absWorkingDir: root,
    entryPoints: ["src/cli/main.ts"],
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    // Parsing is most of a cold start: fewer bytes start faster.
    minify: true,
    // Bundled CommonJS dependencies (ws, the MCP SDK's ajv…) call require() for Node built-ins.
    banner: {
      js: 'import { createRequire as __tetherRequire } from "node:module"; const require = __tetherRequire(import.meta.url);'
    },
    legalComments: "none",
    // Only the studio's fallback (no prebuilt page: runs from src/) imports esbuild.
    external: ["esbuild"],
    outfile: temporary,
    logLevel: "warning"
  })
  renameSync(temporary, CLI_BUNDLE)
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  if (!process.argv.includes("--cli")) {
    rmSync(join(root, "dist"), { recursive: true, force: true })
    const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc")
    execFileSync(process.execPath, [tsc, "-p", join(root, "tsconfig.build.json")], { stdio: "inherit" })
    await buildStudioPage(join(root, "dist", STUDIO_PAGE))
  }
  await buildCli()
}
