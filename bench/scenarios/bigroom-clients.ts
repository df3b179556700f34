/**
 * `bigroom` clients: a few observers register during setup, then the ramp opens
 * the other users at `rate` per second into the same room, each from one of the
 * spread source addresses, until every one has its welcome or the deadline
 * passes. Every frame is counted, never parsed (the welcome is the whole room);
 * the observers also count the `presence` frames they get during the ramp, which
 * is what a member of a room that fills up receives.
 */
import { performance } from 'node:perf_hooks'
import { bump, reason, startsWith, summary } from '../fanout/shared.js'
import { openAll, perSecond, PRESENCE, roomClient, spread, traffic, Window, type Counted, type Report, type Role } from './counting.js'
import type { SetupReport } from '../fanout/protocol.js'
import type { BigroomConfig, IdleResult, RampResult } from './protocol.js'

export class BigroomClients implements Role {
  private readonly closes: Record<string, number> = {}
  private readonly errors: Record<string, number> = {}
  /** Everyone with a welcome: the observers first. */
  private readonly welcomed: Counted[] = []
  private observers: Counted[] = []
  /** The observers' presence frames during the ramp. */
  private readonly presenceFrames = new Map<Counted, number>()
  private largestPresence = 0
  private readonly ramp = { on: false, started: 0, launched: 0, lastLaunch: 0, welcomed: 0, failed: 0, lastWelcome: 0, frames: 0, bytes: 0 }
  private readonly welcomeMs: number[] = []
  private readonly timers: NodeJS.Timeout[] = []
  private readonly observerWindow = new Window()
  private readonly idleWindow = new Window()

  constructor (private readonly config: BigroomConfig, private readonly report: Report) {}

  get clients (): number { return this.welcomed.filter((client) => client.open).length }

  /** Ramp clients after the observers. */
  private get target (): number { return Math.max(0, this.config.users - this.config.observers) }

  private open (index: number, timeoutMs: number): Promise<Counted> {
    return roomClient(this.config, index, 'u', timeoutMs, this.closes, this.onFrame)
  }

  private readonly onFrame = (client: Counted, bytes: number, prefix: Buffer): void => {
    if (!this.ramp.on) return
    this.ramp.frames++
    this.ramp.bytes += bytes
    if (client.index >= this.config.observers || !startsWith(prefix, PRESENCE)) return
    this.presenceFrames.set(client, (this.presenceFrames.get(client) ?? 0) + 1)
    if (bytes > this.largestPresence) this.largestPresence = bytes
  }

  async setup (): Promise<SetupReport> {
    const { opened, report } = await openAll(this.config, this.config.observers, 'u', this.closes, this.onFrame)
    this.observers = opened
    this.welcomed.push(...opened)
    return report
  }

  start (): void {
    const ramp = this.ramp
    ramp.on = true
    ramp.started = performance.now()
    this.observerWindow.begin(this.observers)
    const deadline = ramp.started + this.config.deadlineMs
    this.timers.push(setInterval(() => {
      const due = Math.min(this.target, Math.floor(((performance.now() - ramp.started) * this.config.rate) / 1000))
      while (ramp.launched < due) this.launch(this.config.observers + ramp.launched++, deadline)
    }, 5))
    this.timers.push(setTimeout(() => this.finishRamp(), this.config.deadlineMs))
    this.checkDone()
  }

  /** One user of the ramp: it has until the deadline to get its welcome. */
  private launch (index: number, deadline: number): void {
    const started = this.ramp.lastLaunch = performance.now()
    this.open(index, deadline - started).then((client) => {
      this.welcomed.push(client)
      if (!this.ramp.on) return
      this.ramp.welcomed++
      this.ramp.lastWelcome = client.welcomeAt
      this.welcomeMs.push(client.welcomeAt - started)
      this.checkDone()
    }, (err: unknown) => {
      if (!this.ramp.on) return
      this.ramp.failed++
      bump(this.errors, reason(err))
      this.checkDone()
    })
  }

  private checkDone (): void {
    const ramp = this.ramp
    if (ramp.launched === this.target && ramp.welcomed + ramp.failed === this.target) this.finishRamp()
  }

  private finishRamp (): void {
    if (!this.ramp.on) return
    const now = performance.now()
    this.report(this.rampResult(now))
    this.ramp.on = false
    for (const timer of this.timers) clearTimeout(timer)
  }

  private rampResult (now: number): RampResult {
    const ramp = this.ramp
    const allIn = ramp.welcomed === this.target
    const observed = this.observerWindow.end()
    const welcomes = this.welcomed.slice(this.observers.length).map((client) => client.welcomeBytes)
    const launchMs = ramp.lastLaunch - ramp.started
    return {
      kind: 'ramp',
      launched: ramp.launched,
      welcomed: ramp.welcomed,
      failed: ramp.failed,
      pending: ramp.launched - ramp.welcomed - ramp.failed,
      errors: this.errors,
      rampMs: Math.round((allIn ? Math.max(ramp.lastWelcome, ramp.started) : now) - ramp.started),
      allInMs: allIn ? Math.round(Math.max(ramp.lastWelcome, ramp.started) - ramp.started) : null,
      launchRate: launchMs > 0 ? Math.round((ramp.launched * 1000) / launchMs) : 0,
      welcomeMs: summary(this.welcomeMs),
      welcomeBytes: spread(welcomes),
      observers: {
        clients: this.observers.length,
        framesPerSecond: spread(perSecond(observed.frames, observed.ms)),
        bytesPerSecond: spread(perSecond(observed.bytes, observed.ms)),
        presenceFramesPerSecond: spread(perSecond(this.observers.map((client) => this.presenceFrames.get(client) ?? 0), observed.ms)),
        largestPresenceFrameBytes: this.largestPresence
      },
      traffic: traffic(ramp.frames, ramp.bytes, now - ramp.started),
      closes: { ...this.closes }
    }
  }

  windowStart (): void {
    this.idleWindow.begin(this.welcomed)
  }

  async windowEnd (): Promise<IdleResult> {
    const window = this.idleWindow.end()
    return { kind: 'idle', windowMs: window.ms, traffic: window.traffic, stillOpen: this.clients, closes: this.closes }
  }

  stop (): void {
    for (const timer of this.timers) clearTimeout(timer)
    for (const client of this.welcomed) client.close()
  }
}
