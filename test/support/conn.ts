/**
 * Small helpers for connection tests: wait for a state, record transitions, find the
 * stdio child a connection spawned.
 */
import { Chunk, Duration, Effect, Fiber, Option, Ref, Stream } from "effect"
import { readFileSync } from "node:fs"
import type { ConnectionState } from "../../src/ConnectionState.js"
import type { McpConnection } from "../../src/McpConnection.js"
import { FIXTURE, fixtureProcesses } from "./fixture.js"

/** Waits (real time) until the connection's state satisfies `predicate`. */
export const waitForState = (
  conn: McpConnection,
  predicate: (s: ConnectionState) => boolean,
  timeout: Duration.DurationInput = "20 seconds"
): Effect.Effect<ConnectionState, Error> =>
  conn.changes.pipe(
    Stream.filter(predicate),
    Stream.runHead,
    Effect.flatMap(
      Option.match({ onNone: () => Effect.fail(new Error("state stream ended")), onSome: Effect.succeed })
    ),
    Effect.timeoutFail({
      duration: timeout,
      onTimeout: () => new Error(`state not reached within ${Duration.format(Duration.decode(timeout))}`)
    })
  )

export const waitForTag = (
  conn: McpConnection,
  tag: ConnectionState["_tag"],
  timeout?: Duration.DurationInput
) => waitForState(conn, (s) => s._tag === tag, timeout)

/** Records every state tag the connection goes through until `stop` is called. */
export const recordTransitions = (conn: McpConnection) =>
  Effect.gen(function* () {
    const seen = yield* Ref.make<ReadonlyArray<ConnectionState>>([])
    const fiber = yield* conn.changes.pipe(
      Stream.runForEach((s) => Ref.update(seen, (all) => [...all, s])),
      Effect.forkScoped
    )
    return {
      tags: Ref.get(seen).pipe(Effect.map((all) => collapse(all.map((s) => s._tag)))),
      states: Ref.get(seen),
      stop: Fiber.interrupt(fiber)
    }
  })

/** Drops consecutive repeats: Ready, Reconnecting, Reconnecting, Ready → Ready, Reconnecting, Ready. */
export const collapse = (tags: ReadonlyArray<string>): ReadonlyArray<string> =>
  Chunk.toReadonlyArray(Chunk.dedupeAdjacent(Chunk.fromIterable(tags)))

/** Fixture server processes that are direct children of this test process. */
export const myFixtureChildren = (): ReadonlyArray<number> =>
  fixtureProcesses().filter((pid) => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
      return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === process.pid
    } catch {
      return false
    }
  })

/** The single stdio fixture child of this process (fails if there is not exactly one). */
export const stdioChild = Effect.suspend(() => {
  const pids = myFixtureChildren().filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").includes("stdio")
    } catch {
      return false
    }
  })
  return pids.length === 1
    ? Effect.succeed(pids[0]!)
    : Effect.fail(new Error(`expected one stdio child of ${FIXTURE}, found ${pids.length}`))
})

export const signal = (pid: number, sig: NodeJS.Signals) =>
  Effect.sync(() => {
    try {
      process.kill(pid, sig)
    } catch {
      // ESRCH: already gone.
    }
  })

/** Real milliseconds since `start` (performance clock, unaffected by TestClock). */
export const elapsedSince = (start: number) => performance.now() - start
