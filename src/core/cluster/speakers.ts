/**
 * The users whose `data` this node subscribes to: those its own users listen to.
 * Changes reach the bus once per tick, at most MAX_SPEAKER_CHANGES_PER_TICK of
 * them, and a subscription outlives its last listener by `lingerMs`. So however a
 * client changes whom it listens to (256 ids per message, at its message rate),
 * the bus gets a bounded number of (un)subscriptions per second from this node;
 * a listener's new speakers are subscribed to within a few ticks.
 */
import type { Clock } from '../clock.js'
import type { ClusterBus } from './bus.js'
import { NeedCounts, userTopic } from './topics.js'

/** A quarter of a full listening set per tick: 1,280 a second at 20 Hz. */
export const MAX_SPEAKER_CHANGES_PER_TICK = 64

export class SpeakerSubscriptions {
  private readonly needs = new NeedCounts((id) => this.wanted(id), (id) => this.unwanted(id))
  private readonly subscribed = new Set<string>()
  private readonly toSubscribe = new Set<string>()
  /** Subscribed, no longer needed, since when; in that order, as entries are added. */
  private readonly unneededSince = new Map<string, number>()

  constructor (
    private readonly bus: Pick<ClusterBus, 'subscribe' | 'unsubscribe'>,
    private readonly clock: Clock,
    private readonly lingerMs: number,
    private readonly failed: (operation: string, err: unknown) => void
  ) {}

  add (id: string): void { this.needs.add(id) }

  remove (id: string): void { this.needs.remove(id) }

  /** The tick step: the changes that are due, within the budget. */
  apply (): void {
    let budget = MAX_SPEAKER_CHANGES_PER_TICK
    for (const id of this.toSubscribe) {
      if (budget <= 0) return
      budget--
      this.toSubscribe.delete(id)
      this.subscribed.add(id)
      this.bus.subscribe(userTopic(id)).catch((err: unknown) => { this.failed(`subscribing to ${userTopic(id)}`, err) })
    }
    const cutoff = this.clock.now() - this.lingerMs
    for (const [id, since] of this.unneededSince) {
      if (budget <= 0 || since > cutoff) return
      budget--
      this.unneededSince.delete(id)
      this.subscribed.delete(id)
      this.bus.unsubscribe(userTopic(id)).catch((err: unknown) => { this.failed(`unsubscribing from ${userTopic(id)}`, err) })
    }
  }

  private wanted (id: string): void {
    this.unneededSince.delete(id)
    if (!this.subscribed.has(id)) this.toSubscribe.add(id)
  }

  private unwanted (id: string): void {
    this.toSubscribe.delete(id)
    if (this.subscribed.has(id)) this.unneededSince.set(id, this.clock.now())
  }
}
