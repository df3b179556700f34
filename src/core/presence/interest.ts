/**
 * Interest management's index of one room: where each member is and whom each
 * member was last sent positions of.
 *
 * Every tick each connected member's view is worked out again, exactly: the
 * users within the radius (kept until 10% beyond it), plus those it listens to.
 * That scan is the tick's biggest cost in a crowd (each member looks at about
 * three times as many candidates as it sees), so it touches no object of a
 * candidate it does not keep: members have small integer slots, the grid holds
 * slots, coordinates and "moved this tick" live in typed arrays by slot, and
 * "was in my view" is a stamp per slot instead of a set lookup.
 */
import { SpatialGrid } from './spatial-grid.js'
import type { LiveUser } from './user.js'

/** A user in view stays in view until this factor beyond the radius, so users at the edge do not flap. */
export const INTEREST_HYSTERESIS = 1.1

/**
 * Called once per connected member with the users whose positions it should get
 * this tick: the first `count` of `users`. The array is reused for the next
 * member (and may hold more than `count`): read it, do not keep it.
 */
export type ViewVisitor = (member: LiveUser, users: readonly LiveUser[], count: number) => void

/**
 * The slots a member saw last tick, and a spare array to fill this tick (swapped,
 * so none is allocated per tick). While the member has no socket its view is
 * parked as users: slots given up meanwhile may be taken by others.
 */
interface View {
  current: Int32Array
  size: number
  next: Int32Array
  parked: LiveUser[] | null
}

const INITIAL_SLOTS = 64
const INITIAL_VIEW = 16

export class InterestIndex {
  private readonly grid: SpatialGrid<number>
  private readonly slots = new Map<LiveUser, number>()
  private readonly users: Array<LiveUser | undefined> = []
  private xs = new Float64Array(INITIAL_SLOTS)
  private ys = new Float64Array(INITIAL_SLOTS)
  private zs = new Float64Array(INITIAL_SLOTS)
  /** The pass in which each slot's user last moved (stamps are float64: exact for ever at any tick rate). */
  private movedIn = new Float64Array(INITIAL_SLOTS)
  /** Per slot, the mark of the member being worked out when the slot was in its view last tick. */
  private seenBy = new Float64Array(INITIAL_SLOTS)
  /** Per slot, the mark of the member being worked out once the slot is in its new view. */
  private keptBy = new Float64Array(INITIAL_SLOTS)
  /** Slots free to take, and slots given up since the last pass (still in some views until then). */
  private readonly free: number[] = []
  private readonly released: number[] = []
  private readonly views = new Map<LiveUser, View>()
  /** Counts passes: a slot moved in the coming pass when movedIn equals it. */
  private pass = 1
  /** One per member per pass, for seenBy and keptBy. */
  private mark = 0
  private readonly cells: Array<readonly number[]> = []
  /** The users the member being visited needs, its first `neededCount`: written by index, never truncated (truncating a JS array frees its storage). */
  private readonly needed: LiveUser[] = []
  private neededCount = 0

  /** Squared distances of the radius and of the 10% beyond it that a user in view is kept to. */
  private readonly radiusSquared: number
  private readonly keepSquared: number

  constructor (private readonly radius: number) {
    this.grid = new SpatialGrid(radius)
    this.radiusSquared = radius * radius
    this.keepSquared = (radius * INTEREST_HYSTERESIS) ** 2
  }

  add (user: LiveUser): void {
    const slot = this.free.pop() ?? this.users.length
    if (slot === this.users.length) this.users.push(user)
    else this.users[slot] = user
    if (slot >= this.xs.length) this.grow()
    this.slots.set(user, slot)
    this.place(user, slot)
    this.movedIn[slot] = 0
  }

  remove (user: LiveUser): void {
    const slot = this.slots.get(user)
    if (slot === undefined) return
    this.slots.delete(user)
    this.users[slot] = undefined
    this.grid.delete(slot)
    this.views.delete(user)
    this.released.push(slot)
  }

  move (user: LiveUser): void {
    const slot = this.slots.get(user)
    if (slot === undefined) return
    this.place(user, slot)
    this.movedIn[slot] = this.pass
  }

  /**
   * One tick: works out what each connected member of `members` sees now and
   * visits it with the users it needs positions of (users in view that moved,
   * and users that came into view, with their current position).
   */
  visitViews (members: ReadonlyMap<string, LiveUser>, visit: ViewVisitor): void {
    for (const member of members.values()) {
      const view = this.viewOf(member)
      if (view === null) continue
      this.scan(member, view, members)
      if (this.neededCount > 0) visit(member, this.needed, this.neededCount)
    }
    this.pass++
    // Every view now holds only members: slots given up before this pass may be taken again.
    for (const slot of this.released) this.free.push(slot)
    this.released.length = 0
  }

