/**
 * A client process for the bench (bundled to `.bench/worker.mjs` by `main.ts`): runs one
 * side of the soak (part 4) or of the scale test (part 5), or the pool (part 6), writes its result as JSON to
 * argv[3] and prints `RESULT` (a large result on stdout could be cut short by the exit).
 * Protocol: argv[2] is the JSON params; the soak prints `READY` and waits for `GO` on stdin.
 * It exits when its parent goes away (stdin closes).
 */
import { writeFileSync } from "node:fs"
import { killAllChildren } from "./common.js"
import * as pool from "./pool.js"
import * as scale from "./scale.js"
import * as soak from "./soak.js"

const params = JSON.parse(process.argv[2] ?? "{}") as
  soak.SoakWorkerParams | scale.ScaleWorkerParams | pool.PoolWorkerParams
const resultFile = process.argv[3] ?? ""

let stdinBuffer = ""
let goResolve: () => void = () => {}
const go = new Promise<void>((r) => {
  goResolve = r
})
process.stdin.on("data", (c: Buffer) => {
  stdinBuffer += c.toString()
  if (stdinBuffer.includes("GO")) goResolve()
})
// The parent died or closed our stdin: do not linger.
process.stdin.on("end", () => {
  killAllChildren()
  process.exit(2)
})
process.on("exit", () => killAllChildren())

const main = async () => {
  const result =
    params.role === "soak"
      ? await soak.worker(params, async () => {
          process.stdout.write("READY\n")
          await go
        })
      : params.role === "pool"
        ? await pool.worker(params)
        : await scale.worker(params)
  writeFileSync(resultFile, JSON.stringify(result))
  process.stdout.write("RESULT\n")
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`worker failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`)
    process.exit(1)
  }
)
