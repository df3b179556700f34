/**
 * What the scenario runners (bigroom.ts, restart.ts, hostile.ts) share: the Shoal
 * server as a process that can be stopped and started again on the same port and
 * data directory, /proc measurements over a stretch of a run, the client
 * processes (./clients.ts, pinned to core 1), the frame of a run (quiet machine,
 * server up, body, everything stopped whatever happens), the common verdicts,
 * and the record's file and summary line.
 */
import type { ChildProcess } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import {
  clockTicks, cpuBusyShares, cpuJiffies, exited, freePort, machineInfo, peakRssKiB, processTicks, RESULTS_DIR, ROOT, round, rssKiB, sleep, writtenBytes
} from '../lib/proc.js'
import {
  Generator, pinned, quietEnvironment, shoalBuild, shoalEnv, shoalLabel, shoalSource, singleNodeEnv, startServer, type StartedServer
} from '../fanout/children.js'
import { SATURATION, type SetupReport } from '../fanout/protocol.js'
import type { ClientsCommand, ClientsConfig, ClientsEvent, ClientsResult, ClientsRole, CommonConfig, ProcessFigures, ScenarioName } from './protocol.js'
import type { ScenarioRecordBase, ServerWindow, TimelineSample } from './records.js'

/** Core 0 busy beyond the server above this share: someone else ran there (as in bench/fanout/run.ts). */
const OTHER_LOAD_LIMIT = 0.2

/** The standalone Shoal server of a run: one port, one data directory, however many times it is restarted. */
export class ShoalServer {
  private started: StartedServer | null = null
  private stopping = false
  /** Rejects when the current process exits without being asked to (and `exitedUnexpectedly` is set). */
  crashed: Promise<never> = new Promise(() => {})
  exitedUnexpectedly = false

  constructor (readonly env: Record<string, string>, readonly port: number) {}

  get pid (): number { return this.started?.pid ?? 0 }
  get child (): ChildProcess | null { return this.started?.child ?? null }
  log (): string { return this.started?.log() ?? '' }

  async start (healthTimeoutMs?: number): Promise<void> {
    const build = shoalBuild()
    this.stopping = false
    const started = this.started = await startServer(build.args, build.root, singleNodeEnv(this.env), this.port, 'shoal server', healthTimeoutMs)
    this.crashed = new Promise((_resolve, reject) => {
      started.child.once('exit', (code, signal) => {
        if (this.stopping) return
        this.exitedUnexpectedly = true
        reject(new Error(`the shoal server exited during the run (code ${String(code)}, signal ${String(signal)})`))
      })
    })
    this.crashed.catch(() => {})
  }

  /** SIGTERM, then SIGKILL after `graceMs`: how long it took, how it ended, and whether it ended by itself. */
  async stop (graceMs: number): Promise<{ stopMs: number, exitCode: number | null, exitSignal: string | null, graceful: boolean }> {
    const child = this.child
    const t0 = performance.now()
    let killed = false
    if (child !== null && !exited(child)) {
      this.stopping = true
      const done = new Promise<void>((resolve) => child.once('exit', () => resolve()))
      child.kill('SIGTERM')
      const timer = setTimeout(() => { killed = true; child.kill('SIGKILL') }, graceMs)
      await done
      clearTimeout(timer)
    }
    return { stopMs: Math.round(performance.now() - t0), exitCode: child?.exitCode ?? null, exitSignal: child?.signalCode ?? null, graceful: !killed }
  }
}

/** The server's CPU, bytes written and core 0's load from construction to `end()`. */
export class ServerMeter {
  private readonly ticks: number
  private readonly written: number | null
  private readonly cores = cpuJiffies()
  private readonly wall = performance.now()

  constructor (private readonly pid: number) {
    this.ticks = processTicks(pid)
    this.written = writtenBytes(pid)
  }

  end (): ServerWindow {
    const ms = performance.now() - this.wall
    const cpuMs = ((processTicks(this.pid) - this.ticks) * 1000) / clockTicks()
    const written = writtenBytes(this.pid)
    const share = cpuMs / ms
    const core0 = cpuBusyShares(this.cores, cpuJiffies())[0] ?? 0
    return {
      ms: Math.round(ms),
      cpuMs: round(cpuMs, 1),
      cpuShareOfOneCore: round(share, 4),
      bytesOutPerSecond: written === null || this.written === null ? null : Math.round(((written - this.written) * 1000) / ms),
      rssMiB: round(rssKiB(this.pid) / 1024, 1),
      rssPeakMiB: round(peakRssKiB(this.pid) / 1024, 1),
      otherLoadOnServerCore: pinned ? round(Math.max(0, core0 - share), 4) : null
    }
  }
}

