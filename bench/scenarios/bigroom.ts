/**
 * `bigroom`: N idle users register into one room at a steady `--rate` (default
 * N/60 per second: all in within 60 s if the server keeps up), spread over source
 * addresses, each welcome carrying the whole room. Measured: how long until all N
 * had their welcome (or how many got in by `--deadline`), the server's CPU and RSS
 * during the ramp (each second) and over `--idle-seconds` after it, RSS per
 * connection once idle, and what the observers (registered first) received during
 * the ramp: presence frames and bytes per second. Pass: all in within 60 s and at
 * most 8 KiB of RSS per connection.
 */
import { round, sleep } from '../lib/proc.js'
import { OPEN_REGISTER } from '../fanout/children.js'
import { kBps, percent } from '../fanout/shared.js'
import type { BigroomConfig } from './protocol.js'
import type { BigroomRecord } from './records.js'
import {
  commonConfig, judgeCommon, newRecord, saveRecord, seconds, ServerMeter, settle, startClients, summaryLine, take, Timeline, withScenario, type Clients, type Scene
} from './runner.js'

export interface BigroomOptions {
  users: number
  /** Registers per second during the ramp. */
  rate: number
  observers: number
  /** Seconds from the ramp's start: who has no welcome by then is not in. */
  deadline: number
  idleSeconds: number
  concurrency: number
  setupSeconds: number
}

const PASS_MS = 60_000
/** At the default rate the last user registers just before 60 s: its welcome (the whole room) may take this long on top. */
const IN_FLIGHT_MS = 1000
const MAX_RSS_PER_CONNECTION_KIB = 8

export async function bigroom (options: BigroomOptions, command: string): Promise<BigroomRecord> {
  const record: BigroomRecord = {
    ...newRecord('bigroom', null, options.users, options, command),
    scenario: 'bigroom',
    ramp: null,
    idle: null,
    serverRamp: null,
    serverIdle: null,
    timeline: [],
    rssPerConnectionKiB: null
  }
  await withScenario(record, { ...OPEN_REGISTER }, async (scene) => {
    const config: BigroomConfig = { ...commonConfig(scene, options, 'bigroom'), role: 'bigroom', observers: options.observers, rate: options.rate, deadlineMs: options.deadline * 1000 }
    const clients = await startClients(scene, record, config)
    await rampThenIdle(scene, clients, record, options)
  })
  judge(record, options)
  saveRecord(record)
  return record
}

/** The ramp (server sampled each second), then the idle window and RSS per connection. */
async function rampThenIdle (scene: Scene, clients: Clients, record: BigroomRecord, options: BigroomOptions): Promise<void> {
  const pid = scene.server.pid
  const meter = new ServerMeter(pid)
  const timeline = new Timeline(pid)
  try {
    clients.send({ cmd: 'start', at: Date.now() })
    const ramp = await scene.race(take(clients, 'ramp', options.deadline * 1000 + 30_000))
    record.serverRamp = meter.end()
    record.ramp = ramp.result
    record.generator.ramp = [ramp.process]
  } finally {
    record.timeline = timeline.stop()
  }
  const idleMeter = new ServerMeter(pid)
  clients.send({ cmd: 'window-start' })
  await scene.race(sleep(options.idleSeconds * 1000))
  clients.send({ cmd: 'window-end' })
  const serverIdle = record.serverIdle = idleMeter.end()
  const idle = await scene.race(take(clients, 'idle', 15_000))
  record.idle = idle.result
  record.generator.idle = [idle.process]
  const connections = record.ramp.welcomed + (record.setup?.registered ?? 0)
  const baseline = record.server.rssBaselineMiB
  if (connections > 0 && baseline !== null) record.rssPerConnectionKiB = round(((serverIdle.rssMiB - baseline) * 1024) / connections, 2)
}

function judge (record: BigroomRecord, options: BigroomOptions): void {
  judgeCommon(record, [record.serverRamp, record.serverIdle])
  const { ramp, idle } = record
  const reasons = record.failReasons
  if (ramp !== null) {
    const inRoom = ramp.welcomed + (record.setup?.registered ?? 0)
    if (ramp.allInMs === null) {
      reasons.push(`${inRoom} of ${options.users} in by the deadline (${options.deadline} s): ${ramp.failed} failed ${JSON.stringify(ramp.errors)}, ${ramp.pending} still waiting`)
    } else if (ramp.allInMs > PASS_MS + IN_FLIGHT_MS) {
      reasons.push(`all in after ${seconds(ramp.allInMs)} > ${PASS_MS / 1000} s`)
    }
    if (ramp.launchRate < options.rate * 0.95) record.warnings.push(`the ramp registered ${ramp.launchRate}/s, below --rate ${options.rate}/s`)
    if (idle !== null && idle.stillOpen < inRoom) reasons.push(`${inRoom - idle.stillOpen} connections closed (${JSON.stringify(idle.closes)})`)
  }
  const rss = record.rssPerConnectionKiB
  if (rss === null) {
    if (record.error === null) reasons.push('RSS per connection not measured')
  } else if (rss > MAX_RSS_PER_CONNECTION_KIB) {
    reasons.push(`RSS ${rss} KiB per connection > ${MAX_RSS_PER_CONNECTION_KIB} KiB`)
  }
  settle(record)
}

export function bigroomLine (record: BigroomRecord): string {
  const { ramp, serverRamp, serverIdle } = record
  const parts: string[] = []
  if (ramp !== null) {
    const observers = ramp.observers
    parts.push(
      ramp.allInMs === null ? `${ramp.welcomed + (record.setup?.registered ?? 0)} of ${record.users} in by ${seconds(ramp.rampMs)}` : `all in after ${seconds(ramp.allInMs)}`,
      `register → welcome p50/p99 ${ramp.welcomeMs.p50 ?? '-'}/${ramp.welcomeMs.p99 ?? '-'} ms, welcomes up to ${round(ramp.welcomeBytes.max / 1e6, 2)} MB`,
      `each observer during the ramp: ${observers.presenceFramesPerSecond.mean} presence frames/s (max ${observers.presenceFramesPerSecond.max}), ${kBps(observers.bytesPerSecond.mean)} (max ${kBps(observers.bytesPerSecond.max)}), largest presence frame ${round(observers.largestPresenceFrameBytes / 1e3, 1)} kB`
    )
  }
  if (serverRamp !== null) {
    parts.push(`server CPU ${percent(serverRamp.cpuShareOfOneCore)} during the ramp, ${percent(serverIdle?.cpuShareOfOneCore)} idle`, `wrote ${round((serverRamp.bytesOutPerSecond ?? 0) / 1e6, 1)} MB/s during the ramp`)
  }
  if (serverIdle !== null) parts.push(`RSS ${serverIdle.rssMiB} MiB idle (peak ${serverIdle.rssPeakMiB} MiB), ${record.rssPerConnectionKiB ?? '-'} KiB/conn`)
  const generator = record.generator.ramp?.[0]
  if (generator !== undefined) parts.push(`generator CPU ${percent(generator.cpuShareOfOneCore)} during the ramp`)
  return summaryLine(record, parts)
}
