/**
 * Outbound traffic. Every frame leaves through `deliver`, the slow-reader gate;
 * `broadcast` is the one primitive for a frame that many (or one) get, in the
 * manner of Socket.IO's adapter: to a room, to a set of users, or to one peer.
 *
 * Once per tick, each changed room's presence diff and moved positions are
 * serialized once per encoding and the same frame goes to every member; only a
 * member that entered during the tick gets its own presence variant (without
 * itself in `joined`). With interest management each member gets its own
 * `positions`, built from entries serialized once per position. Slow readers are
 * skipped for positions and closed when hopelessly behind.
 */
import type { ShoalSettingsT } from '../../../schemas/options.js'
import type { ServerMessageType } from '../../../schemas/protocol.js'
import { CloseCode } from '../../protocol/close-codes.js'
import { encodeCompactPositions } from '../../protocol/compact.js'
import { dataFrame, positionsFrame, presenceFrame } from '../../protocol/frames.js'
import type { Clock } from '../clock.js'
import type { PresenceDiff, Room } from './room.js'
import type { UserStore } from './user-store.js'
import type { LiveUser, OutboundFrame, Peer } from './user.js'

export type SlowReaderLimits = Pick<ShoalSettingsT, 'slowReaderSkipBytes' | 'slowReaderCloseBytes'>

/** How presence is paced (see the settings); without them, every tick's changes go out at once. */
export type PresencePacing = Pick<ShoalSettingsT, 'presenceBytesPerSecond' | 'presenceWritesPerSecond' | 'presenceUserIntervalMs' | 'tickHz'>

/** The contract's bound on coalescing presence: no change waits longer than this. */
export const MAX_COALESCE_MS = 1000

/** When a room's next presence frame may go, and since when it has had changes waiting. */
interface Pace { dueAt: number, waitingSince: number | null }

/** What the broadcaster reports, for metrics. */
export interface BroadcastMeter {
  sent(type: ServerMessageType, frames: number): void
  skipped(frames: number): void
  closedSlow(): void
}

/** Who gets a broadcast frame: a room's connected members, some users (those connected here), or one peer. */
export type Recipients =
  | { room: string, except?: LiveUser }
  | { users: Iterable<LiveUser>, except?: LiveUser }
  | { peer: Peer }

/** One room's positions this tick: frames sent, members skipped for reading slowly. */
interface PositionsTally { sent: number, skipped: number }

export class Broadcaster {
  /** Users skipped for positions, owed every position of their room once they drain. */
  private readonly behind = new Set<LiveUser>()
  /** Peers closed for reading too slowly: their close handshake waits behind the backlog, and they get nothing more. */
  private readonly closedSlow = new WeakSet<Peer>()
  /** Reused for each JSON `positions` frame's entries: written by index, never truncated (truncating a JS array frees its storage). */
  private readonly entries: string[] = []
  private readonly paces = new WeakMap<Room, Pace>()
  private readonly pacing: PresencePacing
  /** How long a room's changes may wait, so that none waits more than the contract's second. */
  private readonly maxWaitMs: number

  constructor (
    private readonly users: UserStore,
    private readonly clock: Clock,
    private readonly limits: SlowReaderLimits & Partial<PresencePacing>,
    private readonly meter: BroadcastMeter
  ) {
    this.pacing = {
      presenceBytesPerSecond: limits.presenceBytesPerSecond ?? Number.POSITIVE_INFINITY,
      presenceWritesPerSecond: limits.presenceWritesPerSecond ?? Number.POSITIVE_INFINITY,
      presenceUserIntervalMs: limits.presenceUserIntervalMs ?? 0,
      tickHz: limits.tickHz ?? 20
    }
    // A change is seen at most a tick after it happens and sent at a tick: keep two ticks of the second in hand.
    this.maxWaitMs = Math.max(0, MAX_COALESCE_MS - 2000 / this.pacing.tickHz)
    users.on('data', (from, payloadJson) => { this.sendData(from.id, payloadJson) })
  }

  /** One tick: every changed room's presence (when its pace allows), then positions. */
  flush (): void {
    const now = this.clock.now()
    this.catchUp(now)
    for (const room of this.users.takeChangedRooms(now)) {
      if (room.hasPendingPresence) this.flushPresence(room, now)
      if (!room.hasPendingPositions) continue
      if (room.hasInterest) this.sendPositionsInView(room, now)
      else this.sendPositions(room, room.takeMoved(), now)
    }
  }

