/**
 * Part 1, breakdown: where an InMemory call's time goes between the raw SDK and Tether.
 * Five ways of making the same `tools/call echo`, sequential, in interleaved rounds, each
 * one layer more than the one before:
 *
 *   raw SDK            an SDK `Client` that has listed tools (as Tether's session has)
 *   + Tether's link    the same, over Tether's `Link` around the transport, with the
 *                      request options Tether hands the SDK (its cancel signal, a timeout)
 *   + Effect.promise   that call as `Effect.promise` in a fiber: the floor of any call made
 *                      as an Effect (it cannot be cancelled)
 *   + cancellable      `Effect.async` with a canceler: the floor of a call that an
 *                      interruption cancels (Effect wraps it in `onInterrupt`)
 *   Tether             `conn.callTool`: the above plus Tether's call path (readiness,
 *                      flight tracking, breaker, metrics, retry hand-off)
 *
 * Both wall time and CPU time per call are reported (CPU time is steadier on a busy
 * machine; the in-memory server runs in this process, so it counts the server too).
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import type { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js"
import { Effect } from "effect"
import { CallSignal } from "../../src/internal/callSignal.js"
import { Link } from "../../src/internal/link.js"
import {
  echoText,
  fmt,
  gcOnce,
  inMemoryEchoTransport,
  median,
  now,
  openTether,
  round,
  type TableSpec,
  printTable
} from "./common.js"

const TEXT = "hello"

const check = (result: unknown) => {
  if (echoText(result) !== TEXT) throw new Error(`unexpected echo result: ${JSON.stringify(result)}`)
}

export interface BreakdownRow {
  readonly layer: string
  readonly wallUs: number
  readonly cpuUs: number
}

export const run = async (quick: boolean, tables: Array<TableSpec>): Promise<Array<BreakdownRow>> => {
  const calls = quick ? 1_000 : 5_000
  const rounds = quick ? 3 : 9
  const open = async (transport: InMemoryTransport | Link) => {
    const client = new Client({ name: "raw-breakdown", version: "1.0.0" }, { capabilities: {} })
    client.onerror = () => {}
    await client.connect(transport)
    await client.listTools()
    return client
  }
  const raw = await open(inMemoryEchoTransport())
  const link = new Link(
    { type: "custom", label: "in-memory", transport: inMemoryEchoTransport },
    { server: "breakdown", graceMs: 1_000, openTimeoutMs: 5_000, now: Date.now, onLost: () => {} }
  )
  const viaLink = await open(link)
  const tether = await openTether({
    name: "breakdown",
    server: { type: "custom", label: "in-memory", transport: inMemoryEchoTransport }
  })
  try {
    await Effect.runPromise(tether.conn.awaitReady({ timeout: 15_000 }))
    const linkCall = () =>
      viaLink.callTool({ name: "echo", arguments: { text: TEXT } }, undefined, {
        signal: new CallSignal().asAbortSignal(),
        timeout: 60_000
      })
    const asPromise = Effect.promise(linkCall)
    const cancellable = Effect.async<unknown>((resume) => {
      let cancelled = false
      linkCall().then((value) => {
        if (!cancelled) resume(Effect.succeed(value))
      })
      return Effect.sync(() => {
        cancelled = true
      })
    })
    const viaTether = tether.conn.callTool("echo", { text: TEXT })
    const loopEffect = (e: Effect.Effect<unknown, unknown>) => () =>
      Effect.runPromise(
        Effect.gen(function* () {
          for (let i = 0; i < calls; i++) check(yield* e)
        })
      )
    const loopPromise = (f: () => Promise<unknown>) => async () => {
      for (let i = 0; i < calls; i++) check(await f())
    }
    const layers: Array<[string, () => Promise<void>]> = [
      ["raw SDK", loopPromise(() => raw.callTool({ name: "echo", arguments: { text: TEXT } }))],
      ["+ Tether's link and request options", loopPromise(linkCall)],
      ["+ Effect.promise (an Effect's floor)", loopEffect(asPromise)],
      ["+ cancellable Effect.async (floor with cancel)", loopEffect(cancellable)],
      ["Tether conn.callTool", loopEffect(viaTether)]
    ]
    const wall = layers.map(() => [] as Array<number>)
    const cpu = layers.map(() => [] as Array<number>)
    for (const [, f] of layers) await f() // warm-up
    for (let r = 0; r < rounds; r++) {
      for (let k = 0; k < layers.length; k++) {
        const i = (k + r) % layers.length
        gcOnce()
        const c0 = process.cpuUsage()
        const t0 = now()
        await layers[i]![1]()
        const c = process.cpuUsage(c0)
        wall[i]!.push(((now() - t0) * 1000) / calls)
        cpu[i]!.push((c.user + c.system) / calls)
      }
    }
    const rows = layers.map(([layer], i) => ({
      layer,
      wallUs: round(median(wall[i]!), 2),
      cpuUs: round(median(cpu[i]!), 2)
    }))
    const base = rows[0]!
    printTable(
      tables,
      `Part 1 — where an InMemory call's time goes (${calls} sequential calls × ${rounds} interleaved rounds, medians per call)`,
      ["layer", "wall µs", "Δ wall vs previous", "CPU µs", "Δ CPU vs previous", "raw/this (CPU)"],
      rows.map((row, i) => {
        const prev = rows[i - 1]
        return [
          row.layer,
          fmt(row.wallUs, 1),
          prev === undefined ? "" : fmt(row.wallUs - prev.wallUs, 1),
          fmt(row.cpuUs, 1),
          prev === undefined ? "" : fmt(row.cpuUs - prev.cpuUs, 1),
          fmt(base.cpuUs / row.cpuUs, 3)
        ]
      })
    )
    return rows
  } finally {
    await tether.close()
    await viaLink.close()
    await raw.close()
  }
}
