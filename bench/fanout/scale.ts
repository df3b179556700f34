/**
 * `npm run bench -- cluster --scale [--baseline DIR] [--seconds S] [--redis-url URL]`:
 * what each node of a 4-node Shoal cluster receives from Redis, by layout, for this
 * checkout's build and (with --baseline) another checkout's, in one run.
 *
 * Four standalone nodes (NODE_ID scale-a..scale-d, own ports, one Redis, a fresh
 * REDIS_PREFIX per phase, its keys deleted at the phase's end), 8 rooms of 25 users,
 * all moving at --hz (bench/fanout/scale-clients.ts). Layouts: `routed`, each room's
 * users on one node (rooms 0,1 on a; 2,3 on b; ...); `split`, room r's users
 * alternating between nodes r % 4 and (r + 1) % 4. Users 0 and 1 of each room are
 * observers: same node in `routed`, one on each of the room's nodes in `split`, so
 * their latency splits into same-node and cross-node pairs.
 *
 * Each node's REDIS_URL points at a counting TCP proxy in this process (one per node)
 * that forwards to the real Redis: bytes each way and RESP pub/sub push frames
 * (`message`, `smessage`, `pmessage`, RESP2 or RESP3) are counted outside the server,
 * so any build can be measured. Over the window: those counts per second, node CPU
 * (/proc/<pid>/stat), RSS at the end, and `shoal_cluster_replicas` /
 * `shoal_cluster_rooms` from /metrics when the build has them (null otherwise).
 *
 * With --baseline the phases interleave: baseline routed, new routed, baseline split,
 * new split. One file: bench/results/cluster-scale-<timestamp>.json.
 *
 * The nodes share core 0 (startServer pins every server there); clients, proxies and
 * this runner are on core 1. The figures are traffic, not capacity.
 */
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { createConnection, createServer, type Server, type Socket } from 'node:net'
import { join, resolve } from 'node:path'
import { performance } from 'node:perf_hooks'
import { redactRedisUrl } from '../../src/adapters/redis-bus.js'
import {
  clockTicks, cpuBusyShares, cpuJiffies, exited, freePort, machineInfo, peakRssKiB, processTicks, RESULTS_DIR, ROOT,
  round, rssKiB, shoalRevision, shoalServerCommand, sleep, stopChild, waitForQuiet, type MachineInfo
} from '../lib/proc.js'
import { Generator, loadedShoalEnv, pinned, shoalBuild, singleNodeEnv, startServer, type StartedServer } from './children.js'
import type { LatencySummary, SetupReport } from './protocol.js'
import type { RedisFigures } from './records.js'
import { RedisProbe } from './redis.js'
import type { ScaleClientsMessage, ScaleClientsResult, ScaleClientSpec, ScaleRunnerMessage } from './scale-clients.js'
import { UsageError } from './shared.js'

export const NODE_IDS = ['scale-a', 'scale-b', 'scale-c', 'scale-d'] as const
export const ROOMS = 8
export const USERS_PER_ROOM = 25
const LAYOUTS = ['routed', 'split'] as const
type Layout = typeof LAYOUTS[number]
type BuildName = 'baseline' | 'new'
const CLIENT_SCRIPT = join(ROOT, 'bench', 'fanout', 'scale-clients.ts')
const SETUP_TIMEOUT_MS = 20_000
const DELIVERY_MS = 1000

export interface ScaleOptions {
  seconds: number
  warmup: number
  hz: number
  tickHz: number
  heartbeatMs: number
  redisUrl: string
  /** Another checkout (old commit) to run interleaved with this one; null: this one only. */
  baseline: string | null
  command: string
}

// ---- layouts ---------------------------------------------------------------------
/** Node of user `i` of room `r`. */
function nodeOf (layout: Layout, r: number, i: number): number {
  const nodes = NODE_IDS.length
  return layout === 'routed' ? Math.floor((r * nodes) / ROOMS) : (i % 2 === 0 ? r % nodes : (r + 1) % nodes)
}

function clientSpecs (layout: Layout): ScaleClientSpec[] {
  const specs: ScaleClientSpec[] = []
  for (let r = 0; r < ROOMS; r++) {
    for (let i = 0; i < USERS_PER_ROOM; i++) specs.push({ room: `scale-${r}`, node: nodeOf(layout, r, i), observer: i < 2 })
  }
  return specs
}

