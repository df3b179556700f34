/**
 * The client's copy of its room, kept from `welcome`, `snapshot`, `presence` and
 * `positions`. Pure data handling: every method says what changed, so the client
 * can emit events, and whether the copy has a gap that calls for a `sync`.
 */
import type { PositionsMessageT, PresenceMessageT, PresenceUpdateT, UserT } from '../../schemas/protocol.js'

export interface PresenceChanges {
  joined: UserT[]
  left: UserT[]
  updated: Array<{ user: UserT, changes: PresenceUpdateT }>
  /** An id the copy did not know was referred to: the copy may have missed something. */
  gap: boolean
}

export class RoomMirror {
  room = ''
  selfId = ''
  readonly users = new Map<string, UserT>()
  /** With the compact encoding: user ids by short id (ours included). */
  private readonly ids = new Map<number, string>()

  /** Replaces everything (after `welcome` or `snapshot`). */
  reset (room: string, users: readonly UserT[], self?: UserT): void {
    this.room = room
    this.users.clear()
    if (self?.sid !== undefined) {
      this.ids.clear()
      this.ids.set(self.sid, self.id)
    } else {
      for (const [sid, id] of this.ids) if (id !== this.selfId) this.ids.delete(sid)
    }
    for (const user of users) {
      if (user.id === this.selfId) continue
      this.users.set(user.id, copy(user))
      if (user.sid !== undefined) this.ids.set(user.sid, user.id)
    }
  }

  /** The user id of a short id from a compact `positions` frame ('' when unknown, which `applyPositions` takes as a gap). */
  idOf (sid: number): string {
    return this.ids.get(sid) ?? ''
  }

  applyPresence (message: PresenceMessageT): PresenceChanges {
    const changes: PresenceChanges = { joined: [], left: [], updated: [], gap: false }
    // A frame of a room we already left may still arrive after `join`.
    if (message.room !== this.room) return changes
    for (const id of message.left ?? []) {
      const user = this.users.get(id)
      if (user === undefined) continue
      this.users.delete(id)
      if (user.sid !== undefined) this.ids.delete(user.sid)
      changes.left.push(user)
    }
    for (const joined of message.joined ?? []) {
      if (joined.id === this.selfId) continue
      if (joined.sid !== undefined) this.ids.set(joined.sid, joined.id)
      const known = this.users.get(joined.id)
      if (known === undefined) {
        const user = copy(joined)
        this.users.set(user.id, user)
        changes.joined.push(user)
      } else {
        // A repeat of someone our welcome or snapshot already had: news only if it changed.
        const { id, ...fields } = copy(joined)
        Object.assign(known, fields)
        changes.updated.push({ user: known, changes: { id, ...fields } })
      }
    }
    for (const update of message.updated ?? []) {
      if (update.id === this.selfId) continue
      const user = this.users.get(update.id)
      if (user === undefined) {
        changes.gap = true
        continue
      }
      Object.assign(user, update)
      changes.updated.push({ user, changes: update })
    }
    return changes
  }

  /** Applies positions; returns whether an unknown user moved (a gap). */
  applyPositions (message: PositionsMessageT): boolean {
    let gap = false
    for (const [id, x, y, z] of message.p) {
      if (id === this.selfId) continue
      const user = this.users.get(id)
      if (user === undefined) gap = true
      else user.position = { x, y, z }
    }
    return gap
  }
}

function copy (user: UserT): UserT {
  return { ...user, position: { ...user.position }, state: { ...user.state }, listeningTo: [...user.listeningTo] }
}
