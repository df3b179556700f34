/**
 * Sessions: issuing secrets, resuming users by secret (takeover, grace, restore
 * from the store), the grace period after a socket drops, sliding expiry, and
 * batching what changed into one store write per tick. What changed is learnt
 * from the user store's events, so no caller has to say so.
 */
import { randomUUID } from 'node:crypto'
import type { IdentityT } from '../../../schemas/identity.js'
import type { ShoalSettingsT } from '../../../schemas/options.js'
import type { UserT } from '../../../schemas/protocol.js'
import type { SessionRecordT } from '../../../schemas/session.js'
import type { Clock } from '../clock.js'
import { copyState, type State } from '../presence/state.js'
import { USER_CHANGES, type UserStore } from '../presence/user-store.js'
import { LiveUser, type Peer } from '../presence/user.js'
import type { SessionStore } from './session-store.js'
import { hashSecret, newSecret, sameHash } from './secrets.js'

export type SessionTiming = Pick<ShoalSettingsT, 'graceMs' | 'sessionTtlMs'>

/**
 * A user whose only change is where it is gets written at most this often: a
 * resume after a crash may find it a second behind, and a moving user costs the
 * store one write a second instead of one per tick.
 */
export const MOVES_SAVED_EVERY_MS = 1000

/** What a new user starts with; `identity` is what the host said of it (null: anonymous). */
export type NewUser = Pick<UserT, 'name' | 'room' | 'position'> & { state: State, identity?: IdentityT | null, readOnly?: boolean }

export type Resumption =
  /** `replaced` is the socket the user was taken from, now detached; `rejoined` is true when the user had left its room. */
  | { user: LiveUser, replaced: Peer | null, rejoined: boolean }
  | null

/** In a cluster: the nodes that own the users this node only has replicas of. */
export interface UserClaims {
  /**
   * Asks `owner` to hand its user over (closing its socket there) and resolves
   * with the user as the owner last had it, or null when the owner did not
   * answer (it may be dead; the stored record is then the latest).
   */
  claim(owner: string, userId: string): Promise<UserT | null>
  /** The replica of `userId` when another live node has it in `room`, made here if this node holds none; undefined otherwise. */
  locate(userId: string, room: string): Promise<LiveUser | undefined>
  /** `resync`: the cluster announced everything again after an outage; what the shared store had may be lost. */
  on(event: 'resync', listener: () => void): unknown
}

export class SessionManager {
  /** Users whose socket dropped, in the order their grace ends (grace is the same for all). */
  private readonly inGrace = new Map<string, LiveUser>()
  /** Users whose stored record is out of date. */
  private readonly unsaved = new Set<LiveUser>()
  /** Users whose stored record is out of date only by their position (see MOVES_SAVED_EVERY_MS). */
  private readonly moved = new Set<LiveUser>()
  private movesSavedAt = Number.NEGATIVE_INFINITY
  /** The store write in flight; batches never overlap, so they land in order. */
  private saving: Promise<void> | null = null

  /** Without `claims` (a single node) every user is this node's. */
  constructor (
    private readonly users: UserStore,
    private readonly store: SessionStore,
    private readonly clock: Clock,
    private readonly timing: SessionTiming,
    private readonly claims: UserClaims | null = null
  ) {
    const changed = (user: LiveUser, _detail?: unknown): void => {
      if (!user.isLocal) return
      this.unsaved.add(user)
      this.moved.delete(user)
    }
    const moved = (user: LiveUser): void => { if (user.isLocal && !this.unsaved.has(user)) this.moved.add(user) }
    // A departure is not a change to keep: `leave` deletes the session, grace expiry records it itself.
    for (const event of USER_CHANGES) if (event !== 'leave' && event !== 'moved') users.on(event, changed)
    users.on('moved', moved)
    users.on('owner', (user) => { if (!user.isLocal) this.release(user) })
    // A Redis that restarted empty has lost the sessions: write every live one again.
    claims?.on('resync', () => this.saveAll())
  }

  /** Creates a user and its session. */
  register (peer: Peer, fields: NewUser): { user: LiveUser, secret: string } {
    const secret = newSecret()
    const user = new LiveUser(randomUUID(), hashSecret(secret), fields.name, fields.room, fields.position, fields.state, [])
    user.identity = fields.identity ?? null
    user.info = fields.identity?.info
    user.readOnly = fields.readOnly ?? false
    this.users.add(user, peer)
    return { user, secret }
  }

  /**
   * Resumes the user that `secret` belongs to on `peer`, or null when the secret is
   * not live or belongs to another account than `userId` (undefined: anonymous).
   */
  async reconnect (peer: Peer, secret: string, userId?: string): Promise<Resumption> {
    const hash = hashSecret(secret)
    const live = this.users.bySecretHash(hash)
    if (live !== undefined) return live.identity?.userId === userId ? this.resumeLive(live, hash, peer) : null

    const record = await this.store.load(hash)
    // The same secret may have been resumed while the store answered.
    const raced = this.users.bySecretHash(hash)
    if (raced !== undefined) return raced.identity?.userId === userId ? this.resumeLive(raced, hash, peer) : null
    if (record === undefined || !sameHash(record.secretHash, hash) || record.userId !== userId) return null
    if (this.isExpired(record.lastSeen)) {
      await this.store.delete(hash)
      return null
    }
    // A node holds replicas only of the rooms it serves: the user may be live in another.
    const replica = this.users.get(record.id) ?? await this.claims?.locate(record.id, record.room)
    const racedAgain = this.users.bySecretHash(hash)
    if (racedAgain !== undefined) return racedAgain.identity?.userId === userId ? this.resumeLive(racedAgain, hash, peer) : null
    if (replica?.owner != null) return await this.takeOver(replica, replica.owner, record, peer)
    return this.restore(record, peer)
  }

