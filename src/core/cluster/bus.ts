/**
 * The seam between nodes of a cluster, in the manner of Socket.IO's sharded
 * adapter: one publish primitive on topics, subscriptions a node holds only while
 * it needs them, and per-room membership records for a node that starts serving
 * a room. The core (cluster.ts) speaks only this interface. `MemoryClusterHub`
 * joins several instances in one process (tests, embedding experiments); the
 * Redis implementation (src/adapters/redis-bus.ts) joins processes and machines.
 */
import type { ClusterMessageT } from '../../../schemas/cluster.js'
import type { UserT } from '../../../schemas/protocol.js'
import type { Clock } from '../clock.js'

/** `degraded`: the bus cannot reach the other nodes now; local users are still served. */
export type BusStatus = 'ok' | 'degraded'

export interface BusHandlers {
  /** A message on a topic this node subscribed to (unvalidated: the receiver checks it). */
  message: (topic: string, message: unknown) => void
  status: (status: BusStatus) => void
}

/** What went over the bus from and to this node since it started: the operators' figures. */
export interface BusTraffic {
  receivedMessages: number
  receivedBytes: number
  publishedMessages: number
  publishedBytes: number
}

/** One user's membership record in one room, deleted only while `owner` still owns it there. */
export interface MemberRef {
  room: string
  id: string
  owner: string
}

export interface ClusterBus {
  readonly nodeId: string
  readonly status: BusStatus
  readonly traffic: BusTraffic
  /** Starts delivering messages of the topics subscribed to, and status changes. */
  start(handlers: BusHandlers): Promise<void>
  /** Topics are opaque to the bus: the core names them (topics.ts). */
  subscribe(topic: string): Promise<void>
  unsubscribe(topic: string): Promise<void>
  /**
   * Sends to the nodes subscribed to `topic`; resolves with how many got it (this
   * node among them when it is subscribed), or null when that is not known (it
   * failed, which shows as `degraded`, never as a rejection).
   */
  publish(topic: string, message: ClusterMessageT): Promise<number | null>
  /** This node is alive for `ttlMs` more, and so are the membership records of the rooms it serves. */
  heartbeat(ttlMs: number, rooms: readonly string[]): Promise<void>
  /** The other nodes that are alive. */
  alive(): Promise<Set<string>>
  /** Records this node's users in their rooms (owner: this node), for nodes that start serving those rooms. */
  saveMembers(users: readonly UserT[], ttlMs: number): Promise<void>
  /** Deletes records, each only if its owner is still the one named (a newer owner's record stays). */
  removeMembers(refs: readonly MemberRef[]): Promise<void>
  /** A room's membership records as stored (unvalidated: the receiver checks them). */
  members(room: string): Promise<unknown[]>
  close(): Promise<void>
}

export const noTraffic = (): BusTraffic => ({ receivedMessages: 0, receivedBytes: 0, publishedMessages: 0, publishedBytes: 0 })

/** In-process nodes: messages are delivered asynchronously, as over a network. */
export class MemoryClusterHub {
  private readonly buses = new Map<string, MemoryBus>()
  private readonly aliveUntil = new Map<string, number>()
  /** room → user id → record, as Redis keeps them. */
  private readonly rooms = new Map<string, Map<string, { owner: string, user: UserT }>>()
  /** While down, nothing is delivered or stored, as during an outage of a real bus. */
  private down = false
  /** Nodes cut off as if their process had been killed: nothing from them arrives, their heartbeats stop counting. */
  private readonly dead = new Set<string>()

  constructor (readonly clock: Clock) {}

  bus (nodeId: string): ClusterBus {
    const bus = new MemoryBus(this, nodeId)
    this.buses.set(nodeId, bus)
    return bus
  }

  /** Simulates an outage (true) and its end (false). */
  setDown (down: boolean): void {
    this.down = down
    for (const bus of this.buses.values()) bus.setStatus(down ? 'degraded' : 'ok')
  }

  /** Cuts a node off as if it had been killed (SIGKILL): the others hear nothing more from it. */
  kill (nodeId: string): void {
    this.dead.add(nodeId)
    this.aliveUntil.delete(nodeId)
  }

