/**
 * The fan-out benchmark runner: `npm run bench -- ...` (see `usage` below).
 *
 * One run: build Shoal (first run only) or pick a baseline from bench/targets/,
 * start the target server pinned to core 0 (`taskset -c 0`), start the load
 * generator (bench/fanout/generator.ts) pinned to core 1 (`taskset -c 1`, this
 * runner too), and drive it over IPC: setup (connect and register every client)
 * → start the load → warm-up → measured window (server CPU from /proc/<pid>/stat at
 * both ends, RSS at the end) → 1 s delivery deadline → result. Everything stays on
 * 127.0.0.1. Each run writes bench/results/<scenario>-<target>-<N>-<timestamp>.json
 * with every figure, the pass/fail verdict, warnings and the machine.
 *
 * `cluster` runs `room` twice back to back at the same N: on one Shoal node, then
 * on two Shoal nodes sharing a Redis (REDIS_URL, a fresh REDIS_PREFIX per run,
 * NODE_ID bench-a and bench-b), both pinned to core 0, with the clients alternating
 * between them. The observers, on both nodes, split their latency into same-node
 * and cross-node pairs; Redis's CPU (/proc/<redis pid>/stat) and traffic (INFO
 * stats) are read over each window; the run's Redis keys are deleted at the end.
 * One file, bench/results/cluster-<target>-<N>-<timestamp>.json, holds both runs.
 *
 * A sweep (`sweep <scenario>`) runs each target at growing N (×1.5 from --from)
 * until its first failing N, then bisects once between the last pass and that
 * failure; capacity = the largest passing N (room and crowd: p99 < 100 ms and
 * delivery ≥ 0.99). It writes bench/results/sweep-<scenario>-<timestamp>.json
 * listing its runs; bench/report.ts turns the latest sweeps into docs/performance.md.
 *
 * `bigroom`, `restart` and `hostile` are handed to bench/scenarios/cli.ts (Shoal only).
 * BENCH_SHOAL_ROOT=/other/checkout builds and runs that checkout's Shoal server instead
 * of this one's (bench/lib/proc.ts), for before/after comparisons.
 *
 * Every child is killed when a run ends, fails or overruns its time budget, and
 * when this process is interrupted; the children also exit on their own when this
 * process dies (bench/lib/orphan-guard.mjs, and the generator's IPC disconnect).
 */
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import {
  clockTicks, cpuBusyShares, cpuJiffies, exited, freePort, machineInfo, peakRssKiB, processTicks,
  RESULTS_DIR, ROOT, round, rssKiB, sleep, stopChild
} from '../lib/proc.js'
import {
  Generator, killAll, loadedShoalEnv, pinned, pinRunner, quietEnvironment, shoalBuild, shoalLabel, shoalSource, singleNodeEnv, startServer, track, type StartedServer
} from './children.js'
import {
  isShoal, SATURATION, SCENARIOS, TARGETS, type GeneratorConfig, type GeneratorResult,
  type RunnerMessage, type Scenario, type TargetName
} from './protocol.js'
import { DEFAULT_REDIS_URL, RedisProbe } from './redis.js'
import { kBps, mergeSetups, percent, positiveNumber, UsageError } from './shared.js'
import { redactRedisUrl } from '../../src/adapters/redis-bus.js'
import type { ClusterRecord, RunRecord, ServerNode, SweepRecord, SweepTarget } from './records.js'
import { interestVerdict } from './verdicts.js'
import { isScenarioName, scenarioMain, scenarioUsage } from '../scenarios/cli.js'
import { scaleMain } from './scale.js'

const usage = `Shoal fan-out benchmark (bench/fanout/). Everything runs on 127.0.0.1; the server is
pinned to core 0 and the load generator to core 1.

One run:
  npm run bench -- <room|crowd|idle|churn> --target shoal|shoal-compact|naive|socketio [--users N] [--seconds S]
      targets: shoal          Shoal, JSON positions (the protocol's default)
               shoal-compact  the same server and settings; every client registers with
                              "encoding": "compact" (binary positions, short ids, 32-bit floats)
               naive          plain ws, everything to everyone at once (bench/targets/naive.ts)
               socketio       Socket.IO 4, socket.broadcast.emit per update (bench/targets/socketio.ts)
      room   N users in one room, all moving at --hz (10), everyone sees everyone    (default N 100)
      crowd  N users walking a square sized so each has ~--neighbours (45) users
             within --radius (100); Shoal gets INTEREST_RADIUS                       (default N 3000)
      idle   N connections registered in rooms of --room-size (50), idle; window
             25 s by default so that several heartbeats fall in it                   (default N 15000)
      churn  N connects + registers + disconnects per second, among --background
             (100) users who stay                                                    (default N 100)
  options: --warmup S (3), --seconds S (10; idle 25), --hz 10, --observers 5, --tick-hz 20 (Shoal),
           --heartbeat-ms 10000 (Shoal), --radius 100, --neighbours 45, --room-size 50, --background 100,
           --concurrency 200 (connections opened at once during setup),
           --setup-seconds S (setup deadline; default 15 s + 4 ms per client, at most 90 s)

Shoal on two nodes sharing Redis (a room run on one node, then the same on two, back to back):
  npm run bench -- cluster [--users N] [--seconds S] [--target shoal|shoal-compact] [--redis-url URL]
      N users in one room, all moving; the clients alternate between two Shoal nodes
      (NODE_ID bench-a and bench-b, both pinned to core 0: they share it) on one Redis
      (--redis-url, default ${DEFAULT_REDIS_URL}; a fresh REDIS_PREFIX bench:<random>: per
      run, its keys deleted at the end). Observers on both nodes split latency into
      same-node and cross-node pairs; added latency = two nodes minus one node (p50, p99);
      Redis CPU (/proc/<pid>/stat) and bytes in/out per second (INFO stats) over the window.
      Default N 100, target shoal; the options above apply (room's).

Cluster scaling: what each of 4 nodes receives from Redis, routed vs split rooms (bench/fanout/scale.ts):
  npm run bench -- cluster --scale [--baseline DIR] [--seconds S] [--warmup S] [--redis-url URL]
      NODE_ID scale-a..scale-d, 8 rooms of 25 users moving at --hz (10). Layout routed: each
      room on one node (rooms 0,1 on a; 2,3 on b; ...); split: room r alternating between
      nodes r%4 and (r+1)%4. Per node over the window (default 10 s after a 3 s warm-up):
      kB/s and pub/sub messages/s received from Redis (a counting TCP proxy per node in the
      runner), CPU, RSS, shoal_cluster_replicas/rooms from /metrics when present; split:
      same-node vs cross-node latency. --baseline DIR: another checkout (the old commit),
      run interleaved with this one (baseline routed, new routed, baseline split, new split).
      All nodes share core 0: traffic figures, not capacity. bench/results/cluster-scale-<timestamp>.json

Capacity sweep (largest N with p99 < 100 ms and delivery >= 0.99):
  npm run bench -- sweep <scenario> [--targets ${TARGETS.join(',')}] [--from 50] [--max 3000]
                   [--factor 1.5] [--no-bisect] [--seconds S] ...the options above

The existing single-scenario bench (CPU per 1,000 updates):
  npm run bench -- update-cpu [--users 100] [--hz 10] [--seconds 10]

${scenarioUsage}
Then: npm run bench:report   (docs/performance.md and its SVG charts from bench/results/)
`

