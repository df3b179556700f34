/**
 * One node of a cluster. Rooms here hold this node's users and replicas of the
 * other nodes' users, so presence, positions and `data` work across nodes through
 * the code paths a single node uses. Once per tick a node publishes what its own
 * users did (one message, every room's batch in it, never a message per inbound
 * message); others apply it to their replicas and their next tick shows it to
 * their clients: at most one tick of added latency. What its users did is learnt
 * from the user store's events.
 *
 * Liveness: each node heartbeats; the users of a node that stops heartbeating
 * show `connected: false` at once and leave after the grace period, unless they
 * reconnect elsewhere first. A reconnect that lands on another node claims the
 * user from its owner, whose socket is closed with 4001.
 */
import { randomUUID } from 'node:crypto'
import { EventEmitter } from 'eventemitter3'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { ClusterMessage, ReplicaUser, type ClusterMessageT, type ReplicaUserT, type RoomBatchT, type TickMessageT } from '../../../schemas/cluster.js'
import type { ShoalSettingsT } from '../../../schemas/options.js'
import { DATA_PAYLOAD_MAX_BYTES, type UserT } from '../../../schemas/protocol.js'
import { CloseCode } from '../../protocol/close-codes.js'
import type { Clock } from '../clock.js'
import { infoProblem } from '../identity.js'
import type { Broadcaster } from '../presence/broadcaster.js'
import { changedFields } from '../presence/room.js'
import { copyState, stateLimitProblem } from '../presence/state.js'
import { USER_CHANGES, type UserStore } from '../presence/user-store.js'
import { LiveUser } from '../presence/user.js'
import type { UserClaims } from '../sessions/sessions.js'
import type { BusStatus, ClusterBus } from './bus.js'

const isClusterMessage = TypeCompiler.Compile(ClusterMessage)
const isReplicaUser = TypeCompiler.Compile(ReplicaUser)

/** `data` from another node, parsed and serialized again within the client limit; null when it is not that. */
function reserialized (payloadJson: string): string | null {
  try {
    const payload = JSON.stringify(JSON.parse(payloadJson))
    return Buffer.byteLength(payload) <= DATA_PAYLOAD_MAX_BYTES ? payload : null
  } catch {
    return null
  }
}

export interface ClusterTiming extends Pick<ShoalSettingsT, 'graceMs' | 'claimTimeoutMs'> {
  /** How often this node heartbeats and checks the others; a node is dead after two missed beats. */
  heartbeatMs: number
}

export interface ClusterEvents {
  /** A message from the bus, or a member record from its store, that is not valid within the client limits: skipped. */
  invalid: [reason: string]
  /** A bus operation failed (the bus then reports `degraded`). */
  failed: [operation: string, err: unknown]
  /** The bus went away (`degraded`) or came back (`ok`). */
  status: [status: BusStatus]
  /** This node announced all its users again (the bus was away): whatever the bus's Redis keeps may have been lost. */
  resync: []
}

/** One tick's message in the making: a batch per room, and the membership changes to store. */
class TickDraft {
  readonly rooms = new Map<string, RoomBatchT>()
  readonly changed: UserT[] = []
  readonly removed: string[] = []

  room (name: string): RoomBatchT {
    let batch = this.rooms.get(name)
    if (batch === undefined) {
      batch = { room: name, joined: [], left: [], updated: [], positions: [] }
      this.rooms.set(name, batch)
    }
    return batch
  }
}

export class ClusterSync extends EventEmitter<ClusterEvents> implements UserClaims {
  /** This node's users that changed since the last publish. */
  private readonly dirty = new Set<LiveUser>()
  /** What the other nodes were last told of each of this node's users. */
  private readonly published = new Map<string, UserT>()
  private readonly data: TickMessageT['data'] = []
  private readonly claims = new Map<string, (user: UserT | null) => void>()
  /** Replicas whose owner died: shown disconnected, removed when grace ends. */
  private readonly orphans = new Map<string, LiveUser>()
  /** After the bus comes back, other nodes get one beat to heartbeat again before anyone is declared dead. */
  private trustPeersAfter = 0
  private resyncing: Promise<void> | null = null

  constructor (
    private readonly users: UserStore,
    private readonly broadcaster: Broadcaster,
    private readonly bus: ClusterBus,
    private readonly clock: Clock,
    private readonly timing: ClusterTiming
  ) {
    super()
    const changed = (user: LiveUser, _room?: string): void => { if (user.isLocal) this.dirty.add(user) }
    for (const event of USER_CHANGES) users.on(event, changed)
    users.on('data', (from, payload) => { if (from.isLocal) this.data.push({ from: from.id, payload }) })
  }

  get nodeId (): string { return this.bus.nodeId }
  get status (): BusStatus { return this.bus.status }

