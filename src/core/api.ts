/** The server-side API of one Shoal instance, which the plugin gives the host as `app.shoal`. */
import type { UserT } from '../../schemas/protocol.js'
import { dataFrame } from '../protocol/frames.js'
import type { Engine } from './engine.js'
import { HostEvents, type ShoalEventName, type ShoalListener } from './host-events.js'
import { copyUser } from './presence/user.js'

/** The sender of `data` that the host application sends. */
export const SERVER_SENDER = 'server'

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
}

/** `data` from the server; a payload JSON cannot express (undefined) travels as null. */
const serverData = (payload: unknown): string => dataFrame(SERVER_SENDER, JSON.stringify(payload) ?? 'null')

export function createApi (engine: Engine): ShoalApi {
  const { users, broadcaster, connections, log } = engine.services
  const events = new HostEvents(users, log)
  return {
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
      const user = users.get(id)
      // In a cluster, only the node that has the user's socket can end its session.
      if (user === undefined || !user.isLocal) return false
      engine.endSession(user, 'disconnected by the server')
      return true
    },
    drain: () => connections.drain(),
    get stats () {
      return { connections: connections.size, users: users.userCount, rooms: users.roomCount, draining: connections.draining }
    }
  }
}