// ---- options ------------------------------------------------------------------
interface RunOptions {
  scenario: Scenario
  target: TargetName
  users: number
  seconds: number
  warmup: number
  hz: number
  observers: number
  tickHz: number
  heartbeatMs: number
  radius: number
  neighbours: number
  roomSize: number
  background: number
  /** Connections opened at once during setup, and how long setup may take (0: 15 s + 4 ms per client, at most 90 s). */
  concurrency: number
  setupSeconds: number
  /** Two Shoal nodes on this Redis (the `cluster` command's second run); null: one server. */
  cluster: { redisUrl: string, prefix: string } | null
  /** The command line this run came from, for the record. */
  command: string
  sweep: { id: string, step: number } | null
}

const DEFAULT_USERS: Record<Scenario, number> = { room: 100, crowd: 3000, idle: 15000, churn: 100 }
const DEFAULT_SECONDS: Record<Scenario, number> = { room: 10, crowd: 10, idle: 25, churn: 10 }

const optionSpec = {
  target: { type: 'string' },
  targets: { type: 'string', default: TARGETS.join(',') },
  users: { type: 'string' },
  seconds: { type: 'string' },
  warmup: { type: 'string', default: '3' },
  hz: { type: 'string', default: '10' },
  observers: { type: 'string', default: '5' },
  'tick-hz': { type: 'string', default: '20' },
  'heartbeat-ms': { type: 'string', default: '10000' },
  radius: { type: 'string', default: '100' },
  neighbours: { type: 'string', default: '45' },
  'room-size': { type: 'string', default: '50' },
  background: { type: 'string', default: '100' },
  concurrency: { type: 'string', default: '200' },
  'setup-seconds': { type: 'string' },
  from: { type: 'string', default: '50' },
  max: { type: 'string', default: '3000' },
  factor: { type: 'string', default: '1.5' },
  'no-bisect': { type: 'boolean', default: false },
  'redis-url': { type: 'string' },
  scale: { type: 'boolean', default: false },
  baseline: { type: 'string' },
  help: { type: 'boolean', short: 'h', default: false }
} as const

function isScenario (value: string | undefined): value is Scenario {
  return (SCENARIOS as readonly string[]).includes(value ?? '')
}
function isTarget (value: string | undefined): value is TargetName {
  return (TARGETS as readonly string[]).includes(value ?? '')
}

// ---- children -----------------------------------------------------------------
/** Work to finish (at most 3 s) after the children are killed, when the runner is interrupted: a cluster run's Redis keys. */
let onInterrupt: (() => Promise<void>) | null = null
/** Set on SIGINT or SIGTERM: what the killed children make of a run in the meantime is not a result. */
let interrupted = false
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    process.stderr.write(`\n${signal}: stopping every child process\n`)
    interrupted = true
    killAll()
    const last = onInterrupt
    onInterrupt = null
    if (last === null) process.exit(130)
    Promise.race([last().catch(() => {}), sleep(3000)]).finally(() => process.exit(130)).catch(() => {})
  })
}

interface StartedTarget extends StartedServer { env: Record<string, string>, compiled: boolean }

/** The nodes of a two-node run (`cluster`). */
const CLUSTER_NODE_IDS = ['bench-a', 'bench-b'] as const

/** Starts the target server; `node` is the node's index in a two-node run (its NODE_ID). */
async function startTarget (options: RunOptions, port: number, node = 0): Promise<StartedTarget> {
  if (!isShoal(options.target)) {
    const env = { PORT: String(port), HOST: '127.0.0.1' }
    const args = ['--import', 'tsx', join(ROOT, 'bench', 'targets', `${options.target}.ts`)]
    return { ...await startServer(args, ROOT, { ...process.env, ...env }, port, serverName(options, node)), env, compiled: true }
  }
  // shoal-compact: the same server and settings; the clients choose the encoding.
  const build = shoalBuild()
  const env = loadedShoalEnv(port, options)
  if (options.scenario === 'crowd') env.INTEREST_RADIUS = String(options.radius)
  // One node unless this run asks for a cluster, whatever the runner's own environment says.
  if (options.cluster !== null) {
    Object.assign(env, { REDIS_URL: options.cluster.redisUrl, REDIS_PREFIX: options.cluster.prefix, NODE_ID: CLUSTER_NODE_IDS[node] ?? `bench-${node}` })
  }
  return { ...await startServer(build.args, build.root, singleNodeEnv(env), port, serverName(options, node)), env, compiled: build.compiled }
}

// ---- one run ---------------------------------------------------------------------
/**
 * Core 0 busy beyond the server's own CPU above this share means someone else ran
 * there during the window (this machine idles at about 8 to 10% busy per core:
 * kernel threads, the services it keeps running).
 */
const OTHER_LOAD_LIMIT = 0.2

const sum = (values: number[]): number => values.reduce((total, value) => total + value, 0)

function crowdArea (options: RunOptions): number {
  return round(options.radius * Math.sqrt((Math.PI * options.users) / options.neighbours), 1)
}

/** "the shoal server", or in a two-node run "shoal node bench-b". */
function serverName (options: RunOptions, node: number): string {
  return options.cluster === null ? `${options.target} server` : `${options.target} node ${CLUSTER_NODE_IDS[node] ?? node}`
}

