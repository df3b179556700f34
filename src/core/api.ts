/** The server-side API of one Shoal instance, which the plugin gives the host as `app.shoal`. */
import type { TObject } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { RoomName, State, type StateT, type UserT } from '../../schemas/protocol.js'
import { dataFrame, serverFrame } from '../protocol/frames.js'
import { SERVER_SENDER } from '../protocol/senders.js'
import type { MessageHandler } from './custom-messages.js'
import type { Engine } from './engine.js'
import { enterRoom, hookIdentity } from './handlers.js'
import { HostEvents, type ShoalEventName, type ShoalListener } from './host-events.js'
import { checkedInfo } from './identity.js'
import { mergeState } from './presence/state.js'
import { changedFields } from './presence/room.js'
import { copyUser, type LiveUser } from './presence/user.js'

const stateCheck = TypeCompiler.Compile(State)
const roomCheck = TypeCompiler.Compile(RoomName)

export { SERVER_SENDER }

export interface ShoalApi {
  /** Names of the rooms that have users. */
  rooms(): string[]
  /** Users of a room (connected or in grace), as clients see them. */
  users(room: string): UserT[]
  user(id: string): UserT | undefined
  /** Sends `{type:"data", from:"server", payload}` to every connected user of a room; returns how many got it. */
  sendToRoom(room: string, payload: unknown): number
  /** Sends `{type:"data", from:"server", payload}` to one user; false when not connected. */
  sendToUser(id: string, payload: unknown): boolean
  /** Ends a user's session for good (the room sees it leave) and closes its socket with 1000. */
  disconnect(id: string): boolean
  /** Starts the shutdown sequence: health 503, upgrades refused, sockets closed with 1012, sessions flushed. */
  drain(): Promise<void>
  readonly stats: { connections: number, users: number, rooms: number, draining: boolean }
  /**
   * Calls `listener` for each `event` of this node's users (see ShoalEvents). It runs
   * inside the engine's step: keep it short, and await slow work in a promise it returns
   * (a rejection is logged, like a throw).
   */
  on<E extends ShoalEventName>(event: E, listener: ShoalListener<E>): void
  off<E extends ShoalEventName>(event: E, listener: ShoalListener<E>): void
  /**
   * A message type of the host's own: clients send `{type, id?, ...fields}`, the
   * fields checked against `schema` (a Type.Object) before `handler` sees them. Its
   * result goes back as `{type:"reply", ref: type, id, result}` when the message has
   * an `id`; a thrown ShoalError answers with `error` of its code, anything else
   * thrown with `server_error`. A name of the protocol, or one registered already, throws.
   */
  handle<S extends TObject>(type: string, schema: S, handler: MessageHandler<S>): void
  /**
   * Merges `patch` into a user's state as the server (null removes a key); its
   * room sees `presence.updated`. False when the user is not this node's; a patch
   * a client could not send (keys, values, limits) throws a TypeError.
   */
  setState(id: string, patch: StateT): boolean
  /** Replaces a user's `info` (a JSON object, at most 4 KiB); as setState. */
  setInfo(id: string, info: Record<string, unknown>): boolean
  /**
   * Moves a user to `room` (no canJoin, no maxRoomSize: the server decides);
   * both rooms see it, its client gets a `snapshot` of the new one. Resolves false
   * when the user is not this node's; a malformed room name throws a TypeError.
   */
  moveToRoom(id: string, room: string): Promise<boolean>
}

/** `data` from the server; a payload JSON cannot express (undefined) travels as null. */
const serverData = (payload: unknown): string => dataFrame(SERVER_SENDER, JSON.stringify(payload) ?? 'null')

export function createApi (engine: Engine): ShoalApi {
  const { users, broadcaster, connections, log, messages, access } = engine.services
  const events = new HostEvents(users, log)
  /** Only the node that has a user's socket acts on it; other nodes hold replicas. */
  const localUser = (id: string): LiveUser | undefined => {
    const user = users.get(id)
    return user?.isLocal === true ? user : undefined
  }
  /**
   * A user that entered this tick is announced whole to the others, never to
   * itself: its own client hears of the server's change to it here, once.
   */
  const tellOwnClient = (user: LiveUser, before: UserT): void => {
    if (user.peer === null || !users.announcedWhole(user)) return
    const update = changedFields(before, user.toWire())
    if (update !== null) broadcaster.broadcast(serverFrame({ type: 'presence', room: user.room, updated: [update] }), 'presence', { peer: user.peer })
  }
  return {
    handle: (type, schema, handler) => { messages.register(type, schema, handler) },
    setState (id, patch) {
      if (!stateCheck.Check(patch)) throw new TypeError(`setState: ${stateCheck.Errors(patch).First()?.message ?? 'invalid'} (a flat object of string, number, boolean or null values)`)
      const user = localUser(id)
      if (user === undefined) return false
      const merged = mergeState(user.state, patch)
      if ('error' in merged) throw new TypeError(`setState: ${merged.error}`)
      const before = user.toWire()
      users.setProfile(user, user.name, merged.state)
      tellOwnClient(user, before)
      return true
    },
    setInfo (id, info) {
      const checked = checkedInfo(info, 'setInfo')
      const user = localUser(id)
      if (user === undefined) return false
      const before = user.toWire()
      users.setInfo(user, checked)
      tellOwnClient(user, before)
      return true
    },
    async moveToRoom (id, room) {
      if (!roomCheck.Check(room)) throw new TypeError(`moveToRoom: room ${JSON.stringify(room)} must match ${RoomName.pattern}`)
      const user = localUser(id)
      if (user === undefined) return false
      if (user.room === room) return true
      const readOnly = await access.readOnly(hookIdentity(user), room)
      // The user may have gone while canUpdate answered.
      if (localUser(id) !== user) return false
      if (user.room !== room) enterRoom(engine, user, room, readOnly)
      return true
    },
    on: (event, listener) => { events.on(event, listener) },
    off: (event, listener) => { events.off(event, listener) },
    rooms: () => users.roomNames(),
    users: (room) => [...(users.room(room)?.members.values() ?? [])].map((user) => copyUser(user.toWire())),
    user (id) {
      const user = users.get(id)
      return user === undefined ? undefined : copyUser(user.toWire())
    },
    sendToRoom: (room, payload) => broadcaster.broadcast(serverData(payload), 'data', { room }),
    sendToUser (id, payload) {
      const peer = users.get(id)?.peer
      if (peer == null) return false
      broadcaster.broadcast(serverData(payload), 'data', { peer })
      return true
    },
    disconnect (id) {
      const user = localUser(id)
      if (user === undefined) return false
      engine.endSession(user, 'disconnected by the server')
      return true
    },
    drain: () => connections.drain(),
    get stats () {
      return { connections: connections.size, users: users.userCount, rooms: users.roomCount, draining: connections.draining }
    }
  }
}