  /** Sends one frame (text, or binary bytes) to every recipient connected here; returns how many got it. */
  broadcast (frame: OutboundFrame, type: ServerMessageType, to: Recipients): number {
    let sent = 0
    const binary = frame instanceof Uint8Array
    if ('peer' in to) {
      if (this.deliver(to.peer, frame, binary, false)) sent++
    } else {
      const users = 'room' in to ? this.users.room(to.room)?.members.values() ?? [] : to.users
      let bytes: OutboundFrame = frame
      for (const user of users) {
        if (user.peer === null || user === to.except) continue
        // Encoded once, at the first recipient: the others get the same bytes.
        bytes = typeof bytes === 'string' ? Buffer.from(bytes) : bytes
        if (this.deliver(user.peer, bytes, binary, true)) sent++
      }
    }
    this.meter.sent(type, sent)
    return sent
  }

  /** `data` from a user (or `server`) to everyone connected here who listens to it; `payloadJson` is already serialized. */
  sendData (fromId: string, payloadJson: string): number {
    return this.broadcast(dataFrame(fromId, payloadJson), 'data', { users: this.users.connectedListenersOf(fromId) })
  }

  /**
   * Sends the room's presence if its pace allows: after a frame of S bytes to N
   * members, the next waits S / presenceBytesPerSecond and N / presenceWritesPerSecond
   * (the longer), but no change waits more than a second. What waits coalesces.
   */
  private flushPresence (room: Room, now: number): void {
    let pace = this.paces.get(room)
    if (pace === undefined) {
      pace = { dueAt: 0, waitingSince: null }
      this.paces.set(room, pace)
    }
    pace.waitingSince ??= now
    // Waiting a second sends everything, a user's own interval notwithstanding: nothing waits longer.
    const overdue = now - pace.waitingSince >= this.maxWaitMs
    if (now >= pace.dueAt || overdue) {
      const diff = room.takePresence(now, overdue ? 0 : this.pacing.presenceUserIntervalMs)
      if (diff !== null) {
        const { bytes, writes } = this.sendPresence(room, diff)
        const { presenceBytesPerSecond, presenceWritesPerSecond } = this.pacing
        pace.dueAt = now + Math.min(this.maxWaitMs, Math.max(bytes * 1000 / presenceBytesPerSecond, writes * 1000 / presenceWritesPerSecond))
      }
      // What a user's interval held back has waited since then, at the latest.
      if (!room.hasPendingPresence) pace.waitingSince = null
    }
    // Changes that wait (the room's pace, a user's own interval) need this room again next tick.
    if (room.hasPendingPresence) this.users.revisit(room)
  }

  /** The diff to every connected member; returns the largest frame's size and how many were sent. */
  private sendPresence (room: Room, diff: PresenceDiff): { bytes: number, writes: number } {
    const newcomers = diff.joined.length > 0 ? new Set(diff.joined.map((user) => user.id)) : null
    // Per encoding: the joined entries, serialized once, and the frame every other member gets, encoded once.
    const joined = new Map<boolean, string[]>()
    const shared = new Map<boolean, Uint8Array | null>()
    const entriesFor = (withSids: boolean): string[] => {
      const known = joined.get(withSids)
      if (known !== undefined) return known
      const entries = joinedEntries(room, diff, withSids)
      joined.set(withSids, entries)
      return entries
    }
    let sent = 0
    let bytes = 0
    for (const member of room.members.values()) {
      const peer = member.peer
      if (peer === null) continue
      const withSids = peer.encoding === 'compact'
      let frame: string | Uint8Array | null
      if (newcomers?.has(member.id) === true) {
        const entries = entriesFor(withSids).filter((_, i) => diff.joined[i]?.id !== member.id)
        frame = presenceFrame(room.name, entries, diff.left, diff.updated)
      } else {
        if (!shared.has(withSids)) shared.set(withSids, encoded(presenceFrame(room.name, entriesFor(withSids), diff.left, diff.updated)))
        frame = shared.get(withSids) ?? null
      }
      if (frame === null) continue
      const size = typeof frame === 'string' ? Buffer.byteLength(frame) : frame.length
      if (size > bytes) bytes = size
      // A newcomer's own frame (a string) is its alone; the room's is the same bytes for everyone else.
      if (this.deliver(peer, frame, false, typeof frame !== 'string')) sent++
    }
    this.meter.sent('presence', sent)
    return { bytes, writes: sent }
  }