  /** Stores a record as anything with access to the store could (tests of what a node does with bad records). */
  putRecord (room: string, id: string, record: unknown): void {
    this.roomRecords(room).set(id, record as { owner: string, user: UserT })
  }

  /** @internal Returns how many buses got it, null when nothing was delivered (down, or a dead sender). */
  deliver (from: string, topic: string, json: string): number | null {
    if (this.down || this.dead.has(from)) return null
    let receivers = 0
    for (const bus of this.buses.values()) {
      if (!bus.topics.has(topic)) continue
      receivers++
      queueMicrotask(() => bus.receive(topic, json))
    }
    return receivers
  }

  /** @internal */
  heartbeat (nodeId: string, ttlMs: number): void {
    this.ensureUp()
    if (!this.dead.has(nodeId)) this.aliveUntil.set(nodeId, this.clock.now() + ttlMs)
  }

  /** @internal */
  saveMembers (nodeId: string, users: readonly UserT[]): void {
    this.ensureUp()
    for (const user of users) this.roomRecords(user.room).set(user.id, { owner: nodeId, user: structuredClone(user) })
  }

  /** @internal */
  removeMembers (refs: readonly MemberRef[]): void {
    this.ensureUp()
    for (const { room, id, owner } of refs) {
      const records = this.rooms.get(room)
      if (records?.get(id)?.owner === owner) records.delete(id)
    }
  }

  /** @internal */
  members (room: string): unknown[] {
    this.ensureUp()
    return [...this.rooms.get(room)?.values() ?? []].map((record) => structuredClone(record))
  }

  /** @internal */
  alive (nodeId: string): Set<string> {
    this.ensureUp()
    const now = this.clock.now()
    return new Set([...this.aliveUntil].filter(([id, until]) => id !== nodeId && until > now).map(([id]) => id))
  }

  /** @internal A node stops (or dies): its bus is gone. */
  remove (nodeId: string): void {
    this.buses.delete(nodeId)
  }

  /** @internal */
  ensureUp (): void {
    if (this.down) throw new Error('cluster hub is down')
  }

  private roomRecords (room: string): Map<string, { owner: string, user: UserT }> {
    let records = this.rooms.get(room)
    if (records === undefined) {
      records = new Map()
      this.rooms.set(room, records)
    }
    return records
  }
}

class MemoryBus implements ClusterBus {
  status: BusStatus = 'ok'
  readonly traffic = noTraffic()
  /** Kept through an outage, as ioredis resubscribes by itself. */
  readonly topics = new Set<string>()
  private handlers: BusHandlers | null = null

  constructor (private readonly hub: MemoryClusterHub, readonly nodeId: string) {}

  async start (handlers: BusHandlers): Promise<void> {
    this.handlers = handlers
  }

  async subscribe (topic: string): Promise<void> {
    this.topics.add(topic)
  }

  async unsubscribe (topic: string): Promise<void> {
    this.topics.delete(topic)
  }

  async publish (topic: string, message: ClusterMessageT): Promise<number | null> {
    const json = JSON.stringify(message)
    this.traffic.publishedMessages++
    this.traffic.publishedBytes += json.length
    return this.hub.deliver(this.nodeId, topic, json)
  }

  async heartbeat (ttlMs: number): Promise<void> {
    this.hub.heartbeat(this.nodeId, ttlMs)
  }

  async alive (): Promise<Set<string>> {
    return this.hub.alive(this.nodeId)
  }

  async saveMembers (users: readonly UserT[]): Promise<void> {
    this.hub.saveMembers(this.nodeId, users)
  }

  async removeMembers (refs: readonly MemberRef[]): Promise<void> {
    this.hub.removeMembers(refs)
  }

  async members (room: string): Promise<unknown[]> {
    return this.hub.members(room)
  }

  async close (): Promise<void> {
    this.handlers = null
    this.topics.clear()
    this.hub.remove(this.nodeId)
  }

  receive (topic: string, json: string): void {
    if (this.handlers === null || !this.topics.has(topic)) return
    this.traffic.receivedMessages++
    this.traffic.receivedBytes += json.length
    this.handlers.message(topic, JSON.parse(json))
  }

  setStatus (status: BusStatus): void {
    if (this.status === status) return
    this.status = status
    this.handlers?.status(status)
  }
}
