/**
 * A room and what its clients have been told about it.
 *
 * Like Phoenix Presence, a room keeps the last published view of each member and,
 * once per tick, sends only the difference between that view and the present:
 * changes inside one tick coalesce into at most one entry per user, and a change
 * that changes nothing sends nothing.
 */
import type { RoomOptionsT } from '../../../schemas/options.js'
import type { PresenceUpdateT, UserT } from '../../../schemas/protocol.js'
import { SpatialGrid } from './spatial-grid.js'
import { sameMembers, sameState } from './state.js'
import type { LiveUser } from './user.js'

/** A user in view stays in view until this factor beyond the radius, so users at the edge do not flap. */
export const INTEREST_HYSTERESIS = 1.1

export interface PresenceDiff {
  joined: UserT[]
  left: string[]
  updated: PresenceUpdateT[]
}

/**
 * Called once per connected member with the users whose positions it should get
 * this tick. The array is reused for the next member: read it, do not keep it.
 */
export type ViewVisitor = (member: LiveUser, users: readonly LiveUser[]) => void

/** The members as one JSON array, and where each member's entry is in it. */
interface Listing {
  json: string
  spans: Map<string, [start: number, end: number]>
}

const COMMA = 44

/** From this many members a room keeps each member's serialized entry (below, serializing them again is cheap). */
const ENTRY_CACHE_MIN_MEMBERS = 200

/** What a member saw last tick, and a spare set to fill this tick (swapped, so no set is allocated per tick). */
interface View {
  current: Set<LiveUser>
  next: Set<LiveUser>
}

export class Room {
  readonly members = new Map<string, LiveUser>()
  /** What this room's clients were last told about each member. */
  private readonly published = new Map<string, UserT>()
  /** When each member's last `updated` entry was published (ms), for coalescing per user. */
  private readonly updatedAt = new Map<string, number>()
  /** Members whose presence may differ from `published`. */
  private readonly changed = new Set<string>()
  /** Members that entered during this tick: announced whole, since a newcomer's welcome may predate their earlier exit. */
  private readonly entered = new Set<string>()
  private readonly moved = new Set<LiveUser>()
  /** Members by position, when the room has an interest radius. */
  private readonly grid: SpatialGrid<LiveUser> | null
  /** With interest management: whom each member was last sent positions of. */
  private readonly views = new Map<LiveUser, View>()
  /** With interest management: someone came, went or changed whom they listen to, so views may change without a move. */
  private viewsStale = false
  /** The serialized member list, for JSON clients [0] and compact ones [1], until the room changes or the tick ends. */
  private readonly listings: [Listing | null, Listing | null] = [null, null]
  /** In a big room, each member's serialized entry, until that member changes. */
  private readonly entries: [Map<string, string> | null, Map<string, string> | null] = [null, null]

  /**
   * With an interest radius, each member's `positions` carry only the users within
   * it (plus those it listens to); 0 turns interest management off. Presence stays room-wide.
   */
  constructor (readonly name: string, readonly options: RoomOptionsT = { interestRadius: 0 }) {
    this.grid = options.interestRadius > 0 ? new SpatialGrid(options.interestRadius) : null
  }

  get hasInterest (): boolean { return this.grid !== null }

  add (user: LiveUser): void {
    this.stale(user.id)
    this.members.set(user.id, user)
    this.changed.add(user.id)
    this.entered.add(user.id)
    this.grid?.set(user, user.position.x, user.position.y)
    this.viewsStale = this.grid !== null
  }

  remove (user: LiveUser): void {
    this.stale(user.id)
    this.members.delete(user.id)
    this.changed.add(user.id)
    this.entered.delete(user.id)
    this.moved.delete(user)
    this.grid?.delete(user)
    this.views.delete(user)
    this.viewsStale = this.grid !== null
  }

  /** The member's name or state changed: what clients know, not what anyone sees. */
  touch (user: LiveUser): void {
    this.stale(user.id)
    this.changed.add(user.id)
  }

  /** The member's listening set or connection changed: with interest management, views change even if nobody moves. */
  touchView (user: LiveUser): void {
    this.stale(user.id)
    this.changed.add(user.id)
    this.viewsStale = this.grid !== null
  }

  move (user: LiveUser): void {
    this.stale(user.id)
    this.moved.add(user)
    this.grid?.set(user, user.position.x, user.position.y)
  }

  get hasPendingPresence (): boolean { return this.changed.size > 0 }
  get hasPendingPositions (): boolean { return this.moved.size > 0 || this.viewsStale }

  /** Nothing left to send and nobody here: the room can be dropped. */
  get isIdle (): boolean {
    return this.members.size === 0 && this.published.size === 0 && this.changed.size === 0
  }

  /**
   * Every member but `exceptId`, as they are now, as a JSON array (for `welcome`
   * and `snapshot`). The array is built once and shared until the room changes
   * (and at most until the tick ends); in a big room each member's entry is
   * serialized once per change of that member, so a new array only joins them.
   */
  othersJson (exceptId: string, withSids = false): string {
    const listing = this.listing(withSids)
    const span = listing.spans.get(exceptId)
    if (span === undefined) return listing.json
    const [start, end] = span
    const { json } = listing
    // Cut the entry with one of the commas beside it.
    if (json.charCodeAt(end) === COMMA) return json.slice(0, start) + json.slice(end + 1)
    if (json.charCodeAt(start - 1) === COMMA) return json.slice(0, start - 1) + json.slice(end)
    return '[]'
  }

  /** The tick is over: nothing keeps this tick's arrays (an idle room holds no copy of itself). */
  endTick (): void {
    this.listings[0] = this.listings[1] = null
  }