  /** Without interest management everyone gets the same movers: one frame per encoding. */
  private sendPositions (room: Room, movers: LiveUser[], now: number): void {
    let json: Uint8Array | null = null
    let compact: Uint8Array | null = null
    const tally = { sent: 0, skipped: 0 }
    for (const member of room.members.values()) {
      const peer = this.readyForPositions(member, tally)
      if (peer === null) continue
      const binary = peer.encoding === 'compact'
      const frame = binary
        ? (compact ??= encodeCompactPositions(now, movers))
        : (json ??= Buffer.from(this.jsonPositions(now, movers)))
      if (this.deliver(peer, frame, binary, true)) tally.sent++
    }
    this.countPositions(tally)
  }

  private sendPositionsInView (room: Room, now: number): void {
    const tally = { sent: 0, skipped: 0 }
    room.takePositionsInView((member, users, count) => {
      const peer = this.readyForPositions(member, tally)
      if (peer !== null && this.deliver(peer, this.positionsFor(peer, now, users, count), peer.encoding === 'compact', false)) tally.sent++
    })
    this.countPositions(tally)
  }

  /** The member's peer if it gets positions now; one that reads too slowly is skipped, counted, and owed a catch-up. */
  private readyForPositions (member: LiveUser, tally: PositionsTally): Peer | null {
    const peer = member.peer
    if (peer === null || !this.isBehind(peer)) return peer
    this.behind.add(member)
    tally.skipped++
    return null
  }

  private countPositions ({ sent, skipped }: PositionsTally): void {
    this.meter.sent('positions', sent)
    if (skipped > 0) this.meter.skipped(skipped)
  }

  /** Users who were skipped get every position they can see as soon as they drain. */
  private catchUp (now: number): void {
    for (const user of this.behind) {
      const peer = user.peer
      const room = this.users.room(user.room)
      if (peer === null || room === undefined || !room.members.has(user.id)) {
        this.behind.delete(user)
      } else if (!this.isBehind(peer)) {
        this.behind.delete(user)
        const users = room.usersInViewOf(user)
        this.broadcast(this.positionsFor(peer, now, users, users.length), 'positions', { peer })
      }
    }
  }

  /** A `positions` frame of the first `count` of `users`, in the encoding `peer` chose, the receiver's own (text is encoded into its frame by the transport). */
  private positionsFor (peer: Peer, t: number, users: readonly LiveUser[], count: number): string | Uint8Array {
    return peer.encoding === 'compact' ? encodeCompactPositions(t, users, count) : this.jsonPositions(t, users, count)
  }

  private jsonPositions (t: number, users: readonly LiveUser[], count = users.length): string {
    const entries = this.entries
    for (let i = 0; i < count; i++) entries[i] = (users[i] as LiveUser).positionEntry
    return positionsFrame(t, entries, count)
  }

  /** Over the skip threshold but not (yet) over the close one; past that, `deliver` closes it. */
  private isBehind (peer: Peer): boolean {
    const buffered = peer.bufferedAmount
    return buffered > this.limits.slowReaderSkipBytes && buffered <= this.limits.slowReaderCloseBytes
  }

  /** Sends one frame to one client, unless it is too far behind to ever catch up; `shared`: others get the same bytes (see Peer.send). */
  private deliver (peer: Peer, frame: OutboundFrame, binary: boolean, shared: boolean): boolean {
    if (this.closedSlow.has(peer)) return false
    if (peer.bufferedAmount > this.limits.slowReaderCloseBytes) {
      peer.close(CloseCode.tooSlow, 'client reads too slowly')
      this.closedSlow.add(peer)
      this.meter.closedSlow()
      return false
    }
    peer.send(frame, binary, shared)
    return true
  }
}

/** A text frame as UTF-8 bytes, for sending the same bytes to many. */
function encoded (frame: string | null): Uint8Array | null {
  return frame === null ? null : Buffer.from(frame)
}

/** The diff's joined users as serialized entries, with short ids for compact clients. */
function joinedEntries (room: Room, diff: PresenceDiff, withSids: boolean): string[] {
  return diff.joined.map((user) => JSON.stringify(withSids ? { ...user, sid: room.members.get(user.id)?.sid } : user))
}
