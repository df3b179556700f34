/**
 * The cluster bus on Redis (ioredis): one pub/sub channel for the nodes'
 * messages, a sorted set of node heartbeats (score: alive until, in ms), and one
 * hash per node with its users, expiring with its heartbeat. Two connections,
 * since a subscribed connection can do nothing else. ioredis reconnects on its
 * own; while either connection is down the bus reports `degraded`.
 */
import { Redis } from 'ioredis'
import type { ClusterMessageT } from '../../schemas/cluster.js'
import type { UserT } from '../../schemas/protocol.js'
import type { Clock } from '../core/clock.js'
import type { BusHandlers, BusStatus, ClusterBus } from '../core/cluster/bus.js'

function parseOrText (json: string): unknown {
  try {
    return JSON.parse(json)
  } catch {
    return json
  }
}

/** A Redis URL without its password, for logs and errors. */
export function redactRedisUrl (url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password !== '') parsed.password = '***'
    return parsed.toString()
  } catch {
    return 'an invalid URL'
  }
}

export interface RedisBusOptions {
  /** redis://host:port/db */
  url: string
  nodeId: string
  /** Prefix of every key and channel, so that several clusters (or tests) can share a server. */
  prefix: string
  clock: Clock
}

export class RedisClusterBus implements ClusterBus {
  readonly nodeId: string
  status: BusStatus = 'degraded'
  private readonly commands: Redis
  private readonly subscriber: Redis
  private handlers: BusHandlers | null = null
  private readonly channel: string
  private readonly nodesKey: string

  constructor (private readonly options: RedisBusOptions) {
    this.nodeId = options.nodeId
    this.channel = `${options.prefix}bus`
    this.nodesKey = `${options.prefix}nodes`
    // Commands fail fast while Redis is away instead of queueing without bound; the callers retry on their own schedule.
    const connection = { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false, retryStrategy: (attempt: number) => Math.min(100 * attempt, 2000) }
    this.commands = new Redis(options.url, connection)
    this.subscriber = new Redis(options.url, { ...connection, enableOfflineQueue: true })
    for (const client of [this.commands, this.subscriber]) {
      client.on('ready', () => this.updateStatus())
      client.on('close', () => this.updateStatus())
      // Errors show in the status; ioredis retries by itself.
      client.on('error', () => {})
    }
    this.subscriber.on('messageBuffer', (_channel: Buffer, payload: Buffer) => {
      let message: unknown
      try {
        message = JSON.parse(payload.toString())
      } catch {
        return
      }
      this.handlers?.message(message)
    })
  }

  async start (handlers: BusHandlers): Promise<void> {
    this.handlers = handlers
    await this.commands.connect()
    await this.subscriber.connect()
    await this.subscriber.subscribe(this.channel)
    this.updateStatus()
  }

  publish (message: ClusterMessageT): void {
    this.commands.publish(this.channel, JSON.stringify(message)).catch(() => this.updateStatus())
  }

  async heartbeat (ttlMs: number): Promise<void> {
    const until = this.options.clock.now() + ttlMs
    await this.commands.multi()
      .zadd(this.nodesKey, until, this.nodeId)
      .pexpire(this.membersKey(this.nodeId), ttlMs)
      .zremrangebyscore(this.nodesKey, '-inf', this.options.clock.now())
      .exec()
  }

  async saveMembers (changed: readonly UserT[], removed: readonly string[]): Promise<void> {
    const key = this.membersKey(this.nodeId)
    const batch = this.commands.multi()
    if (changed.length > 0) batch.hset(key, ...changed.flatMap((user) => [user.id, JSON.stringify(user)]))
    if (removed.length > 0) batch.hdel(key, ...removed)
    await batch.exec()
  }

  async peers (): Promise<Map<string, unknown[]>> {
    const alive = await this.commands.zrangebyscore(this.nodesKey, this.options.clock.now(), '+inf')
    const peers = new Map<string, unknown[]>()
    for (const node of alive) {
      if (node === this.nodeId) continue
      // The cluster core checks each record; text that is not JSON reaches it as the text, and fails there.
      const records = await this.commands.hvals(this.membersKey(node)).catch((err: unknown) => {
        if (err instanceof Error && err.message.startsWith('WRONGTYPE')) return ['(not a hash of member records)']
        throw err
      })
      peers.set(node, records.map(parseOrText))
    }
    return peers
  }

  async close (): Promise<void> {
    this.handlers = null
    await this.commands.multi().zrem(this.nodesKey, this.nodeId).del(this.membersKey(this.nodeId)).exec().catch(() => undefined)
    this.commands.disconnect()
    this.subscriber.disconnect()
  }

  private membersKey (node: string): string {
    return `${this.options.prefix}members:${node}`
  }

  private updateStatus (): void {
    const status: BusStatus = this.commands.status === 'ready' && this.subscriber.status === 'ready' ? 'ok' : 'degraded'
    if (status === this.status) return
    this.status = status
    this.handlers?.status(status)
  }
}
