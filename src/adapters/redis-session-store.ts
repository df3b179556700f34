/**
 * Sessions in Redis, shared by every node of a cluster: one key per session
 * holding its record as JSON, expiring when the session does (last seen + TTL),
 * so Redis sweeps them itself. Every command names one key, so that on a Redis
 * Cluster no command crosses slots; a tick's batch is pipelined, not a MULTI.
 */
import { SessionRecord, type SessionRecordT } from '../../schemas/session.js'
import type { SessionStore } from '../core/sessions/session-store.js'
import { checkedReader } from './checked.js'
import { connected, redisClient, type RedisClient } from './redis-connection.js'
import type { RedisTarget } from './redis-target.js'

const sessionRecord = checkedReader(SessionRecord)

export interface RedisSessionStoreOptions {
  redis: RedisTarget
  prefix: string
  /** Sessions expire this long after their user was last seen (the `sessionTtlMs` setting). */
  sessionTtlMs: number
}

export class RedisSessionStore implements SessionStore {
  private readonly redis: RedisClient

  constructor (private readonly options: RedisSessionStoreOptions) {
    // Fail fast while Redis is away: a reconnect is answered "try again", a tick's batch is kept for the next one.
    this.redis = redisClient(options.redis, { offlineQueue: false, connectNow: true })
    this.redis.on('error', () => {})
  }

  /** Resolves once connected, so that a server does not start without its sessions. */
  async ready (): Promise<void> {
    await connected(this.redis)
  }

  async load (secretHash: string): Promise<SessionRecordT | undefined> {
    const json = await this.redis.get(this.key(secretHash))
    // A record that is not a session (another version, a hand edit) cannot be resumed: as if there were none.
    return json === null ? undefined : sessionRecord.parse(json)
  }

  async save (records: readonly SessionRecordT[]): Promise<void> {
    if (records.length === 0) return
    // Each write is idempotent: a batch that fails part-way is written again whole at the next tick.
    await Promise.all(records.map(async (record) => await this.redis.set(this.key(record.secretHash), JSON.stringify(record), 'PXAT', record.lastSeen + this.options.sessionTtlMs)))
  }

  async delete (secretHash: string): Promise<void> {
    await this.redis.del(this.key(secretHash))
  }

  /** Redis expires sessions itself. */
  async sweep (): Promise<number> {
    return 0
  }

  async close (): Promise<void> {
    this.redis.disconnect()
  }

  private key (secretHash: string): string {
    return `${this.options.prefix}session:${secretHash}`
  }
}