/** The server's RSS and CPU share every second until `stop()`. */
export class Timeline {
  readonly samples: TimelineSample[] = []
  private readonly timer: NodeJS.Timeout

  constructor (pid: number) {
    const started = performance.now()
    let last = { at: started, ticks: processTicks(pid) }
    this.timer = setInterval(() => {
      try {
        const now = { at: performance.now(), ticks: processTicks(pid) }
        const cpuMs = ((now.ticks - last.ticks) * 1000) / clockTicks()
        this.samples.push({ s: round((now.at - started) / 1000, 1), rssMiB: round(rssKiB(pid) / 1024, 1), cpuShareOfOneCore: round(cpuMs / (now.at - last.at), 3) })
        last = now
      } catch {
        clearInterval(this.timer) // the server is gone
      }
    }, 1000)
  }

  stop (): TimelineSample[] {
    clearInterval(this.timer)
    return this.samples
  }
}

export type Clients = Generator<ClientsEvent, ClientsCommand, ClientsRole>
const CLIENTS_SCRIPT = join(ROOT, 'bench', 'scenarios', 'clients.ts')

/** A client process's next result, which must be of `kind`. */
export async function take<K extends ClientsResult['kind']> (clients: Clients, kind: K, timeoutMs: number): Promise<{ result: Extract<ClientsResult, { kind: K }>, process: ProcessFigures }> {
  const message = await clients.next('result', timeoutMs)
  if (message.result.kind !== kind) throw new Error(`the ${clients.role} process sent a '${message.result.kind}' result, expected '${kind}'`)
  return { result: message.result as Extract<ClientsResult, { kind: K }>, process: message.process }
}

export interface Scene {
  server: ShoalServer
  baseUrl: string
  spawn: (role: ClientsRole) => Clients
  /** `promise`, or the server's unexpected exit, whichever comes first. */
  race: <T>(promise: Promise<T>) => Promise<T>
}

/** The record's fields every scenario has, before the run. */
export function newRecord (scenario: ScenarioName, variant: string | null, users: number, options: object, command: string): ScenarioRecordBase {
  return {
    kind: 'scenario-run',
    version: 1,
    scenario,
    variant,
    target: 'shoal',
    users,
    date: new Date().toISOString(),
    command,
    pass: false,
    failReasons: [],
    warnings: [],
    error: null,
    config: { ...options, pinned, clockTicksPerSecond: clockTicks() },
    machine: machineInfo(),
    environment: null,
    setup: null,
    server: { rssBaselineMiB: null, exitedDuringRun: false, logTail: null },
    generator: {},
    file: ''
  }
}

/**
 * One run: waits for a quiet machine, starts Shoal with `env` (over the harness's
 * defaults), runs `body`, and stops every client process and the server whatever
 * happened; an error lands in the record.
 */
export async function withScenario (record: ScenarioRecordBase, env: Record<string, string>, body: (scene: Scene) => Promise<void>): Promise<void> {
  const generators: Clients[] = []
  let server: ShoalServer | null = null
  try {
    record.environment = await quietEnvironment()
    const port = await freePort()
    const started = server = new ShoalServer({ ...shoalEnv(port), ...env }, port)
    Object.assign(record.config, { serverEnv: started.env, shoal: shoalSource() })
    await started.start()
    await sleep(300)
    record.server.rssBaselineMiB = round(rssKiB(started.pid) / 1024, 1)
    const spawn = (role: ClientsRole): Clients => {
      const clients: Clients = new Generator(role, CLIENTS_SCRIPT)
      generators.push(clients)
      return clients
    }
    await body({ server: started, baseUrl: `ws://127.0.0.1:${port}`, spawn, race: async (promise) => await Promise.race([promise, started.crashed]) })
  } catch (err) {
    record.error = err instanceof Error ? err.message : String(err)
    record.server.logTail = server?.log().slice(-2000) || null
  } finally {
    record.server.exitedDuringRun = server?.exitedUnexpectedly ?? false
    await Promise.all(generators.map(async (clients) => await clients.stop()))
    await server?.stop(5000)
  }
}

/** The config fields every client process takes, from the run's options. */
export function commonConfig (scene: Scene, options: { users: number, concurrency: number, setupSeconds: number }, room: string): CommonConfig {
  return {
    baseUrl: scene.baseUrl,
    concurrency: options.concurrency,
    setupTimeoutMs: options.setupSeconds * 1000,
    sourceAddresses: Math.max(4, Math.ceil(options.users / 10_000)),
    room,
    users: options.users
  }
}

