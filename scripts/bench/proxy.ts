/**
 * Part 9 — proxy: `tether proxy` as a real process in front of 3 stdio fixture servers.
 *
 * 1. Added latency: a raw SDK client calls `echo` over stdio straight on a fixture
 *    ("direct"), through the smallest raw SDK proxy process, and through `tether proxy`
 *    over stdio with the same fixture behind it ("proxied"); sequential calls in
 *    interleaved blocks, p50 of each. Target: proxied p50
 *    ≤ 1.3× direct p50.
 * 2. In one process, where that time goes (see `breakdown`).
 * 3. Scale: 100 downstream sessions (Streamable HTTP, one raw SDK client each) × 10 calls
 *    through one `tether proxy --port` process to 3 upstreams; calls spread over the three.
 *    Memory per downstream session: the proxy process's RSS (from /proc) with 100 sessions
 *    open, minus with one, over 99.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { Server } from "@modelcontextprotocol/sdk/server/index.js"
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js"
import { CallToolRequestSchema } from "@modelcontextprotocol/sdk/types.js"
import { Context, Effect, Exit, Layer, Scope } from "effect"
import { spawn } from "node:child_process"
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import * as McpPool from "../../src/McpPool.js"
import * as Proxy from "../../src/Proxy.js"
import {
  BENCH_DIR,
  echoText,
  errorText,
  fmt,
  freePort,
  median,
  now,
  type PartResult,
  percentile,
  printTable,
  type RunOptions,
  say,
  sleep,
  stdioArgs,
  type TableSpec,
  type Target,
  track
} from "./common.js"

const TETHER = resolve("bin/tether.js")
const SESSIONS = 100
const CALLS = 10

const writeConfig = (n: number): string => {
  const file = join(mkdtempSync(join(tmpdir(), "tether-bench-proxy-")), "mcp.json")
  const servers = Object.fromEntries(
    Array.from({ length: n }, (_, i) => [`s${i}`, { command: process.execPath, args: stdioArgs() }])
  )
  writeFileSync(file, JSON.stringify({ mcpServers: servers }))
  return file
}

const rssKiB = (pid: number): number => {
  const status = readFileSync(`/proc/${pid}/status`, "utf8")
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? "NaN")
}

const connectStdio = async (command: string, args: ReadonlyArray<string>) => {
  const transport = new StdioClientTransport({ command, args: [...args], stderr: "ignore" })
  const client = new Client({ name: "bench-proxy", version: "1.0.0" })
  client.onerror = () => {}
  await client.connect(transport)
  return client
}

/** Sequential echo calls; per-call milliseconds. */
const timeCalls = async (client: Client, tool: string, n: number): Promise<Array<number>> => {
  const out: Array<number> = []
  for (let i = 0; i < n; i++) {
    const t = now()
    const result = await client.callTool({ name: tool, arguments: { text: `x${i}` } })
    out.push(now() - t)
    if (echoText(result) !== `x${i}`) throw new Error(`wrong answer from ${tool}`)
  }
  return out
}

/**
 * The smallest possible proxy, for scale: a raw SDK `Server` over stdio whose handlers call
 * a raw SDK `Client` of the fixture (no resilience, no aggregation). Written under .bench/
 * so that it resolves the SDK from node_modules.
 */
const RAW_PROXY = `
import { Server } from "@modelcontextprotocol/sdk/server/index.js"
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import { CallToolRequestSchema, ListToolsRequestSchema } from "@modelcontextprotocol/sdk/types.js"
const up = new Client({ name: "raw-proxy", version: "1.0.0" })
await up.connect(new StdioClientTransport({ command: process.execPath, args: process.argv.slice(2), stderr: "ignore" }))
const server = new Server({ name: "raw-proxy", version: "1.0.0" }, { capabilities: { tools: {} } })
server.setRequestHandler(ListToolsRequestSchema, () => up.listTools())
server.setRequestHandler(CallToolRequestSchema, (request) => up.callTool(request.params))
await server.connect(new StdioServerTransport())
process.stdin.on("end", () => process.exit(0))
`

