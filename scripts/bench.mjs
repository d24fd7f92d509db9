// `npm run bench`: bundles scripts/bench/main.ts (with Tether's src/) into plain JavaScript,
// then runs it with node. Both sides then run compiled code, as users run the package: under
// tsx every closure Tether creates goes through esbuild's `__name()` wrapper (keepNames),
// which cost about 1 µs per call in a microbenchmark while the raw SDK, already compiled in
// node_modules, paid nothing. Dependencies stay external: both sides load the same copies.
import { build } from "esbuild"
import { spawn } from "node:child_process"
import { mkdirSync } from "node:fs"
import { constants } from "node:os"

mkdirSync(".bench", { recursive: true })
await build({
  entryPoints: ["scripts/bench/main.ts"],
  outfile: ".bench/main.mjs",
  bundle: true,
  platform: "node",
  format: "esm",
  packages: "external",
  sourcemap: "inline",
  logLevel: "warning"
})
const child = spawn(process.execPath, ["--enable-source-maps", ".bench/main.mjs", ...process.argv.slice(2)], {
  stdio: "inherit"
})
// Ctrl-C reaches the child through the terminal's process group; it cleans up its own children.
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => child.kill(signal))
child.on("exit", (code, signal) =>
  process.exit(code ?? (signal === null ? 1 : 128 + (constants.signals[signal] ?? 0)))
)