  /** Joins the cluster: listens, heartbeats, and loads the users of the nodes already there. */
  async start (): Promise<void> {
    await this.bus.start({
      message: (message) => this.receive(message),
      status: (status) => {
        this.emit('status', status)
        if (status === 'ok') this.resync()
      }
    })
    await this.resyncNow()
  }

  /** The tick step: publishes what this node's users did since the last tick, once. */
  publishTick (): void {
    const draft = new TickDraft()
    for (const user of this.dirty) this.draftChange(user, draft)
    this.dirty.clear()
    if (draft.rooms.size > 0 || this.data.length > 0) {
      this.bus.publish({ kind: 'tick', from: this.nodeId, rooms: [...draft.rooms.values()], data: this.data.splice(0) })
    }
    if (draft.changed.length > 0 || draft.removed.length > 0) {
      this.bus.saveMembers(draft.changed, draft.removed).catch((err: unknown) => { this.emit('failed', 'saving members', err) })
    }
  }

  /** The tick step after publishing: replicas of dead nodes whose grace has ended leave. */
  expireOrphans (): void {
    const cutoff = this.clock.now() - this.timing.graceMs
    for (const [id, user] of this.orphans) {
      if (user.disconnectedAt > cutoff) continue
      this.orphans.delete(id)
      if (this.users.get(id) === user && !user.isLocal) this.users.remove(user)
    }
  }

  /** Every heartbeat: tells the others this node lives, and finds the nodes that died. */
  async beat (): Promise<void> {
    await this.bus.heartbeat(this.timing.heartbeatMs * 2)
    const peers = await this.bus.peers()
    if (this.clock.now() < this.trustPeersAfter) return
    for (const user of this.users.values()) {
      if (user.owner !== null && !peers.has(user.owner)) this.orphan(user)
    }
  }

