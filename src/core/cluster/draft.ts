/**
 * What a node publishes in one tick, drafted from its users that changed: a batch
 * per room, and the membership records to write and to delete.
 */
import type { RoomBatchT } from '../../../schemas/cluster.js'
import type { UserT } from '../../../schemas/protocol.js'
import { changedFields } from '../presence/room.js'
import type { UserStore } from '../presence/user-store.js'
import type { LiveUser } from '../presence/user.js'
import type { MemberRef } from './bus.js'

export class TickDraft {
  readonly rooms = new Map<string, RoomBatchT>()
  readonly changed: UserT[] = []
  readonly removed: MemberRef[] = []
  /** Users that only moved: their records are rewritten at the next beat, not every tick. */
  readonly moved: LiveUser[] = []

  room (name: string): RoomBatchT {
    let batch = this.rooms.get(name)
    if (batch === undefined) {
      batch = { room: name, joined: [], left: [], updated: [], positions: [] }
      this.rooms.set(name, batch)
    }
    return batch
  }
}

/**
 * What one of this node's users did since the last publish, into the tick's
 * draft; `published` (what the others were told) is brought up to date. `whole`:
 * announced as a join even if unchanged (a node that starts serving its room needs it).
 */
export function draftChange (users: UserStore, published: Map<string, UserT>, user: LiveUser, draft: TickDraft, nodeId: string, whole = false): void {
  const before = published.get(user.id)
  if (users.get(user.id) !== user || !user.isLocal) {
    // Gone from this node: left, or taken over by another node (which then announces it, and owns the record).
    if (before !== undefined && user.isLocal) draft.room(before.room).left.push(user.id)
    if (before !== undefined) draft.removed.push({ room: before.room, id: user.id, owner: nodeId })
    published.delete(user.id)
    return
  }
  const now = user.toWire()
  let presenceChanged = true
  if (before === undefined || before.room !== now.room || whole) {
    if (before !== undefined && before.room !== now.room) {
      draft.room(before.room).left.push(user.id)
      draft.removed.push({ room: before.room, id: user.id, owner: nodeId })
    }
    draft.room(now.room).joined.push(now)
  } else {
    const update = changedFields(before, now)
    if (update !== null) draft.room(now.room).updated.push(update)
    else presenceChanged = false
    const { x, y, z } = now.position
    if (x !== before.position.x || y !== before.position.y || z !== before.position.z) {
      draft.room(now.room).positions.push([user.id, x, y, z])
      if (!presenceChanged) draft.moved.push(user)
    }
  }
  // Its state and list are replaced on change, never mutated: only the position needs a copy.
  published.set(user.id, { ...now, position: { ...now.position } })
  // The stored record is for nodes that start serving the room later; a move alone waits for the beat.
  if (presenceChanged) draft.changed.push(now)
}
