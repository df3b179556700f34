/**
 * Verdicts shared by the runner (bench/fanout/run.ts) and the report
 * (bench/report.ts), so that a result file read later is judged the way it was
 * judged when it was written.
 */
import { isShoal, type GeneratorResult } from './protocol.js'

export interface InterestVerdict {
  radius: number
  /** Whether the target was asked for interest management (Shoal, either encoding, gets INTEREST_RADIUS). */
  requested: boolean
  /** true: observers got roughly their neighbours; false: roughly everyone; null: cannot tell. */
  honoured: boolean | null
  note: string
}

/**
 * Did the server honour the interest radius? Observers should receive updates from
 * about the users within the radius, far fewer than the room's N − 1. It cannot be
 * told when the neighbours are themselves most of the room (small N) or when too
 * little arrived at all (a collapsed server).
 */
export function interestVerdict (target: string, users: number, radius: number, generator: GeneratorResult | null): InterestVerdict {
  const interest = generator?.interest ?? null
  const requested = isShoal(target)
  if (interest === null) return { radius, requested, honoured: null, note: 'no observer data' }
  const others = Math.max(1, users - 1)
  const got = interest.receivedSendersPerObserver
  const near = interest.expectedSendersPerObserver
  const figures = `observers received updates from ${got} distinct users on average (${near} within the radius, ${others} others in the room), ${interest.entriesPerPositionsFrame} entries per positions frame`
  if (!requested) return { radius, requested, honoured: null, note: `baseline without interest management: ${figures}` }
  if (near > others * 0.5) return { radius, requested, honoured: null, note: `too few users to tell (the neighbours are most of the room): ${figures}` }
  if (got < near * 0.5) return { radius, requested, honoured: null, note: `too little arrived to tell: ${figures}` }
  return { radius, requested, honoured: got < (near + others) / 2, note: figures }
}