/** The environment as recorded: REDIS_URL without its password. */
function recordedEnv (env: Record<string, string>): Record<string, string> {
  return env.REDIS_URL === undefined ? env : { ...env, REDIS_URL: redactRedisUrl(env.REDIS_URL) }
}

function generatorConfig (options: RunOptions, ports: number[], epochMs: number): Omit<GeneratorConfig, 'role'> {
  const crowd = options.scenario === 'crowd'
  const total = options.scenario === 'churn' ? options.background + options.users * (options.warmup + options.seconds + 3) : options.users
  return {
    scenario: options.scenario,
    target: options.target,
    wire: options.target === 'socketio' ? 'socketio' : 'json',
    encoding: options.target === 'shoal-compact' ? 'compact' : 'json',
    // Two nodes: client i on node i % 2, so clients and observers alternate between them.
    baseUrls: ports.map((port) => `ws://127.0.0.1:${port}`),
    users: options.users,
    observers: options.observers,
    hz: options.hz,
    epochMs,
    area: crowd ? crowdArea(options) : 1000,
    radius: crowd ? options.radius : 0,
    margin: 0.1,
    speed: 20,
    room: 'bench',
    roomSize: options.roomSize,
    background: options.background,
    churnRooms: 10,
    // About 20,000 ephemeral ports per address are plenty; more addresses cost nothing.
    sourceAddresses: Math.max(4, Math.ceil(total / 10_000)),
    connectConcurrency: options.concurrency,
    setupTimeoutMs: options.setupSeconds > 0 ? options.setupSeconds * 1000 : Math.min(90_000, 15_000 + 4 * (options.scenario === 'churn' ? options.background : options.users)),
    deliveryMs: 1000
  }
}

function judge (options: RunOptions, record: RunRecord): void {
  const reasons = record.failReasons
  const warnings = record.warnings
  const generator = record.generator
  if (record.error !== null) reasons.push(`error: ${record.error}`)
  if (record.setup !== null && !record.setup.complete) reasons.push(`setup: ${record.setup.registered} of ${record.setup.target} registered`)
  if (record.server.exitedDuringRun) reasons.push('the server exited during the run')
  if (generator !== null) {
    if (options.scenario === 'room' || options.scenario === 'crowd') {
      const p99 = generator.latencyMs.p99
      const ratio = generator.delivery.ratio
      if (p99 === null) reasons.push('no latency samples')
      else if (p99 >= 100) reasons.push(`p99 ${p99} ms >= 100 ms`)
      if (ratio === null) reasons.push('no delivery expectation')
      else if (ratio < 0.99) reasons.push(`delivery ${ratio} < 0.99`)
      if ((generator.updates.achievedShare ?? 1) < 0.95) warnings.push(`the generator sent only ${Math.round((generator.updates.achievedShare ?? 0) * 100)}% of the updates due`)
    }
    if (options.scenario === 'idle' && record.setup !== null && generator.traffic.stillOpen < record.setup.registered) {
      reasons.push(`${record.setup.registered - generator.traffic.stillOpen} idle connections were closed`)
    }
    const churn = generator.churn
    if (churn !== null) {
      if (churn.achievedRate < churn.targetRate * 0.95) reasons.push(`churn rate ${churn.achievedRate}/s < 95% of ${churn.targetRate}/s`)
      if (churn.failed > churn.started * 0.01) reasons.push(`${churn.failed} of ${churn.started} churn cycles failed`)
    }
    if (generator.cpu.saturated) warnings.push(`load generator saturated: ${Math.round(generator.cpu.shareOfOneCore * 100)}% of its core (> ${SATURATION * 100}%): figures may reflect the generator, not the server`)
    const observerLag = generator.loopDelayMs.observerP99 ?? generator.loopDelayMs.p99
    if (observerLag > 20) warnings.push(`observers' event-loop delay p99 ${observerLag} ms: measured latency includes generator lag`)
    if (generator.traffic.errorFrames > 0) warnings.push(`${generator.traffic.errorFrames} error frames received`)
    if (options.cluster !== null && (generator.nodePairs?.cross.latencyMs.samples ?? 0) === 0) reasons.push('no update crossed from one node to the other')
    const closes = Object.entries(generator.traffic.closes)
    if (closes.length > 0) warnings.push(`connections closed by the server: ${closes.map(([code, n]) => `${code} ×${n}`).join(', ')}`)
  }
  const environment = record.environment
  if (environment !== null) {
    if (!environment.quietBeforeRun) warnings.push(`the machine was busy before the run (CPU busy ${environment.busyBeforeRun.map((share) => `${Math.round(share * 100)}%`).join(', ')}): other processes may have been measured too`)
    if ((environment.otherLoadOnServerCore ?? 0) > OTHER_LOAD_LIMIT) {
      const whose = options.cluster === null ? 'the server\'s own CPU' : 'both nodes\' CPU'
      const redis = options.cluster === null ? '' : ', or Redis, which is not pinned'
      warnings.push(`core 0 was ${Math.round((environment.otherLoadOnServerCore ?? 0) * 100)}% busy beyond ${whose} during the window (another process, or kernel network work${redis})`)
    }
  }
  for (const node of record.nodes ?? []) {
    const health = node.health as { status?: string, users?: number } | null
    if (health?.status !== undefined && health.status !== 'ok') warnings.push(`node ${node.id}: /health said ${health.status}`)
    if (typeof health?.users === 'number' && health.users < options.users) warnings.push(`node ${node.id} held ${health.users} of the ${options.users} users (its own and its replicas of the other's) after the window`)
  }
  if (record.interest?.honoured === false) warnings.push(`INTEREST_RADIUS not honoured: ${record.interest.note}`)
  record.pass = reasons.length === 0
}

/**
 * One run: one server, or with `options.cluster` two Shoal nodes on Redis (both on
 * core 0). `redis`, when given, is read over the window. The record is returned,
 * not written: see saveRun.
 */
