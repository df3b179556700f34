/**
 * The live users of one Shoal instance: by id, by secret hash, by room, and the
 * listening graph between them. Every change to a user goes through here and is
 * told as an event, so sessions, the cluster and the host app each hear of it
 * without any handler having to remember them; the rooms it marks changed are
 * exactly the ones the next tick flushes.
 */
import { EventEmitter } from 'eventemitter3'
import type { IdentityT } from '../../../schemas/identity.js'
import type { InfoT, PositionT, UserT } from '../../../schemas/protocol.js'
import type { RoomOptionsT } from '../../../schemas/options.js'
import { ListeningGraph } from './listening-graph.js'
import { Room } from './room.js'
import { copyState, sameInfo, sameMembers, sameState, type State } from './state.js'
import type { LiveUser, Peer } from './user.js'

/** What happened to a user; listeners get the user as it is after the change. */
export interface UserStoreEvents {
  /** Entered a room: added, or moved in from another (its room is `user.room`). */
  join: [user: LiveUser]
  /** Left `room`: removed, or moved to another. */
  leave: [user: LiveUser, room: string]
  moved: [user: LiveUser]
  /** Name, state or info. */
  profile: [user: LiveUser]
  listening: [user: LiveUser]
  /** Connected or disconnected: its socket here, or a replica's as its owner says. */
  connected: [user: LiveUser]
  /** Became this node's own user (taken over from `previousOwner`), or another node's (handed over; `previousOwner` null). */
  owner: [user: LiveUser, previousOwner: string | null]
  /** Sent `data` to its listeners (`payloadJson` is serialized and within the limit). */
  data: [from: LiveUser, payloadJson: string]
}

export type UserChange = Exclude<keyof UserStoreEvents, 'data'>

/** Every event that changes a user, for listeners that keep something per user up to date. */
export const USER_CHANGES: readonly UserChange[] = ['join', 'leave', 'moved', 'profile', 'listening', 'connected', 'owner']

/** Fields a user can be brought to at once (a replica refreshed by its owner, a user taken over). */
export type UserFields = Partial<Pick<UserT, 'room' | 'name' | 'state' | 'listeningTo' | 'position' | 'connected' | 'info'>>

export class UserStore extends EventEmitter<UserStoreEvents> {
  private readonly users = new Map<string, LiveUser>()
  private readonly bySecret = new Map<string, LiveUser>()
  private readonly rooms = new Map<string, Room>()
  private readonly changedRooms = new Set<Room>()
  private readonly listening = new ListeningGraph()
  /** Rooms that hold a serialized listing of their members, until it goes unused for a while. */
  private readonly listedRooms = new Set<Room>()
  /** Short ids are never reused within a process (for 2^32 users), so a late compact frame cannot name the wrong user. */
  private nextSid = 1

  /** `roomOptions` decides each room's options when the room is created. */
  constructor (private readonly roomOptions: (room: string) => RoomOptionsT = () => ({ interestRadius: 0 })) {
    super()
  }

  get userCount (): number { return this.users.size }
  get roomCount (): number { return this.roomNames().length }
  /** Users with a socket, here or on their own node: a walk over every user, for scrapes and the admin feed, never a tick. */
  connectedCount (): number {
    let connected = 0
    for (const user of this.users.values()) if (user.connected) connected++
    return connected
  }

  get (id: string): LiveUser | undefined { return this.users.get(id) }
  bySecretHash (hash: string): LiveUser | undefined { return this.bySecret.get(hash) }
  room (name: string): Room | undefined { return this.rooms.get(name) }
  roomNames (): string[] { return [...this.rooms.keys()].filter((name) => (this.rooms.get(name)?.members.size ?? 0) > 0) }
  values (): IterableIterator<LiveUser> { return this.users.values() }

  /** The room as a member sees it, as a JSON array in UTF-8 parts: everyone but `user` (shared bytes, see MemberListing). */
  others (user: LiveUser, withSids = false): Uint8Array[] {
    const room = this.roomOf(user)
    this.listedRooms.add(room)
    return room.others(user.id, withSids)
  }

