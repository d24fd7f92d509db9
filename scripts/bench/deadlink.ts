/**
 * Part 3 — dead-link detection: the server is SIGSTOPped (a half-open link: the socket or
 * pipe stays open, nothing answers). We time until Tether's state leaves Ready and compare
 * with the bound `heartbeat.interval + heartbeat.timeout × misses + 100 ms`. Right after the
 * SIGSTOP, each side puts one non-idempotent `count` call in flight: Tether's should settle
 * (OutcomeUnknown) when the link is declared dead; the raw SDK's waits for its default 60 s
 * request timeout — time-boxed here at 5 s.
 *
 * Transports run in parallel (the measurement is timer-bound, not CPU-bound).
 */
import { Deferred, Effect, Either, Option, Stream } from "effect"
import type { ConnectionState } from "../../src/ConnectionState.js"
import {
  errorText,
  type FixtureServer,
  fmt,
  type Kind,
  median,
  now,
  openRaw,
  openTether,
  type PartResult,
  printTable,
  type RawHandle,
  type RunOptions,
  say,
  sleep,
  startServer,
  type TableSpec,
  type Target,
  type TetherHandle,
  tetherStdioChildren,
  tetherSpec,
  timeBox
} from "./common.js"

const RAW_BOX_MS = 5_000

interface Heartbeat {
  readonly interval: number
  readonly timeout: number
  readonly misses: number
}

const DEFAULT_POLICY: Heartbeat = { interval: 10_000, timeout: 3_000, misses: 2 }
const FAST_POLICY: Heartbeat = { interval: 1_000, timeout: 500, misses: 2 }

const bound = (h: Heartbeat) => h.interval + h.timeout * h.misses + 100

const label: Record<Kind, string> = { stdio: "stdio", http: "Streamable HTTP", ws: "WebSocket", sse: "SSE" }

interface Trial {
  readonly detectMs: number | undefined
  readonly leftTo: string | undefined
  readonly reason: string | undefined
  readonly tetherInFlight: { settledMs: number | undefined; outcome: string }
  readonly rawInFlight: { settledMs: number | undefined; outcome: string }
}

let idCounter = 0

const trial = async (kind: Kind, heartbeat: Heartbeat): Promise<Trial> => {
  let server: FixtureServer | undefined
  let tether: TetherHandle | undefined
  let raw: RawHandle | undefined
  const stopped: Array<number> = []
  try {
    if (kind !== "stdio") server = await startServer(kind)
    raw = await openRaw(kind, server?.port)
    tether = await openTether({
      name: `deadlink-${kind}`,
      server: tetherSpec(kind, server?.port),
      resilience: { heartbeat }
    })
    const conn = tether.conn
    await Effect.runPromise(conn.awaitReady({ timeout: 15_000 }))
    const limit = bound(heartbeat)
    // Subscribe to state changes before the fault (the stream starts with the current state).
    const subscribed = await Effect.runPromise(Deferred.make<void>())
    const left = Effect.runPromise(
      conn.changes.pipe(
        Stream.tap(() => Deferred.succeed(subscribed, undefined)),
        Stream.filter((s: ConnectionState) => s._tag !== "Ready"),
        Stream.runHead,
        Effect.map((s) => ({ at: now(), state: Option.getOrUndefined(s) })),
        Effect.timeout(limit + 10_000),
        Effect.either
      )
    )
    await Effect.runPromise(Deferred.await(subscribed))
    // Fresh traffic on both sides just before the fault: the heartbeat's idle clock starts at ~0.
    await Effect.runPromise(conn.callTool("echo", { text: "x" }))
    await raw.client.callTool({ name: "echo", arguments: { text: "x" } })

    const pids = kind === "stdio" ? [...tetherStdioChildren(), raw.pid()!] : [server!.pid()!]
    if (kind === "stdio" && pids.length !== 2)
      throw new Error(`expected 2 stdio children, found ${pids.length}`)
    const stopAt = now()
    for (const pid of pids) {
      process.kill(pid, "SIGSTOP")
      stopped.push(pid)
    }
    idCounter += 1
    const tetherCall = Effect.runPromise(
      conn
        .callTool("count", { id: `deadlink-t-${idCounter}` }, { timeout: limit + 20_000 })
        .pipe(Effect.either)
    ).then((e) => {
      if (Either.isLeft(e)) throw e.left
      return e.right
    })
    const rawCall = raw.client.callTool({ name: "count", arguments: { id: `deadlink-r-${idCounter}` } })
    const [l, t, r] = await Promise.all([
      timeBox(left, limit + 5_000),
      timeBox(tetherCall, limit + 3_000),
      timeBox(rawCall, RAW_BOX_MS)
    ])
    const leftValue = l.ok && l.value !== undefined && Either.isRight(l.value) ? l.value.right : undefined
    const state = leftValue?.state
    const stats = await Effect.runPromise(conn.stats)
    const describe = (b: typeof t | typeof r, box: number) =>
      !b.settled
        ? { settledMs: undefined, outcome: `pending after ${box / 1000} s` }
        : { settledMs: b.ms, outcome: b.ok ? "ok" : errorText(b.error).slice(0, 80) }
    return {
      detectMs: leftValue === undefined ? undefined : leftValue.at - stopAt,
      leftTo: state?._tag,
      reason:
        state !== undefined && "lastError" in state
          ? state.lastError._tag
          : stats.lastError !== undefined
            ? stats.lastError._tag
            : undefined,
      tetherInFlight: describe(t, limit + 3_000),
      rawInFlight: describe(r, RAW_BOX_MS)
    }
  } finally {
    for (const pid of stopped) {
      try {
        process.kill(pid, "SIGCONT")
      } catch {
        // gone (Tether SIGKILLs a dead stdio child)
      }
    }
    await tether?.close()
    await raw?.close()
    await server?.kill()
  }
}