async function runOnce (options: RunOptions, redis: RedisProbe | null = null): Promise<RunRecord> {
  const started = new Date()
  const machine = machineInfo()
  const record: RunRecord = {
    kind: 'fanout-run',
    version: 1,
    scenario: options.scenario,
    target: options.target,
    users: options.users,
    date: started.toISOString(),
    command: options.command,
    sweep: options.sweep,
    pass: false,
    failReasons: [],
    warnings: [],
    error: null,
    config: {},
    machine,
    setup: null,
    server: { cpuMs: null, cpuShareOfOneCore: null, rssMiB: null, rssPeakMiB: null, rssBaselineMiB: null, rssPerConnectionKiB: null, health: null, exitedDuringRun: false, logTail: null },
    generator: null,
    environment: null,
    interest: null,
    file: ''
  }
  const nodeCount = options.cluster === null ? 1 : CLUSTER_NODE_IDS.length
  const targets: StartedTarget[] = []
  const ports: number[] = []
  let nodes: ServerNode[] = []
  let generators: Generator[] = []
  let watchdog: NodeJS.Timeout | null = null
  let stopping = false
  try {
    const environment = record.environment = await quietEnvironment()
    // One after the other, each listening before the next port is picked (two free ports could otherwise be one).
    for (let node = 0; node < nodeCount; node++) {
      const port = await freePort()
      ports.push(port)
      targets.push(await startTarget(options, port, node))
    }
    if (options.cluster !== null) {
      nodes = record.nodes = targets.map((_target, node) => ({
        id: CLUSTER_NODE_IDS[node] ?? String(node),
        port: ports[node] ?? 0,
        cpuMs: null,
        cpuShareOfOneCore: null,
        rssMiB: null,
        rssPeakMiB: null,
        rssBaselineMiB: null,
        health: null,
        exitedDuringRun: false,
        logTail: null
      }))
    }
    const serverExited = new Promise<never>((_resolve, reject) => {
      targets.forEach((server, node) => server.child.once('exit', (code, signal) => {
        if (stopping) return
        record.server.exitedDuringRun = true
        reject(new Error(`the ${serverName(options, node)} exited during the run (code ${String(code)}, signal ${String(signal)})`))
      }))
    })
    serverExited.catch(() => {})
    // A node that died while the next one was starting had no listener yet.
    targets.forEach((server, node) => { if (exited(server.child)) throw new Error(`the ${serverName(options, node)} exited while the others started`) })
    await sleep(300)
    const baselines = targets.map((server) => rssKiB(server.pid))
    const baselineKiB = sum(baselines)
    record.server.rssBaselineMiB = round(baselineKiB / 1024, 1)
    nodes.forEach((node, i) => { node.rssBaselineMiB = round((baselines[i] ?? 0) / 1024, 1) })

    const epochMs = Date.now()
    const config = generatorConfig(options, ports, epochMs)
    const first = targets[0]
    record.config = {
      ...options,
      command: undefined,
      sweep: undefined,
      cluster: options.cluster === null ? undefined : { ...options.cluster, redisUrl: redactRedisUrl(options.cluster.redisUrl), nodes: nodes.map((node) => node.id), sharedCore: pinned ? 0 : null },
      pinned,
      compiled: first?.compiled,
      shoal: isShoal(options.target) ? shoalSource() : undefined,
      serverEnv: first === undefined ? undefined : recordedEnv(first.env),
      encoding: config.encoding,
      generator: { ...config, baseUrls: undefined },
      clockTicksPerSecond: clockTicks()
    }
    // Everything after the server is up must finish within this budget.
    const budgetMs = config.setupTimeoutMs + CONNECT_GRACE_MS + (options.warmup + options.seconds) * 1000 + 30_000
    // Compact positions carry z (ms since epochMs, this run's start) as an f32: its step passes 1/16 ms at 2^20 ms.
    if (config.encoding === 'compact' && budgetMs > 2 ** 20) record.warnings.push('z may pass 2^20 ms in a run this long: the f32 z of compact positions then comes in steps above 1/16 ms')
    const overran = new Promise<never>((_resolve, reject) => {
      watchdog = setTimeout(() => reject(new Error(`run overran its ${Math.round(budgetMs / 1000)} s budget`)), budgetMs)
    })
    overran.catch(() => {})
    const race = async <T>(promise: Promise<T>): Promise<T> => await Promise.race([promise, serverExited, overran])

    // Movers: the observers in a process of their own, everyone else in the load process (see protocol.ts).
    const moving = options.scenario === 'room' || options.scenario === 'crowd'
    generators = (moving ? ['observe', 'load'] as const : ['load'] as const).map((role) => new Generator(role))
    const all = generators
    const observe = all.find((gen) => gen.role === 'observe') ?? null
    const load = all.find((gen) => gen.role === 'load')
    if (load === undefined) throw new Error('no load generator')
    const broadcast = (message: RunnerMessage): void => { for (const gen of all) gen.send(message) }
    for (const gen of all) gen.send({ cmd: 'setup', config: { ...config, role: gen.role } })
    const readies = await race(Promise.all(all.map(async (gen) => await gen.next('ready', config.setupTimeoutMs + CONNECT_GRACE_MS))))
    const setup = record.setup = mergeSetups(readies.map((ready) => ready.setup))
    if (!setup.complete) throw new Error(`setup incomplete: ${setup.registered} of ${setup.target} registered in ${Math.round(setup.ms / 1000)} s (${JSON.stringify(setup.errors)})`)
    const ids = new Array<string>(options.users).fill('')
    for (const ready of readies) for (const [index, id] of ready.ids) ids[index] = id
    observe?.send({ cmd: 'ids', ids })

    broadcast({ cmd: 'start' })
    await race(sleep(options.warmup * 1000))
    const redis0 = redis === null ? null : await race(redis.sample())
    const ticks0 = targets.map((server) => processTicks(server.pid))
    const cores0 = cpuJiffies()
    const wall0 = performance.now()
    broadcast({ cmd: 'window-start' })
    await race(sleep(options.seconds * 1000))
    const ticks1 = targets.map((server) => processTicks(server.pid))
    const cores1 = cpuJiffies()
    const wallMs = performance.now() - wall0
    broadcast({ cmd: 'window-end' })
    const redis1 = redis === null ? null : await race(redis.sample())
    const rss = targets.map((server) => rssKiB(server.pid))
    const loaded = await race(load.next('result', 25_000))
    let observed = null
    if (observe !== null) {
      observe.send({ cmd: 'sent-log', log: loaded.sentLog ?? { senders: [] } })
      observed = await race(observe.next('result', 25_000))
    }
    record.generator = mergeResults(loaded.result, observed?.result ?? null)
    if (redis !== null && redis0 !== null && redis1 !== null) record.redis = redis.figures(redis0, redis1)
    // Both nodes of a cluster share core 0: their CPU adds up on it.
    const cpuMs = targets.map((_server, i) => (((ticks1[i] ?? 0) - (ticks0[i] ?? 0)) * 1000) / clockTicks())
    record.server.cpuMs = round(sum(cpuMs), 1)
    record.server.cpuShareOfOneCore = round(sum(cpuMs) / wallMs, 4)
    environment.coreBusyDuringWindow = cpuBusyShares(cores0, cores1)
    if (pinned) environment.otherLoadOnServerCore = round(Math.max(0, (environment.coreBusyDuringWindow[0] ?? 0) - record.server.cpuShareOfOneCore), 4)
    record.server.rssMiB = round(sum(rss) / 1024, 1)
    const peaks = targets.map((server) => peakRssKiB(server.pid))
    record.server.rssPeakMiB = round(sum(peaks) / 1024, 1)
    const connections = setup.registered
    record.server.rssPerConnectionKiB = connections > 0 && options.scenario !== 'churn' ? round((sum(rss) - baselineKiB) / connections, 2) : null
    const healths = await Promise.all(ports.map(async (port) => {
      try {
        const response = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(3000) })
        return await response.json() as unknown
      } catch {
        return null
      }
    }))
    if (options.cluster === null) record.server.health = healths[0] ?? null
    nodes.forEach((node, i) => {
      node.cpuMs = round(cpuMs[i] ?? 0, 1)
      node.cpuShareOfOneCore = round((cpuMs[i] ?? 0) / wallMs, 4)
      node.rssMiB = round((rss[i] ?? 0) / 1024, 1)
      node.rssPeakMiB = round((peaks[i] ?? 0) / 1024, 1)
      node.health = healths[i] ?? null
    })
  } catch (err) {
    record.error = err instanceof Error ? err.message : String(err)
    if (options.cluster === null) {
      record.server.logTail = targets[0]?.log().slice(-2000) || null
    } else {
      nodes.forEach((node, i) => { node.logTail = targets[i]?.log().slice(-2000) || null })
      record.server.logTail = targets.map((server, i) => `[${CLUSTER_NODE_IDS[i] ?? i}] ${server.log().slice(-1000)}`).join('\n') || null
    }
  } finally {
    if (watchdog !== null) clearTimeout(watchdog)
    targets.forEach((server, i) => {
      if (!exited(server.child)) return
      record.server.exitedDuringRun = true
      const node = nodes[i]
      if (node !== undefined) node.exitedDuringRun = true
    })
    stopping = true
    await Promise.all(generators.map(async (gen) => await gen.stop()))
    await Promise.all(targets.map(async (server) => await stopChild(server.child, 5000)))
  }
  record.interest = options.scenario === 'crowd' ? interestVerdict(options.target, options.users, options.radius, record.generator) : null
  judge(options, record)
  return record
}