// ---- the counting proxy --------------------------------------------------------------
/** `message\r\n` ends the kind field of every pub/sub push; what precedes it tells which kind. */
const NEEDLE = Buffer.from('message\r\n')
const HEADS = ['*3\r\n$7\r\n', '>3\r\n$7\r\n', '*3\r\n$8\r\ns', '>3\r\n$8\r\ns', '*4\r\n$8\r\np', '>4\r\n$8\r\np'].map((head) => Buffer.from(head))
/** Kept from the end of each chunk, so that a frame head split between two reads is still seen. */
const TAIL_BYTES = 32

/**
 * Push frames in `buffer` whose kind field ends after `skip` (the bytes before were
 * scanned with the previous chunk). Payloads are JSON or binary with a length prefix:
 * a bare CRLF-framed kind field inside one is not expected.
 */
export function countPushes (buffer: Buffer, skip: number): number {
  let count = 0
  for (let at = buffer.indexOf(NEEDLE, Math.max(0, skip - NEEDLE.length + 1)); at !== -1; at = buffer.indexOf(NEEDLE, at + 1)) {
    if (HEADS.some((head) => at >= head.length && buffer.compare(head, 0, head.length, at - head.length, at) === 0)) count++
  }
  return count
}

interface ConnectionCounts { fromRedis: number, toRedis: number, pushes: number }

/** Forwards a node's Redis connections to the real Redis and counts what passes (cumulative, per connection). */
export class CountingProxy {
  private constructor (private readonly server: Server, readonly port: number, private readonly sockets: Set<Socket>, private readonly connections: ConnectionCounts[]) {}

  static async start (target: { host: string, port: number }): Promise<CountingProxy> {
    const sockets = new Set<Socket>()
    const connections: ConnectionCounts[] = []
    const server = createServer((client) => {
      const counts: ConnectionCounts = { fromRedis: 0, toRedis: 0, pushes: 0 }
      connections.push(counts)
      const upstream = createConnection({ host: target.host, port: target.port })
      for (const socket of [client, upstream]) {
        sockets.add(socket)
        socket.setNoDelay(true)
      }
      let tail = Buffer.alloc(0)
      upstream.on('data', (chunk: Buffer) => {
        counts.fromRedis += chunk.length
        const scanned = tail.length === 0 ? chunk : Buffer.concat([tail, chunk])
        counts.pushes += countPushes(scanned, tail.length)
        tail = Buffer.from(scanned.subarray(Math.max(0, scanned.length - TAIL_BYTES)))
      })
      client.on('data', (chunk: Buffer) => { counts.toRedis += chunk.length })
      client.pipe(upstream)
      upstream.pipe(client)
      // Either side gone: both go (the node's Redis client sees a dropped connection, as with Redis itself).
      const drop = (): void => {
        client.destroy()
        upstream.destroy()
        sockets.delete(client)
        sockets.delete(upstream)
      }
      for (const socket of [client, upstream]) {
        socket.on('error', drop)
        socket.on('close', drop)
      }
    })
    const port = await new Promise<number>((resolve, reject) => {
      server.once('error', reject)
      server.listen(0, '127.0.0.1', () => {
        const address = server.address()
        resolve(typeof address === 'object' && address !== null ? address.port : 0)
      })
    })
    return new CountingProxy(server, port, sockets, connections)
  }

  /** `redisUrl` (user, password, db kept) with this proxy as its host. */
  url (redisUrl: string): string {
    const url = new URL(redisUrl)
    url.hostname = '127.0.0.1'
    url.port = String(this.port)
    return url.toString()
  }

  snapshot (): ConnectionCounts[] {
    return this.connections.map((counts) => ({ ...counts }))
  }

  async close (): Promise<void> {
    for (const socket of this.sockets) socket.destroy()
    this.sockets.clear()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }
}