export const run = async (options: RunOptions): Promise<PartResult> => {
  const kinds: Array<Kind> = options.quick ? ["stdio", "http", "ws"] : ["stdio", "http", "ws", "sse"]
  const plans: Array<{ name: string; heartbeat: Heartbeat; trials: number }> = options.quick
    ? [{ name: "fast", heartbeat: FAST_POLICY, trials: 1 }]
    : [
        { name: "default", heartbeat: DEFAULT_POLICY, trials: 2 },
        { name: "fast", heartbeat: FAST_POLICY, trials: 3 }
      ]
  const tables: Array<TableSpec> = []
  const rows: Array<Array<string>> = []
  const targets: Array<Target> = []
  const data: Array<unknown> = []
  for (const plan of plans) {
    const limit = bound(plan.heartbeat)
    say(
      `  policy "${plan.name}" (interval ${plan.heartbeat.interval} ms, timeout ${plan.heartbeat.timeout} ms, misses ${plan.heartbeat.misses}; bound ${limit} ms): ${plan.trials} trial(s), transports in parallel…`
    )
    const perKind = new Map<Kind, Array<Trial | { error: string }>>()
    for (let i = 0; i < plan.trials; i++) {
      await Promise.all(
        kinds.map(async (kind) => {
          const list = perKind.get(kind) ?? []
          perKind.set(kind, list)
          try {
            list.push(await trial(kind, plan.heartbeat))
          } catch (e) {
            list.push({ error: errorText(e) })
          }
        })
      )
      await sleep(50)
    }
    for (const kind of kinds) {
      const list = perKind.get(kind) ?? []
      const ok = list.filter((t): t is Trial => !("error" in t))
      const errors = list.filter((t): t is { error: string } => "error" in t)
      const detect = ok.flatMap((t) => (t.detectMs === undefined ? [] : [t.detectMs]))
      const worst = detect.length > 0 ? Math.max(...detect) : Number.NaN
      const allDetected = detect.length === list.length && list.length > 0
      const tIn = ok.map((t) => t.tetherInFlight)
      const rIn = ok.map((t) => t.rawInFlight)
      const tSettled = tIn.flatMap((x) => (x.settledMs === undefined ? [] : [x.settledMs]))
      const rawPending = rIn.filter((x) => x.settledMs === undefined).length
      data.push({ policy: plan.name, heartbeat: plan.heartbeat, boundMs: limit, kind, trials: list })
      rows.push([
        label[kind],
        plan.name,
        String(limit),
        `${detect.length}/${list.length}`,
        fmt(median(detect), 0),
        fmt(worst, 0),
        [...new Set(ok.map((t) => `${t.leftTo ?? "?"}/${t.reason ?? "?"}`))].join(", "),
        tSettled.length > 0
          ? `${[...new Set(tIn.map((x) => x.outcome.split(":")[0]))].join(",")} at ${fmt(median(tSettled), 0)} ms`
          : (tIn[0]?.outcome ?? "–"),
        rawPending === rIn.length && rIn.length > 0
          ? `>${RAW_BOX_MS / 1000} s (SDK default 60 s)`
          : rIn.map((x) => `${x.outcome} at ${fmt(x.settledMs, 0)} ms`).join("; ")
      ])
      targets.push({
        part: "3",
        name: `${label[kind]} dead link detected within bound (${plan.name} policy)`,
        target: `≤ ${limit} ms`,
        value: `worst ${fmt(worst, 0)} ms over ${detect.length}/${list.length} trials`,
        met: allDetected && worst <= limit,
        ...(errors.length > 0 ? { note: errors.map((e) => e.error).join("; ") } : {})
      })
    }
  }
  printTable(
    tables,
    "Part 3 — dead-link detection (server SIGSTOPped; ms from SIGSTOP)",
    [
      "transport",
      "policy",
      "bound ms",
      "detected",
      "median ms",
      "worst ms",
      "left Ready to/why",
      "Tether call in flight",
      "raw SDK call in flight"
    ],
    rows
  )
  const notes = [
    `Bound = heartbeat.interval + heartbeat.timeout × misses + 100 ms. Policies: default = ${JSON.stringify(DEFAULT_POLICY)}${options.quick ? " (not run with --quick)" : ""}, fast = ${JSON.stringify(FAST_POLICY)}.`,
    "An echo call on both sides just before the SIGSTOP makes the link's idle time ~0, so detection is expected near the bound.",
    "In-flight calls are the non-idempotent `count` tool: Tether must not retry it, so it settles with OutcomeUnknown when the link is declared dead; the raw SDK call uses the SDK default timeout (60 s) and is time-boxed at 5 s here.",
    "stdio: both the Tether child and the raw client's child are SIGSTOPped."
  ]
  for (const n of notes) say(`  note: ${n}`)
  return { data, targets, tables, notes }
}