  /** Asks `owner` to hand `userId` over; null when it does not answer in time. */
  async claim (owner: string, userId: string): Promise<UserT | null> {
    const requestId = randomUUID()
    return await new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.claims.delete(requestId)
        resolve(null)
      }, this.timing.claimTimeoutMs)
      this.claims.set(requestId, (user) => {
        clearTimeout(timer)
        this.claims.delete(requestId)
        resolve(user)
      })
      this.bus.publish({ kind: 'claim', from: this.nodeId, to: owner, userId, requestId })
    })
  }

  /** After the bus was away: tell the others everything again, and reload theirs. */
  resync (): void {
    this.resyncing ??= this.resyncNow()
      .catch((err: unknown) => { this.emit('failed', 'resync', err) })
      .finally(() => { this.resyncing = null })
  }

  /** Stops answering; the bus belongs to whoever made it. */
  close (): void {
    for (const settle of this.claims.values()) settle(null)
  }

  /** What one of this node's users did since the last publish, into the tick's draft. */
  private draftChange (user: LiveUser, draft: TickDraft): void {
    const before = this.published.get(user.id)
    if (this.users.get(user.id) !== user || !user.isLocal) {
      // Gone from this node: left, or taken over by another node (which then announces it).
      if (before !== undefined && user.isLocal) draft.room(before.room).left.push(user.id)
      if (before !== undefined) draft.removed.push(user.id)
      this.published.delete(user.id)
      return
    }
    const now = user.toWire()
    let presenceChanged = true
    if (before === undefined || before.room !== now.room) {
      if (before !== undefined) draft.room(before.room).left.push(user.id)
      draft.room(now.room).joined.push(now)
    } else {
      const update = changedFields(before, now)
      if (update !== null) draft.room(now.room).updated.push(update)
      else presenceChanged = false
      const { x, y, z } = now.position
      if (x !== before.position.x || y !== before.position.y || z !== before.position.z) draft.room(now.room).positions.push([user.id, x, y, z])
    }
    // Its state and list are replaced on change, never mutated: only the position needs a copy.
    this.published.set(user.id, { ...now, position: { ...now.position } })
    // The stored membership is for nodes that start later: a move alone need not rewrite it (the next move corrects it).
    if (presenceChanged) draft.changed.push(now)
  }

  private async resyncNow (): Promise<void> {
    this.trustPeersAfter = this.clock.now() + this.timing.heartbeatMs
    await this.bus.heartbeat(this.timing.heartbeatMs * 2)
    // Everything this node has is announced again, as new, to nodes that may have dropped it.
    this.published.clear()
    for (const user of this.users.values()) {
      if (user.isLocal) this.dirty.add(user)
    }
    this.emit('resync')
    for (const [node, members] of await this.bus.peers()) {
      for (const member of members) {
        if (!isReplicaUser.Check(member)) {
          this.emit('invalid', `member record of ${node}: ${[...isReplicaUser.Errors(member)].slice(0, 3).map((e) => `${e.path}: ${e.message}`).join('; ')}`)
        } else if (this.fits(member)) {
          this.upsert(member, node)
        }
      }
    }
  }

  private receive (raw: unknown): void {
    if (!isClusterMessage.Check(raw)) {
      this.emit('invalid', [...isClusterMessage.Errors(raw)].slice(0, 3).map((e) => `${e.path}: ${e.message}`).join('; '))
      return
    }
    const message: ClusterMessageT = raw
    if (message.from === this.nodeId) return
    if (message.kind === 'tick') {
      this.applyTick(message)
    } else if (message.to === this.nodeId) {
      if (message.kind === 'claim') this.handOver(message.from, message.userId, message.requestId)
      else this.claims.get(message.requestId)?.(message.user !== null && this.fits(message.user) ? message.user : null)
    }
  }

  private applyTick (message: TickMessageT): void {
    const replicaOf = (id: string): LiveUser | undefined => {
      const user = this.users.get(id)
      return user?.owner === message.from ? user : undefined
    }
    for (const room of message.rooms) {
      for (const id of room.left) {
        const user = replicaOf(id)
        // A move shows as a left here and a joined in the new room's batch, which may have come first.
        if (user !== undefined && user.room === room.room) this.users.remove(user)
      }
      for (const user of room.joined) {
        if (user.room !== room.room) this.emit('invalid', `user ${user.id}: joined ${room.room} but names ${user.room}`)
        else if (this.fits(user)) this.upsert(user, message.from)
      }
      for (const { id, name, state, listeningTo, connected, info } of room.updated) {
        const user = replicaOf(id)
        if (user !== undefined && this.fits({ id, state, info })) this.users.assign(user, { name, state, listeningTo, connected, info })
      }
      for (const [id, x, y, z] of room.positions) {
        const user = replicaOf(id)
        if (user !== undefined) this.users.setPosition(user, { x, y, z })
      }
    }
    for (const { from, payload } of message.data) {
      const json = reserialized(payload)
      if (json === null) this.emit('invalid', `data from ${from}: not a JSON payload within ${DATA_PAYLOAD_MAX_BYTES} bytes`)
      else this.broadcaster.sendData(from, json)
    }
  }

  /** A replica's state within the client limits and its info within the host's; one that is not is reported and skipped. */
  private fits (user: Partial<Pick<ReplicaUserT, 'state' | 'info'>> & { id: string }): boolean {
    const stateProblem = user.state === undefined ? null : stateLimitProblem(user.state)
    if (stateProblem !== null) this.emit('invalid', `user ${user.id}: state over ${stateProblem}`)
    const infoIssue = user.info === undefined ? null : infoProblem(user.info)
    if (infoIssue !== null) this.emit('invalid', `user ${user.id}: info ${infoIssue}`)
    return stateProblem === null && infoIssue === null
  }

  /** Adds or refreshes `wire` as a replica of `node`'s user. */
  private upsert (wire: UserT, node: string): void {
    this.orphans.delete(wire.id)
    const existing = this.users.get(wire.id)
    if (existing === undefined) {
      const user = new LiveUser(wire.id, '', wire.name, wire.room, { ...wire.position }, copyState(wire.state), [...wire.listeningTo])
      if (wire.userId !== undefined) user.identity = { userId: wire.userId }
      user.info = wire.info
      user.owner = node
      user.remoteConnected = wire.connected
      this.users.add(user)
      return
    }
    // Ours until now: another node took it over (a lost claim answer, or both sides of a split).
    if (existing.isLocal) this.release(existing, node)
    existing.owner = node
    this.users.assign(existing, wire)
  }

  /** Another node claims one of this node's users: close its socket here (4001) and hand it over. */
  private handOver (claimant: string, userId: string, requestId: string): void {
    const user = this.users.get(userId)
    if (user === undefined || !user.isLocal) {
      this.bus.publish({ kind: 'handover', from: this.nodeId, to: claimant, requestId, user: null })
      return
    }
    const latest = user.toWire()
    this.release(user, claimant)
    this.bus.publish({ kind: 'handover', from: this.nodeId, to: claimant, requestId, user: latest })
  }

  private release (user: LiveUser, owner: string): void {
    const peer = this.users.release(user, owner)
    // Not a departure: the new owner announces the user, and rooms see nothing.
    this.published.delete(user.id)
    this.dirty.delete(user)
    peer?.close(CloseCode.replaced, 'replaced by a newer connection')
  }

  private orphan (user: LiveUser): void {
    if (this.orphans.has(user.id)) return
    user.disconnectedAt = this.clock.now()
    this.orphans.set(user.id, user)
    this.users.setRemoteConnected(user, false)
  }
}