  /** Whether the user's room will next announce it whole (it entered this tick), so that its own client hears nothing of it. */
  announcedWhole (user: LiveUser): boolean {
    return this.rooms.get(user.room)?.announcesWhole(user.id) ?? false
  }

  /** A new live user enters its room, speaking through `peer` when it has one here. */
  add (user: LiveUser, peer: Peer | null = null): void {
    if (peer !== null) link(user, peer)
    user.sid = this.nextSid
    this.nextSid = (this.nextSid + 1) >>> 0 || 1
    this.users.set(user.id, user)
    if (user.isLocal) this.bySecret.set(user.secretHash, user)
    this.listening.replace(user.id, [], user.listeningTo)
    this.enter(user)
    this.emit('join', user)
  }

  /** The user leaves its room and this instance; its peer, if any, no longer speaks for it. */
  remove (user: LiveUser): void {
    if (this.users.get(user.id) !== user) return
    unlink(user)
    this.users.delete(user.id)
    if (this.bySecret.get(user.secretHash) === user) this.bySecret.delete(user.secretHash)
    this.listening.replace(user.id, user.listeningTo, [])
    this.exit(user)
    this.emit('leave', user, user.room)
  }

  /** `peer` speaks for `user` from now on; returns the peer it had, now detached. */
  attach (user: LiveUser, peer: Peer): Peer | null {
    const replaced = unlink(user)
    link(user, peer)
    if (replaced === null) this.connectionChanged(user)
    return replaced
  }

  /** The user's socket went away at `at` (ms): it stays, disconnected. */
  detach (user: LiveUser, at: number): void {
    unlink(user)
    user.disconnectedAt = at
    this.connectionChanged(user)
  }

  /** A replica's connection state, as its owner says (or as its owner's death implies). */
  setRemoteConnected (user: LiveUser, connected: boolean): void {
    if (user.remoteConnected === connected) return
    user.remoteConnected = connected
    this.connectionChanged(user)
  }

  /** A replica becomes this node's own user (its owner handed it over); rooms see no change. */
  adopt (user: LiveUser, secretHash: string): void {
    const previousOwner = user.owner
    user.owner = null
    user.remoteConnected = false
    user.secretHash = secretHash
    this.bySecret.set(secretHash, user)
    this.emit('owner', user, previousOwner)
  }

  /** This node's user becomes a replica of `owner`'s (which took it over); returns its peer here, now detached. Rooms see no change. */
  release (user: LiveUser, owner: string): Peer | null {
    if (this.bySecret.get(user.secretHash) === user) this.bySecret.delete(user.secretHash)
    user.secretHash = ''
    user.remoteConnected = user.connected
    user.owner = owner
    const peer = unlink(user)
    this.emit('owner', user, null)
    return peer
  }

  moveToRoom (user: LiveUser, room: string): void {
    const from = user.room
    this.exit(user)
    user.room = room
    this.enter(user)
    this.emit('leave', user, from)
    this.emit('join', user)
  }

  setPosition (user: LiveUser, position: PositionT): void {
    user.position = position
    const room = this.roomOf(user)
    room.move(user)
    this.changedRooms.add(room)
    this.emit('moved', user)
  }

  setProfile (user: LiveUser, name: string, state: State): void {
    user.name = name
    user.state = state
    const room = this.roomOf(user)
    room.touch(user)
    this.changedRooms.add(room)
    this.emit('profile', user)
  }

  /** The host's `info` of the user (already checked and copied). */
  setInfo (user: LiveUser, info: InfoT): void {
    if (sameInfo(user.info, info)) return
    user.info = info
    const room = this.roomOf(user)
    room.touch(user)
    this.changedRooms.add(room)
    this.emit('profile', user)
  }

