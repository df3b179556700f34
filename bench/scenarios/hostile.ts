/**
 * `hostile --pattern listening|hop|sync`: a room of M idle members (for `sync`
 * each with about 2 KiB of state), K hostile clients in it sending at `--rate`
 * (59) messages per second each, under the default per-connection budget of 60
 * (never raised here), and a probe member pinging every 50 ms. `listening`
 * alternates `updatelisteningto` between two sets of 256 made-up ids, `hop`
 * alternates `join` between the room and another, `sync` sends `sync`. Each role
 * runs in a process of its own on core 1, so that the probe's round trip is not
 * the counting clients' event loop. Over `--seconds` after `--warmup`: bytes and
 * frames per second each member received (mean and max), server CPU and bytes out
 * per second, probe RTT, and what the hostile clients received (errors by code).
 * No threshold: the figures are for comparing servers; the run fails only when it
 * could not measure (setup incomplete, a member disconnected, no pong).
 */
import { sleep } from '../lib/proc.js'
import { OPEN_REGISTER } from '../fanout/children.js'
import { kBps, mergeSetups, percent } from '../fanout/shared.js'
import type { ClientsCommand, HostilePattern } from './protocol.js'
import type { HostileRecord } from './records.js'
import {
  commonConfig, judgeCommon, newRecord, saveRecord, ServerMeter, settle, SETUP_GRACE_MS, setupAll, summaryLine, take, withScenario, type Clients, type Scene
} from './runner.js'

export interface HostileOptions {
  users: number
  pattern: HostilePattern
  hostile: number
  rate: number
  warmup: number
  seconds: number
  concurrency: number
  setupSeconds: number
}

const ROOM = 'hostile-room'
const PROBE_INTERVAL_MS = 50

export async function hostile (options: HostileOptions, command: string): Promise<HostileRecord> {
  const record: HostileRecord = {
    ...newRecord('hostile', options.pattern, options.users, options, command),
    scenario: 'hostile',
    pattern: options.pattern,
    hostileClients: options.hostile,
    members: null,
    hostile: null,
    probe: null,
    serverWindow: null,
    clientBytesInPerSecond: null
  }
  await withScenario(record, { ...OPEN_REGISTER }, async (scene) => {
    const setups = setupCommands(scene, options)
    record.config.clients = setups.map((setup) => setup.config)
    const [members, attackers, probe] = (['members', 'hostile', 'probe'] as const).map((role) => scene.spawn(role)) as [Clients, Clients, Clients]
    const timeoutMs = options.setupSeconds * 1000 + SETUP_GRACE_MS
    // The room first, then the hostile clients and the probe join it.
    const [membersSetup] = await setupAll(scene, [[members, setups[0]]], timeoutMs)
    const others = await setupAll(scene, [[attackers, setups[1]], [probe, setups[2]]], timeoutMs)
    record.setup = mergeSetups([...(membersSetup === undefined ? [] : [membersSetup]), ...others])
    await measure(scene, record, options, [members, attackers, probe])
  })
  judge(record)
  saveRecord(record)
  return record
}

function setupCommands (scene: Scene, options: HostileOptions): [ClientsCommand & { cmd: 'setup' }, ClientsCommand & { cmd: 'setup' }, ClientsCommand & { cmd: 'setup' }] {
  const common = commonConfig(scene, options, ROOM)
  return [
    { cmd: 'setup', config: { ...common, role: 'members', bigState: options.pattern === 'sync' } },
    { cmd: 'setup', config: { ...common, role: 'hostile', users: options.hostile, pattern: options.pattern, rate: options.rate, otherRoom: `${ROOM}-other` } },
    { cmd: 'setup', config: { ...common, role: 'probe', users: 1, intervalMs: PROBE_INTERVAL_MS } }
  ]
}

/** Start, warm-up, the window (server read from /proc at both ends), then every process's result. */
async function measure (scene: Scene, record: HostileRecord, options: HostileOptions, all: [Clients, Clients, Clients]): Promise<void> {
  const [members, attackers, probe] = all
  const broadcast = (message: ClientsCommand): void => { for (const clients of all) clients.send(message) }
  broadcast({ cmd: 'start', at: Date.now() })
  await scene.race(sleep(options.warmup * 1000))
  const meter = new ServerMeter(scene.server.pid)
  broadcast({ cmd: 'window-start' })
  await scene.race(sleep(options.seconds * 1000))
  broadcast({ cmd: 'window-end' })
  record.serverWindow = meter.end()
  const [m, h, p] = await scene.race(Promise.all([take(members, 'members', 15_000), take(attackers, 'hostile', 15_000), take(probe, 'probe', 15_000)]))
  record.members = m.result
  record.hostile = h.result
  record.probe = p.result
  record.generator.window = [m.process, h.process, p.process]
  record.clientBytesInPerSecond = m.result.traffic.bytesPerSecond + h.result.received.bytesPerSecond
}

function judge (record: HostileRecord): void {
  judgeCommon(record, [record.serverWindow])
  const { members, hostile: attackers, probe } = record
  if (members !== null && members.stillOpen < record.users) record.failReasons.push(`${record.users - members.stillOpen} members disconnected (${JSON.stringify(members.closes)})`)
  if (probe !== null && probe.pongs === 0) record.failReasons.push(`the probe got no pong (${probe.pings} pings in the window)`)
  if (attackers !== null) {
    const closed = attackers.clients - attackers.stillOpen
    if (closed > 0) record.warnings.push(`${closed} hostile clients were closed by the server (${JSON.stringify(attackers.closes)})`)
    if (attackers.skipped > 0) record.warnings.push(`the hostile pump fell behind and skipped ${attackers.skipped} messages`)
  }
  settle(record)
}

export function hostileLine (record: HostileRecord): string {
  const { members, hostile: attackers, probe, serverWindow } = record
  const parts: string[] = []
  if (members !== null) {
    const per = members.perMember
    parts.push(`each member ${kBps(per.bytesPerSecond.mean)} (max ${kBps(per.bytesPerSecond.max)}), ${per.framesPerSecond.mean} frames/s (max ${per.framesPerSecond.max})`)
  }
  if (serverWindow !== null) {
    parts.push(`server CPU ${percent(serverWindow.cpuShareOfOneCore)}, out ${kBps(serverWindow.bytesOutPerSecond ?? 0)} (/proc; clients received ${kBps(record.clientBytesInPerSecond ?? 0)})`)
  }
  if (probe !== null) parts.push(`probe RTT p50/p99 ${probe.rttMs.p50 ?? '-'}/${probe.rttMs.p99 ?? '-'} ms (${probe.pongs}/${probe.pings} pongs)`)
  if (attackers !== null) {
    parts.push(`${record.hostileClients} hostile sent ${attackers.sentPerSecond}/s each, got ${JSON.stringify(attackers.receivedByType)}, errors ${JSON.stringify(attackers.errors)}`)
  }
  return summaryLine(record, parts)
}
