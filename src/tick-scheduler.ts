/**
 * Runs an instance's tick at a fixed rate: a list of synchronous steps (expire
 * grace, flush rooms, persist sessions), in the order they were added.
 */
export type TickStep = () => void

export interface TickHooks {
  /** Duration of one tick in seconds. */
  observe?: (seconds: number) => void
  /** A failing step is reported here and never stops the other steps or later ticks. */
  onError?: (step: string, err: unknown) => void
}

export class TickScheduler {
  private timer: NodeJS.Timeout | null = null
  private readonly steps: Array<{ name: string, step: TickStep }> = []

  constructor (private readonly hz: number, private readonly hooks: TickHooks = {}) {}

  add (name: string, step: TickStep): void {
    this.steps.push({ name, step })
  }

  start (): void {
    if (this.timer === null) this.timer = setInterval(() => this.tick(), 1000 / this.hz)
  }

  stop (): void {
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
  }

  /** Runs every step once, now. */
  tick (): void {
    const started = process.hrtime.bigint()
    for (const { name, step } of this.steps) {
      try {
        step()
      } catch (err) {
        this.hooks.onError?.(name, err)
      }
    }
    this.hooks.observe?.(Number(process.hrtime.bigint() - started) / 1e9)
  }
}