/** Host and port of a redis:// URL; rediss:// cannot be counted (TLS), so it is refused. */
function redisTarget (redisUrl: string): { host: string, port: number } {
  let url: URL
  try {
    url = new URL(redisUrl)
  } catch {
    throw new UsageError(`--redis-url: not a URL: ${JSON.stringify(redactRedisUrl(redisUrl))}`)
  }
  if (url.protocol !== 'redis:') throw new UsageError('--redis-url: cluster --scale counts Redis traffic through a plain TCP proxy: redis:// only')
  return { host: url.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1', port: url.port === '' ? 6379 : Number(url.port) }
}

// ---- records ---------------------------------------------------------------------
interface RedisTraffic {
  /** Everything Redis sent the node, all its connections (bus subscriber and commands, session store). */
  bytesPerSecond: number
  /** RESP pub/sub push frames (message, smessage, pmessage). */
  messagesPerSecond: number
  /** Bytes on the connections that carried push frames (the subscriber's, its command replies included). */
  pubsubBytesPerSecond: number
  /** Bytes the node sent Redis (publishes, heartbeats, session writes). */
  sentBytesPerSecond: number
  connections: number
}

export interface ScaleNode {
  id: string
  port: number
  proxyPort: number
  /** The layout's users connected to this node, and the rooms they are in. */
  localUsers: number
  localRooms: number
  fromRedis: RedisTraffic | null
  cpuMs: number | null
  cpuShareOfOneCore: number | null
  rssMiB: number | null
  rssPeakMiB: number | null
  /** Summed over series from /metrics; null when the build does not expose them. */
  replicas: number | null
  rooms: number | null
  metricsError: string | null
  health: unknown
  exitedDuringRun: boolean
  logTail: string | null
}

export interface ScalePhase {
  layout: Layout
  build: BuildName
  prefix: string
  date: string
  error: string | null
  warnings: string[]
  environment: { quietBeforeRun: boolean, busyBeforeRun: number[], waitedForQuietMs: number, coreBusyDuringWindow: number[] } | null
  serverEnv: Record<string, string> | null
  setup: SetupReport | null
  windowMs: number | null
  nodes: ScaleNode[]
  clients: ScaleClientsResult | null
  /** Observers' latency by pair; `crossMinusSameMs` is what a cross-node pair adds. */
  latency: { same: LatencySummary | null, cross: LatencySummary | null, crossMinusSameMs: { p50: number | null, p99: number | null } }
  redis: RedisFigures | null
  keysDeleted: number | null
  cleanupError: string | null
}

interface BuildRecord { root: string, entry: string, compiled: boolean, buildError: string | null, revision: { commit: string, dirty: boolean } | null }
interface Build extends BuildRecord { args: string[] }

export interface ScaleRecord {
  kind: 'fanout-cluster-scale'
  version: 1
  date: string
  command: string
  machine: MachineInfo
  config: Omit<ScaleOptions, 'redisUrl' | 'command'> & { nodes: readonly string[], rooms: number, usersPerRoom: number, pinned: boolean, clockTicksPerSecond: number }
  redis: { url: string, version: string | null, pid: number | null, pidNote: string | null }
  builds: { new: BuildRecord, baseline: BuildRecord | null }
  phases: ScalePhase[]
  error: string | null
  warnings: string[]
  file: string
}

// ---- one phase -------------------------------------------------------------------
const sum = (values: number[]): number => values.reduce((total, value) => total + value, 0)
const minus = (a: number | null | undefined, b: number | null | undefined): number | null =>
  a === null || a === undefined || b === null || b === undefined ? null : round(a - b, 2)

/** Sum of a metric's samples in Prometheus text (any labels); null when absent. */
function metricValue (text: string, name: string): number | null {
  let total: number | null = null
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue
    let rest = line.slice(name.length)
    if (rest.startsWith('{')) rest = rest.slice(rest.lastIndexOf('}') + 1)
    else if (!rest.startsWith(' ')) continue // another metric with this name as prefix
    const value = Number(rest.trim().split(' ')[0])
    if (Number.isFinite(value)) total = (total ?? 0) + value
  }
  return total
}

async function scrapeMetrics (port: number): Promise<{ replicas: number | null, rooms: number | null, error: string | null }> {
  try {
    const token = process.env.METRICS_TOKEN
    const response = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(3000), headers: token === undefined ? {} : { authorization: `Bearer ${token}` } })
    if (!response.ok) return { replicas: null, rooms: null, error: `/metrics: http ${response.status}` }
    const text = await response.text()
    return { replicas: metricValue(text, 'shoal_cluster_replicas'), rooms: metricValue(text, 'shoal_cluster_rooms'), error: null }
  } catch (err) {
    return { replicas: null, rooms: null, error: err instanceof Error ? err.message : String(err) }
  }
}

async function health (port: number): Promise<unknown> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(3000) })
    return await response.json() as unknown
  } catch {
    return null
  }
}