  /** What the host says of the user now (at a resume): its name and info, when it gives them, replace the user's. */
  identify (user: LiveUser, identity: IdentityT | null): void {
    user.identity = identity
    if (identity === null) return
    if (identity.name !== undefined && identity.name !== user.name) this.setProfile(user, identity.name, user.state)
    if (identity.info !== undefined) this.setInfo(user, identity.info)
  }

  setListening (user: LiveUser, listeningTo: string[]): void {
    this.listening.replace(user.id, user.listeningTo, listeningTo)
    user.listeningTo = listeningTo
    this.viewChanged(user)
    this.emit('listening', user)
  }

  /** Brings `user` to `fields`: each field that differs changes, and is told, as on its own. */
  assign (user: LiveUser, fields: UserFields): void {
    if (fields.room !== undefined && fields.room !== user.room) this.moveToRoom(user, fields.room)
    const name = fields.name ?? user.name
    const state = fields.state ?? user.state
    if (name !== user.name || !sameState(state, user.state)) this.setProfile(user, name, copyState(state))
    if (fields.info !== undefined) this.setInfo(user, fields.info)
    if (fields.listeningTo !== undefined && !sameMembers(fields.listeningTo, user.listeningTo)) this.setListening(user, [...fields.listeningTo])
    const position = fields.position
    if (position !== undefined && (position.x !== user.position.x || position.y !== user.position.y || position.z !== user.position.z)) {
      this.setPosition(user, { x: position.x, y: position.y, z: position.z })
    }
    // Only a replica's connection state comes from elsewhere; a local user's is its socket.
    if (fields.connected !== undefined && !user.isLocal) this.setRemoteConnected(user, fields.connected)
  }

  /** `data` from `user` to its listeners, wherever they are. */
  sendData (user: LiveUser, payloadJson: string): void {
    this.emit('data', user, payloadJson)
  }

  /** Connected users listening to `id`, wherever they are. */
  * connectedListenersOf (id: string): Generator<LiveUser> {
    for (const listenerId of this.listening.listenersOf(id)) {
      const listener = this.users.get(listenerId)
      if (listener?.connected === true) yield listener
    }
  }

  /** The room has changes still to send (they wait for its pace): the next tick takes it again. */
  revisit (room: Room): void {
    this.changedRooms.add(room)
  }

  /** Rooms with changes since the last call (a tick at `now`); rooms left empty are dropped afterwards. */
  * takeChangedRooms (now: number): Generator<Room> {
    const rooms = [...this.changedRooms]
    this.changedRooms.clear()
    for (const room of rooms) {
      yield room
      if (room.isIdle) this.rooms.delete(room.name)
    }
    for (const room of this.listedRooms) {
      if (!room.endTick(now)) this.listedRooms.delete(room)
    }
  }

  private connectionChanged (user: LiveUser): void {
    this.viewChanged(user)
    this.emit('connected', user)
  }

  /** Clients hear of the change, and with interest management views may change without a move. */
  private viewChanged (user: LiveUser): void {
    const room = this.roomOf(user)
    room.touchView(user)
    this.changedRooms.add(room)
  }

  private enter (user: LiveUser): void {
    let room = this.rooms.get(user.room)
    if (room === undefined) {
      room = new Room(user.room, this.roomOptions(user.room))
      this.rooms.set(user.room, room)
    }
    room.add(user)
    this.changedRooms.add(room)
  }

  private exit (user: LiveUser): void {
    const room = this.rooms.get(user.room)
    if (room === undefined) return
    room.remove(user)
    this.changedRooms.add(room)
  }

  private roomOf (user: LiveUser): Room {
    const room = this.rooms.get(user.room)
    if (room === undefined) throw new Error(`user ${user.id} is not in a room`)
    return room
  }
}

function link (user: LiveUser, peer: Peer): void {
  user.peer = peer
  peer.user = user
}

/** Cuts the user's link with its peer both ways; returns that peer. */
function unlink (user: LiveUser): Peer | null {
  const peer = user.peer
  if (peer !== null && peer.user === user) peer.user = null
  user.peer = null
  return peer
}
