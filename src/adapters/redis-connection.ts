/**
 * Connections to Redis for the bus and the session store: one server
 * (`REDIS_URL`) or a Redis Cluster from its seed nodes (`REDIS_CLUSTER_NODES`),
 * through ioredis's `Redis` or `Cluster` client. Both fail fast while Redis is
 * away instead of queueing without bound (callers retry on their own schedule)
 * and pipeline what one event-loop turn sends, so that a tick's commands leave
 * as one write per server whichever shard each key lives on.
 */
import { Cluster, Redis, type RedisOptions } from 'ioredis'
import { isClusterTarget, type RedisTarget } from './redis-target.js'

export type RedisClient = Redis | Cluster

const retryStrategy = (attempt: number): number => Math.min(100 * attempt, 2000)

export interface ConnectionRole {
  /** Whether commands wait for a connection (a subscriber's subscriptions must) or fail at once. */
  offlineQueue: boolean
  /** A Cluster client that subscribes with SSUBSCRIBE keeps a connection per shard for it. */
  shardedSubscribers?: boolean
  /** Connect at once (true) or at `connect()` (false, the default). */
  connectNow?: boolean
}

export function redisClient (target: RedisTarget, role: ConnectionRole): RedisClient {
  const lazyConnect = role.connectNow !== true
  const options: RedisOptions = { lazyConnect, maxRetriesPerRequest: 1, enableOfflineQueue: role.offlineQueue, retryStrategy }
  if (!isClusterTarget(target)) return new Redis(target.url, { ...options, enableAutoPipelining: true })
  return new Cluster(target.clusterNodes.map(({ host, port }) => ({ host, port })), {
    lazyConnect,
    enableAutoPipelining: true,
    enableOfflineQueue: role.offlineQueue,
    shardedSubscribers: role.shardedSubscribers ?? false,
    clusterRetryStrategy: retryStrategy,
    redisOptions: { maxRetriesPerRequest: 1 }
  })
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

/** Where the connection goes, for logs and errors (never a password). */
export function describeTarget (target: RedisTarget): string {
  return isClusterTarget(target) ? `the Redis Cluster at ${target.clusterNodes.map(({ host, port }) => `${host}:${port}`).join(',')}` : redactRedisUrl(target.url)
}

/** Resolves once connected (rejects with the first connection error). */
export async function connected (client: RedisClient): Promise<void> {
  if (client.status === 'ready') return
  await new Promise<void>((resolve, reject) => {
    const onReady = (): void => { client.off('error', onError); resolve() }
    const onError = (err: Error): void => { client.off('ready', onReady); reject(err) }
    client.once('ready', onReady)
    client.once('error', onError)
  })
}
