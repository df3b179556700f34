/**
 * Outbound traffic. Once per tick, each changed room's presence diff and moved
 * positions are serialized once and the same string goes to every member; only a
 * member that entered during the tick gets its own presence variant (without
 * itself in `joined`). Slow readers are skipped for positions and closed when
 * hopelessly behind.
 */
import type { ServerMessageType } from '../schemas/protocol.js'
import type { Clock } from './clock.js'
import type { PositionEntry, PresenceDiff, Room } from './room.js'
import type { UserStore } from './user-store.js'
import type { LiveUser, Peer } from './user.js'

export interface SlowReaderLimits {
  /** Above this many buffered bytes a client is skipped for `positions`. */
  slowReaderSkipBytes: number
  /** Above this many buffered bytes a client is closed with 1013. */
  slowReaderCloseBytes: number
}

/** What the broadcaster reports, for metrics. */
export interface BroadcastMeter {
  sent(type: ServerMessageType, frames: number): void
  skipped(frames: number): void
  closedSlow(): void
}

export const CLOSE_TOO_SLOW = 1013

export class Broadcaster {
  /** Users skipped for positions, owed every position of their room once they drain. */
  private readonly behind = new Set<LiveUser>()
  /** Peers closed for reading too slowly: their close handshake waits behind the backlog, and they get nothing more. */
  private readonly closedSlow = new WeakSet<Peer>()

  constructor (
    private readonly users: UserStore,
    private readonly clock: Clock,
    private readonly limits: SlowReaderLimits,
    private readonly meter: BroadcastMeter
  ) {}

  /** One tick: every changed room's presence, then positions. */
  flush (): void {
    const now = this.clock.now()
    this.catchUp(now)
    for (const room of this.users.takeChangedRooms()) {
      const presence = room.takePresence()
      if (presence !== null) this.sendPresence(room, presence)
      if (!room.hasPendingPositions) continue
      if (room.hasInterest) this.sendPositionsInView(room, now)
      else this.sendPositions(room, room.takePositions(), now)
    }
  }

  /** Sends one frame to one client, unless it is too far behind to ever catch up. */
  send (peer: Peer, frame: string, type: ServerMessageType): void {
    if (this.deliver(peer, frame)) this.meter.sent(type, 1)
  }

  /** `data` from a user to everyone connected who listens to it; `payloadJson` is already serialized. */
  sendData (from: LiveUser, payloadJson: string): number {
    return this.sendToAll(this.users.connectedListenersOf(from.id), dataFrame(from.id, payloadJson), 'data')
  }

  /** Sends a frame to every connected member of a room; returns how many got it. */
  sendToRoom (room: string, frame: string, type: ServerMessageType): number {
    const members = this.users.room(room)?.members.values()
    return members === undefined ? 0 : this.sendToAll(members, frame, type)
  }

  private sendToAll (users: Iterable<LiveUser>, frame: string, type: ServerMessageType): number {
    let sent = 0
    for (const user of users) {
      if (user.peer !== null && this.deliver(user.peer, frame)) sent++
    }
    this.meter.sent(type, sent)
    return sent
  }

  private sendPresence (room: Room, diff: PresenceDiff): void {
    const shared = presenceFrame(room.name, diff)
    if (shared === null) return
    const newcomers = diff.joined.length > 0 ? new Set(diff.joined.map((user) => user.id)) : null
    let sent = 0
    for (const member of room.members.values()) {
      if (member.peer === null) continue
      const frame = newcomers?.has(member.id) === true ? presenceFrame(room.name, diff, member.id) : shared
      if (frame !== null && this.deliver(member.peer, frame)) sent++
    }
    this.meter.sent('presence', sent)
  }

  private sendPositions (room: Room, entries: PositionEntry[], now: number): void {
    const frame = positionsFrame(now, entries)
    let sent = 0
    let skipped = 0
    for (const member of room.members.values()) {
      const peer = member.peer
      if (peer === null) continue
      if (this.isBehind(peer)) {
        this.behind.add(member)
        skipped++
      } else if (this.deliver(peer, frame)) {
        sent++
      }
    }
    this.meter.sent('positions', sent)
    if (skipped > 0) this.meter.skipped(skipped)
  }

  /** With interest management each member gets its own frame, built from entries serialized once per tick. */
  private sendPositionsInView (room: Room, now: number): void {
    let sent = 0
    let skipped = 0
    const head = `{"type":"positions","t":${now},"p":[`
    room.takePositionsInView((member, entries) => {
      const peer = member.peer
      if (peer === null) return
      if (this.isBehind(peer)) {
        this.behind.add(member)
        skipped++
      } else if (this.deliver(peer, `${head}${entries.join(',')}]}`)) {
        sent++
      }
    })
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
        this.send(peer, positionsFrame(now, room.positionsInViewOf(user)), 'positions')
      }
    }
  }

  /** Over the skip threshold but not (yet) over the close one; past that, `deliver` closes it. */
  private isBehind (peer: Peer): boolean {
    const buffered = peer.bufferedAmount
    return buffered > this.limits.slowReaderSkipBytes && buffered <= this.limits.slowReaderCloseBytes
  }

  private deliver (peer: Peer, frame: string): boolean {
    if (this.closedSlow.has(peer)) return false
    if (peer.bufferedAmount > this.limits.slowReaderCloseBytes) {
      peer.close(CLOSE_TOO_SLOW, 'client reads too slowly')
      this.closedSlow.add(peer)
      this.meter.closedSlow()
      return false
    }
    peer.send(frame)
    return true
  }
}

/** The diff as a frame; without `withoutJoined`'s own entry, and null when that leaves nothing. */
function presenceFrame (room: string, diff: PresenceDiff, withoutJoined?: string): string | null {
  const joined = withoutJoined === undefined ? diff.joined : diff.joined.filter((user) => user.id !== withoutJoined)
  if (joined.length + diff.left.length + diff.updated.length === 0) return null
  return JSON.stringify({
    type: 'presence',
    room,
    joined: joined.length > 0 ? joined : undefined,
    left: diff.left.length > 0 ? diff.left : undefined,
    updated: diff.updated.length > 0 ? diff.updated : undefined
  })
}

function positionsFrame (t: number, p: PositionEntry[]): string {
  return JSON.stringify({ type: 'positions', t, p })
}

function dataFrame (from: string, payloadJson: string): string {
  return `{"type":"data","from":${JSON.stringify(from)},"payload":${payloadJson}}`
}
