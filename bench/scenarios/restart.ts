/**
 * `restart`: N users register (each from its own loopback address), then the
 * server is restarted: SIGTERM, wait for its exit, start it again on the same port
 * with the same DATA_DIR (the SQLite sessions survive), and every client resumes
 * with its secret the way the client library does (./restart-clients.ts).
 * `--addresses one`: every reconnect from 127.0.0.1 (an office behind one NAT
 * address, against the default per-address register budget of 30 per 60 s, which
 * this scenario never raises); `many`: each from its own address. Measured: the
 * time from the new process's /health to each client's resumed welcome (p50, p99,
 * max), how many resumed within 10 s, 30 s and by `--deadline`, and the errors
 * seen, by kind. Pass: `one` all within 10 s, `many` all within 30 s.
 */
import { performance } from 'node:perf_hooks'
import { sleep } from '../lib/proc.js'
import { percent } from '../fanout/shared.js'
import type { AddressMode, RestartConfig } from './protocol.js'
import type { RestartRecord } from './records.js'
import { commonConfig, judgeCommon, newRecord, saveRecord, seconds, ServerMeter, settle, startClients, summaryLine, take, withScenario, type Scene } from './runner.js'

export interface RestartOptions {
  users: number
  addresses: AddressMode
  /** Seconds from the new process's /health. */
  deadline: number
  roomSize: number
  concurrency: number
  setupSeconds: number
}

/** The contract: the server exits within 10 s of SIGTERM; past this it is killed (and the run says so). */
const STOP_GRACE_MS = 15_000
/** Opening every user's session from SQLite may take the new process a while. */
const START_TIMEOUT_MS = 60_000
const PASS_MS: Record<AddressMode, number> = { one: 10_000, many: 30_000 }

export async function restart (options: RestartOptions, command: string): Promise<RestartRecord> {
  const record: RestartRecord = {
    ...newRecord('restart', options.addresses, options.users, options, command),
    scenario: 'restart',
    addresses: options.addresses,
    restart: null,
    resume: null,
    serverRecovery: null
  }
  // No OPEN_REGISTER: the per-address register budget stays at its default.
  await withScenario(record, {}, async (scene) => {
    const config: RestartConfig = { ...commonConfig(scene, options, 'restart'), role: 'restart', roomSize: options.roomSize, addresses: options.addresses, deadlineMs: options.deadline * 1000 }
    const clients = await startClients(scene, record, config)
    // A few ticks, so that every session has been written once before the signal (which flushes them anyway).
    await sleep(1000)
    const healthAt = await restartServer(scene, record)
    const meter = new ServerMeter(scene.server.pid)
    clients.send({ cmd: 'start', at: healthAt })
    const done = await scene.race(take(clients, 'restart', config.deadlineMs + 20_000))
    record.serverRecovery = meter.end()
    record.resume = done.result
    record.generator.recovery = [done.process]
  })
  judge(record, options)
  saveRecord(record)
  return record
}

/** SIGTERM, wait for the exit, start again; returns when the new process answered /health (epoch ms). */
async function restartServer (scene: Scene, record: RestartRecord): Promise<number> {
  const stopped = await scene.server.stop(STOP_GRACE_MS)
  const t0 = performance.now()
  await scene.server.start(START_TIMEOUT_MS)
  const healthAt = Date.now()
  record.restart = { ...stopped, startMs: Math.round(performance.now() - t0) }
  return healthAt
}

function judge (record: RestartRecord, options: RestartOptions): void {
  judgeCommon(record, [record.serverRecovery])
  const resume = record.resume
  const limit = PASS_MS[options.addresses]
  if (record.restart !== null && !record.restart.graceful) record.warnings.push(`the server did not exit within ${STOP_GRACE_MS / 1000} s of SIGTERM: killed`)
  if (resume !== null) {
    const within = options.addresses === 'one' ? resume.within10s : resume.within30s
    if (within < resume.users) {
      record.failReasons.push(`${within} of ${resume.users} resumed within ${limit / 1000} s (${resume.resumed} by the deadline, max ${seconds(resume.resumeMs.max)})`)
    }
    if (resume.gaveUp > 0) record.failReasons.push(`${resume.gaveUp} clients lost their session`)
  }
  settle(record)
}

export function restartLine (record: RestartRecord): string {
  const { resume, restart: restarted, serverRecovery } = record
  const parts: string[] = []
  if (restarted !== null) parts.push(`stop ${seconds(restarted.stopMs)}${restarted.graceful ? '' : ' (killed)'}, start → /health ${seconds(restarted.startMs)}`)
  if (resume !== null) {
    const ms = resume.resumeMs
    parts.push(
      `resumed ${resume.within10s}/${resume.within30s}/${resume.byDeadline} of ${resume.users} within 10 s/30 s/deadline`,
      `resume p50/p99/max ${seconds(ms.p50)}/${seconds(ms.p99)}/${seconds(ms.max)} after /health`,
      `attempts p50/max ${resume.attempts.p50 ?? '-'}/${resume.attempts.max ?? '-'}`,
      `errors ${JSON.stringify(resume.errors)}`
    )
  }
  if (serverRecovery !== null) parts.push(`server CPU ${percent(serverRecovery.cpuShareOfOneCore)} over the recovery, RSS ${serverRecovery.rssMiB} MiB`)
  return summaryLine(record, parts)
}
