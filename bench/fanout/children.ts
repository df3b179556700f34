/**
 * The child processes of the benchmark runner (bench/fanout/run.ts and the
 * scenarios of bench/scenarios/): each one tracked and killed with the runner;
 * servers pinned to core 0 and load generators to core 1 (taskset, on two cores
 * or more), all started with the orphan guard; a promise-based IPC inbox per
 * generator; the Shoal server built and started from SHOAL_ROOT; and how quiet
 * the machine was before a run.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import {
  canPin, exited, ORPHAN_GUARD, pinProcess, ROOT, round, SHOAL_ROOT, shoalRevision, shoalServerCommand, waitForHealth, waitForQuiet, type ShoalCommand
} from '../lib/proc.js'
import type { GeneratorMessage, GeneratorRole, RunnerMessage } from './protocol.js'
import type { RunRecord } from './records.js'

const children = new Set<ChildProcess>()
export function track (child: ChildProcess): ChildProcess {
  children.add(child)
  child.once('exit', () => children.delete(child))
  return child
}
export function killAll (): void {
  for (const child of children) if (!exited(child)) child.kill('SIGKILL')
}
process.on('exit', killAll)

export const pinned = canPin()

/** Pins the runner itself to core 1, with the load (the server has core 0 to itself). */
export function pinRunner (): void {
  if (!pinned) process.stderr.write('warning: fewer than 2 cores or no taskset: server and generator are not pinned\n')
  else if (!pinProcess(process.pid, 1)) process.stderr.write('warning: could not pin the runner to core 1\n')
}
/** The command that runs node with `args` on `core` (unpinned where pinning is not possible). */
export const nodeArgv = (core: number, args: string[]): [string, string[]] => pinned ? ['taskset', ['-c', String(core), process.execPath, ...args]] : [process.execPath, args]
const guard = ['--import', pathToFileURL(ORPHAN_GUARD).href]
/** `--cpu-prof` into the directory named by an environment variable, when it is set. */
const profileArgs = (variable: string): string[] => process.env[variable] === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${process.env[variable]}`]

/** A load generator on core 1, with a promise-based inbox for its IPC messages. */
export class Generator<Out extends { ev: string } = GeneratorMessage, In = RunnerMessage, Role extends string = GeneratorRole> {
  readonly child: ChildProcess
  private readonly inbox: Out[] = []
  private waiting: ((message: Out | Error) => void) | null = null

  constructor (readonly role: Role, script = join(ROOT, 'bench', 'fanout', 'generator.ts')) {
    const [command, argv] = nodeArgv(1, [...guard, ...profileArgs('BENCH_GENERATOR_PROFILE'), '--import', 'tsx', script])
    this.child = track(spawn(command, argv, { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }))
    this.child.on('message', (message: Out) => this.deliver(message))
    this.child.on('exit', (code, signal) => this.deliver(new Error(`${role} generator exited (code ${String(code)}, signal ${String(signal)})`)))
  }

  private deliver (message: Out | Error): void {
    if (this.waiting !== null) {
      const waiting = this.waiting
      this.waiting = null
      waiting(message)
    } else if (!(message instanceof Error)) {
      this.inbox.push(message)
    }
  }

  send (message: In): void {
    if (this.child.connected) this.child.send(message as object)
  }

  /** The next message, which must be `ev`; fails on timeout, on the generator's `error` or exit. */
  async next<E extends Out['ev']> (ev: E, timeoutMs: number): Promise<Extract<Out, { ev: E }>> {
    const queued = this.inbox.shift()
    const message = queued ?? await new Promise<Out | Error>((resolve) => {
      const timer = setTimeout(() => { this.waiting = null; resolve(new Error(`no '${ev}' from the ${this.role} generator within ${Math.round(timeoutMs / 1000)} s`)) }, timeoutMs)
      this.waiting = (value) => { clearTimeout(timer); resolve(value) }
    })
    if (message instanceof Error) throw message
    if (message.ev === 'error') throw new Error(`${this.role} generator: ${(message as { message?: string }).message ?? '?'}`)
    if (message.ev !== ev) throw new Error(`${this.role} generator sent '${message.ev}', expected '${ev}'`)
    return message as Extract<Out, { ev: E }>
  }

  async stop (): Promise<void> {
    if (exited(this.child)) return
    const done = new Promise<void>((resolve) => this.child.once('exit', () => resolve()))
    this.send({ cmd: 'stop' } as In)
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000)
    await done
    clearTimeout(timer)
  }
}

export interface StartedServer { child: ChildProcess, pid: number, log: () => string }

/** Starts a server (node `args`, pinned to core 0) and waits until its /health answers. */
export async function startServer (args: string[], cwd: string, env: NodeJS.ProcessEnv, port: number, name: string, healthTimeoutMs?: number): Promise<StartedServer> {
  const [command, argv] = nodeArgv(0, [...guard, ...profileArgs('BENCH_SERVER_PROFILE'), ...args])
  const child = track(spawn(command, argv, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] }))
  let log = ''
  const keep = (chunk: Buffer): void => { log = (log + chunk.toString()).slice(-4000) }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  if (child.pid === undefined) throw new Error(`could not start the ${name}`)
  await waitForHealth(`http://127.0.0.1:${port}/health`, child, healthTimeoutMs)
  return { child, pid: child.pid, log: () => log }
}

