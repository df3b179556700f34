/**
 * A log that writes each repeated warning or error once per interval, with how
 * many it held back since: a store outage or a misbehaving peer says so every ten
 * seconds, not on every tick or message. Lines are told apart by their message.
 */
import type { Clock } from './clock.js'
import type { EngineLog } from './engine.js'

interface Held { until: number, repeated: number, level: 'warn' | 'error' }

export class QuietLog implements EngineLog {
  private readonly held = new Map<string, Held>()

  constructor (private readonly log: EngineLog, private readonly clock: Clock, private readonly intervalMs = 10_000) {}

  debug (fields: object, message: string): void { this.log.debug(fields, message) }
  warn (fields: object, message: string): void { this.write('warn', fields, message) }
  error (fields: object, message: string): void { this.write('error', fields, message) }

  /** Writes how many of each line were held back since it was last written (at close, so no count is lost). */
  flush (): void {
    for (const [message, held] of this.held) {
      if (held.repeated > 0) this.log[held.level]({ repeated: held.repeated }, message)
    }
    this.held.clear()
  }

  private write (level: 'warn' | 'error', fields: object, message: string): void {
    const now = this.clock.now()
    const held = this.held.get(message)
    if (held !== undefined && now < held.until) {
      held.repeated++
      return
    }
    this.held.set(message, { until: now + this.intervalMs, repeated: 0, level })
    this.log[level](held === undefined || held.repeated === 0 ? fields : { ...fields, repeated: held.repeated }, message)
  }
}
