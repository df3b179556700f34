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
import { InterestIndex, type ViewVisitor } from './interest.js'
import { MemberListing } from './listing.js'
import { sameInfo, sameMembers, sameState } from './state.js'
import type { LiveUser } from './user.js'

export { INTEREST_HYSTERESIS, type ViewVisitor } from './interest.js'

export interface PresenceDiff {
  joined: UserT[]
  left: string[]
  updated: PresenceUpdateT[]
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
  /** With interest management: where members are and whom each was last sent positions of. */
  private readonly interest: InterestIndex | null
  /** With interest management: someone came, went or changed whom they listen to, so views may change without a move. */
  private viewsStale = false
  /** The members serialized for welcome and snapshot: for JSON clients [0] and compact ones [1]. */
  private readonly listings = [new MemberListing(false), new MemberListing(true)] as const

  /**
   * With an interest radius, each member's `positions` carry only the users within
   * it (plus those it listens to); 0 turns interest management off. Presence stays room-wide.
   */
  constructor (readonly name: string, readonly options: RoomOptionsT = { interestRadius: 0 }) {
    this.interest = options.interestRadius > 0 ? new InterestIndex(options.interestRadius) : null
  }

  get hasInterest (): boolean { return this.interest !== null }

  add (user: LiveUser): void {
    this.members.set(user.id, user)
    for (const listing of this.listings) listing.added(user)
    this.changed.add(user.id)
    this.entered.add(user.id)
    this.interest?.add(user)
    this.viewsStale = this.interest !== null
  }

  remove (user: LiveUser): void {
    this.members.delete(user.id)
    for (const listing of this.listings) listing.removed(user)
    this.changed.add(user.id)
    this.entered.delete(user.id)
    this.moved.delete(user)
    this.interest?.remove(user)
    this.viewsStale = this.interest !== null
  }

  /** The member's name or state changed: what clients know, not what anyone sees. */
  touch (user: LiveUser): void {
    this.changedEntry(user)
    this.changed.add(user.id)
  }

  /** The member's listening set or connection changed: with interest management, views change even if nobody moves. */
  touchView (user: LiveUser): void {
    this.changedEntry(user)
    this.changed.add(user.id)
    this.viewsStale = this.interest !== null
  }

  move (user: LiveUser): void {
    this.changedEntry(user)
    this.moved.add(user)
    this.interest?.move(user)
  }

  /** The member's next presence entry is a whole `joined` one (it came this tick): the others get it, the member itself does not. */
  announcesWhole (id: string): boolean {
    return this.entered.has(id) || !this.published.has(id)
  }

  get hasPendingPresence (): boolean { return this.changed.size > 0 }
  get hasPendingPositions (): boolean { return this.moved.size > 0 || this.viewsStale }

  /** Nothing left to send and nobody here: the room can be dropped. */
  get isIdle (): boolean {
    return this.members.size === 0 && this.published.size === 0 && this.changed.size === 0
  }

  /** Every member but `exceptId`, as they are now, as a JSON array in UTF-8 parts (for `welcome` and `snapshot`; see MemberListing). */
  others (exceptId: string, withSids = false): Uint8Array[] {
    return this.listings[withSids ? 1 : 0].others(this.members.values(), exceptId)
  }

  /** What clients are sent of `user` in welcome and snapshot changed. */
  private changedEntry (user: LiveUser): void {
    for (const listing of this.listings) listing.changed(user)
  }

  /** A tick ended at `now`; returns whether the room still holds a serialized listing (see MemberListing.endTick). */
  endTick (now: number): boolean {
    const json = this.listings[0].endTick(now)
    const compact = this.listings[1].endTick(now)
    return json || compact
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
    if (this.interest === null) throw new Error(`room ${this.name} has no interest radius`)
    this.interest.visitViews(this.members, visit)
    this.moved.clear()
    this.viewsStale = false
  }

  /** Everyone `member` currently sees (all members without interest management). */
  usersInViewOf (member: LiveUser): LiveUser[] {
    return this.interest === null ? [...this.members.values()] : this.interest.usersInViewOf(member)
  }
}

export function changedFields (before: UserT, after: UserT): PresenceUpdateT | null {
  const update: PresenceUpdateT = { id: after.id }
  let changed = false
  if (before.name !== after.name) { update.name = after.name; changed = true }
  if (!sameState(before.state, after.state)) { update.state = after.state; changed = true }
  if (!sameMembers(before.listeningTo, after.listeningTo)) { update.listeningTo = after.listeningTo; changed = true }
  if (before.connected !== after.connected) { update.connected = after.connected; changed = true }
  if (after.info !== undefined && !sameInfo(before.info, after.info)) { update.info = after.info; changed = true }
  return changed ? update : null
}
