/** Time source of the core. Injected so every time-based rule can be tested without waiting. */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number
}

export const systemClock: Clock = { now: () => Date.now() }

/** A clock that only moves when told to; for tests and simulations. */
export class ManualClock implements Clock {
  constructor (private time = 1_700_000_000_000) {}
  now (): number { return this.time }
  advance (ms: number): number { this.time += ms; return this.time }
}