function traffic (start: ConnectionCounts[], end: ConnectionCounts[], ms: number): RedisTraffic {
  const perSecond = (value: number): number => ms > 0 ? round((value * 1000) / ms, 1) : 0
  let fromRedis = 0
  let toRedis = 0
  let pushes = 0
  let pubsub = 0
  end.forEach((counts, i) => {
    const before = start[i] ?? { fromRedis: 0, toRedis: 0, pushes: 0 }
    fromRedis += counts.fromRedis - before.fromRedis
    toRedis += counts.toRedis - before.toRedis
    pushes += counts.pushes - before.pushes
    if (counts.pushes > 0) pubsub += counts.fromRedis - before.fromRedis
  })
  return { bytesPerSecond: perSecond(fromRedis), messagesPerSecond: perSecond(pushes), pubsubBytesPerSecond: perSecond(pubsub), sentBytesPerSecond: perSecond(toRedis), connections: end.length }
}

type Cleanup = (() => Promise<void>) | null

async function runPhase (layout: Layout, buildName: BuildName, build: Build, options: ScaleOptions, probe: RedisProbe, setCleanup: (cleanup: Cleanup) => void): Promise<ScalePhase> {
  const prefix = `bench:scale:${randomBytes(5).toString('hex')}:`
  const specs = clientSpecs(layout)
  const phase: ScalePhase = {
    layout,
    build: buildName,
    prefix,
    date: new Date().toISOString(),
    error: null,
    warnings: [],
    environment: null,
    serverEnv: null,
    setup: null,
    windowMs: null,
    nodes: [],
    clients: null,
    latency: { same: null, cross: null, crossMinusSameMs: { p50: null, p99: null } },
    redis: null,
    keysDeleted: null,
    cleanupError: null
  }
  const proxies: CountingProxy[] = []
  const servers: StartedServer[] = []
  /** shoalEnv's DATA_DIRs: unused by nodes on Redis, removed at the end. */
  const dataDirs: string[] = []
  let clients: Generator<ScaleClientsMessage, ScaleRunnerMessage, 'scale'> | null = null
  let watchdog: NodeJS.Timeout | null = null
  let stopping = false
  const deleteKeys = async (): Promise<void> => {
    try {
      const { deleted, left } = await probe.deleteKeys(prefix)
      phase.keysDeleted = deleted
      if (left > 0) phase.cleanupError = `${left} keys still under ${prefix} after the cleanup`
    } catch (err) {
      phase.cleanupError = err instanceof Error ? err.message : String(err)
    }
  }
  // Interrupted: run.ts kills the children, then this closes the proxies and deletes the keys.
  setCleanup(async () => {
    await Promise.all(proxies.map(async (proxy) => await proxy.close()))
    await sleep(200)
    await deleteKeys()
  })
  try {
    const quiet = await waitForQuiet(0.15, 15_000)
    phase.environment = { quietBeforeRun: quiet.quiet, busyBeforeRun: quiet.busy, waitedForQuietMs: quiet.waitedMs, coreBusyDuringWindow: [] }
    const target = redisTarget(options.redisUrl)
    for (let node = 0; node < NODE_IDS.length; node++) {
      const id = NODE_IDS[node] ?? `scale-${node}`
      const proxy = await CountingProxy.start(target)
      proxies.push(proxy)
      const port = await freePort()
      const env: Record<string, string> = {
        ...loadedShoalEnv(port, options),
        REDIS_URL: proxy.url(options.redisUrl),
        REDIS_PREFIX: prefix,
        NODE_ID: id
      }
      if (env.DATA_DIR !== undefined) dataDirs.push(env.DATA_DIR)
      if (node === 0) phase.serverEnv = { ...env, REDIS_URL: redactRedisUrl(env.REDIS_URL ?? '') }
      const local = specs.filter((spec) => spec.node === node)
      phase.nodes.push({
        id,
        port,
        proxyPort: proxy.port,
        localUsers: local.length,
        localRooms: new Set(local.map((spec) => spec.room)).size,
        fromRedis: null,
        cpuMs: null,
        cpuShareOfOneCore: null,
        rssMiB: null,
        rssPeakMiB: null,
        replicas: null,
        rooms: null,
        metricsError: null,
        health: null,
        exitedDuringRun: false,
        logTail: null
      })
      servers.push(await startServer(build.args, build.root, singleNodeEnv(env), port, `shoal node ${id} (${buildName})`))
    }
    const serverExited = new Promise<never>((_resolve, reject) => {
      servers.forEach((server, node) => server.child.once('exit', (code, signal) => {
        if (!stopping) reject(new Error(`node ${NODE_IDS[node] ?? node} exited during the run (code ${String(code)}, signal ${String(signal)})`))
      }))
    })
    serverExited.catch(() => {})
    servers.forEach((server, node) => { if (exited(server.child)) throw new Error(`node ${NODE_IDS[node] ?? node} exited while the others started`) })
    const budgetMs = SETUP_TIMEOUT_MS + (options.warmup + options.seconds) * 1000 + 40_000
    const overran = new Promise<never>((_resolve, reject) => {
      watchdog = setTimeout(() => reject(new Error(`phase overran its ${Math.round(budgetMs / 1000)} s budget`)), budgetMs)
    })
    overran.catch(() => {})
    const race = async <T>(promise: Promise<T>): Promise<T> => await Promise.race([promise, serverExited, overran])

    const gen = clients = new Generator<ScaleClientsMessage, ScaleRunnerMessage, 'scale'>('scale', CLIENT_SCRIPT)
    gen.send({
      cmd: 'setup',
      config: { baseUrls: phase.nodes.map((node) => `ws://127.0.0.1:${node.port}`), clients: specs, hz: options.hz, connectConcurrency: 50, setupTimeoutMs: SETUP_TIMEOUT_MS, deliveryMs: DELIVERY_MS }
    })
    const ready = await race(gen.next('ready', SETUP_TIMEOUT_MS + 5000))
    const setup = phase.setup = ready.setup
    if (!setup.complete) throw new Error(`setup incomplete: ${setup.registered} of ${setup.target} registered (${JSON.stringify(setup.errors)})`)
    gen.send({ cmd: 'start' })
    await race(sleep(options.warmup * 1000))

    const redis0 = await race(probe.sample())
    const counts0 = proxies.map((proxy) => proxy.snapshot())
    const ticks0 = servers.map((server) => processTicks(server.pid))
    const cores0 = cpuJiffies()
    const wall0 = performance.now()
    gen.send({ cmd: 'window-start' })
    await race(sleep(options.seconds * 1000))
    const counts1 = proxies.map((proxy) => proxy.snapshot())
    const ticks1 = servers.map((server) => processTicks(server.pid))
    const cores1 = cpuJiffies()
    const wallMs = performance.now() - wall0
    gen.send({ cmd: 'window-end' })
    const redis1 = await race(probe.sample())
    const rss = servers.map((server) => rssKiB(server.pid))
    const peaks = servers.map((server) => peakRssKiB(server.pid))
    const metrics = await Promise.all(phase.nodes.map(async (node) => await scrapeMetrics(node.port)))
    const healths = await Promise.all(phase.nodes.map(async (node) => await health(node.port)))
    phase.windowMs = round(wallMs, 1)
    phase.environment.coreBusyDuringWindow = cpuBusyShares(cores0, cores1)
    phase.redis = probe.figures(redis0, redis1)
    phase.nodes.forEach((node, i) => {
      const cpuMs = (((ticks1[i] ?? 0) - (ticks0[i] ?? 0)) * 1000) / clockTicks()
      node.fromRedis = traffic(counts0[i] ?? [], counts1[i] ?? [], wallMs)
      node.cpuMs = round(cpuMs, 1)
      node.cpuShareOfOneCore = round(cpuMs / wallMs, 4)
      node.rssMiB = round((rss[i] ?? 0) / 1024, 1)
      node.rssPeakMiB = round((peaks[i] ?? 0) / 1024, 1)
      node.replicas = metrics[i]?.replicas ?? null
      node.rooms = metrics[i]?.rooms ?? null
      node.metricsError = metrics[i]?.error ?? null
      node.health = healths[i] ?? null
    })
    const result = phase.clients = (await race(gen.next('result', DELIVERY_MS + 25_000))).result
    phase.latency = {
      same: result.same.latencyMs.samples > 0 ? result.same.latencyMs : null,
      cross: result.cross.latencyMs.samples > 0 ? result.cross.latencyMs : null,
      crossMinusSameMs: { p50: minus(result.cross.latencyMs.p50, result.same.latencyMs.p50), p99: minus(result.cross.latencyMs.p99, result.same.latencyMs.p99) }
    }
  } catch (err) {
    phase.error = err instanceof Error ? err.message : String(err)
    phase.nodes.forEach((node, i) => { node.logTail = servers[i]?.log().slice(-2000) || null })
  } finally {
    if (watchdog !== null) clearTimeout(watchdog)
    servers.forEach((server, i) => {
      const node = phase.nodes[i]
      if (exited(server.child) && node !== undefined) node.exitedDuringRun = true
    })
    stopping = true
    await clients?.stop()
    // SIGTERM: each node closes its bus (removing its own keys) before it exits.
    await Promise.all(servers.map(async (server) => await stopChild(server.child, 5000)))
    await Promise.all(proxies.map(async (proxy) => await proxy.close()))
    for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true })
    await sleep(200)
    await deleteKeys()
    setCleanup(null)
  }
  judge(phase)
  return phase
}

