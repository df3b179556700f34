/**
 * The live users of one Shoal instance: by id, by secret hash, by room, and the
 * listening graph between them. Every change that clients must hear about goes
 * through here, so the rooms it marks changed are exactly the ones to flush.
 */
import type { PositionT, UserT } from '../schemas/protocol.js'
import { ListeningGraph } from './listening-graph.js'
import { Room, type RoomOptions } from './room.js'
import type { State } from './state.js'
import type { LiveUser } from './user.js'

export class UserStore {
  private readonly users = new Map<string, LiveUser>()
  private readonly bySecret = new Map<string, LiveUser>()
  private readonly rooms = new Map<string, Room>()
  private readonly changedRooms = new Set<Room>()
  private readonly listening = new ListeningGraph()
  /** Short ids are never reused within a process (for 2^32 users), so a late compact frame cannot name the wrong user. */
  private nextSid = 1
  /** Told of every change to one of this node's own users (a cluster publishes them once per tick). */
  onLocalChange: ((user: LiveUser) => void) | null = null

  /** `roomOptions` decides each room's options when the room is created. */
  constructor (private readonly roomOptions: (room: string) => RoomOptions = () => ({ interestRadius: 0 })) {}

  get userCount (): number { return this.users.size }
  get roomCount (): number { return this.roomNames().length }

  get (id: string): LiveUser | undefined { return this.users.get(id) }
  bySecretHash (hash: string): LiveUser | undefined { return this.bySecret.get(hash) }
  room (name: string): Room | undefined { return this.rooms.get(name) }
  roomNames (): string[] { return [...this.rooms.keys()].filter((name) => (this.rooms.get(name)?.members.size ?? 0) > 0) }
  values (): IterableIterator<LiveUser> { return this.users.values() }

  /** The room as a member sees it: everyone but `user`. */
  othersInRoom (user: LiveUser, withSids = false): UserT[] {
    return this.roomOf(user).others(user.id, withSids)
  }

  add (user: LiveUser): void {
    user.sid = this.nextSid
    this.nextSid = (this.nextSid + 1) >>> 0 || 1
    this.users.set(user.id, user)
    if (user.isLocal) this.bySecret.set(user.secretHash, user)
    this.listening.replace(user.id, [], user.listeningTo)
    this.enter(user)
    this.changedLocal(user)
  }

  remove (user: LiveUser): void {
    if (this.users.get(user.id) !== user) return
    this.users.delete(user.id)
    if (this.bySecret.get(user.secretHash) === user) this.bySecret.delete(user.secretHash)
    this.listening.replace(user.id, user.listeningTo, [])
    this.exit(user)
    this.changedLocal(user)
  }

  /** A replica becomes this node's own user (its owner handed it over); rooms see no change. */
  adopt (user: LiveUser, secretHash: string): void {
    user.owner = null
    user.remoteConnected = false
    user.secretHash = secretHash
    this.bySecret.set(secretHash, user)
    this.changedLocal(user)
  }

  /** This node's user becomes a replica of `owner`'s (which took it over); rooms see no change. */
  release (user: LiveUser, owner: string): void {
    if (this.bySecret.get(user.secretHash) === user) this.bySecret.delete(user.secretHash)
    user.secretHash = ''
    user.remoteConnected = user.connected
    user.owner = owner
  }

  moveToRoom (user: LiveUser, room: string): void {
    this.exit(user)
    user.room = room
    this.enter(user)
    this.changedLocal(user)
  }

  setPosition (user: LiveUser, position: PositionT): void {
    user.position = position
    this.markMoved(user)
    this.changedLocal(user)
  }

  setProfile (user: LiveUser, name: string, state: State): void {
    user.name = name
    user.state = state
    const room = this.roomOf(user)
    room.touch(user)
    this.changedRooms.add(room)
    this.changedLocal(user)
  }

  setListening (user: LiveUser, listeningTo: string[]): void {
    this.listening.replace(user.id, user.listeningTo, listeningTo)
    user.listeningTo = listeningTo
    this.touch(user)
  }

  /** Connected users listening to `id`, wherever they are. */
  * connectedListenersOf (id: string): Generator<LiveUser> {
    for (const listenerId of this.listening.listenersOf(id)) {
      const listener = this.users.get(listenerId)
      if (listener?.connected === true) yield listener
    }
  }

  /** `user`'s listening set or connection changed: clients hear of it, and views may change. */
  touch (user: LiveUser): void {
    const room = this.roomOf(user)
    room.touchView(user)
    this.changedRooms.add(room)
    this.changedLocal(user)
  }

  /** Rooms with changes since the last call; rooms left empty are dropped afterwards. */
  * takeChangedRooms (): Generator<Room> {
    const rooms = [...this.changedRooms]
    this.changedRooms.clear()
    for (const room of rooms) {
      yield room
      if (room.isIdle) this.rooms.delete(room.name)
    }
  }

  private changedLocal (user: LiveUser): void {
    if (user.isLocal) this.onLocalChange?.(user)
  }

  private markMoved (user: LiveUser): void {
    const room = this.roomOf(user)
    room.move(user)
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
