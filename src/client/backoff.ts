/** Reconnect delays: exponential with a cap, and jitter so that a restarted server is not hit by every client at once. */
export interface BackoffOptions {
  /** First delay in ms (default 500). */
  initialMs?: number
  /** Largest delay in ms (default 30000). */
  maxMs?: number
}

/**
 * Delay before reconnect attempt `attempt` (0-based): half of the capped
 * exponential step is fixed, the other half random ("equal jitter").
 */
export function backoffDelay (attempt: number, random: () => number, options: BackoffOptions = {}): number {
  const initial = options.initialMs ?? 500
  const max = options.maxMs ?? 30_000
  const step = Math.min(max, initial * 2 ** Math.min(attempt, 30))
  return step / 2 + random() * step / 2
}