/** One client process with `config`, set up (its setup and config in the record). */
export async function startClients (scene: Scene, record: ScenarioRecordBase, config: ClientsConfig): Promise<Clients> {
  record.config.clients = config
  const clients = scene.spawn(config.role)
  record.setup = (await setupAll(scene, [[clients, { cmd: 'setup', config }]], config.setupTimeoutMs + SETUP_GRACE_MS))[0] ?? null
  return clients
}

/** Beyond a setup's own deadline: the connections still being opened then. */
export const SETUP_GRACE_MS = 15_000

/** Sets up client processes (at most `timeoutMs`), failing the run unless every client registered. */
export async function setupAll (scene: Scene, entries: Array<[Clients, ClientsCommand & { cmd: 'setup' }]>, timeoutMs: number): Promise<SetupReport[]> {
  for (const [clients, setup] of entries) clients.send(setup)
  const readies = await scene.race(Promise.all(entries.map(async ([clients]) => await clients.next('ready', timeoutMs))))
  for (const [i, { setup }] of readies.entries()) {
    if (!setup.complete) throw new Error(`setup of the ${entries[i]?.[0].role ?? '?'} clients incomplete: ${setup.registered} of ${setup.target} registered in ${Math.round(setup.ms / 1000)} s (${JSON.stringify(setup.errors)})`)
  }
  return readies.map((ready) => ready.setup)
}

/** The verdicts every scenario shares (errors, setup, a busy machine, a saturated generator); the scenario adds its own, then `settle`. */
export function judgeCommon (record: ScenarioRecordBase, windows: Array<ServerWindow | null>): void {
  if (record.error !== null) record.failReasons.push(`error: ${record.error}`)
  if (record.setup !== null && !record.setup.complete) record.failReasons.push(`setup: ${record.setup.registered} of ${record.setup.target} registered`)
  const environment = record.environment
  if (environment !== null && !environment.quietBeforeRun) {
    record.warnings.push(`the machine was busy before the run (CPU busy ${environment.busyBeforeRun.map((share) => `${Math.round(share * 100)}%`).join(', ')}): other processes may have been measured too`)
  }
  const other = Math.max(0, ...windows.map((window) => window?.otherLoadOnServerCore ?? 0))
  if (other > OTHER_LOAD_LIMIT) record.warnings.push(`core 0 was ${Math.round(other * 100)}% busy beyond the server's own CPU (another process, or kernel network work)`)
  for (const [stretch, processes] of Object.entries(record.generator)) {
    const share = processes.reduce((sum, figures) => sum + figures.cpuShareOfOneCore, 0)
    if (share > SATURATION) record.warnings.push(`load generator saturated during the ${stretch}: ${Math.round(share * 100)}% of its core (> ${SATURATION * 100}%): figures may reflect the generator, not the server`)
  }
}

export function settle (record: ScenarioRecordBase): void {
  record.pass = record.failReasons.length === 0
}

/** Writes the record: bench/results/<scenario>[-<variant>]-shoal-<N>-<timestamp>.json. */
export function saveRecord (record: ScenarioRecordBase): void {
  mkdirSync(RESULTS_DIR, { recursive: true })
  const name = [record.scenario, record.variant, record.target, String(record.users), record.date.replace(/[:.]/g, '-')].filter((part) => part !== null).join('-')
  record.file = join(RESULTS_DIR, `${name}.json`)
  writeFileSync(record.file, JSON.stringify(record, null, 2) + '\n')
}

/** `<scenario> [variant] shoal N=…: PASS|FAIL, <parts>`, then the reasons, warnings and file, one per line. */
export function summaryLine (record: ScenarioRecordBase, parts: string[]): string {
  const head = `${[record.scenario, record.variant].filter(Boolean).join(' ')} shoal${shoalLabel()} N=${record.users}: ${record.pass ? 'PASS' : 'FAIL'}`
  const notes = [...record.failReasons, ...record.warnings]
  return [head, ...parts].join(', ') + (notes.length > 0 ? `\n    ${notes.join('\n    ')}` : '') + (record.file === '' ? '\n' : `\n    ${record.file}\n`)
}

/** Milliseconds as seconds, for summary lines. */
export const seconds = (ms: number | null | undefined): string => ms === null || ms === undefined ? '-' : `${round(ms / 1000, 2)} s`
