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

/** Where a user taken over from another node was, as this node knew it then: the room the others may still show it in. */
export interface Adoption { room: string, owner: string }

/** How one user is to be drafted: as it changed, whole for a newcomer to its room, or just taken over. */
export interface DraftHints { whole: boolean, adopted: Adoption | undefined }

/**
 * What one of this node's users did since the last publish, into the tick's
 * draft; `published` (what the others were told) is brought up to date.
 */
export function draftChange (users: UserStore, published: Map<string, UserT>, user: LiveUser, draft: TickDraft, nodeId: string, hints: DraftHints): void {
  const { adopted } = hints
  const before = published.get(user.id) ?? (adopted === undefined ? undefined : { room: adopted.room })
  const recordOwner = adopted?.owner ?? nodeId
  if (users.get(user.id) !== user || !user.isLocal) {
    // Gone from this node: left, or taken over by another node (which then announces it, and owns the record).
    if (before !== undefined && user.isLocal) draft.room(before.room).left.push(user.id)
    if (before !== undefined) draft.removed.push({ room: before.room, id: user.id, owner: recordOwner })
    published.delete(user.id)
    return
  }
  const now = user.toWire()
  const told = published.get(user.id)
  let presenceChanged = true
  if (told === undefined || told.room !== now.room) {
    if (before !== undefined && before.room !== now.room) {
      draft.room(before.room).left.push(user.id)
      draft.removed.push({ room: before.room, id: user.id, owner: recordOwner })
    }
    draft.room(now.room).joined.push(now)
  } else if (hints.whole) {
    (draft.room(now.room).present ??= []).push(now)
    presenceChanged = false
  } else {
    const update = changedFields(told, now)
    if (update !== null) draft.room(now.room).updated.push(update)
    else presenceChanged = false
    const { x, y, z } = now.position
    if (x !== told.position.x || y !== told.position.y || z !== told.position.z) {
      draft.room(now.room).positions.push([user.id, x, y, z])
      if (!presenceChanged) draft.moved.push(user)
    }
  }
  // Its state and list are replaced on change, never mutated: only the position needs a copy.
  published.set(user.id, { ...now, position: { ...now.position } })
  // The stored record is for nodes that start serving the room later; a move alone waits for the beat.
  if (presenceChanged) draft.changed.push(now)
}
