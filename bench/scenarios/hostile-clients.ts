/**
 * `hostile` clients, one role per process: the room's idle `members` (counting
 * what each receives), the `hostile` clients (each sending one kind of message at
 * `rate` per second, just under the default per-connection budget of 60), and the
 * `probe` (a member of the same room that sends `ping` every `intervalMs` and
 * measures the round trip from its `pong`, queued behind whatever the room gets).
 */
import { randomUUID } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { round, sleep } from '../lib/proc.js'
import type { SetupReport } from '../fanout/protocol.js'
import { bump, errorCode, startsWith, summary } from '../fanout/shared.js'
import { frameType, openAll, perSecond, PONG, spread, Window, type Counted, type Report, type Role } from './counting.js'
import type { HostileConfig, HostileResult, MembersConfig, MembersResult, ProbeConfig, ProbeResult } from './protocol.js'

/** About 2 KiB of state (8 keys of 240 characters: 1,985 bytes as JSON, under the 2 KiB limit). */
const BIG_STATE = Object.fromEntries(Array.from({ length: 8 }, (_, k) => [`k${k}`, String.fromCharCode(97 + k).repeat(240)]))
/** The hostile pump catches up at most this many messages at once; beyond, it skips (never a burst). */
const MAX_CATCH_UP = 10

abstract class RoomRole implements Role {
  protected opened: Counted[] = []
  protected readonly closes: Record<string, number> = {}
  protected readonly window = new Window()

  get clients (): number { return this.opened.filter((client) => client.open).length }

  abstract setup (): Promise<SetupReport>
  start (_at: number): void {}
  windowStart (): void {
    this.window.begin(this.opened)
  }

  abstract windowEnd (): Promise<MembersResult | HostileResult | ProbeResult>
  stop (): void {
    for (const client of this.opened) client.close()
  }
}

export class MembersClients extends RoomRole {
  constructor (private readonly config: MembersConfig, _report: Report) {
    super()
  }

  async setup (): Promise<SetupReport> {
    const { opened, report } = await openAll(this.config, this.config.users, 'm', this.closes, undefined, this.config.bigState ? BIG_STATE : undefined)
    this.opened = opened
    return report
  }

  async windowEnd (): Promise<MembersResult> {
    const { ms, frames, bytes, traffic } = this.window.end()
    return {
      kind: 'members',
      windowMs: ms,
      perMember: { frames: spread(frames), framesPerSecond: spread(perSecond(frames, ms)), bytesPerSecond: spread(perSecond(bytes, ms)) },
      traffic,
      stillOpen: this.clients,
      closes: this.closes
    }
  }
}

/** The two messages a hostile client alternates between. */
function hostileMessages (config: HostileConfig): [string, string] {
  const listening = (): string => JSON.stringify({ type: 'updatelisteningto', listeningTo: Array.from({ length: 256 }, () => randomUUID()) })
  switch (config.pattern) {
    case 'listening': return [listening(), listening()]
    // They start in the big room: the first hop leaves it.
    case 'hop': return [JSON.stringify({ type: 'join', room: config.otherRoom }), JSON.stringify({ type: 'join', room: config.room })]
    case 'sync': return ['{"type":"sync"}', '{"type":"sync"}']
  }
}

export class HostileClients extends RoomRole {
  private readonly messages: [string, string]
  /** Messages due and sent per client since the start. */
  private sent: number[] = []
  private timer: NodeJS.Timeout | null = null
  private readonly counts = { measuring: false, sent: 0, skipped: 0, byType: {} as Record<string, number>, errors: {} as Record<string, number> }

  constructor (private readonly config: HostileConfig, _report: Report) {
    super()
    this.messages = hostileMessages(config)
  }

  private readonly onFrame = (_client: Counted, _bytes: number, prefix: Buffer): void => {
    if (!this.counts.measuring) return
    const type = frameType(prefix)
    bump(this.counts.byType, type)
    if (type === 'error') bump(this.counts.errors, errorCode(prefix))
  }

  async setup (): Promise<SetupReport> {
    const { opened, report } = await openAll(this.config, this.config.users, 'h', this.closes, this.onFrame)
    this.opened = opened
    this.sent = opened.map(() => 0)
    return report
  }

  override start (): void {
    const started = performance.now()
    this.timer = setInterval(() => this.pump(started), 5)
  }

  private pump (started: number): void {
    const due = Math.floor(((performance.now() - started) * this.config.rate) / 1000)
    const counts = this.counts
    this.opened.forEach((client, i) => {
      let sent = this.sent[i] ?? 0
      if (!client.open) return
      if (due - sent > MAX_CATCH_UP) {
        if (counts.measuring) counts.skipped += due - sent - MAX_CATCH_UP
        sent = due - MAX_CATCH_UP
      }
      for (; sent < due; sent++) {
        client.send(this.messages[sent % 2] ?? '')
        if (counts.measuring) counts.sent++
      }
      this.sent[i] = sent
    })
  }

  override windowStart (): void {
    super.windowStart()
    Object.assign(this.counts, { measuring: true, sent: 0, skipped: 0, byType: {}, errors: {} })
  }

  async windowEnd (): Promise<HostileResult> {
    this.counts.measuring = false
    const { ms, traffic } = this.window.end()
    const { sent, skipped, byType, errors } = this.counts
    const clients = Math.max(1, this.opened.length)
    return { kind: 'hostile', windowMs: ms, clients: this.opened.length, sent, sentPerSecond: round((sent * 1000) / ms / clients, 1), skipped, received: traffic, receivedByType: byType, errors, stillOpen: this.clients, closes: this.closes }
  }

  override stop (): void {
    if (this.timer !== null) clearInterval(this.timer)
    super.stop()
  }
}

export class ProbeClient extends RoomRole {
  private timer: NodeJS.Timeout | null = null
  /** Pings sent in the window are the ones measured (by their `t`, echoed in the pong). */
  private readonly measured = { from: Infinity, to: Infinity, pings: 0, pongs: 0, rtts: [] as number[] }

  constructor (private readonly config: ProbeConfig, _report: Report) {
    super()
  }

  private readonly onFrame = (_client: Counted, _bytes: number, prefix: Buffer): void => {
    if (!startsWith(prefix, PONG)) return
    const t = Number(/"t":([-0-9.e+]+)/.exec(prefix.toString('latin1'))?.[1])
    const measured = this.measured
    if (!(t >= measured.from && t < measured.to)) return
    measured.pongs++
    measured.rtts.push(performance.now() - t)
  }

  async setup (): Promise<SetupReport> {
    const { opened, report } = await openAll(this.config, 1, 'probe', this.closes, this.onFrame)
    this.opened = opened
    return report
  }

  override start (): void {
    this.timer = setInterval(() => {
      const t = round(performance.now(), 3)
      const measured = this.measured
      if (t >= measured.from && t < measured.to) measured.pings++
      for (const client of this.opened) if (client.open) client.send(`{"type":"ping","t":${t}}`)
    }, this.config.intervalMs)
  }

  override windowStart (): void {
    super.windowStart()
    this.measured.from = performance.now()
  }

  /** After the window, a second for the last pongs. */
  async windowEnd (): Promise<ProbeResult> {
    this.measured.to = performance.now()
    const windowMs = round(this.measured.to - this.measured.from, 1)
    await sleep(1000)
    const { pings, pongs, rtts } = this.measured
    return { kind: 'probe', windowMs, pings, pongs, rttMs: summary(rtts), closes: this.closes }
  }

  override stop (): void {
    if (this.timer !== null) clearInterval(this.timer)
    super.stop()
  }
}
