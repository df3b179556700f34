/**
 * A room and what its clients have been told about it.
 *
 * Like Phoenix Presence, a room keeps the last published view of each member and,
 * once per tick, sends only the difference between that view and the present:
 * changes inside one tick coalesce into at most one entry per user, and a change
 * that changes nothing sends nothing.
 */
import type { PresenceUpdateT, UserT } from '../schemas/protocol.js'
import { sameMembers, sameState } from './state.js'
import type { LiveUser } from './user.js'

export interface PresenceDiff {
  joined: UserT[]
  left: string[]
  updated: PresenceUpdateT[]
}

export type PositionEntry = [id: string, x: number, y: number, z: number]

export class Room {
  readonly members = new Map<string, LiveUser>()
  /** What this room's clients were last told about each member. */
  private readonly published = new Map<string, UserT>()
  /** Members whose presence may differ from `published`. */
  private readonly changed = new Set<string>()
  /** Members that entered during this tick: announced whole, since a newcomer's welcome may predate their earlier exit. */
  private readonly entered = new Set<string>()
  private readonly moved = new Set<LiveUser>()

  constructor (readonly name: string) {}

  add (user: LiveUser): void {
    this.members.set(user.id, user)
    this.changed.add(user.id)
    this.entered.add(user.id)
  }

  remove (user: LiveUser): void {
    this.members.delete(user.id)
    this.changed.add(user.id)
    this.entered.delete(user.id)
    this.moved.delete(user)
  }

  /** The member's name, state, listening set or connection changed. */
  touch (user: LiveUser): void {
    this.changed.add(user.id)
  }

  move (user: LiveUser): void {
    this.moved.add(user)
  }

  get hasPendingPresence (): boolean { return this.changed.size > 0 }
  get hasPendingPositions (): boolean { return this.moved.size > 0 }

  /** Nothing left to send and nobody here: the room can be dropped. */
  get isIdle (): boolean {
    return this.members.size === 0 && this.published.size === 0 && this.changed.size === 0
  }

  /** Every member but `exceptId`, as they are now (for `welcome` and `snapshot`). */
  others (exceptId: string): UserT[] {
    const users: UserT[] = []
    for (const member of this.members.values()) {
      if (member.id !== exceptId) users.push(member.toWire())
    }
    return users
  }

  /** The presence changes since the last call, or null when there are none. */
  takePresence (): PresenceDiff | null {
    if (this.changed.size === 0) return null
    const diff: PresenceDiff = { joined: [], left: [], updated: [] }
    for (const id of this.changed) {
      const member = this.members.get(id)
      const shown = this.published.get(id)
      if (member === undefined) {
        // Sent even when never published: a newcomer's welcome may have listed this user.
        diff.left.push(id)
        this.published.delete(id)
        continue
      }
      const now = member.toWire()
      if (shown === undefined || this.entered.has(id)) {
        diff.joined.push(now)
      } else {
        const update = changedFields(shown, now)
        if (update !== null) diff.updated.push(update)
      }
      this.published.set(id, now)
    }
    this.changed.clear()
    this.entered.clear()
    return diff.joined.length + diff.left.length + diff.updated.length > 0 ? diff : null
  }

  /** Latest position of every member that moved since the last call. */
  takePositions (): PositionEntry[] {
    const entries: PositionEntry[] = []
    for (const user of this.moved) {
      entries.push([user.id, user.position.x, user.position.y, user.position.z])
    }
    this.moved.clear()
    return entries
  }

  /** Every member's position, for a client that missed frames. */
  allPositions (): PositionEntry[] {
    const entries: PositionEntry[] = []
    for (const user of this.members.values()) {
      entries.push([user.id, user.position.x, user.position.y, user.position.z])
    }
    return entries
  }
}

function changedFields (before: UserT, after: UserT): PresenceUpdateT | null {
  const update: PresenceUpdateT = { id: after.id }
  let changed = false
  if (before.name !== after.name) { update.name = after.name; changed = true }
  if (!sameState(before.state, after.state)) { update.state = after.state; changed = true }
  if (!sameMembers(before.listeningTo, after.listeningTo)) { update.listeningTo = after.listeningTo; changed = true }
  if (before.connected !== after.connected) { update.connected = after.connected; changed = true }
  return changed ? update : null
}