/** Writes a run's JSON: bench/results/<scenario>-<target>-<N>-<timestamp>.json. */
function saveRun (record: RunRecord): RunRecord {
  mkdirSync(RESULTS_DIR, { recursive: true })
  record.file = join(RESULTS_DIR, `${record.scenario}-${record.target}-${record.users}-${record.date.replace(/[:.]/g, '-')}.json`)
  writeFileSync(record.file, JSON.stringify(record, null, 2) + '\n')
  return record
}

/** The load process's counts plus the observe process's latency, delivery and interest; CPU added up (one core). */
function mergeResults (load: GeneratorResult, observe: GeneratorResult | null): GeneratorResult {
  if (observe === null) return load
  const closes = { ...load.traffic.closes }
  for (const [code, n] of Object.entries(observe.traffic.closes)) closes[code] = (closes[code] ?? 0) + n
  const sent = load.updates.sent + observe.updates.sent
  const expected = load.updates.expected + observe.updates.expected
  const share = round(load.cpu.shareOfOneCore + observe.cpu.shareOfOneCore, 4)
  return {
    windowMs: load.windowMs,
    updates: { sent, expected, achievedShare: expected === 0 ? null : round(sent / expected, 4) },
    latencyMs: observe.latencyMs,
    delivery: observe.delivery,
    traffic: {
      frames: load.traffic.frames + observe.traffic.frames,
      bytes: load.traffic.bytes + observe.traffic.bytes,
      framesPerSecond: round(load.traffic.framesPerSecond + observe.traffic.framesPerSecond, 1),
      bytesPerSecond: load.traffic.bytesPerSecond + observe.traffic.bytesPerSecond,
      errorFrames: load.traffic.errorFrames + observe.traffic.errorFrames,
      pings: load.traffic.pings + observe.traffic.pings,
      closes,
      stillOpen: load.traffic.stillOpen + observe.traffic.stillOpen
    },
    cpu: { ms: round(load.cpu.ms + observe.cpu.ms, 1), userMs: round(load.cpu.userMs + observe.cpu.userMs, 1), shareOfOneCore: share, saturated: share > SATURATION },
    loopDelayMs: { p99: Math.max(load.loopDelayMs.p99, observe.loopDelayMs.p99), max: Math.max(load.loopDelayMs.max, observe.loopDelayMs.max), observerP99: observe.loopDelayMs.p99 },
    rssMiB: round(load.rssMiB + observe.rssMiB, 1),
    processes: [...(observe.processes ?? []), ...(load.processes ?? [])],
    nodePairs: observe.nodePairs ?? null,
    interest: observe.interest,
    churn: load.churn
  }
}

/** Extra time for the connections still being opened when the setup deadline passes. */
const CONNECT_GRACE_MS = 15_000

