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
 * A sweep (`sweep <scenario>`) runs each target at growing N (×1.5 from --from)
 * until its first failing N, then bisects once between the last pass and that
 * failure; capacity = the largest passing N (room and crowd: p99 < 100 ms and
 * delivery ≥ 0.99). It writes bench/results/sweep-<scenario>-<timestamp>.json
 * listing its runs; bench/report.ts turns the latest sweeps into docs/performance.md.
 *
 * Every child is killed when a run ends, fails or overruns its time budget, and
 * when this process is interrupted; the children also exit on their own when this
 * process dies (bench/lib/orphan-guard.mjs, and the generator's IPC disconnect).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import {
  canPin, clockTicks, cpuBusyShares, cpuJiffies, exited, freePort, machineInfo, ORPHAN_GUARD, peakRssKiB, pinProcess, processTicks,
  RESULTS_DIR, ROOT, round, rssKiB, shoalServerCommand, sleep, stopChild, waitForHealth, waitForQuiet, type ShoalCommand
} from '../lib/proc.js'
import {
  isShoal, SATURATION, SCENARIOS, TARGETS, type GeneratorConfig, type GeneratorMessage, type GeneratorResult,
  type GeneratorRole, type RunnerMessage, type Scenario, type SetupReport, type TargetName
} from './protocol.js'
import type { RunRecord, SweepRecord, SweepTarget } from './records.js'
import { interestVerdict } from './verdicts.js'

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

Capacity sweep (largest N with p99 < 100 ms and delivery >= 0.99):
  npm run bench -- sweep <scenario> [--targets ${TARGETS.join(',')}] [--from 50] [--max 3000]
                   [--factor 1.5] [--no-bisect] [--seconds S] ...the options above

The existing single-scenario bench (CPU per 1,000 updates):
  npm run bench -- update-cpu [--users 100] [--hz 10] [--seconds 10]

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
  help: { type: 'boolean', short: 'h', default: false }
} as const

function positiveNumber (name: string, raw: string | undefined, integer = false): number {
  const value = Number(raw)
  if (!(value > 0) || (integer && !Number.isInteger(value))) throw new UsageError(`--${name}: expected a positive ${integer ? 'integer' : 'number'}, got ${JSON.stringify(raw)}`)
  return value
}

class UsageError extends Error {}

function isScenario (value: string | undefined): value is Scenario {
  return (SCENARIOS as readonly string[]).includes(value ?? '')
}
function isTarget (value: string | undefined): value is TargetName {
  return (TARGETS as readonly string[]).includes(value ?? '')
}

// ---- children -----------------------------------------------------------------
const children = new Set<ChildProcess>()
function track (child: ChildProcess): ChildProcess {
  children.add(child)
  child.once('exit', () => children.delete(child))
  return child
}
function killAll (): void {
  for (const child of children) if (!exited(child)) child.kill('SIGKILL')
}
process.on('exit', killAll)
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    process.stderr.write(`\n${signal}: stopping every child process\n`)
    killAll()
    process.exit(130)
  })
}

const pinned = canPin()
const nodeArgv = (args: string[]): [string, string[]] => pinned ? ['taskset', ['-c', '0', process.execPath, ...args]] : [process.execPath, args]
const guard = ['--import', pathToFileURL(ORPHAN_GUARD).href]

let shoalBuild: ShoalCommand | null = null

interface StartedTarget { child: ChildProcess, pid: number, env: Record<string, string>, compiled: boolean, log: () => string }

async function startTarget (options: RunOptions, port: number): Promise<StartedTarget> {
  const env: Record<string, string> = { PORT: String(port), HOST: '127.0.0.1' }
  let args: string[]
  let compiled = true
  if (isShoal(options.target)) { // shoal-compact: the same server and settings; the clients choose the encoding
    shoalBuild ??= shoalServerCommand()
    args = shoalBuild.args
    compiled = shoalBuild.compiled
    const budget = Math.max(60, options.hz * 3)
    Object.assign(env, {
      LOG_LEVEL: 'warn',
      DEMO: 'false',
      TICK_HZ: String(options.tickHz),
      HEARTBEAT_MS: String(options.heartbeatMs),
      MESSAGES_PER_SECOND: String(budget),
      MESSAGE_BURST: String(budget * 2),
      // Every client comes from 127.0.0.x: the per-address register budget must not be what the run measures.
      REGISTER_LIMIT: '10000000',
      REGISTER_WINDOW_MS: '60000'
    })
    if (options.scenario === 'crowd') env.INTEREST_RADIUS = String(options.radius)
  } else {
    args = ['--import', 'tsx', join(ROOT, 'bench', 'targets', `${options.target}.ts`)]
  }
  const profile = process.env.BENCH_SERVER_PROFILE === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_SERVER_PROFILE}`]
  const [command, argv] = nodeArgv([...guard, ...profile, ...args])
  const child = track(spawn(command, argv, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] }))
  let log = ''
  const keep = (chunk: Buffer): void => { log = (log + chunk.toString()).slice(-4000) }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  if (child.pid === undefined) throw new Error(`could not start the ${options.target} server`)
  await waitForHealth(`http://127.0.0.1:${port}/health`, child)
  return { child, pid: child.pid, env, compiled, log: () => log }
}

