/**
 * The cluster bus on Redis (ioredis), on one server or on a Redis Cluster:
 * - a channel per topic (a room, a user's `data`, a node), `<prefix>{<topic>}`;
 *   on a Cluster, sharded pub/sub (SSUBSCRIBE / SPUBLISH), so a message goes only
 *   to the shard that owns its channel and to the nodes subscribed there;
 * - a sorted set of node heartbeats, `<prefix>nodes` (score: alive until, in ms);
 * - a hash of membership records per room, `<prefix>{room:<name>}:members`,
 *   user id → `{"owner":..., "user":...}`, expiring unless a node serving the
 *   room beats. Its hash tag is the room channel's, so both live on one shard.
 * Every command names one key, so none crosses slots. Two connections (a
 * subscribed one can do nothing else); ioredis reconnects and resubscribes on
 * its own; while either is down the bus reports `degraded`.
 */
import type { Result } from 'ioredis'
import type { ClusterMessageT } from '../../schemas/cluster.js'
import type { UserT } from '../../schemas/protocol.js'
import type { Clock } from '../core/clock.js'
import { noTraffic, type BusHandlers, type BusStatus, type ClusterBus, type MemberRef } from '../core/cluster/bus.js'
import { redisClient, type RedisClient } from './redis-connection.js'
import { isClusterTarget, type RedisTarget } from './redis-target.js'

export { redactRedisUrl } from './redis-connection.js'

declare module 'ioredis' {
  interface RedisCommander<Context> {
    /** HDEL of `field` only while its record starts with `ownerPrefix` (REMOVE_IF_OWNER). */
    shoalRemoveMember(key: string, field: string, ownerPrefix: string): Result<number, Context>
  }
}

/** A record is deleted only while the node named still owns it: a newer owner's record stays. */
const REMOVE_IF_OWNER = `
local record = redis.call('HGET', KEYS[1], ARGV[1])
if record and string.sub(record, 1, #ARGV[2]) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0`

/** The start of every record `owner` writes: records are written by this file only, in this order. */
const ownerPrefix = (owner: string): string => `{"owner":${JSON.stringify(owner)},`

function parseOrText (json: string): unknown {
  try {
    return JSON.parse(json)
  } catch {
    return json
  }
}

export interface RedisBusOptions {
  redis: RedisTarget
  nodeId: string
  /** Prefix of every key and channel, so that several clusters (or tests) can share a server. */
  prefix: string
  clock: Clock
}

export class RedisClusterBus implements ClusterBus {
  readonly nodeId: string
  status: BusStatus = 'degraded'
  readonly traffic = noTraffic()
  private readonly commands: RedisClient
  private readonly subscriber: RedisClient
  private readonly sharded: boolean
  private handlers: BusHandlers | null = null
  private readonly nodesKey: string

  constructor (private readonly options: RedisBusOptions) {
    this.nodeId = options.nodeId
    this.nodesKey = `${options.prefix}nodes`
    this.sharded = isClusterTarget(options.redis)
    this.commands = redisClient(options.redis, { offlineQueue: false })
    this.subscriber = redisClient(options.redis, { offlineQueue: true, shardedSubscribers: this.sharded })
    this.commands.defineCommand('shoalRemoveMember', { numberOfKeys: 1, lua: REMOVE_IF_OWNER })
    for (const client of [this.commands, this.subscriber]) {
      client.on('ready', () => this.updateStatus())
      client.on('close', () => this.updateStatus())
      client.on('end', () => this.updateStatus())
      // Errors show in the status; ioredis retries by itself.
      client.on('error', () => {})
    }
    this.subscriber.on(this.sharded ? 'smessageBuffer' : 'messageBuffer', (channel: Buffer, payload: Buffer) => this.deliver(channel, payload))
  }

  async start (handlers: BusHandlers): Promise<void> {
    this.handlers = handlers
    await this.commands.connect()
    await this.subscriber.connect()
    this.updateStatus()
  }

