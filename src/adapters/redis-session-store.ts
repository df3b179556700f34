/**
 * Sessions in Redis, shared by every node of a cluster: one key per session
 * holding its record as JSON, expiring when the session does (last seen + TTL),
 * so Redis sweeps them itself.
 */
import { Redis } from 'ioredis'
import { SessionRecord, type SessionRecordT } from '../../schemas/session.js'
import type { SessionStore } from '../core/sessions/session-store.js'
import { checkedReader } from './checked.js'

const sessionRecord = checkedReader(SessionRecord)

export interface RedisSessionStoreOptions {
  url: string
  prefix: string
  /** Sessions expire this long after their user was last seen (the `sessionTtlMs` setting). */
  sessionTtlMs: number
}

export class RedisSessionStore implements SessionStore {
  private readonly redis: Redis

  constructor (private readonly options: RedisSessionStoreOptions) {
    // Fail fast while Redis is away: a reconnect is answered "try again", a tick's batch is kept for the next one.
    this.redis = new Redis(options.url, { maxRetriesPerRequest: 1, enableOfflineQueue: false, retryStrategy: (attempt) => Math.min(100 * attempt, 2000) })
    this.redis.on('error', () => {})
  }

  /** Resolves once connected, so that a server does not start without its sessions. */
  async ready (): Promise<void> {
    if (this.redis.status === 'ready') return
    await new Promise<void>((resolve, reject) => {
      const onReady = (): void => { this.redis.off('error', onError); resolve() }
      const onError = (err: Error): void => { this.redis.off('ready', onReady); reject(err) }
      this.redis.once('ready', onReady)
      this.redis.once('error', onError)
    })
  }

  async load (secretHash: string): Promise<SessionRecordT | undefined> {
    const json = await this.redis.get(this.key(secretHash))
    // A record that is not a session (another version, a hand edit) cannot be resumed: as if there were none.
    return json === null ? undefined : sessionRecord.parse(json)
  }

  async save (records: readonly SessionRecordT[]): Promise<void> {
    if (records.length === 0) return
    const batch = this.redis.multi()
    for (const record of records) {
      batch.set(this.key(record.secretHash), JSON.stringify(record), 'PXAT', record.lastSeen + this.options.sessionTtlMs)
    }
    const results = await batch.exec()
    const failed = results?.find(([err]) => err !== null)?.[0]
    if (results === null || failed != null) throw failed ?? new Error('session batch was not executed')
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
