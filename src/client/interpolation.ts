/**
 * Smooth movement of remote users between `positions` frames: positions are kept
 * with the time they arrived, and drawn `delayMs` in the past, interpolated
 * between the two samples around that moment (entity interpolation).
 */
export interface Point { x: number, y: number, z: number }

interface Sample extends Point { at: number }

export class Interpolator {
  private readonly samples = new Map<string, Sample[]>()

  /** `delayMs` should be about two server ticks (100 ms at 20 Hz). */
  constructor (private readonly delayMs = 100, private readonly keep = 8) {}

  /** Records where `id` was at time `at` (ms, any monotonic clock). */
  push (id: string, point: Point, at: number): void {
    let list = this.samples.get(id)
    if (list === undefined) {
      list = []
      this.samples.set(id, list)
    }
    list.push({ x: point.x, y: point.y, z: point.z, at })
    if (list.length > this.keep) list.shift()
  }

  forget (id: string): void {
    this.samples.delete(id)
  }

  /** Where to draw `id` at time `now`, or undefined when nothing is known. */
  sample (id: string, now: number): Point | undefined {
    const list = this.samples.get(id)
    if (list === undefined || list.length === 0) return undefined
    const target = now - this.delayMs
    const first = list[0] as Sample
    if (target <= first.at) return point(first)
    for (let i = list.length - 1; i > 0; i--) {
      const before = list[i - 1] as Sample
      const after = list[i] as Sample
      if (before.at <= target) {
        if (target >= after.at) return point(after)
        const f = (target - before.at) / (after.at - before.at)
        return { x: lerp(before.x, after.x, f), y: lerp(before.y, after.y, f), z: lerp(before.z, after.z, f) }
      }
    }
    return point(list[list.length - 1] as Sample)
  }
}

const lerp = (a: number, b: number, f: number): number => a + (b - a) * f
const point = (s: Sample): Point => ({ x: s.x, y: s.y, z: s.z })
