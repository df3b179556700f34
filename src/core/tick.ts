/**
 * Runs an instance's tick at a fixed rate. Steps are synchronous and run in the
 * order of their phase, then in the order they were added, whichever plugin adds
 * them first: grace expiry is seen by clients in the same tick, and the cluster
 * publishes what the rooms were just told.
 */
export type TickStep = () => void

export const TICK_PHASES = ['expire', 'persist', 'flush', 'publish'] as const
export type TickPhase = (typeof TICK_PHASES)[number]

export interface TickHooks {
  /** Duration of one tick in seconds. */
  observe?: (seconds: number) => void
  /** A failing step is reported here and never stops the other steps or later ticks. */
  onError?: (step: string, err: unknown) => void
}

interface Step { phase: number, name: string, step: TickStep }

export class TickScheduler {
  private timer: ReturnType<typeof setInterval> | null = null
  private readonly steps: Step[] = []

  constructor (private readonly hz: number, private readonly hooks: TickHooks = {}) {}

  add (phase: TickPhase, name: string, step: TickStep): void {
    const order = TICK_PHASES.indexOf(phase)
    const at = this.steps.findIndex((other) => other.phase > order)
    this.steps.splice(at === -1 ? this.steps.length : at, 0, { phase: order, name, step })
  }

  /** Step names in the order they run. */
  get order (): string[] { return this.steps.map((step) => step.name) }

  start (): void {
    if (this.timer === null) this.timer = setInterval(() => this.tick(), 1000 / this.hz)
  }

  stop (): void {
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
  }

  /** Runs every step once, now. */
  tick (): void {
    const started = performance.now()
    for (const { name, step } of this.steps) {
      try {
        step()
      } catch (err) {
        this.hooks.onError?.(name, err)
      }
    }
    this.hooks.observe?.((performance.now() - started) / 1000)
  }
}
