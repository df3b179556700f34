/**
 * The seam between nodes of a cluster, in the manner of Socket.IO's adapter:
 * the core (cluster.ts) speaks only this interface. `MemoryClusterHub` joins
 * several instances in one process (tests, embedding experiments); the Redis
 * implementation (src/adapters/redis-bus.ts) joins processes and machines.
 */
import type { ClusterMessageT } from '../../../schemas/cluster.js'
import type { UserT } from '../../../schemas/protocol.js'
import type { Clock } from '../clock.js'

/** `degraded`: the bus cannot reach the other nodes now; local users are still served. */
export type BusStatus = 'ok' | 'degraded'

export interface BusHandlers {
  message: (message: unknown) => void
  status: (status: BusStatus) => void
}

export interface ClusterBus {
  readonly nodeId: string
  readonly status: BusStatus
  /** Starts delivering the other nodes' messages (unvalidated: the receiver checks them) and status changes. */
  start(handlers: BusHandlers): Promise<void>
  /** Sends to every other node; a failure shows as `degraded`, never as a throw. */
  publish(message: ClusterMessageT): void
  /** This node is alive for `ttlMs` more. */
  heartbeat(ttlMs: number): Promise<void>
  /** Records this node's users as a (re)starting node should load them. */
  saveMembers(changed: readonly UserT[], removed: readonly string[]): Promise<void>
  /** The other nodes that are alive, with their users' records as stored (unvalidated: the receiver checks them). */
  peers(): Promise<Map<string, unknown[]>>
  close(): Promise<void>
}

/** In-process nodes: messages are delivered asynchronously, as over a network. */
export class MemoryClusterHub {
  private readonly buses = new Map<string, MemoryBus>()
  private readonly aliveUntil = new Map<string, number>()
  private readonly members = new Map<string, Map<string, UserT>>()
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

  /** @internal */
  deliver (from: string, message: ClusterMessageT): void {
    if (this.down || this.dead.has(from)) return
    const copy: unknown = JSON.parse(JSON.stringify(message))
    for (const bus of this.buses.values()) {
      if (bus.nodeId !== from) queueMicrotask(() => bus.receive(copy))
    }
  }

  /** @internal */
  heartbeat (nodeId: string, ttlMs: number): void {
    this.ensureUp()
    if (!this.dead.has(nodeId)) this.aliveUntil.set(nodeId, this.clock.now() + ttlMs)
  }

  /** @internal */
  saveMembers (nodeId: string, changed: readonly UserT[], removed: readonly string[]): void {
    this.ensureUp()
    let members = this.members.get(nodeId)
    if (members === undefined) {
      members = new Map()
      this.members.set(nodeId, members)
    }
    for (const user of changed) members.set(user.id, structuredClone(user))
    for (const id of removed) members.delete(id)
  }

  /** @internal */
  peers (nodeId: string): Map<string, unknown[]> {
    this.ensureUp()
    const now = this.clock.now()
    const peers = new Map<string, unknown[]>()
    for (const [id, until] of this.aliveUntil) {
      if (id !== nodeId && until > now) peers.set(id, [...(this.members.get(id)?.values() ?? [])].map((user) => structuredClone(user)))
    }
    return peers
  }

  /** @internal A node stops (or dies): it is no longer alive, and its bus is gone. */
  remove (nodeId: string): void {
    this.buses.delete(nodeId)
  }

  private ensureUp (): void {
    if (this.down) throw new Error('cluster hub is down')
  }
}

class MemoryBus implements ClusterBus {
  status: BusStatus = 'ok'
  private handlers: BusHandlers | null = null

  constructor (private readonly hub: MemoryClusterHub, readonly nodeId: string) {}

  async start (handlers: BusHandlers): Promise<void> {
    this.handlers = handlers
  }

  publish (message: ClusterMessageT): void {
    this.hub.deliver(this.nodeId, message)
  }

  async heartbeat (ttlMs: number): Promise<void> {
    this.hub.heartbeat(this.nodeId, ttlMs)
  }

  async saveMembers (changed: readonly UserT[], removed: readonly string[]): Promise<void> {
    this.hub.saveMembers(this.nodeId, changed, removed)
  }

  async peers (): Promise<Map<string, unknown[]>> {
    return this.hub.peers(this.nodeId)
  }

  async close (): Promise<void> {
    this.handlers = null
    this.hub.remove(this.nodeId)
  }

  receive (message: unknown): void {
    this.handlers?.message(message)
  }

  setStatus (status: BusStatus): void {
    if (this.status === status) return
    this.status = status
    this.handlers?.status(status)
  }
}