function judge (phase: ScalePhase): void {
  const warn = (text: string): void => { phase.warnings.push(text) }
  const environment = phase.environment
  if (environment !== null && !environment.quietBeforeRun) warn(`the machine was busy before the phase (CPU ${environment.busyBeforeRun.map((share) => `${Math.round(share * 100)}%`).join(', ')}): other processes competed`)
  for (const node of phase.nodes) if (node.exitedDuringRun) warn(`node ${node.id} exited during the phase`)
  const clients = phase.clients
  if (clients !== null) {
    if ((clients.updates.achievedShare ?? 1) < 0.95) warn(`the clients sent only ${Math.round((clients.updates.achievedShare ?? 0) * 100)}% of the updates due`)
    if (clients.cpu.shareOfOneCore > 0.85) warn(`client process at ${Math.round(clients.cpu.shareOfOneCore * 100)}% of its core: latency includes its lag`)
    if (clients.loopDelayMs.p99 > 20) warn(`client event-loop delay p99 ${clients.loopDelayMs.p99} ms: latency includes it`)
    if (clients.received.errorFrames > 0) warn(`${clients.received.errorFrames} error frames (${JSON.stringify(clients.received.errorCodes)})`)
    if (Object.keys(clients.closes).length > 0) warn(`connections closed by the nodes: ${JSON.stringify(clients.closes)}`)
    for (const kind of ['same', 'cross'] as const) {
      const pair = clients[kind]
      if (pair.senders.expected === 0) continue
      if (pair.senders.heard < pair.senders.expected) warn(`${kind}-node: observers heard ${pair.senders.heard} of ${pair.senders.expected} senders`)
      if ((pair.arrivalShare ?? 0) < 0.99) warn(`${kind}-node: ${pair.arrived} of ${pair.owed} updates arrived within ${DELIVERY_MS} ms (${pair.arrivalShare ?? '-'})`)
    }
  }
  if (phase.cleanupError !== null) warn(`Redis keys under ${phase.prefix}: ${phase.cleanupError}`)
}