function line (record: RunRecord): string {
  const g = record.generator
  const nodes = record.nodes ?? []
  const from = isShoal(record.target) ? shoalLabel() : ''
  const parts = [`${record.scenario} ${record.target}${from} N=${record.users}${nodes.length > 0 ? ` on ${nodes.length} nodes` : ''}: ${record.pass ? 'PASS' : 'FAIL'}`]
  if (g !== null) {
    if (record.scenario === 'room' || record.scenario === 'crowd') {
      parts.push(`p50/p95/p99/max ${g.latencyMs.p50 ?? '-'}/${g.latencyMs.p95 ?? '-'}/${g.latencyMs.p99 ?? '-'}/${g.latencyMs.max ?? '-'} ms`, `delivery ${g.delivery.ratio ?? '-'}`)
    }
    const pairs = g.nodePairs
    if (pairs !== null && pairs !== undefined) {
      parts.push(`same-node p50/p99 ${pairs.same.latencyMs.p50 ?? '-'}/${pairs.same.latencyMs.p99 ?? '-'} ms, cross-node ${pairs.cross.latencyMs.p50 ?? '-'}/${pairs.cross.latencyMs.p99 ?? '-'} ms`)
    }
    if (g.churn !== null) parts.push(`churn ${g.churn.achievedRate}/s of ${g.churn.targetRate}/s, ${g.churn.failed} failed, welcome p99 ${g.churn.welcomeMs.p99 ?? '-'} ms`)
  }
  if (record.server.cpuShareOfOneCore !== null) {
    parts.push(`server CPU ${percent(record.server.cpuShareOfOneCore)}${nodes.length > 0 ? ` (${nodes.map((node) => `${node.id} ${percent(node.cpuShareOfOneCore)}`).join(' + ')}, on one core)` : ''}`)
  }
  if (record.server.rssMiB !== null) parts.push(`RSS ${record.server.rssMiB} MiB (${record.server.rssPerConnectionKiB ?? '-'} KiB/conn)`)
  if (g !== null) parts.push(`${g.traffic.framesPerSecond} frames/s, ${round(g.traffic.bytesPerSecond / 1e6, 2)} MB/s`, `generator CPU ${round(g.cpu.shareOfOneCore * 100, 1)}%${g.cpu.saturated ? ' SATURATED' : ''}`)
  const redis = record.redis
  if (redis !== null && redis !== undefined) {
    parts.push(`Redis${nodes.length > 0 ? '' : ' (background, unused by this run)'} CPU ${percent(redis.cpuShareOfOneCore)}, in ${kBps(redis.inputBytesPerSecond)}, out ${kBps(redis.outputBytesPerSecond)}`)
  }
  const notes = [...record.failReasons, ...record.warnings]
  return parts.join(', ') + (notes.length > 0 ? `\n    ${notes.join('\n    ')}` : '') + (record.file === '' ? '\n' : `\n    ${record.file}\n`)
}

// ---- cluster ---------------------------------------------------------------------------
/** Added latency: two nodes minus one node (ms); null where either is missing. */
function added (cluster: number | null | undefined, single: number | null | undefined): number | null {
  return cluster === null || cluster === undefined || single === null || single === undefined ? null : round(cluster - single, 2)
}

/**
 * `cluster`: the `room` run on one Shoal node, then the same on two nodes sharing
 * Redis, back to back, Redis read over both windows (with one node its background,
 * since that node keeps its sessions in SQLite). The run's keys are deleted at the
 * end, and when the runner is interrupted.
 */
async function clusterRun (options: RunOptions, redisUrl: string): Promise<ClusterRecord> {
  const started = new Date()
  const prefix = `bench:${randomBytes(6).toString('hex')}:`
  const record: ClusterRecord = {
    kind: 'fanout-cluster',
    version: 1,
    scenario: 'cluster',
    target: options.target,
    users: options.users,
    date: started.toISOString(),
    command: options.command,
    pass: false,
    failReasons: [],
    warnings: [],
    error: null,
    machine: machineInfo(),
    redis: { url: redactRedisUrl(redisUrl), prefix, version: null, pid: null, pidNote: null, keysDeleted: null, cleanupError: null },
    single: null,
    cluster: null,
    addedLatencyMs: { p50: null, p99: null },
    file: ''
  }
  let redis: RedisProbe | null = null
  const cleanup = async (probe: RedisProbe): Promise<void> => {
    try {
      const { deleted, left } = await probe.deleteKeys(prefix)
      record.redis.keysDeleted = deleted
      if (left > 0) record.redis.cleanupError = `${left} keys still under ${prefix} after the cleanup`
    } catch (err) {
      record.redis.cleanupError = err instanceof Error ? err.message : String(err)
    }
  }
  try {
    redis = await RedisProbe.connect(redisUrl)
    const probe = redis
    Object.assign(record.redis, { version: redis.version, pid: redis.pid, pidNote: redis.pidNote })
    process.stdout.write(`cluster ${options.target} N=${options.users}: Redis ${redis.version ?? '?'} at ${record.redis.url} (${redis.pid === null ? `CPU not measured: ${redis.pidNote ?? '?'}` : `pid ${redis.pid}`}), REDIS_PREFIX ${prefix}\n` +
      `  ${pinned ? 'both nodes pinned to core 0 (they share it), the generator to core 1' : 'not pinned'}; first one node, then two\n`)
    record.single = await runOnce({ ...options, cluster: null }, redis)
    process.stdout.write(`  1 node:  ${line(record.single)}`)
    // Interrupted from here on: the nodes are killed, then their keys deleted (a moment later, so that nothing they sent lands after).
    onInterrupt = async () => { await sleep(200); await cleanup(probe) }
    await sleep(1000)
    record.cluster = await runOnce({ ...options, cluster: { redisUrl, prefix } }, redis)
    process.stdout.write(`  2 nodes: ${line(record.cluster)}`)
  } catch (err) {
    record.error = err instanceof Error ? err.message : String(err)
  } finally {
    onInterrupt = null
    if (redis !== null) {
      await cleanup(redis)
      redis.close()
    }
  }
  judgeCluster(record)
  if (interrupted) return record
  mkdirSync(RESULTS_DIR, { recursive: true })
  record.file = join(RESULTS_DIR, `cluster-${record.target}-${record.users}-${record.date.replace(/[:.]/g, '-')}.json`)
  writeFileSync(record.file, JSON.stringify(record, null, 2) + '\n')
  return record
}