const latency = async (quick: boolean, tables: Array<TableSpec>) => {
  const config = writeConfig(1)
  const rawProxyFile = join(BENCH_DIR, "raw-proxy.mjs")
  writeFileSync(rawProxyFile, RAW_PROXY)
  const direct = await connectStdio(process.execPath, stdioArgs())
  const rawProxy = await connectStdio(process.execPath, [rawProxyFile, ...stdioArgs()])
  const proxied = await connectStdio(process.execPath, [TETHER, "proxy", "--config", config])
  try {
    // Warm all three (JIT, the proxies' first connect).
    await timeCalls(direct, "echo", 200)
    await timeCalls(rawProxy, "echo", 200)
    await timeCalls(proxied, "echo", 200)
    const rounds = quick ? 2 : 6
    const block = quick ? 300 : 1000
    const d: Array<number> = []
    const p: Array<number> = []
    const q: Array<number> = []
    const ratios: Array<number> = []
    const rawRatios: Array<number> = []
    for (let r = 0; r < rounds; r++) {
      // A, B then B, A: neither side always runs first.
      const first = r % 2 === 0
      const a = first ? await timeCalls(direct, "echo", block) : []
      const b = await timeCalls(proxied, "echo", block)
      const c = await timeCalls(rawProxy, "echo", block)
      const a2 = first ? a : await timeCalls(direct, "echo", block)
      d.push(...a2)
      p.push(...b)
      q.push(...c)
      ratios.push(median(b) / median(a2))
      rawRatios.push(median(c) / median(a2))
    }
    const rows = [
      ["direct (stdio fixture)", fmt(median(d), 3), fmt(percentile(d, 99), 3), String(d.length)],
      ["through a raw SDK proxy (stdio)", fmt(median(q), 3), fmt(percentile(q, 99), 3), String(q.length)],
      ["through tether proxy (stdio)", fmt(median(p), 3), fmt(percentile(p, 99), 3), String(p.length)]
    ]
    printTable(
      tables,
      "Proxy: echo latency, raw SDK client over stdio (ms)",
      ["path", "p50", "p99", "calls"],
      rows
    )
    return {
      directP50: median(d),
      rawProxyP50: median(q),
      proxiedP50: median(p),
      ratio: median(ratios),
      rawProxyRatio: median(rawRatios),
      ratios
    }
  } finally {
    await Promise.allSettled([direct.close(), rawProxy.close(), proxied.close()])
  }
}

/**
 * Where the time of a proxied call goes, in one process (no scheduling between processes):
 * a raw client straight on the stdio fixture, Tether's connection alone, an SDK client
 * over InMemory to a bare SDK server whose handler calls that connection, and the same
 * client to the proxy. Each figure is the best median of several blocks.
 */
const breakdown = async (quick: boolean, tables: Array<TableSpec>) => {
  const direct = await connectStdio(process.execPath, stdioArgs())
  const scope = Effect.runSync(Scope.make())
  try {
    const context = await Effect.runPromise(
      Layer.build(
        Proxy.layer().pipe(
          Layer.provideMerge(
            McpPool.layer({
              servers: [{ name: "a", spec: { type: "stdio", command: process.execPath, args: stdioArgs() } }]
            })
          )
        )
      ).pipe(Scope.extend(scope))
    )
    const conn = await Effect.runPromise(Effect.scoped(Context.get(context, McpPool.McpPool).connection("a")))
    const [proxyClientSide, proxyServerSide] = InMemoryTransport.createLinkedPair()
    await Effect.runPromise(Context.get(context, Proxy.Proxy).connect(proxyServerSide))
    const proxied = new Client({ name: "bench-proxy-inmem", version: "1.0.0" })
    await proxied.connect(proxyClientSide)
    const bare = new Server({ name: "bare", version: "1.0.0" }, { capabilities: { tools: {} } })
    bare.setRequestHandler(CallToolRequestSchema, (request) =>
      Effect.runPromise(conn.callTool("echo", request.params.arguments))
    )
    const [bareClientSide, bareServerSide] = InMemoryTransport.createLinkedPair()
    await bare.connect(bareServerSide)
    const bareClient = new Client({ name: "bench-bare", version: "1.0.0" })
    await bareClient.connect(bareClientSide)
    const paths: Array<[string, () => Promise<unknown>]> = [
      ["raw SDK client → stdio fixture", () => direct.callTool({ name: "echo", arguments: { text: "x" } })],
      [
        "McpConnection.callTool → stdio fixture",
        () => Effect.runPromise(conn.callTool("echo", { text: "x" }))
      ],
      [
        "SDK client → InMemory → bare SDK Server → McpConnection",
        () => bareClient.callTool({ name: "echo", arguments: { text: "x" } })
      ],
      [
        "SDK client → InMemory → Proxy → McpConnection",
        () => proxied.callTool({ name: "echo", arguments: { text: "x" } })
      ]
    ]
    const best = paths.map(() => Number.POSITIVE_INFINITY)
    const block = quick ? 200 : 500
    for (let r = 0; r < (quick ? 3 : 8); r++) {
      for (const [i, [, f]] of paths.entries()) {
        const xs: Array<number> = []
        for (let n = 0; n < block; n++) {
          const t = now()
          await f()
          xs.push(now() - t)
        }
        best[i] = Math.min(best[i]!, median(xs))
      }
    }
    printTable(
      tables,
      "Proxy: where a call's time goes, one process (best median of blocks, ms)",
      ["path", "p50"],
      paths.map(([name], i) => [name, fmt(best[i]!, 3)])
    )
    await Promise.allSettled([proxied.close(), bareClient.close()])
    return Object.fromEntries(paths.map(([name], i) => [name, best[i]]))
  } finally {
    await direct.close()
    await Effect.runPromise(Scope.close(scope, Exit.void))
  }
}

