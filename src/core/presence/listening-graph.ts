/**
 * Who listens to whom, indexed by the one listened to, so that `data` from a user
 * reaches its listeners without scanning everyone. Holds live users' edges only.
 */
export class ListeningGraph {
  private readonly listeners = new Map<string, Set<string>>()

  /** Replaces `listenerId`'s edges `from` → `to`. */
  replace (listenerId: string, from: readonly string[], to: readonly string[]): void {
    for (const target of from) this.unlink(listenerId, target)
    for (const target of to) this.link(listenerId, target)
  }

  listenersOf (targetId: string): ReadonlySet<string> {
    return this.listeners.get(targetId) ?? empty
  }

  private link (listenerId: string, target: string): void {
    let set = this.listeners.get(target)
    if (set === undefined) {
      set = new Set()
      this.listeners.set(target, set)
    }
    set.add(listenerId)
  }

  private unlink (listenerId: string, target: string): void {
    const set = this.listeners.get(target)
    if (set === undefined) return
    set.delete(listenerId)
    if (set.size === 0) this.listeners.delete(target)
  }
}

const empty: ReadonlySet<string> = new Set()
