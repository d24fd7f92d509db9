/**
 * Part 2 — recovery: the server is killed (SIGKILL) and started again on the same port
 * after 1 s; we time from the restarted server printing READY to the first successful
 * `echo` call. For stdio the restart is Tether's own respawn: timed from the kill.
 *
 * Tether: N cycles per transport on one connection (default policy), a probe loop of calls
 * (3 s deadline each) started right after the kill. Raw SDK: a fresh `Client` per cycle, the
 * same kill/restart, a probe loop of calls time-boxed at 5 s after READY: does it ever work
 * again? (It does not: stdio never respawns, HTTP answers 404 for the old session, the
 * WebSocket stays closed.)
 */
import * as Resilience from "../../src/Resilience.js"
import { Effect, Either } from "effect"
import {
  echoText,
  errorText,
  type FixtureServer,
  fmt,
  type Kind,
  median,
  now,
  openRaw,
  openTether,
  type PartResult,
  percentile,
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

const DOWN_MS = 1_000
const RAW_BOX_MS = 5_000
const PROBE_CAP_MS = 20_000

const label: Record<Kind, string> = { stdio: "stdio", http: "Streamable HTTP", ws: "WebSocket", sse: "SSE" }

interface Cycle {
  readonly recoveryMs: number | undefined
  /** Fixture spawn → READY (network kinds): the restart's own cost, not Tether's. */
  readonly serverStartMs: number | undefined
  readonly probeCalls: number
  readonly lastError: string | undefined
}

const killStdioChild = (): number => {
  const pids = tetherStdioChildren()
  if (pids.length !== 1) throw new Error(`expected one Tether stdio child, found ${pids.length}`)
  process.kill(pids[0]!, "SIGKILL")
  return pids[0]!
}

/** Calls until one succeeds; returns performance.now() of the first success. */
const probe = async (
  call: (remainingMs: number) => Promise<{ ok: boolean; error?: unknown }>,
  deadline: () => number
): Promise<{ okAt: number | undefined; calls: number; lastError: string | undefined }> => {
  let calls = 0
  let lastError: string | undefined
  while (now() < deadline() && calls < 100_000) {
    calls += 1
    const r = await call(deadline() - now())
    if (r.ok) return { okAt: now(), calls, lastError }
    lastError = errorText(r.error)
    await sleep(10)
  }
  return { okAt: undefined, calls, lastError }
}

/**
 * Both modes use the default policy. "isolated": every kill comes after the connection
 * has been Ready for longer than `reconnect.resetAfter` (5 s), so each outage starts a
 * fresh reconnect schedule, as for a server that stays up for a while. "back-to-back": the
 * next kill as soon as a call succeeded — Tether sees a flapping server: once the outages
 * add up to `reconnect.fastFor` (10 s) its backoff grows to `maxDelay` (2 s).
 */
export type Mode = "isolated" | "back-to-back"

const RESET_AFTER_MS = Resilience.defaultPolicy.reconnect.resetAfter
const RECOVERY_TARGET_MS = 500
const QUICK_RESET_AFTER_MS = 1_000

const tetherCycles = async (
  kind: Kind,
  cycles: number,
  capMs: number,
  mode: Mode,
  resetAfterMs: number = RESET_AFTER_MS
) => {
  const started = now()
  let server: FixtureServer | undefined
  let tether: TetherHandle | undefined
  const out: Array<Cycle> = []
  try {
    if (kind !== "stdio") server = await startServer(kind)
    tether = await openTether({
      name: `recovery-${kind}`,
      server: tetherSpec(kind, server?.port),
      ...(resetAfterMs !== RESET_AFTER_MS ? { resilience: { reconnect: { resetAfter: resetAfterMs } } } : {})
    })
    const conn = tether.conn
    const call = (timeoutMs: number) =>
      Effect.runPromise(
        conn
          .callTool("echo", { text: "up?" }, { timeout: Math.max(1, Math.min(3_000, timeoutMs)) })
          .pipe(Effect.either)
      ).then((e) =>
        Either.isRight(e) && echoText(e.right) === "up?" ? { ok: true } : { ok: false, error: e }
      )
    for (let i = 0; i < cycles && now() - started < capMs; i++) {
      const ready = await Effect.runPromise(conn.awaitReady({ timeout: 15_000 }).pipe(Effect.either))
      if (Either.isLeft(ready)) throw new Error(`not ready before cycle ${i + 1}: ${errorText(ready.left)}`)
      const warm = await call(5_000)
      if (!warm.ok) throw new Error(`call failed before cycle ${i + 1}: ${errorText(warm.error)}`)
      if (mode === "isolated") {
        const state = await Effect.runPromise(conn.state)
        if (state._tag === "Ready") await sleep(state.since + resetAfterMs + 100 - Date.now())
      }
      const killAt = now()
      if (kind === "stdio") killStdioChild()
      else await server!.kill()
      let readyAt: number | undefined
      const probing = probe(call, () => killAt + PROBE_CAP_MS)
      let serverStartMs: number | undefined
      if (server !== undefined) {
        await sleep(killAt + DOWN_MS - now())
        const spawnAt = now()
        readyAt = await server.start()
        serverStartMs = readyAt - spawnAt
      }
      const p = await probing
      out.push({
        recoveryMs: p.okAt === undefined ? undefined : p.okAt - (readyAt ?? killAt),
        serverStartMs,
        probeCalls: p.calls,
        lastError: p.lastError
      })
    }
    const stats = await Effect.runPromise(conn.stats)
    return { cycles: out, reconnects: stats.reconnects, connectAttempts: stats.connectAttempts }
  } finally {
    await tether?.close()
    await server?.kill()
  }
}

/** One raw cycle: a fresh client, kill, restart after 1 s, probe for 5 s after READY. */
const rawCycle = async (kind: Kind) => {
  let server: FixtureServer | undefined
  let raw: RawHandle | undefined
  try {
    if (kind !== "stdio") server = await startServer(kind)
    raw = await openRaw(kind, server?.port)
    const client = raw.client
    const warm = await timeBox(client.callTool({ name: "echo", arguments: { text: "up?" } }), 5_000)
    if (!warm.ok) throw new Error(`raw ${kind}: first call failed: ${errorText(warm.error)}`)
    const killAt = now()
    if (kind === "stdio") {
      const pid = raw.pid()
      if (pid === undefined) throw new Error("raw stdio: no child pid")
      process.kill(pid, "SIGKILL")
    } else {
      await server!.kill()
    }
    let deadline = killAt + DOWN_MS + 15_000 + RAW_BOX_MS
    let readyAt: number | undefined
    if (kind === "stdio") deadline = killAt + RAW_BOX_MS
    const probing = probe(
      async (remaining) => {
        const r = await timeBox(client.callTool({ name: "echo", arguments: { text: "up?" } }), remaining)
        return r.ok && echoText(r.value) === "up?"
          ? { ok: true }
          : { ok: false, error: r.settled ? r.error : new Error("no answer (time box)") }
      },
      () => deadline
    )
    if (server !== undefined) {
      await sleep(killAt + DOWN_MS - now())
      readyAt = await server.start()
      deadline = readyAt + RAW_BOX_MS
    }
    const p = await probing
    return {
      recovered: p.okAt !== undefined,
      recoveryMs: p.okAt === undefined ? undefined : p.okAt - (readyAt ?? killAt),
      probeCalls: p.calls,
      lastError: p.lastError
    }
  } finally {
    await raw?.close()
    await server?.kill()
  }
}

const BACK_TO_BACK = 8
const STAGGER_MS = 1_700

export const run = async (options: RunOptions): Promise<PartResult> => {
  const kinds: Array<Kind> = options.quick ? ["stdio", "http", "ws"] : ["stdio", "http", "ws", "sse"]
  const cycles = options.quick ? 3 : 20
  const rawCycles = options.quick ? 1 : 3
  const tables: Array<TableSpec> = []
  const data: Record<string, unknown> = {}
  const rows: Array<Array<string>> = []
  const targets: Array<Target> = []

  const rawResults = new Map<Kind, Array<Awaited<ReturnType<typeof rawCycle>> | { error: string }>>()
  const rawPhase = () =>
    Promise.all(
      kinds.map(async (kind) => {
        const list: Array<Awaited<ReturnType<typeof rawCycle>> | { error: string }> = []
        for (let i = 0; i < rawCycles; i++) {
          try {
            list.push(await rawCycle(kind))
          } catch (e) {
            list.push({ error: errorText(e) })
          }
        }
        rawResults.set(kind, list)
      })
    )
  type TetherRun = { tether?: Awaited<ReturnType<typeof tetherCycles>>; error?: string }
  const tetherResults = new Map<string, TetherRun>()
  const modes: Array<{ mode: Mode; cycles: number }> = options.quick
    ? [{ mode: "isolated", cycles }]
    : [
        { mode: "isolated", cycles },
        { mode: "back-to-back", cycles: BACK_TO_BACK }
      ]
  const tetherKind = async (kind: Kind, mode: Mode, n: number) => {
    try {
      tetherResults.set(`${kind}/${mode}`, {
        // --quick waits out a 1 s resetAfter instead of 5 s to stay within its 60 s.
        tether: await tetherCycles(
          kind,
          n,
          options.quick ? 25_000 : 240_000,
          mode,
          options.quick ? QUICK_RESET_AFTER_MS : RESET_AFTER_MS
        )
      })
    } catch (e) {
      tetherResults.set(`${kind}/${mode}`, { error: errorText(e) })
    }
  }
  if (options.quick) {
    // To fit in 60 s, --quick runs the transports' cycles and the raw SDK check at the same
    // time (each on its own servers): on a 2-CPU machine the restarts compete for CPU and
    // inflate the times. The full run measures one transport at a time.
    say(
      `  --quick: Tether ${cycles} isolated cycles per transport and the raw SDK check (${rawCycles} cycle, time box ${RAW_BOX_MS / 1000} s), all at once…`
    )
    await Promise.all([rawPhase(), ...kinds.map((k) => tetherKind(k, "isolated", cycles))])
  } else {
    say(
      `  raw SDK: ${rawCycles} kill/restart cycle(s) per transport (transports at once), time box ${RAW_BOX_MS / 1000} s after READY…`
    )
    await rawPhase()
    // Isolated cycles spend most of their time waiting out resetAfter: the transports run
    // at once, their starts staggered so that restarts rarely overlap.
    say(`  Tether: ${cycles} isolated cycles per transport, transports at once (staggered)…`)
    await Promise.all(
      kinds.map(async (kind, i) => {
        await sleep(i * STAGGER_MS)
        await tetherKind(kind, "isolated", cycles)
      })
    )
    for (const kind of kinds) {
      say(`  Tether ${label[kind]}: ${BACK_TO_BACK} back-to-back cycles…`)
      await tetherKind(kind, "back-to-back", BACK_TO_BACK)
    }
  }

  for (const { mode } of modes) {
    for (const kind of kinds) {
      const { error, tether } = tetherResults.get(`${kind}/${mode}`) ?? { error: "not run" }
      const rec = (tether?.cycles ?? []).flatMap((c) => (c.recoveryMs === undefined ? [] : [c.recoveryMs]))
      const failed = (tether?.cycles ?? []).filter((c) => c.recoveryMs === undefined).length
      const starts = (tether?.cycles ?? []).flatMap((c) =>
        c.serverStartMs === undefined ? [] : [c.serverStartMs]
      )
      const raws = rawResults.get(kind) ?? []
      const rawRecovered = raws.filter((r) => "recovered" in r && r.recovered).length
      const rawErr = raws.map((r) => ("error" in r ? r.error : r.lastError)).find((e) => e !== undefined)
      const rawTimes = raws.flatMap((r) =>
        "recoveryMs" in r && r.recoveryMs !== undefined ? [r.recoveryMs] : []
      )
      const first = mode === modes[0]!.mode
      data[`${kind}/${mode}`] = {
        measuredFrom: kind === "stdio" ? "kill (Tether's own respawn)" : "restarted server printed READY",
        mode,
        tether:
          tether === undefined ? { error } : { ...tether, p50Ms: median(rec), p95Ms: percentile(rec, 95) },
        ...(first ? { raw: raws } : {})
      }
      rows.push([
        label[kind],
        mode,
        kind === "stdio" ? "kill" : "READY",
        `${rec.length}/${tether?.cycles.length ?? 0}${error !== undefined ? " (error)" : ""}`,
        fmt(median(rec), 0),
        fmt(percentile(rec, 95), 0),
        fmt(Math.max(...rec), 0),
        starts.length > 0 ? fmt(median(starts), 0) : "–",
        first
          ? rawRecovered > 0
            ? `${rawRecovered}/${raws.length} in ${fmt(median(rawTimes), 0)} ms`
            : `never (0/${raws.length} within ${RAW_BOX_MS / 1000} s)`
          : "",
        first ? (rawErr ?? "").slice(0, 60) : ""
      ])
      targets.push({
        part: "2",
        name: `${label[kind]} recovery (${mode})`,
        target: "every cycle recovers",
        value: `${rec.length}/${tether?.cycles.length ?? 0}, p50 ${fmt(median(rec), 0)} ms, p95 ${fmt(percentile(rec, 95), 0)} ms${first ? ` (raw: ${rawRecovered > 0 ? `${rawRecovered}/${raws.length}` : "never"})` : ""}`,
        met:
          error === undefined &&
          failed === 0 &&
          rec.length === (tether?.cycles.length ?? -1) &&
          rec.length > 0,
        ...(error !== undefined ? { note: error } : {})
      })
      if (mode === "isolated" && rec.length > 0) {
        targets.push({
          part: "2",
          name: `${label[kind]} recovery p95, ${options.quick ? "default policy but resetAfter 1 s" : "default policy"} (from ${kind === "stdio" ? "the kill" : "READY"})`,
          target: `≤ ${RECOVERY_TARGET_MS} ms`,
          value: `${fmt(percentile(rec, 95), 0)} ms`,
          met: percentile(rec, 95) <= RECOVERY_TARGET_MS
        })
      }
    }
  }
  printTable(
    tables,
    `Part 2 — recovery after kill + restart (${DOWN_MS / 1000} s down): ms from READY (stdio: from the kill) to the first successful call`,
    [
      "transport",
      "cycles",
      "from",
      "Tether ok",
      "p50 ms",
      "p95 ms",
      "max ms",
      "server start ms",
      "raw SDK",
      "raw last error"
    ],
    rows
  )
  const notes = [
    `Tether: one connection per transport, the default policy (first retry immediate, then 100 ms × 1.5^n, capped at 400 ms for the first 10 s of an outage and at 2 s after that, jitter 0.2); the probe calls echo with a 3 s deadline in a loop from the kill on.`,
    `isolated: each kill comes ≥ ${RESET_AFTER_MS + 100} ms after Ready (resetAfter + 100 ms), so every outage starts a fresh schedule, as for a server that stays up for a while. back-to-back: the next kill right after the first successful call — Tether treats it as a flapping server, and once the outages add up to 10 s it backs off up to 2 s.`,
    "'server start ms' is the fixture's own spawn→READY time (node start + imports), which the stdio numbers include since they are timed from the kill.",
    `Raw SDK: a fresh Client per cycle, same kill/restart, probe calls time-boxed ${RAW_BOX_MS / 1000} s after READY (stdio: after the kill); all transports at once.`,
    options.quick
      ? `--quick: reconnect.resetAfter ${QUICK_RESET_AFTER_MS} ms (not 5 s) so the isolated cycles fit; all transports and the raw SDK check ran at the same time, so restarts competed for CPU and the times are inflated.`
      : `Full run: raw checks first (transports at once); then the isolated Tether cycles, transports at once with starts ${STAGGER_MS} ms apart (most of a cycle is the ${RESET_AFTER_MS / 1000} s wait); then the back-to-back cycles one transport at a time.`
  ]
  for (const n of notes) say(`  note: ${n}`)
  return { data, targets, tables, notes }
}
