/**
 * Bundles the fixture server once per run, so each spawn of it costs a plain `node`
 * start instead of a TypeScript compile (tests restart it many times), and the `tether`
 * CLI bundle that `bin/tether.js` runs (as `npm run build:cli` does).
 */
import { build } from "esbuild"
import { execFileSync } from "node:child_process"

export default async function setup(): Promise<void> {
  await build({
    entryPoints: ["scripts/fixture-server.ts"],
    bundle: true,
    platform: "node",
    format: "esm",
    packages: "external",
    outfile: ".fixtures/server.mjs",
    logLevel: "warning"
  })
  execFileSync(process.execPath, ["scripts/build.mjs", "--cli"], { stdio: "inherit" })
}