/** Pass as `room`, for the two-node run; the single-node run's problems are warnings, since it is the reference. */
function judgeCluster (record: ClusterRecord): void {
  const { single, cluster } = record
  if (record.error !== null) record.failReasons.push(`error: ${record.error}`)
  if (cluster !== null) {
    record.failReasons.push(...cluster.failReasons)
    record.warnings.push(...cluster.warnings.map((warning) => `2 nodes: ${warning}`))
  } else if (record.error === null) {
    record.failReasons.push('the two-node run did not happen')
  }
  if (single !== null) {
    if (!single.pass) record.warnings.push(`the single-node run failed (${single.failReasons.join('; ')}): the added latency compares with a failing run`)
    record.warnings.push(...single.warnings.map((warning) => `1 node: ${warning}`))
  }
  const one = single?.generator?.latencyMs
  const two = cluster?.generator?.latencyMs
  record.addedLatencyMs = { p50: added(two?.p50, one?.p50), p99: added(two?.p99, one?.p99) }
  if (record.redis.pidNote !== null) record.warnings.push(`Redis CPU not measured: ${record.redis.pidNote}`)
  if (record.redis.cleanupError !== null) record.warnings.push(`Redis keys under ${record.redis.prefix}: ${record.redis.cleanupError}`)
  record.pass = record.failReasons.length === 0
}

function clusterLine (record: ClusterRecord): string {
  const one = record.single?.generator ?? null
  const two = record.cluster?.generator ?? null
  const pairs = two?.nodePairs ?? null
  const sign = (value: number | null): string => value === null ? '-' : `${value >= 0 ? '+' : ''}${value}`
  const redis = record.cluster?.redis ?? null
  const head = `cluster ${record.target} N=${record.users}: ${record.pass ? 'PASS' : 'FAIL'}`
  const parts = [head]
  if (record.single !== null || record.cluster !== null) {
    parts.push(
      `1 node p50/p99 ${one?.latencyMs.p50 ?? '-'}/${one?.latencyMs.p99 ?? '-'} ms`,
      `2 nodes p50/p99 ${two?.latencyMs.p50 ?? '-'}/${two?.latencyMs.p99 ?? '-'} ms (same-node p99 ${pairs?.same.latencyMs.p99 ?? '-'}, cross-node p99 ${pairs?.cross.latencyMs.p99 ?? '-'})`,
      `added p50/p99 ${sign(record.addedLatencyMs.p50)}/${sign(record.addedLatencyMs.p99)} ms`,
      `delivery ${two?.delivery.ratio ?? '-'} (same ${pairs?.same.delivery.ratio ?? '-'}, cross ${pairs?.cross.delivery.ratio ?? '-'})`,
      `server CPU ${percent(record.cluster?.server.cpuShareOfOneCore)} on core 0 (${(record.cluster?.nodes ?? []).map((node) => `${node.id} ${percent(node.cpuShareOfOneCore)}`).join(' + ')}; 1 node ${percent(record.single?.server.cpuShareOfOneCore)})`,
      redis === null ? 'Redis -' : `Redis CPU ${percent(redis.cpuShareOfOneCore)}, in ${kBps(redis.inputBytesPerSecond)}, out ${kBps(redis.outputBytesPerSecond)}`
    )
  }
  parts.push(`${record.redis.keysDeleted ?? '?'} keys deleted`)
  const notes = [...record.failReasons, ...record.warnings]
  return parts.join(', ') + (notes.length > 0 ? `\n    ${notes.join('\n    ')}` : '') + (record.file === '' ? '\n' : `\n    ${record.file}\n`)
}

// ---- sweep ---------------------------------------------------------------------------
/** Why a run failed, with who was saturated: the server (its core), the generator (its core), or both. */
function why (record: RunRecord): string {
  const server = record.server.cpuShareOfOneCore
  const generator = record.generator?.cpu
  const load = [
    server !== null ? `server CPU ${Math.round(server * 100)}%` : '',
    generator !== undefined ? `generator CPU ${Math.round(generator.shareOfOneCore * 100)}%` : ''
  ].filter(Boolean).join(', ')
  const caveat = generator?.saturated === true && (server ?? 0) < 0.9 ? ' (generator saturated, server not: the capacity may be higher)' : ''
  return `${record.failReasons.join('; ')}${load === '' ? '' : ` [${load}]`}${caveat}`
}
function disturbed (record: RunRecord): boolean {
  const environment = record.environment
  return environment !== null && (!environment.quietBeforeRun || (environment.otherLoadOnServerCore ?? 0) > OTHER_LOAD_LIMIT)
}

async function sweep (base: Omit<RunOptions, 'target' | 'users'>, targets: TargetName[], from: number, max: number, factor: number, bisect: boolean): Promise<void> {
  const id = new Date().toISOString().replace(/[:.]/g, '-')
  const summary: Record<string, SweepTarget> = {}
  const file = join(RESULTS_DIR, `sweep-${base.scenario}-${id}.json`)
  const save = (): void => {
    mkdirSync(RESULTS_DIR, { recursive: true })
    const sweep: SweepRecord = { kind: 'fanout-sweep', version: 1, id, scenario: base.scenario, command: base.command, date: new Date().toISOString(), from, max, factor, bisect, machine: machineInfo(), targets: summary }
    writeFileSync(file, JSON.stringify(sweep, null, 2) + '\n')
  }
  let step = 0
  for (const target of targets) {
    const entry: SweepTarget = { capacity: null, firstFail: null, limitedBy: '', runs: [] }
    summary[target] = entry
    const attempt = async (users: number): Promise<RunRecord> => {
      let record = saveRun(await runOnce({ ...base, target, users, sweep: { id, step: step++ } }))
      process.stdout.write(line(record))
      if (!record.pass && disturbed(record)) {
        // Another process shared the machine during a failing run: measure once more, keep the second.
        process.stdout.write('    the machine was busy during this failing run: running it again\n')
        await sleep(5000)
        record = saveRun(await runOnce({ ...base, target, users, sweep: { id, step: step++ } }))
        process.stdout.write(line(record))
      }
      entry.runs.push(record.file)
      save()
      await sleep(1000)
      return record
    }
    let users = from
    let lastFail: RunRecord | null = null
    while (users <= max) {
      const record = await attempt(users)
      if (!record.pass) {
        lastFail = record
        break
      }
      entry.capacity = users
      const grown = Math.ceil(users * factor)
      if (users < max && grown > max) users = max
      else users = grown
    }
    if (lastFail !== null) {
      entry.firstFail = lastFail.users
      entry.limitedBy = why(lastFail)
      if (bisect && entry.capacity !== null && lastFail.users - entry.capacity > Math.max(2, entry.capacity * 0.1)) {
        const middle = Math.round((entry.capacity + lastFail.users) / 2)
        const record = await attempt(middle)
        if (record.pass) entry.capacity = middle
        else {
          entry.firstFail = middle
          entry.limitedBy = why(record)
        }
      }
    } else {
      entry.limitedBy = `passed up to --max ${max}`
    }
    save()
  }
  process.stdout.write(`\nSweep ${base.scenario} (${file}):\n`)
  for (const [target, entry] of Object.entries(summary)) {
    process.stdout.write(`  ${target.padEnd(13)} capacity ${entry.capacity === null ? `< ${from}` : entry.capacity}${entry.firstFail !== null ? ` (fails at ${entry.firstFail}: ${entry.limitedBy})` : ` (${entry.limitedBy})`}\n`)
  }
}

