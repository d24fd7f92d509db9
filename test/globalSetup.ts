/**
 * Bundles the fixture server once per run, so each spawn of it costs a plain `node`
 * start instead of a TypeScript compile (tests restart it many times).
 */
import { build } from "esbuild"

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
}