/** The generator, with a promise-based inbox for its IPC messages. */
class Generator {
  readonly child: ChildProcess
  private readonly inbox: GeneratorMessage[] = []
  private waiting: ((message: GeneratorMessage | Error) => void) | null = null

  constructor (readonly role: GeneratorRole) {
    const args = [...guard, ...(process.env.BENCH_GENERATOR_PROFILE === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_GENERATOR_PROFILE}`]), '--import', 'tsx', join(ROOT, 'bench', 'fanout', 'generator.ts')]
    const [command, argv] = pinned ? ['taskset', ['-c', '1', process.execPath, ...args]] : [process.execPath, args]
    this.child = track(spawn(command, argv, { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }))
    this.child.on('message', (message: GeneratorMessage) => this.deliver(message))
    this.child.on('exit', (code, signal) => this.deliver(new Error(`${role} generator exited (code ${String(code)}, signal ${String(signal)})`)))
  }

  private deliver (message: GeneratorMessage | Error): void {
    if (this.waiting !== null) {
      const waiting = this.waiting
      this.waiting = null
      waiting(message)
    } else if (!(message instanceof Error)) {
      this.inbox.push(message)
    }
  }

  send (message: RunnerMessage): void {
    if (this.child.connected) this.child.send(message)
  }

  /** The next message, which must be `ev`; fails on timeout, on the generator's `error` or exit. */
  async next<E extends GeneratorMessage['ev']> (ev: E, timeoutMs: number): Promise<Extract<GeneratorMessage, { ev: E }>> {
    const queued = this.inbox.shift()
    const message = queued ?? await new Promise<GeneratorMessage | Error>((resolve) => {
      const timer = setTimeout(() => { this.waiting = null; resolve(new Error(`no '${ev}' from the ${this.role} generator within ${Math.round(timeoutMs / 1000)} s`)) }, timeoutMs)
      this.waiting = (value) => { clearTimeout(timer); resolve(value) }
    })
    if (message instanceof Error) throw message
    if (message.ev === 'error') throw new Error(`${this.role} generator: ${message.message}`)
    if (message.ev !== ev) throw new Error(`${this.role} generator sent '${message.ev}', expected '${ev}'`)
    return message as Extract<GeneratorMessage, { ev: E }>
  }

  async stop (): Promise<void> {
    if (exited(this.child)) return
    const done = new Promise<void>((resolve) => this.child.once('exit', () => resolve()))
    this.send({ cmd: 'stop' })
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000)
    await done
    clearTimeout(timer)
  }
}

// ---- one run ---------------------------------------------------------------------
/**
 * Core 0 busy beyond the server's own CPU above this share means someone else ran
 * there during the window (this machine idles at about 8 to 10% busy per core:
 * kernel threads, the services it keeps running).
 */
const OTHER_LOAD_LIMIT = 0.2

function crowdArea (options: RunOptions): number {
  return round(options.radius * Math.sqrt((Math.PI * options.users) / options.neighbours), 1)
}

function generatorConfig (options: RunOptions, port: number, epochMs: number): Omit<GeneratorConfig, 'role'> {
  const crowd = options.scenario === 'crowd'
  const total = options.scenario === 'churn' ? options.background + options.users * (options.warmup + options.seconds + 3) : options.users
  return {
    scenario: options.scenario,
    target: options.target,
    wire: options.target === 'socketio' ? 'socketio' : 'json',
    encoding: options.target === 'shoal-compact' ? 'compact' : 'json',
    baseUrl: `ws://127.0.0.1:${port}`,
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
    const closes = Object.entries(generator.traffic.closes)
    if (closes.length > 0) warnings.push(`connections closed by the server: ${closes.map(([code, n]) => `${code} ×${n}`).join(', ')}`)
  }
  const environment = record.environment
  if (environment !== null) {
    if (!environment.quietBeforeRun) warnings.push(`the machine was busy before the run (CPU busy ${environment.busyBeforeRun.map((share) => `${Math.round(share * 100)}%`).join(', ')}): other processes may have been measured too`)
    if ((environment.otherLoadOnServerCore ?? 0) > OTHER_LOAD_LIMIT) warnings.push(`core 0 was ${Math.round((environment.otherLoadOnServerCore ?? 0) * 100)}% busy beyond the server's own CPU during the window (another process, or kernel network work)`)
  }
  if (record.interest?.honoured === false) warnings.push(`INTEREST_RADIUS not honoured: ${record.interest.note}`)
  record.pass = reasons.length === 0
}

async function runOnce (options: RunOptions): Promise<RunRecord> {
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
  let target: StartedTarget | null = null
  let generators: Generator[] = []
  let watchdog: NodeJS.Timeout | null = null
  let stopping = false
  try {
    // Someone else's test run on this shared machine would be measured too: wait for a quiet moment first.
    const quiet = await waitForQuiet(0.15, 60_000)
    const environment = record.environment = {
      quietBeforeRun: quiet.quiet,
      busyBeforeRun: quiet.busy,
      waitedForQuietMs: quiet.waitedMs,
      loadAverage: loadavg().map((value) => round(value, 2)),
      coreBusyDuringWindow: [] as number[],
      otherLoadOnServerCore: null as number | null
    }
    const port = await freePort()
    target = await startTarget(options, port)
    const server = target
    const serverExited = new Promise<never>((_resolve, reject) => {
      server.child.once('exit', (code, signal) => {
        if (stopping) return
        record.server.exitedDuringRun = true
        reject(new Error(`the ${options.target} server exited during the run (code ${String(code)}, signal ${String(signal)})`))
      })
    })
    serverExited.catch(() => {})
    await sleep(300)
    const baselineKiB = rssKiB(server.pid)
    record.server.rssBaselineMiB = round(baselineKiB / 1024, 1)

    const epochMs = Date.now()
    const config = generatorConfig(options, port, epochMs)
    record.config = {
      ...options,
      command: undefined,
      sweep: undefined,
      pinned,
      compiled: server.compiled,
      serverEnv: server.env,
      encoding: config.encoding,
      generator: { ...config, baseUrl: undefined },
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
    const ticks0 = processTicks(server.pid)
    const cores0 = cpuJiffies()
    const wall0 = performance.now()
    broadcast({ cmd: 'window-start' })
    await race(sleep(options.seconds * 1000))
    const ticks1 = processTicks(server.pid)
    const cores1 = cpuJiffies()
    const wallMs = performance.now() - wall0
    broadcast({ cmd: 'window-end' })
    const rss = rssKiB(server.pid)
    const loaded = await race(load.next('result', 25_000))
    let observed = null
    if (observe !== null) {
      observe.send({ cmd: 'sent-log', log: loaded.sentLog ?? { senders: [] } })
      observed = await race(observe.next('result', 25_000))
    }
    record.generator = mergeResults(loaded.result, observed?.result ?? null)
    const cpuMs = ((ticks1 - ticks0) * 1000) / clockTicks()
    record.server.cpuMs = round(cpuMs, 1)
    record.server.cpuShareOfOneCore = round(cpuMs / wallMs, 4)
    environment.coreBusyDuringWindow = cpuBusyShares(cores0, cores1)
    if (pinned) environment.otherLoadOnServerCore = round(Math.max(0, (environment.coreBusyDuringWindow[0] ?? 0) - record.server.cpuShareOfOneCore), 4)
    record.server.rssMiB = round(rss / 1024, 1)
    record.server.rssPeakMiB = round(peakRssKiB(server.pid) / 1024, 1)
    const connections = setup.registered
    record.server.rssPerConnectionKiB = connections > 0 && options.scenario !== 'churn' ? round((rss - baselineKiB) / connections, 2) : null
    try {
      const response = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(3000) })
      record.server.health = await response.json()
    } catch {}
  } catch (err) {
    record.error = err instanceof Error ? err.message : String(err)
    if (target !== null) record.server.logTail = target.log().slice(-2000) || null
  } finally {
    if (watchdog !== null) clearTimeout(watchdog)
    if (target !== null && exited(target.child)) record.server.exitedDuringRun = true
    stopping = true
    await Promise.all(generators.map(async (gen) => await gen.stop()))
    if (target !== null) {
      await stopChild(target.child, 5000)
    }
  }
  record.interest = options.scenario === 'crowd' ? interestVerdict(options.target, options.users, options.radius, record.generator) : null
  judge(options, record)
  mkdirSync(RESULTS_DIR, { recursive: true })
  record.file = join(RESULTS_DIR, `${options.scenario}-${options.target}-${options.users}-${started.toISOString().replace(/[:.]/g, '-')}.json`)
  writeFileSync(record.file, JSON.stringify(record, null, 2) + '\n')
  return record
}