  /** The user's socket closed without `leave`: shown as disconnected, removed when grace ends. */
  disconnect (user: LiveUser): void {
    this.inGrace.delete(user.id)
    this.inGrace.set(user.id, user)
    this.users.detach(user, this.clock.now())
  }

  /**
   * Ends the session for good: the secret stops working at once (the user leaves
   * the live maps now); the promise is the store's delete.
   */
  leave (user: LiveUser): Promise<void> {
    this.inGrace.delete(user.id)
    this.users.remove(user)
    this.unsaved.delete(user)
    this.moved.delete(user)
    return this.store.delete(user.secretHash)
  }

  /** Every live session is written again (after the store may have lost them, e.g. a Redis that restarted empty). */
  saveAll (): void {
    for (const user of this.users.values()) {
      if (user.isLocal) this.unsaved.add(user)
    }
  }

  /** Removes users whose grace has ended; their sessions stay resumable until they expire. */
  expireGrace (): number {
    const cutoff = this.clock.now() - this.timing.graceMs
    let expired = 0
    for (const user of this.inGrace.values()) {
      if (user.disconnectedAt > cutoff) break
      this.inGrace.delete(user.id)
      this.users.remove(user)
      this.unsaved.add(user)
      expired++
    }
    return expired
  }

  /**
   * Writes every changed session in one batch. While a batch is in flight, changes
   * wait for the next call; `flush` waits until nothing is left.
   */
  async persist (): Promise<void> {
    if (this.saving !== null) return
    const now = this.clock.now()
    if (now - this.movesSavedAt >= MOVES_SAVED_EVERY_MS) this.takeMoves(now)
    if (this.unsaved.size === 0) return
    const users = [...this.unsaved]
    const records = users.map((user) => toRecord(user, now))
    this.unsaved.clear()
    this.saving = this.store.save(records)
    try {
      await this.saving
    } catch (err) {
      // The store is unreachable: keep the changes for the next attempt (the newest values win then).
      for (const user of users) {
        if (this.users.get(user.id) === user && user.isLocal) this.unsaved.add(user)
      }
      throw err
    } finally {
      this.saving = null
    }
  }

  /** Waits for the batch in flight, then writes what is left, moves too (at shutdown). */
  async flush (): Promise<void> {
    await this.saving
    this.takeMoves(this.clock.now())
    await this.persist()
  }

  /** The users that only moved join the next write. */
  private takeMoves (now: number): void {
    for (const user of this.moved) {
      if (this.users.get(user.id) === user && user.isLocal) this.unsaved.add(user)
    }
    this.moved.clear()
    this.movesSavedAt = now
  }

  /** Deletes expired sessions; connected users count as seen now. */
  async sweep (): Promise<number> {
    for (const user of this.users.values()) {
      if (user.isLocal && user.connected) this.unsaved.add(user)
    }
    await this.flush()
    return await this.store.sweep(this.clock.now() - this.timing.sessionTtlMs)
  }

  /** Another node took `user` over: this node stops keeping its session. */
  private release (user: LiveUser): void {
    this.inGrace.delete(user.id)
    this.unsaved.delete(user)
    this.moved.delete(user)
  }

  private resumeLive (user: LiveUser, hash: string, peer: Peer): Resumption {
    if (!sameHash(user.secretHash, hash)) return null
    if (!user.connected && this.isExpired(user.disconnectedAt)) return null
    this.inGrace.delete(user.id)
    const replaced = this.users.attach(user, peer)
    this.unsaved.add(user)
    return { user, replaced, rejoined: false }
  }

  /**
   * The user is live on another node: it hands the user over, and the replica
   * here becomes this node's user with the owner's latest values (the stored
   * record's when the owner is gone). Rooms see at most `connected` change.
   */
  private async takeOver (replica: LiveUser, owner: string, record: SessionRecordT, peer: Peer): Promise<Resumption> {
    const latest = this.claims === null ? null : await this.claims.claim(owner, replica.id)
    // While the owner answered, the user may have left, or come back here.
    if (this.users.get(replica.id) !== replica) return this.restore(record, peer)
    if (replica.isLocal) return this.resumeLive(replica, record.secretHash, peer)
    const { room, name, state, listeningTo, position, info } = latest ?? record
    this.users.adopt(replica, record.secretHash)
    this.users.assign(replica, { room, name, state, listeningTo, position, info })
    this.users.attach(replica, peer)
    return { user: replica, replaced: null, rejoined: false }
  }

  /** A user back from the store, live nowhere: its room sees it join again. */
  private restore (record: SessionRecordT, peer: Peer): Resumption {
    const user = new LiveUser(record.id, record.secretHash, record.name, record.room, record.position, copyState(record.state), record.listeningTo)
    if (record.userId !== undefined) user.identity = { userId: record.userId }
    user.info = record.info
    this.users.add(user, peer)
    return { user, replaced: null, rejoined: true }
  }

  private isExpired (lastSeen: number): boolean {
    return lastSeen + this.timing.sessionTtlMs <= this.clock.now()
  }
}

function toRecord (user: LiveUser, now: number): SessionRecordT {
  const record: SessionRecordT = {
    secretHash: user.secretHash,
    id: user.id,
    name: user.name,
    room: user.room,
    position: user.position,
    state: user.state,
    listeningTo: user.listeningTo,
    lastSeen: user.connected ? now : user.disconnectedAt
  }
  if (user.identity !== null) record.userId = user.identity.userId
  if (user.info !== undefined) record.info = user.info
  return record
}