  async subscribe (topic: string): Promise<void> {
    const channel = this.channel(topic)
    await (this.sharded ? this.subscriber.ssubscribe(channel) : this.subscriber.subscribe(channel))
  }

  async unsubscribe (topic: string): Promise<void> {
    const channel = this.channel(topic)
    await (this.sharded ? this.subscriber.sunsubscribe(channel) : this.subscriber.unsubscribe(channel))
  }

  async publish (topic: string, message: ClusterMessageT): Promise<number | null> {
    const json = JSON.stringify(message)
    this.traffic.publishedMessages++
    this.traffic.publishedBytes += Buffer.byteLength(json)
    const channel = this.channel(topic)
    try {
      // SPUBLISH counts the subscribers on the channel's shard, where ioredis subscribes every node (at the master).
      const receivers: unknown = await (this.sharded ? this.commands.spublish(channel, json) : this.commands.publish(channel, json))
      return typeof receivers === 'number' ? receivers : null
    } catch {
      this.updateStatus()
      return null
    }
  }

  async heartbeat (ttlMs: number, rooms: readonly string[]): Promise<void> {
    const now = this.options.clock.now()
    await Promise.all([
      this.commands.zadd(this.nodesKey, now + ttlMs, this.nodeId),
      this.commands.zremrangebyscore(this.nodesKey, '-inf', now),
      ...rooms.map(async (room) => await this.commands.pexpire(this.membersKey(room), ttlMs))
    ])
  }

  async alive (): Promise<Set<string>> {
    const alive = new Set(await this.commands.zrangebyscore(this.nodesKey, this.options.clock.now(), '+inf'))
    alive.delete(this.nodeId)
    return alive
  }

  async saveMembers (users: readonly UserT[], ttlMs: number): Promise<void> {
    const byRoom = new Map<string, string[]>()
    const prefix = ownerPrefix(this.nodeId)
    for (const user of users) {
      const fields = byRoom.get(user.room) ?? []
      fields.push(user.id, `${prefix}"user":${JSON.stringify(user)}}`)
      byRoom.set(user.room, fields)
    }
    await Promise.all([...byRoom].flatMap(([room, fields]) => {
      const key = this.membersKey(room)
      return [this.commands.hset(key, ...fields), this.commands.pexpire(key, ttlMs)]
    }))
  }

  async removeMembers (refs: readonly MemberRef[]): Promise<void> {
    await Promise.all(refs.map(async ({ room, id, owner }) => await this.commands.shoalRemoveMember(this.membersKey(room), id, ownerPrefix(owner))))
  }

  async members (room: string): Promise<unknown[]> {
    // The cluster core checks each record; text that is not JSON reaches it as the text, and fails there.
    const records = await this.commands.hvals(this.membersKey(room)).catch((err: unknown) => {
      if (err instanceof Error && err.message.startsWith('WRONGTYPE')) return ['(not a hash of member records)']
      throw err
    })
    return records.map(parseOrText)
  }

  async close (): Promise<void> {
    this.handlers = null
    await this.commands.zrem(this.nodesKey, this.nodeId).catch(() => undefined)
    this.commands.disconnect()
    this.subscriber.disconnect()
  }

  private channel (topic: string): string {
    return `${this.options.prefix}{${topic}}`
  }

  private membersKey (room: string): string {
    return `${this.options.prefix}{room:${room}}:members`
  }

  private deliver (channel: Buffer, payload: Buffer): void {
    this.traffic.receivedMessages++
    this.traffic.receivedBytes += payload.length
    // `<prefix>{<topic>}`: what is between the prefix's end and the last brace.
    const topic = channel.toString().slice(this.options.prefix.length + 1, -1)
    this.handlers?.message(topic, parseOrText(payload.toString()))
  }

  private updateStatus (): void {
    const status: BusStatus = this.commands.status === 'ready' && this.subscriber.status === 'ready' ? 'ok' : 'degraded'
    if (status === this.status) return
    this.status = status
    this.handlers?.status(status)
  }
}