// ---- main ----------------------------------------------------------------------------
async function passthroughUpdateCpu (args: string[]): Promise<number> {
  const child = track(spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench', 'update-cpu.ts'), ...args], { cwd: ROOT, stdio: 'inherit' }))
  return await new Promise((resolve) => child.once('exit', (code) => resolve(code ?? 1)))
}

async function main (argv: string[]): Promise<number> {
  if (argv[0] === 'update-cpu') return await passthroughUpdateCpu(argv.slice(1))
  if (isScenarioName(argv[0])) return await scenarioMain(argv)
  const { values, positionals } = parseArgs({ args: argv, options: optionSpec, allowPositionals: true })
  if (values.help || positionals.length === 0) {
    process.stdout.write(usage)
    return 0
  }
  const isSweep = positionals[0] === 'sweep'
  // `cluster` is `room`, on one node and then on two.
  const isCluster = positionals[0] === 'cluster'
  const scenario = isSweep ? positionals[1] : isCluster ? 'room' : positionals[0]
  if (values['redis-url'] !== undefined && !isCluster) throw new UsageError('--redis-url: only with cluster')
  if ((values.scale || values.baseline !== undefined) && !isCluster) throw new UsageError('--scale and --baseline: only with cluster')
  if (values.baseline !== undefined && !values.scale) throw new UsageError('--baseline: only with cluster --scale')
  if (isCluster && values.scale) {
    // Its layout is fixed (4 nodes, 8 rooms of 25): the room run's sizing options do not apply.
    for (const name of ['users', 'target', 'observers']) if (argv.some((arg) => arg === `--${name}` || arg.startsWith(`--${name}=`))) throw new UsageError(`--${name}: not with cluster --scale (4 nodes, 8 rooms of 25 users)`)
    pinRunner()
    return await scaleMain({
      seconds: values.seconds === undefined ? 10 : positiveNumber('seconds', values.seconds),
      warmup: positiveNumber('warmup', values.warmup),
      hz: positiveNumber('hz', values.hz),
      tickHz: positiveNumber('tick-hz', values['tick-hz']),
      heartbeatMs: positiveNumber('heartbeat-ms', values['heartbeat-ms'], true),
      redisUrl: values['redis-url'] ?? DEFAULT_REDIS_URL,
      baseline: values.baseline ?? null,
      command: `npm run bench -- ${argv.join(' ')}`
    }, (cleanup) => { onInterrupt = cleanup })
  }
  if (!isScenario(scenario)) throw new UsageError(`unknown scenario ${JSON.stringify(scenario)}: expected one of ${SCENARIOS.join(', ')}`)
  const observers = positiveNumber('observers', values.observers, true)
  if (observers > 30) throw new UsageError('--observers: at most 30')
  const base = {
    scenario,
    seconds: values.seconds === undefined ? DEFAULT_SECONDS[scenario] : positiveNumber('seconds', values.seconds),
    warmup: positiveNumber('warmup', values.warmup),
    hz: positiveNumber('hz', values.hz),
    observers,
    tickHz: positiveNumber('tick-hz', values['tick-hz']),
    heartbeatMs: positiveNumber('heartbeat-ms', values['heartbeat-ms'], true),
    radius: positiveNumber('radius', values.radius),
    neighbours: positiveNumber('neighbours', values.neighbours),
    roomSize: positiveNumber('room-size', values['room-size'], true),
    background: positiveNumber('background', values.background, true),
    concurrency: positiveNumber('concurrency', values.concurrency, true),
    setupSeconds: values['setup-seconds'] === undefined ? 0 : positiveNumber('setup-seconds', values['setup-seconds']),
    command: `npm run bench -- ${argv.join(' ')}`,
    sweep: null,
    cluster: null
  }
  pinRunner()
  if (isSweep) {
    const targets = (values.targets ?? '').split(',').map((name) => name.trim()).filter(Boolean)
    for (const name of targets) if (!isTarget(name)) throw new UsageError(`unknown target ${JSON.stringify(name)}: expected ${TARGETS.join(', ')}`)
    const factor = positiveNumber('factor', values.factor)
    if (factor <= 1) throw new UsageError('--factor: expected a number above 1')
    await sweep(base, targets as TargetName[], positiveNumber('from', values.from, true), positiveNumber('max', values.max, true), factor, !values['no-bisect'])
    return 0
  }
  if (isCluster) {
    const target = values.target ?? 'shoal'
    if (!isTarget(target) || !isShoal(target)) throw new UsageError('cluster: --target shoal or shoal-compact (the cluster is Shoal\'s own)')
    const users = values.users === undefined ? DEFAULT_USERS.room : positiveNumber('users', values.users, true)
    const record = await clusterRun({ ...base, target, users }, values['redis-url'] ?? DEFAULT_REDIS_URL)
    process.stdout.write(clusterLine(record))
    return record.error === null && record.single?.error === null && record.cluster?.error === null ? 0 : 1
  }
  if (!isTarget(values.target)) throw new UsageError(`--target: expected one of ${TARGETS.join(', ')}`)
  const users = values.users === undefined ? DEFAULT_USERS[scenario] : positiveNumber('users', values.users, true)
  const record = saveRun(await runOnce({ ...base, target: values.target, users }))
  process.stdout.write(line(record))
  return record.error === null ? 0 : 1
}

try {
  process.exitCode = await main(process.argv.slice(2))
} catch (err) {
  if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') === true) {
    process.stderr.write(`${(err as Error).message}\n\n${usage}`)
    process.exitCode = 2
  } else {
    process.stderr.write(`bench failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
    process.exitCode = 1
  }
} finally {
  killAll()
}
process.exit()