const scale = async (tables: Array<TableSpec>) => {
  const config = writeConfig(3)
  const port = await freePort()
  const child = track(
    spawn(process.execPath, [TETHER, "proxy", "--config", config, "--port", String(port)], {
      stdio: ["ignore", "pipe", "pipe"]
    })
  )
  const exited = new Promise<void>((r) => child.once("exit", () => r()))
  try {
    await new Promise<void>((ready, fail) => {
      let out = ""
      const timer = setTimeout(() => fail(new Error(`tether proxy did not start: ${out}`)), 60_000)
      const onData = (chunk: Buffer) => {
        out += chunk.toString()
        if (/LISTENING/.test(out)) {
          clearTimeout(timer)
          ready()
        }
      }
      child.stdout?.on("data", onData)
      child.stderr?.on("data", onData)
    })
    const url = new URL(`http://127.0.0.1:${port}/mcp`)
    const open = async () => {
      const client = new Client({ name: "bench-downstream", version: "1.0.0" })
      client.onerror = () => {}
      await client.connect(new StreamableHTTPClientTransport(url))
      return client
    }
    const clients: Array<Client> = [await open()]
    // One session and the upstreams warm: the baseline.
    for (let s = 0; s < 3; s++) await timeCalls(clients[0]!, `s${s}__echo`, 50)
    await sleep(500)
    const baseline = rssKiB(child.pid!)
    const t0 = now()
    for (let i = 1; i < SESSIONS; i += 10) {
      clients.push(...(await Promise.all(Array.from({ length: Math.min(10, SESSIONS - i) }, open))))
    }
    const connectMs = now() - t0
    const perCall: Array<number> = []
    let errors = 0
    const t1 = now()
    await Promise.all(
      clients.map(async (client, i) => {
        for (let c = 0; c < CALLS; c++) {
          const t = now()
          try {
            const result = await client.callTool({
              name: `s${(i + c) % 3}__echo`,
              arguments: { text: `${i}-${c}` }
            })
            if (echoText(result) !== `${i}-${c}`) errors += 1
          } catch (e) {
            errors += 1
            if (errors <= 3) say(`  call failed: ${errorText(e)}`)
          }
          perCall.push(now() - t)
        }
      })
    )
    const callsMs = now() - t1
    await sleep(500)
    const loaded = rssKiB(child.pid!)
    const perSessionKiB = (loaded - baseline) / (SESSIONS - 1)
    printTable(
      tables,
      `Proxy: ${SESSIONS} downstream sessions × ${CALLS} calls, one proxy, 3 stdio upstreams`,
      [
        "connect all (ms)",
        "all calls (ms)",
        "calls/s",
        "call p50 (ms)",
        "call p99 (ms)",
        "errors",
        "RSS/session (KiB)"
      ],
      [
        [
          fmt(connectMs, 0),
          fmt(callsMs, 0),
          fmt((SESSIONS * CALLS) / (callsMs / 1000), 0),
          fmt(median(perCall), 2),
          fmt(percentile(perCall, 99), 2),
          String(errors),
          fmt(perSessionKiB, 1)
        ]
      ]
    )
    await Promise.allSettled(clients.map((c) => c.close()))
    return {
      connectMs,
      callsMs,
      p50: median(perCall),
      p99: percentile(perCall, 99),
      errors,
      perSessionKiB,
      baseline,
      loaded
    }
  } finally {
    child.kill("SIGTERM")
    await Promise.race([exited, sleep(10_000)])
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
  }
}

export const run = async (options: RunOptions): Promise<PartResult> => {
  const tables: Array<TableSpec> = []
  const lat = await latency(options.quick, tables)
  const inProcess = await breakdown(options.quick, tables)
  const sc = await scale(tables)
  const targets: Array<Target> = [
    {
      part: "proxy",
      name: "added latency (stdio)",
      target: "proxied p50 ≤ 1.3× direct p50",
      value: `${fmt(lat.ratio, 2)}× (${fmt(lat.proxiedP50, 3)} vs ${fmt(lat.directP50, 3)} ms)`,
      note: `a raw SDK proxy process: ${fmt(lat.rawProxyRatio, 2)}×`,
      met: lat.ratio <= 1.3
    },
    {
      part: "proxy",
      name: `${SESSIONS} sessions × ${CALLS} calls`,
      target: "no errors",
      value: `${sc.errors} errors`,
      met: sc.errors === 0
    }
  ]
  return {
    data: { latency: lat, inProcess, scale: sc },
    targets,
    tables,
    notes: [
      "The ratio is the median of per-round ratios (rounds alternate which side goes first).",
      "RSS per session: the proxy process's VmRSS with 100 idle sessions minus with 1, over 99 (includes the SDK server and transport of each session)."
    ]
  }
}