/** The environment variables that make the standalone server a cluster node: never inherited from the runner's environment. */
export const CLUSTER_ENV = ['REDIS_URL', 'REDIS_PREFIX', 'NODE_ID'] as const

/** The runner's environment without the cluster variables, plus `env`. */
export function singleNodeEnv (env: Record<string, string>): NodeJS.ProcessEnv {
  const inherited = { ...process.env }
  for (const name of CLUSTER_ENV) Reflect.deleteProperty(inherited, name)
  return { ...inherited, ...env }
}

/**
 * What every Shoal server of the harness gets: the standalone server as users run it
 * (sessions in SQLite) in a data directory of the run's own, no demo, no CSV feeds,
 * and room for every connection the clients open from one source address.
 */
export function shoalEnv (port: number): Record<string, string> {
  return {
    PORT: String(port),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    DEMO: 'false',
    DATA_DIR: mkdtempSync(join(tmpdir(), 'shoal-bench-data-')),
    CSV_FEEDS: '',
    MAX_CONNECTIONS_PER_ADDRESS: '1000000'
  }
}

/** Every client comes from a few 127.x addresses: the per-address register budget must not be what a run measures. */
export const OPEN_REGISTER = { REGISTER_LIMIT: '10000000', REGISTER_WINDOW_MS: '60000' } as const

/** A Shoal node under load: the tick and heartbeat asked for, and rate limits that movers at `hz` never reach. */
export function loadedShoalEnv (port: number, options: { tickHz: number, heartbeatMs: number, hz: number }): Record<string, string> {
  const budget = Math.max(60, options.hz * 3)
  return {
    ...shoalEnv(port),
    TICK_HZ: String(options.tickHz),
    HEARTBEAT_MS: String(options.heartbeatMs),
    MESSAGES_PER_SECOND: String(budget),
    MESSAGE_BURST: String(budget * 2),
    ...OPEN_REGISTER
  }
}

let build: ShoalCommand | null = null
/** The Shoal server (SHOAL_ROOT, built on first use) and where it came from, for the record. */
export function shoalBuild (): ShoalCommand & { revision: { commit: string, dirty: boolean } | null } {
  build ??= shoalServerCommand()
  return { ...build, revision: shoalRevision(build.root) }
}

/** Which Shoal a run measured, for its record. */
export function shoalSource (): { root: string, entry: string, compiled: boolean, revision: { commit: string, dirty: boolean } | null } {
  const { root, entry, compiled, revision } = shoalBuild()
  return { root, entry, compiled, revision }
}

/** ` (from /other/checkout @commit)` when the Shoal measured is not this repository's, for summary lines; '' otherwise. */
export function shoalLabel (): string {
  if (SHOAL_ROOT === ROOT) return ''
  const revision = shoalRevision(SHOAL_ROOT)
  return ` (from ${SHOAL_ROOT}${revision === null ? '' : ` @${revision.commit}${revision.dirty ? '+' : ''}`})`
}

/** Waits (up to 60 s) for a quiet machine: someone else's test run would be measured too. */
export async function quietEnvironment (): Promise<NonNullable<RunRecord['environment']>> {
  const quiet = await waitForQuiet(0.15, 60_000)
  return {
    quietBeforeRun: quiet.quiet,
    busyBeforeRun: quiet.busy,
    waitedForQuietMs: quiet.waitedMs,
    loadAverage: loadavg().map((value) => round(value, 2)),
    coreBusyDuringWindow: [],
    otherLoadOnServerCore: null
  }
}
