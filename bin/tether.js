#!/usr/bin/env node
// The `tether` CLI is one bundle (dist/bin/tether.mjs, made by `npm run build`) that plain Node
// runs: no TypeScript at start. In a clone of the repository the bundle is (re)built here
// when it is missing or older than src/ (or node_modules), so `node bin/tether.js` never runs
// stale code.
import { existsSync, readdirSync, statSync } from "node:fs"
import { fileURLToPath } from "node:url"

const bundle = fileURLToPath(new URL("../dist/bin/tether.mjs", import.meta.url))
const src = fileURLToPath(new URL("../src/", import.meta.url))
const builder = new URL("../scripts/build.mjs", import.meta.url)

/** The newest modification time under `dir` (a few dozen stat calls: about a millisecond). */
const newest = (dir) =>
  readdirSync(dir, { withFileTypes: true }).reduce((max, entry) => {
    const path = `${dir}${entry.name}`
    return Math.max(max, entry.isDirectory() ? newest(`${path}/`) : statSync(path).mtimeMs)
  }, 0)

/** When npm last changed node_modules (a new dependency version is a new bundle too). */
const installed = () => {
  const lock = fileURLToPath(new URL("../node_modules/.package-lock.json", import.meta.url))
  return existsSync(lock) ? statSync(lock).mtimeMs : 0
}

if (existsSync(src) && existsSync(fileURLToPath(builder))) {
  if (!existsSync(bundle) || statSync(bundle).mtimeMs < Math.max(newest(src), installed())) {
    process.stderr.write("tether: building dist/bin/tether.mjs from src/ (npm run build:cli)…\n")
    const { buildCli } = await import(builder.href)
    await buildCli()
  }
} else if (!existsSync(bundle)) {
  process.stderr.write("tether: dist/bin/tether.mjs is missing; this package was not built (npm run build)\n")
  process.exit(2)
}
await import(new URL("../dist/bin/tether.mjs", import.meta.url).href)