  private listing (withSids: boolean): Listing {
    const index = withSids ? 1 : 0
    const cached = this.listings[index]
    if (cached !== null) return cached
    let entries = this.entries[index]
    if (entries === null && this.members.size >= ENTRY_CACHE_MIN_MEMBERS) entries = this.entries[index] = new Map()
    if (entries !== null && this.members.size < ENTRY_CACHE_MIN_MEMBERS / 2) entries = this.entries[index] = null
    const spans = new Map<string, [number, number]>()
    const parts: string[] = []
    let length = 1
    for (const member of this.members.values()) {
      let entry = entries?.get(member.id)
      if (entry === undefined) {
        entry = JSON.stringify(member.toWire(withSids))
        entries?.set(member.id, entry)
      }
      if (parts.length > 0) length++
      spans.set(member.id, [length, length + entry.length])
      length += entry.length
      parts.push(entry)
    }
    const listing = { json: `[${parts.join(',')}]`, spans }
    this.listings[index] = listing
    return listing
  }

  /** `member` changed (or came or went): its entry and every array holding it are stale. */
  private stale (id: string): void {
    this.listings[0] = this.listings[1] = null
    this.entries[0]?.delete(id)
    this.entries[1]?.delete(id)
  }

  /**
   * The presence changes since the last call, or null when there are none. A
   * member whose last `updated` entry went out less than `userIntervalMs` before
   * `now` keeps its change for a later call (latest value wins); joins and leaves
   * always go.
   */
  takePresence (now = 0, userIntervalMs = 0): PresenceDiff | null {
    if (this.changed.size === 0) return null
    const diff: PresenceDiff = { joined: [], left: [], updated: [] }
    for (const id of this.changed) {
      const member = this.members.get(id)
      const shown = this.published.get(id)
      if (member === undefined) {
        // Sent even when never published: a newcomer's welcome may have listed this user.
        diff.left.push(id)
        this.published.delete(id)
        this.updatedAt.delete(id)
      } else if (shown === undefined || this.entered.has(id)) {
        const current = member.toWire()
        diff.joined.push(current)
        this.published.set(id, current)
      } else if (now - (this.updatedAt.get(id) ?? Number.NEGATIVE_INFINITY) < userIntervalMs) {
        continue
      } else {
        const current = member.toWire()
        const update = changedFields(shown, current)
        if (update !== null) {
          diff.updated.push(update)
          this.updatedAt.set(id, now)
        }
        this.published.set(id, current)
      }
      this.changed.delete(id)
    }
    this.entered.clear()
    return diff.joined.length + diff.left.length + diff.updated.length > 0 ? diff : null
  }

  /** Every member that moved since the last call. */
  takeMoved (): LiveUser[] {
    const movers = [...this.moved]
    this.moved.clear()
    return movers
  }

  /**
   * One tick of interest management: works out what each connected member sees
   * now and visits it with the users it needs positions of (users in view that
   * moved, and users that came into view, with their current position).
   */
  takePositionsInView (visit: ViewVisitor): void {
    const grid = this.grid
    if (grid === null) throw new Error(`room ${this.name} has no interest radius`)
    const radius = this.options.interestRadius
    const keep = radius * INTEREST_HYSTERESIS
    const radiusSquared = radius * radius
    const keepSquared = keep * keep
    const moved = this.moved
    const cells: Array<Set<LiveUser>> = []
    const needed: LiveUser[] = []
    for (const member of this.members.values()) {
      if (member.peer === null) continue
      let view = this.views.get(member)
      if (view === undefined) {
        view = { current: new Set(), next: new Set() }
        this.views.set(member, view)
      }
      const before = view.current
      const now = view.next
      now.clear()
      needed.length = 0
      const { x, y, z } = member.position
      grid.cellsNear(x, y, keep, cells)
      // Each user is in one cell, so nobody is met twice in this loop.
      for (const cell of cells) {
        for (const other of cell) {
          if (other === member) continue
          const position = other.position
          const dx = position.x - x
          const dy = position.y - y
          const dz = position.z - z
          const squared = dx * dx + dy * dy + dz * dz
          if (squared > keepSquared || (squared > radiusSquared && !before.has(other))) continue
          now.add(other)
          if (moved.has(other) || !before.has(other)) needed.push(other)
        }
      }
      for (const id of member.listeningTo) {
        const other = this.members.get(id)
        if (other === undefined || now.has(other)) continue
        now.add(other)
        if (moved.has(other) || !before.has(other)) needed.push(other)
      }
      view.current = now
      view.next = before
      if (needed.length > 0) visit(member, needed)
    }
    moved.clear()
    this.viewsStale = false
  }

  /** Everyone `member` currently sees (all members without interest management). */
  usersInViewOf (member: LiveUser): LiveUser[] {
    if (this.grid === null) return [...this.members.values()]
    const users: LiveUser[] = []
    for (const user of this.views.get(member)?.current ?? []) {
      if (this.members.get(user.id) === user) users.push(user)
    }
    return users
  }
}

export function changedFields (before: UserT, after: UserT): PresenceUpdateT | null {
  const update: PresenceUpdateT = { id: after.id }
  let changed = false
  if (before.name !== after.name) { update.name = after.name; changed = true }
  if (!sameState(before.state, after.state)) { update.state = after.state; changed = true }
  if (!sameMembers(before.listeningTo, after.listeningTo)) { update.listeningTo = after.listeningTo; changed = true }
  if (before.connected !== after.connected) { update.connected = after.connected; changed = true }
  return changed ? update : null
}