// ---- output ----------------------------------------------------------------------
const dash = (value: number | null | undefined, digits = 1): string => value === null || value === undefined ? '-' : String(round(value, digits))

/** Columns padded to their widest cell; all but the first three right-aligned. */
function table (rows: string[][]): string {
  const widths = rows[0]?.map((_cell, column) => Math.max(...rows.map((row) => row[column]?.length ?? 0))) ?? []
  return rows.map((row) => '  ' + row.map((cell, column) => column < 3 ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0)).join('  ').trimEnd()).join('\n') + '\n'
}

function phaseTable (phases: ScalePhase[]): string {
  const rows: string[][] = [['layout', 'build', 'node', 'users', 'recv kB/s', 'msgs/s', 'sent kB/s', 'CPU %', 'RSS MiB', 'replicas', 'rooms']]
  for (const phase of phases) {
    for (const node of phase.nodes) {
      rows.push([
        phase.layout, phase.build, node.id, String(node.localUsers),
        dash(node.fromRedis === null ? null : node.fromRedis.bytesPerSecond / 1000), dash(node.fromRedis?.messagesPerSecond),
        dash(node.fromRedis === null ? null : node.fromRedis.sentBytesPerSecond / 1000),
        dash(node.cpuShareOfOneCore === null ? null : node.cpuShareOfOneCore * 100), dash(node.rssMiB),
        node.replicas === null ? 'null' : String(node.replicas), node.rooms === null ? 'null' : String(node.rooms)
      ])
    }
    const done = phase.nodes.filter((node) => node.fromRedis !== null)
    if (done.length > 0) {
      rows.push([
        phase.layout, phase.build, 'all', String(sum(phase.nodes.map((node) => node.localUsers))),
        dash(sum(done.map((node) => node.fromRedis?.bytesPerSecond ?? 0)) / 1000), dash(sum(done.map((node) => node.fromRedis?.messagesPerSecond ?? 0))),
        dash(sum(done.map((node) => node.fromRedis?.sentBytesPerSecond ?? 0)) / 1000),
        dash(sum(done.map((node) => node.cpuShareOfOneCore ?? 0)) * 100), dash(sum(done.map((node) => node.rssMiB ?? 0))), '', ''
      ])
    }
  }
  return table(rows)
}