  /** Everyone `member` was last sent positions of, still in the room. */
  usersInViewOf (member: LiveUser): LiveUser[] {
    const view = this.views.get(member)
    if (view === undefined) return []
    if (view.parked !== null) return view.parked.filter((user) => this.slots.has(user))
    const users: LiveUser[] = []
    for (let i = 0; i < view.size; i++) {
      const user = this.users[view.current[i] as number]
      if (user !== undefined) users.push(user)
    }
    return users
  }

  /** The member's view to work out, or null while it has no socket (its view parked until it is back). */
  private viewOf (member: LiveUser): View | null {
    let view = this.views.get(member)
    if (member.peer === null) {
      if (view !== undefined && view.parked === null) {
        view.parked = this.usersInViewOf(member)
        view.size = 0
      }
      return null
    }
    if (view === undefined) {
      view = { current: new Int32Array(INITIAL_VIEW), size: 0, next: new Int32Array(INITIAL_VIEW), parked: null }
      this.views.set(member, view)
    } else if (view.parked !== null) {
      const slots = view.parked.map((user) => this.slots.get(user)).filter((slot) => slot !== undefined)
      if (slots.length > view.current.length) view.current = new Int32Array(slots.length * 2)
      view.current.set(slots)
      view.size = slots.length
      view.parked = null
    }
    return view
  }

  /** Fills the member's new view and `needed`; swaps the view's arrays. */
  private scan (member: LiveUser, view: View, members: ReadonlyMap<string, LiveUser>): void {
    const self = this.slots.get(member) ?? -1
    const mark = ++this.mark
    const { seenBy, movedIn, xs, ys, zs, pass, radiusSquared, keepSquared } = this
    const before = view.current
    for (let i = 0; i < view.size; i++) seenBy[before[i] as number] = mark
    this.neededCount = 0
    let size = 0
    const x = xs[self] as number
    const y = ys[self] as number
    const z = zs[self] as number
    this.grid.cellsNear(x, y, this.radius * INTEREST_HYSTERESIS, this.cells)
    // Each slot is in one cell, so none is met twice in this loop.
    for (const cell of this.cells) {
      for (let i = 0; i < cell.length; i++) {
        const slot = cell[i] as number
        const dx = (xs[slot] as number) - x
        const dy = (ys[slot] as number) - y
        const dz = (zs[slot] as number) - z
        const squared = dx * dx + dy * dy + dz * dz
        if (squared > keepSquared || slot === self) continue
        const seen = seenBy[slot] === mark
        if (squared > radiusSquared && !seen) continue
        size = this.keep(view, size, slot, mark)
        if (!seen || movedIn[slot] === pass) this.need(slot)
      }
    }
    for (const id of member.listeningTo) {
      const other = members.get(id)
      const slot = other === undefined ? undefined : this.slots.get(other)
      if (slot === undefined || slot === self || this.keptBy[slot] === mark) continue
      size = this.keep(view, size, slot, mark)
      if (seenBy[slot] !== mark || movedIn[slot] === pass) this.need(slot)
    }
    view.current = view.next
    view.next = before
    view.size = size
  }

  /** Puts `slot` at `size` in the view being filled (its `next`), growing it when full; returns the new size. */
  private keep (view: View, size: number, slot: number, mark: number): number {
    if (size === view.next.length) {
      const grown = new Int32Array(size * 2)
      grown.set(view.next)
      view.next = grown
    }
    view.next[size] = slot
    this.keptBy[slot] = mark
    return size + 1
  }

  private need (slot: number): void {
    this.needed[this.neededCount++] = this.users[slot] as LiveUser
  }

  private place (user: LiveUser, slot: number): void {
    const { x, y, z } = user.position
    this.xs[slot] = x
    this.ys[slot] = y
    this.zs[slot] = z
    this.grid.set(slot, x, y)
  }

  /** Twice the room for slots, keeping what is there. */
  private grow (): void {
    const grown = (old: Float64Array<ArrayBuffer>): Float64Array<ArrayBuffer> => {
      const array = new Float64Array(old.length * 2)
      array.set(old)
      return array
    }
    this.xs = grown(this.xs)
    this.ys = grown(this.ys)
    this.zs = grown(this.zs)
    this.movedIn = grown(this.movedIn)
    this.seenBy = grown(this.seenBy)
    this.keptBy = grown(this.keptBy)
  }
}
