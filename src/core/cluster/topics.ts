/**
 * The topics nodes publish on. A room's batches go to the nodes serving it, a
 * user's `data` to the nodes with its listeners, claims and handovers to one node.
 */
export const roomTopic = (room: string): string => `room:${room}`
export const userTopic = (userId: string): string => `user:${userId}`
export const nodeTopic = (nodeId: string): string => `node:${nodeId}`

/** Counts what needs each key; `first` runs when the first need comes, `last` when the last one goes. */
export class NeedCounts {
  private readonly counts = new Map<string, number>()

  constructor (private readonly first: (key: string) => void, private readonly last: (key: string) => void) {}

  keys (): IterableIterator<string> { return this.counts.keys() }

  add (key: string): void {
    const count = (this.counts.get(key) ?? 0) + 1
    this.counts.set(key, count)
    if (count === 1) this.first(key)
  }

  remove (key: string): void {
    const count = this.counts.get(key)
    if (count === undefined) return
    if (count > 1) {
      this.counts.set(key, count - 1)
      return
    }
    this.counts.delete(key)
    this.last(key)
  }
}