function latencyLine (phase: ScalePhase): string {
  const pair = (name: string, summary: LatencySummary | null, share: number | null | undefined): string =>
    summary === null ? `${name} -` : `${name} p50/p99 ${dash(summary.p50, 2)}/${dash(summary.p99, 2)} ms (n ${summary.samples}, arrived ${share ?? '-'})`
  const sign = (value: number | null): string => value === null ? '-' : `${value >= 0 ? '+' : ''}${value}`
  const parts = [pair('same-node', phase.latency.same, phase.clients?.same.arrivalShare), pair('cross-node', phase.latency.cross, phase.clients?.cross.arrivalShare)]
  if (phase.latency.cross !== null) parts.push(`a cross-node pair adds ${sign(phase.latency.crossMinusSameMs.p50)}/${sign(phase.latency.crossMinusSameMs.p99)} ms (p50/p99)`)
  return `  latency ${phase.layout} ${phase.build}: ${parts.join(', ')}\n`
}

function phaseLine (phase: ScalePhase): string {
  const head = `  ${phase.layout} ${phase.build}: ${phase.error === null ? 'done' : `ERROR ${phase.error}`}`
  const total = phase.nodes.every((node) => node.fromRedis !== null) && phase.nodes.length > 0
    ? `, received from Redis ${dash(sum(phase.nodes.map((node) => node.fromRedis?.bytesPerSecond ?? 0)) / 1000)} kB/s, ${dash(sum(phase.nodes.map((node) => node.fromRedis?.messagesPerSecond ?? 0)))} msgs/s over the 4 nodes`
    : ''
  const notes = phase.warnings.map((warning) => `\n      ${warning}`).join('')
  const tails = phase.error === null ? '' : phase.nodes.filter((node) => node.logTail !== null).map((node) => `\n      [${node.id}] ${(node.logTail ?? '').slice(-400).replace(/\n/g, '\n      ')}`).join('')
  return `${head}${total}${notes}${tails}\n`
}

// ---- the run ---------------------------------------------------------------------
function buildOf (root: string | null): Build {
  const built = root === null ? shoalBuild() : { ...shoalServerCommand(root), revision: shoalRevision(root) }
  return { args: built.args, root: built.root, entry: built.entry, compiled: built.compiled, buildError: built.buildError ?? null, revision: built.revision }
}

const recorded = ({ root, entry, compiled, buildError, revision }: Build): BuildRecord => ({ root, entry, compiled, buildError, revision })
const label = (build: Build): string => `${build.root}${build.revision === null ? '' : ` @${build.revision.commit}${build.revision.dirty ? '+' : ''}`}${build.compiled ? '' : ' (tsx: build failed)'}`

/**
 * The scaling run; `setCleanup` hands run.ts the work to do when the runner is
 * interrupted (close the proxies, delete the phase's keys). Returns the exit code.
 */