function mergeSetups (setups: SetupReport[]): SetupReport {
  const errors: Record<string, number> = {}
  for (const setup of setups) for (const [why, n] of Object.entries(setup.errors)) errors[why] = (errors[why] ?? 0) + n
  return {
    target: setups.reduce((sum, setup) => sum + setup.target, 0),
    registered: setups.reduce((sum, setup) => sum + setup.registered, 0),
    failed: setups.reduce((sum, setup) => sum + setup.failed, 0),
    complete: setups.every((setup) => setup.complete),
    ms: Math.max(...setups.map((setup) => setup.ms)),
    errors
  }
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
    interest: observe.interest,
    churn: load.churn
  }
}

/** Extra time for the connections still being opened when the setup deadline passes. */
const CONNECT_GRACE_MS = 15_000

function line (record: RunRecord): string {
  const g = record.generator
  const parts = [`${record.scenario} ${record.target} N=${record.users}: ${record.pass ? 'PASS' : 'FAIL'}`]
  if (g !== null) {
    if (record.scenario === 'room' || record.scenario === 'crowd') {
      parts.push(`p50/p95/p99/max ${g.latencyMs.p50 ?? '-'}/${g.latencyMs.p95 ?? '-'}/${g.latencyMs.p99 ?? '-'}/${g.latencyMs.max ?? '-'} ms`, `delivery ${g.delivery.ratio ?? '-'}`)
    }
    if (g.churn !== null) parts.push(`churn ${g.churn.achievedRate}/s of ${g.churn.targetRate}/s, ${g.churn.failed} failed, welcome p99 ${g.churn.welcomeMs.p99 ?? '-'} ms`)
  }
  if (record.server.cpuShareOfOneCore !== null) parts.push(`server CPU ${round(record.server.cpuShareOfOneCore * 100, 1)}%`)
  if (record.server.rssMiB !== null) parts.push(`RSS ${record.server.rssMiB} MiB (${record.server.rssPerConnectionKiB ?? '-'} KiB/conn)`)
  if (g !== null) parts.push(`${g.traffic.framesPerSecond} frames/s, ${round(g.traffic.bytesPerSecond / 1e6, 2)} MB/s`, `generator CPU ${round(g.cpu.shareOfOneCore * 100, 1)}%${g.cpu.saturated ? ' SATURATED' : ''}`)
  const notes = [...record.failReasons, ...record.warnings]
  return parts.join(', ') + (notes.length > 0 ? `\n    ${notes.join('\n    ')}` : '') + `\n    ${record.file}\n`
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
      let record = await runOnce({ ...base, target, users, sweep: { id, step: step++ } })
      process.stdout.write(line(record))
      if (!record.pass && disturbed(record)) {
        // Another process shared the machine during a failing run: measure once more, keep the second.
        process.stdout.write('    the machine was busy during this failing run: running it again\n')
        await sleep(5000)
        record = await runOnce({ ...base, target, users, sweep: { id, step: step++ } })
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
  const { values, positionals } = parseArgs({ args: argv, options: optionSpec, allowPositionals: true })
  if (values.help || positionals.length === 0) {
    process.stdout.write(usage)
    return 0
  }
  const isSweep = positionals[0] === 'sweep'
  const scenario = isSweep ? positionals[1] : positionals[0]
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
    sweep: null
  }
  if (pinned) {
    if (!pinProcess(process.pid, 1)) process.stderr.write('warning: could not pin the runner to core 1\n')
  } else {
    process.stderr.write('warning: fewer than 2 cores or no taskset: server and generator are not pinned\n')
  }
  if (isSweep) {
    const targets = (values.targets ?? '').split(',').map((name) => name.trim()).filter(Boolean)
    for (const name of targets) if (!isTarget(name)) throw new UsageError(`unknown target ${JSON.stringify(name)}: expected ${TARGETS.join(', ')}`)
    const factor = positiveNumber('factor', values.factor)
    if (factor <= 1) throw new UsageError('--factor: expected a number above 1')
    await sweep(base, targets as TargetName[], positiveNumber('from', values.from, true), positiveNumber('max', values.max, true), factor, !values['no-bisect'])
    return 0
  }
  if (!isTarget(values.target)) throw new UsageError(`--target: expected one of ${TARGETS.join(', ')}`)
  const users = values.users === undefined ? DEFAULT_USERS[scenario] : positiveNumber('users', values.users, true)
  const record = await runOnce({ ...base, target: values.target, users })
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
