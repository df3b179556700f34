/**
 * What the host app hears of through `app.shoal.on`: this node's own users
 * joining, leaving, changing, sending `data`, connecting and disconnecting, made
 * from the user store's change events (no handler has to remember to tell). Users
 * of other nodes (replicas) are their own node's to tell, so that in a cluster
 * each event is heard once. A listener that throws or rejects is logged and never
 * reaches the engine.
 */
import type { UserT } from '../../schemas/protocol.js'
import type { EngineLog } from './engine.js'
import { copyUser, type LiveUser } from './presence/user.js'
import type { UserStore } from './presence/user-store.js'

export interface ShoalEvents {
  /** Entered `room`: registered, restored after a restart, or moved there by `join`. */
  join: { user: UserT, room: string }
  /** Left `room`: its session ended (`leave`, grace over, disconnected by the server) or it moved on. */
  leave: { user: UserT, room: string }
  /** Its name, state or info changed. */
  update: { user: UserT }
  /** Its `listeningTo` changed. */
  listening: { user: UserT }
  /** It sent `data` (`payload` as its listeners get it). */
  data: { user: UserT, payload: unknown }
  /** It has a socket here: registered, or resumed. */
  connect: { user: UserT }
  /** Its socket went away; it stays, in grace, until it resumes or leaves. */
  disconnect: { user: UserT }
}

export type ShoalEventName = keyof ShoalEvents
export type ShoalListener<E extends ShoalEventName> = (event: ShoalEvents[E]) => void | Promise<void>

const wire = (user: LiveUser): UserT => copyUser(user.toWire())

export class HostEvents {
  private readonly listeners = new Map<ShoalEventName, Set<ShoalListener<ShoalEventName>>>()
  /** This node's users the host was told are connected (so connect and disconnect alternate). */
  private readonly connected = new WeakSet<LiveUser>()

  constructor (private readonly users: UserStore, private readonly log: EngineLog) {
    users.on('join', (user) => {
      this.emit(user, 'join', () => ({ user: wire(user), room: user.room }))
      this.connectionChanged(user)
    })
    users.on('leave', (user, room) => {
      // A session that ends while connected disconnects first, so that connect and disconnect pair up.
      if (users.get(user.id) !== user) this.connectionChanged(user)
      this.emit(user, 'leave', () => ({ user: wire(user), room }))
    })
    users.on('profile', (user) => { this.emit(user, 'update', () => ({ user: wire(user) })) })
    users.on('listening', (user) => { this.emit(user, 'listening', () => ({ user: wire(user) })) })
    users.on('data', (user, payloadJson) => { this.emit(user, 'data', () => ({ user: wire(user), payload: JSON.parse(payloadJson) as unknown })) })
    users.on('connected', (user) => { this.connectionChanged(user) })
    users.on('owner', (user) => { this.connectionChanged(user) })
  }

  on<E extends ShoalEventName> (event: E, listener: ShoalListener<E>): void {
    let set = this.listeners.get(event)
    if (set === undefined) {
      set = new Set()
      this.listeners.set(event, set)
    }
    set.add(listener as ShoalListener<ShoalEventName>)
  }

  off<E extends ShoalEventName> (event: E, listener: ShoalListener<E>): void {
    this.listeners.get(event)?.delete(listener as ShoalListener<ShoalEventName>)
  }

  /** A user got or lost its socket here, or became or stopped being this node's (a takeover). */
  private connectionChanged (user: LiveUser): void {
    const connected = user.isLocal && user.connected && this.users.get(user.id) === user
    if (connected === this.connected.has(user)) return
    if (connected) this.connected.add(user)
    else this.connected.delete(user)
    this.emit(user, connected ? 'connect' : 'disconnect', () => ({ user: wire(user) }), true)
  }

  /** Tells every listener of `event`, each with an event of its own, made only when someone listens. */
  private emit<E extends ShoalEventName> (user: LiveUser, event: E, make: () => ShoalEvents[E], wasLocal = user.isLocal): void {
    const listeners = this.listeners.get(event)
    if (!wasLocal || listeners === undefined || listeners.size === 0) return
    for (const listener of listeners) {
      try {
        const result: unknown = listener(make())
        if (typeof (result as PromiseLike<void> | undefined)?.then === 'function') {
          Promise.resolve(result).catch((err: unknown) => { this.failed(event, err) })
        }
      } catch (err) {
        this.failed(event, err)
      }
    }
  }

  private failed (event: ShoalEventName, err: unknown): void {
    this.log.error({ err, event }, 'an app.shoal.on listener failed')
  }
}