export async function scaleMain (options: ScaleOptions, setCleanup: (cleanup: Cleanup) => void): Promise<number> {
  redisTarget(options.redisUrl)
  const baselineRoot = options.baseline === null ? null : resolve(options.baseline)
  if (baselineRoot !== null && !existsSync(join(baselineRoot, 'package.json'))) throw new UsageError(`--baseline: no checkout at ${baselineRoot} (no package.json)`)
  const started = new Date()
  const record: ScaleRecord = {
    kind: 'fanout-cluster-scale',
    version: 1,
    date: started.toISOString(),
    command: options.command,
    machine: machineInfo(),
    config: {
      seconds: options.seconds,
      warmup: options.warmup,
      hz: options.hz,
      tickHz: options.tickHz,
      heartbeatMs: options.heartbeatMs,
      baseline: baselineRoot,
      nodes: NODE_IDS,
      rooms: ROOMS,
      usersPerRoom: USERS_PER_ROOM,
      pinned,
      clockTicksPerSecond: clockTicks()
    },
    redis: { url: redactRedisUrl(options.redisUrl), version: null, pid: null, pidNote: null },
    builds: { new: { root: '', entry: '', compiled: false, buildError: null, revision: null }, baseline: null },
    phases: [],
    error: null,
    warnings: [],
    file: ''
  }
  let probe: RedisProbe | null = null
  try {
    probe = await RedisProbe.connect(options.redisUrl)
    Object.assign(record.redis, { version: probe.version, pid: probe.pid, pidNote: probe.pidNote })
    process.stdout.write(`cluster --scale: 4 nodes, ${ROOMS} rooms × ${USERS_PER_ROOM} users at ${options.hz} Hz, Redis ${probe.version ?? '?'} at ${record.redis.url}; warm-up ${options.warmup} s, window ${options.seconds} s\n`)
    const builds: Partial<Record<BuildName, Build>> = {}
    if (baselineRoot !== null) {
      process.stdout.write(`  building the baseline ${baselineRoot}\n`)
      const baseline = builds.baseline = buildOf(baselineRoot)
      record.builds.baseline = recorded(baseline)
      if (!existsSync(join(baselineRoot, 'node_modules'))) record.warnings.push(`the baseline ${baselineRoot} has no node_modules: its nodes may not start (symlink this checkout's)`)
    }
    process.stdout.write('  building this checkout\n')
    const fresh = builds.new = buildOf(null)
    record.builds.new = recorded(fresh)
    if (baselineRoot !== null && baselineRoot === fresh.root) record.warnings.push('--baseline is this checkout: both builds are the same')
    for (const [name, build] of Object.entries(builds)) process.stdout.write(`  ${name}: ${label(build)}\n`)
    process.stdout.write(`  ${pinned ? 'all 4 nodes pinned to core 0 (they share it); clients, proxies and runner on core 1' : 'not pinned'}\n`)
    const order: BuildName[] = baselineRoot === null ? ['new'] : ['baseline', 'new']
    for (const layout of LAYOUTS) {
      for (const name of order) {
        const build = builds[name]
        if (build === undefined) continue
        if (record.phases.length > 0) await sleep(1000)
        const phase = await runPhase(layout, name, build, options, probe, setCleanup)
        record.phases.push(phase)
        process.stdout.write(phaseLine(phase))
      }
    }
  } catch (err) {
    record.error = err instanceof Error ? err.message : String(err)
  } finally {
    probe?.close()
  }
  if (record.redis.pidNote !== null) record.warnings.push(`Redis CPU not measured: ${record.redis.pidNote}`)
  mkdirSync(RESULTS_DIR, { recursive: true })
  record.file = join(RESULTS_DIR, `cluster-scale-${record.date.replace(/[:.]/g, '-')}.json`)
  writeFileSync(record.file, JSON.stringify(record, null, 2) + '\n')

  process.stdout.write(`\nPer node over the ${options.seconds} s window, counted by a TCP proxy per node: recv = bytes Redis sent the node (all its\n` +
    '  connections), msgs = RESP pub/sub pushes among them, sent = bytes the node sent Redis; replicas/rooms from /metrics (null: not exposed)\n')
  process.stdout.write(phaseTable(record.phases))
  for (const phase of record.phases) process.stdout.write(latencyLine(phase))
  const split = record.phases.filter((phase) => phase.layout === 'split' && phase.latency.cross !== null)
  for (const phase of split) {
    process.stdout.write(`  split ${phase.build}: a cross-node pair adds ${dash(phase.latency.crossMinusSameMs.p50, 2)} ms at p50 and ${dash(phase.latency.crossMinusSameMs.p99, 2)} ms at p99 over a same-node pair\n`)
  }
  process.stdout.write('  Traffic, not capacity: the 4 nodes share one core, so CPU % is each node\'s share of that core while they compete.\n')
  for (const warning of record.warnings) process.stdout.write(`  warning: ${warning}\n`)
  if (record.error !== null) process.stdout.write(`  ERROR ${record.error}\n`)
  process.stdout.write(`  ${record.file}\n`)
  return record.error === null && record.phases.every((phase) => phase.error === null) ? 0 : 1
}
