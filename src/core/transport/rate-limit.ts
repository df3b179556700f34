/** Abuse limits of the contract: per-connection token buckets and a per-address window. */
import type { ShoalSettingsT } from '../../../schemas/options.js'

export type Admission =
  | 'ok'
  /** Dropped; tell the client (at most once per second, so a flood gets no flood back). */
  | 'drop-notify'
  | 'drop'
  /** Dropped in each of `strikeSeconds` consecutive seconds: close the connection (1008). */
  | 'close'

export type MessageLimits = Pick<ShoalSettingsT, 'messagesPerSecond' | 'messageBurst'>

/** A token bucket; its rate and size come with each take, so a connection's bucket holds only two numbers. */
export class TokenBucket {
  private refilledAt: number

  constructor (private tokens: number, now: number) {
    this.refilledAt = now
  }

  take (now: number, perSecond: number, burst: number): boolean {
    const elapsed = Math.max(0, now - this.refilledAt)
    this.tokens = Math.min(burst, this.tokens + elapsed * perSecond / 1000)
    this.refilledAt = now
    if (this.tokens < 1) return false
    this.tokens -= 1
    return true
  }
}

/** Messages of one connection: a token bucket, plus the count of consecutive seconds with drops. */
export class MessageLimiter extends TokenBucket {
  private lastDropSecond = Number.NEGATIVE_INFINITY
  private dropStreak = 0

  constructor (private readonly limits: MessageLimits, now: number, private readonly strikeSeconds = 10) {
    super(limits.messageBurst, now)
  }

  admit (now: number): Admission {
    if (this.take(now, this.limits.messagesPerSecond, this.limits.messageBurst)) return 'ok'
    const second = Math.floor(now / 1000)
    if (second === this.lastDropSecond) return 'drop'
    this.dropStreak = second === this.lastDropSecond + 1 ? this.dropStreak + 1 : 1
    this.lastDropSecond = second
    return this.dropStreak >= this.strikeSeconds ? 'close' : 'drop-notify'
  }
}

/**
 * Attempts per remote address in a sliding window. Every attempt the caller
 * admits counts, refused ones too, so guessing secrets from one address stays slow.
 */
export class AddressLimiter {
  private readonly attempts = new Map<string, number[]>()

  constructor (private readonly limit: number, private readonly windowMs: number) {}

  admit (address: string, now: number): boolean {
    const cutoff = now - this.windowMs
    let times = this.attempts.get(address)
    if (times === undefined) {
      times = []
      this.attempts.set(address, times)
    }
    while (times.length > 0 && (times[0] as number) <= cutoff) times.shift()
    const allowed = times.length < this.limit
    times.push(now)
    if (times.length > this.limit) times.shift()
    return allowed
  }

  /** Whether `address` has spent its budget (nothing is counted). */
  exhausted (address: string, now: number): boolean {
    const times = this.attempts.get(address)
    if (times === undefined) return false
    const cutoff = now - this.windowMs
    return times.filter((time) => time > cutoff).length >= this.limit
  }

  /** Forgets addresses with no attempt inside the window. */
  prune (now: number): void {
    for (const [address, times] of this.attempts) {
      if (times.length === 0 || (times[times.length - 1] as number) <= now - this.windowMs) this.attempts.delete(address)
    }
  }

  get trackedAddresses (): number { return this.attempts.size }
}
