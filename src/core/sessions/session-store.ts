/**
 * Where sessions outlive their sockets. The in-memory store is the default; durable
 * and shared stores implement the same interface. Operations must take effect in
 * the order they are called (a delete after a save wins).
 */
import type { SessionRecordT } from '../../../schemas/session.js'

export interface SessionStore {
  load(secretHash: string): Promise<SessionRecordT | undefined>
  /** Saves a batch (one tick's changes) at once. */
  save(records: readonly SessionRecordT[]): Promise<void>
  delete(secretHash: string): Promise<void>
  /** Deletes every session last seen at or before `cutoff` (it has expired); returns how many. */
  sweep(cutoff: number): Promise<number>
  close(): Promise<void>
}

export class MemorySessionStore implements SessionStore {
  private readonly records = new Map<string, SessionRecordT>()

  get size (): number { return this.records.size }

  async load (secretHash: string): Promise<SessionRecordT | undefined> {
    return this.records.get(secretHash)
  }

  async save (records: readonly SessionRecordT[]): Promise<void> {
    for (const record of records) this.records.set(record.secretHash, record)
  }

  async delete (secretHash: string): Promise<void> {
    this.records.delete(secretHash)
  }

  async sweep (cutoff: number): Promise<number> {
    let removed = 0
    for (const [hash, record] of this.records) {
      if (record.lastSeen <= cutoff) {
        this.records.delete(hash)
        removed++
      }
    }
    return removed
  }

  async close (): Promise<void> {}
}
