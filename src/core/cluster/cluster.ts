/**
 * One node of a cluster, routed by room. A node serves a room while it has users
 * of its own there: it subscribes to the room's topic, loads the room's
 * membership records into replicas of the other nodes' users, and drops them
 * when its last user leaves. Rooms here then hold this node's users and those
 * replicas, so presence, positions and `data` work across nodes through the code
 * paths a single node uses. Once per tick a node publishes what its own users did,
 * one message per changed room on that room's topic, never a message per inbound
 * message; the nodes serving the room apply it to their replicas and their next
 * tick shows it: at most one tick of added latency. `data` goes on its sender's
 * topic, which the nodes with listeners of that user subscribe to, whatever room
 * they serve. What its users did is learnt from the user store's events.
 *
 * So a node's bus traffic and memory grow with the rooms it serves, not with the
 * cluster.
 *
 * Liveness: each node heartbeats; the replicas of a node that stops heartbeating
 * show `connected: false` at once and leave after the grace period, unless they
 * reconnect elsewhere first. A reconnect that lands on another node claims the
 * user from its owner, on the owner's topic, whose socket is closed with 4001.
 */
import { randomUUID } from 'node:crypto'
import { EventEmitter } from 'eventemitter3'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { ClusterMessage, MemberRecord, type ClusterMessageT, type DataMessageT, type MemberRecordT, type ReplicaUserT, type RoomBatchT } from '../../../schemas/cluster.js'
import type { ShoalSettingsT } from '../../../schemas/options.js'
import { DATA_PAYLOAD_MAX_BYTES, type UserT } from '../../../schemas/protocol.js'
import { CloseCode } from '../../protocol/close-codes.js'
import type { Clock } from '../clock.js'
import { infoProblem } from '../identity.js'
import type { Broadcaster } from '../presence/broadcaster.js'
import { copyState, stateLimitProblem } from '../presence/state.js'
import { USER_CHANGES, type UserStore } from '../presence/user-store.js'
import { LiveUser } from '../presence/user.js'
import type { UserClaims } from '../sessions/sessions.js'
import type { BusStatus, BusTraffic, ClusterBus, MemberRef } from './bus.js'
import { TickDraft, draftChange, type Adoption } from './draft.js'
import { SpeakerSubscriptions } from './speakers.js'
import { NeedCounts, nodeTopic, roomTopic, userTopic } from './topics.js'

const isClusterMessage = TypeCompiler.Compile(ClusterMessage)
/** Record deletions kept for a retry while the bus is away. */
const MAX_RETRIED_REMOVALS = 10_000
const isMemberRecord = TypeCompiler.Compile(MemberRecord)

const problems = (errors: Iterable<{ path: string, message: string }>): string => [...errors].slice(0, 3).map((e) => `${e.path}: ${e.message}`).join('; ')

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

/** A room this node serves. While its records load, its batches wait in `waiting`, to be applied after them in order. */
interface ServedRoom {
  waiting: Array<{ from: string, batch: RoomBatchT }> | null
  /** The latest load; an earlier one that ends later changes nothing. */
  loading: object | null
  /** This node's last batch reached only itself, and no other node was heard since: batches are not published. */
  alone: boolean
  /** Counts the times another node was heard serving the room, so that an older "only you" answer is not believed. */
  heard: number
  /** Subscribed (Redis said so): from then on, a publish that reached one node reached this one only. */
  subscribed: boolean
}

export class ClusterSync extends EventEmitter<ClusterEvents> implements UserClaims {
  /** This node's users that changed since the last publish. */
  private readonly dirty = new Set<LiveUser>()
  /** Of those, the ones to announce whole (a node started serving their room). */
  private readonly reannounce = new Set<string>()
  /** Of those, the ones taken over from another node since the last publish, with where that node had them. */
  private readonly adopted = new Map<string, Adoption>()
  /** Users handed over to another node since the last publish, by room: the others hold them as the new owner's. */
  private readonly handed = new Map<string, Array<[string, string]>>()
  /** When this node last asked for each room anew (a batch named a user it does not hold): at most once a beat. */
  private readonly asked = new Map<string, number>()
  /** Rooms whose last user left: still served for a beat, so that a user hopping in and out costs nothing. */
  private readonly lingering = new Map<string, number>()
  /** What the other nodes were last told of each of this node's users. */
  private readonly published = new Map<string, UserT>()
  /** This node's users whose records lack their latest position: rewritten once per beat. */
  private readonly unrecordedMoves = new Set<string>()
  /** `data` this tick, by sender. */
  private readonly data = new Map<string, string[]>()
  private readonly claims = new Map<string, (user: UserT | null) => void>()
  /** Replicas whose owner died: shown disconnected, removed when grace ends. */
  private readonly orphans = new Map<string, LiveUser>()
  /** The other nodes alive at the last beat. */
  private alive = new Set<string>()
  /** After the bus comes back, other nodes get one beat to heartbeat again before anyone is declared dead. */
  private trustPeersAfter = 0
  private resyncing: Promise<void> | null = null
  private readonly served = new Map<string, ServedRoom>()
  /** After an outage: rooms whose next batch lists every user this node has there (RoomBatch.roster). */
  private rosterRooms = new Set<string>()
  /** Record deletions that failed (the bus was away), tried again at the next beat. */
  private failedRemovals: MemberRef[] = []
  /** Rooms by how many of this node's users are in them; users by how many of them listen to them. */
  private readonly localRooms = new NeedCounts((room) => this.serve(room), (room) => this.linger(room))
  private readonly listened: SpeakerSubscriptions
  /** Where each of this node's users was counted: its room and whom it listens to. */
  private readonly counted = new Map<string, { room: string, listeningTo: readonly string[] }>()

  constructor (
    private readonly users: UserStore,
    private readonly broadcaster: Broadcaster,
    private readonly bus: ClusterBus,
    private readonly clock: Clock,
    private readonly timing: ClusterTiming
  ) {
    super()
    this.listened = new SpeakerSubscriptions(bus, clock, timing.heartbeatMs, (operation, err) => this.emit('failed', operation, err))
    const changed = (user: LiveUser, _detail?: unknown): void => { if (user.isLocal) this.dirty.add(user) }
    for (const event of USER_CHANGES) users.on(event, changed)
    const recount = (user: LiveUser, _detail?: unknown): void => { this.count(user) }
    for (const event of ['join', 'leave', 'listening', 'owner'] as const) users.on(event, recount)
    users.on('owner', (user, previousOwner) => { if (user.isLocal && previousOwner !== null) this.adopted.set(user.id, { room: user.room, owner: previousOwner }) })
    users.on('data', (from, payload) => { if (from.isLocal) this.queueData(from.id, payload) })
  }

  get nodeId (): string { return this.bus.nodeId }
  get status (): BusStatus { return this.bus.status }
  get traffic (): BusTraffic { return this.bus.traffic }
  /** The other nodes alive at the last beat. */
  get peers (): ReadonlySet<string> { return this.alive }
  /** Rooms this node serves (subscribed to). */
  get roomCount (): number { return this.served.size }

  /** Users of other nodes held here. */
  replicaCount (): number {
    let replicas = 0
    for (const user of this.users.values()) if (!user.isLocal) replicas++
    return replicas
  }

  /** Joins the cluster: listens on its own topic, heartbeats, and serves the rooms its users are in. */
  async start (): Promise<void> {
    await this.bus.start({
      message: (topic, message) => this.receive(topic, message),
      status: (status) => {
        this.emit('status', status)
        if (status === 'ok') this.resync()
      }
    })
    await this.bus.subscribe(nodeTopic(this.nodeId))
    await this.resyncNow()
  }

  /** The tick step: publishes what this node's users did since the last tick, once per changed room. */
  publishTick (): void {
    this.listened.apply()
    const draft = new TickDraft()
    for (const user of this.dirty) {
      draftChange(this.users, this.published, user, draft, this.nodeId, { whole: this.reannounce.has(user.id), adopted: this.adopted.get(user.id) })
    }
    this.dirty.clear()
    this.reannounce.clear()
    this.adopted.clear()
    for (const [room, handed] of this.handed) draft.room(room).handed = handed
    this.handed.clear()
    if (this.rosterRooms.size > 0) this.draftRosters(draft)
    for (const user of draft.moved) this.unrecordedMoves.add(user.id)
    for (const user of draft.changed) this.unrecordedMoves.delete(user.id)
    // Records first: a node loading a room after seeing a batch finds the records the batch implies.
    if (draft.changed.length > 0) this.bus.saveMembers(draft.changed, this.recordTtlMs).catch((err: unknown) => { this.emit('failed', 'saving members', err) })
    this.removeRecords(draft.removed)
    for (const batch of draft.rooms.values()) this.publishBatch(batch)
    for (const [user, payloads] of this.data) this.send(userTopic(user), { kind: 'data', from: this.nodeId, user, payloads })
    this.data.clear()
  }

  /** The tick step after publishing: replicas of dead nodes whose grace has ended leave. */
  expireOrphans (): void {
    const cutoff = this.clock.now() - this.timing.graceMs
    const gone: MemberRef[] = []
    for (const [id, user] of this.orphans) {
      if (user.disconnectedAt > cutoff) continue
      this.orphans.delete(id)
      if (this.users.get(id) !== user || user.isLocal || user.owner === null) continue
      gone.push({ room: user.room, id, owner: user.owner })
      this.users.remove(user)
    }
    this.removeRecords(gone)
  }

  /** Every heartbeat: tells the others this node lives (and its rooms' records with it), and finds the nodes that died. */
  async beat (): Promise<void> {
    await this.bus.heartbeat(this.recordTtlMs, [...this.served.keys()])
    this.recordMoves()
    this.removeRecords(this.failedRemovals.splice(0))
    this.endLingering()
    this.alive = await this.bus.alive()
    if (this.clock.now() < this.trustPeersAfter) return
    for (const user of this.users.values()) {
      if (user.owner !== null && !this.alive.has(user.owner)) this.orphan(user)
    }
    // A node that was only slow beats again: its users are asked for anew, as they are now.
    for (const [id, user] of this.orphans) {
      if (user.owner === null || !this.alive.has(user.owner)) continue
      this.orphans.delete(id)
      this.askFor(user.room)
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
      this.send(nodeTopic(owner), { kind: 'claim', from: this.nodeId, to: owner, userId, requestId })
    })
  }

  /**
   * The replica of a user live on another node, from `room`'s records, for a
   * reconnect here to take over; undefined when no live node has it. The room
   * need not be served here: the takeover makes it so.
   */
  async locate (userId: string, room: string): Promise<LiveUser | undefined> {
    const present = this.users.get(userId)
    if (present !== undefined) return present
    const [records, alive] = await Promise.all([this.bus.members(room), this.bus.alive()])
    this.alive = alive
    // It may have come here meanwhile (another reconnect of the same secret): never over a user of this node.
    const meanwhile = this.users.get(userId)
    if (meanwhile !== undefined) return meanwhile
    for (const record of records) {
      if (!isMemberRecord.Check(record) || record.user.id !== userId || record.user.room !== room) continue
      if (!this.alive.has(record.owner) || !this.fits(record.user)) return undefined
      this.upsert(record.user, record.owner)
      return this.users.get(userId)
    }
    return undefined
  }

  /** After the bus was away: tell the others everything again, and reload the rooms served. */
  resync (): void {
    this.resyncing ??= this.resyncNow()
      .catch((err: unknown) => { this.emit('failed', 'resync', err) })
      .finally(() => { this.resyncing = null })
  }

  /** Stops answering; the bus belongs to whoever made it. */
  close (): void {
    for (const settle of this.claims.values()) settle(null)
  }

  /** Publishes, not waiting for how many got it (the bus never rejects: a failure shows in its status). */
  private send (topic: string, message: ClusterMessageT): void {
    this.bus.publish(topic, message).catch(() => {})
  }

  /**
   * A room's batch, unless this node serves the room alone: a room on one node
   * costs the bus nothing but its records. Its last publish reaching only this
   * node makes it alone, unless another node was heard meanwhile.
   */
  private publishBatch (batch: RoomBatchT): void {
    const served = this.served.get(batch.room)
    if (served?.alone === true) return
    // Before this node's own subscription, one receiver is another node.
    const heard = served?.subscribed === true ? served.heard : undefined
    this.bus.publish(roomTopic(batch.room), { kind: 'room', from: this.nodeId, batch }).then((receivers) => {
      // Lost (the bus is away): the list of who is there goes with the room's next batch.
      if (receivers === null) this.rosterRooms.add(batch.room)
      else if (served !== undefined && receivers === 1 && heard !== undefined && served.heard === heard) served.alone = true
    }, () => {})
  }

  /** Another node serves `room`: publish it again, and announce this node's users there whole to a newcomer, or after a silence. */
  private heardFrom (room: string, served: ServedRoom, newcomer: boolean): void {
    served.heard++
    if (!newcomer && !served.alone) return
    served.alone = false
    // The newcomer's records may list users who have left since: the roster corrects them.
    this.rosterRooms.add(room)
    for (const user of this.users.room(room)?.members.values() ?? []) {
      if (!user.isLocal) continue
      this.dirty.add(user)
      this.reannounce.add(user.id)
    }
  }

  /** Records of a room live as long as a node serving it beats: two beats. */
  private get recordTtlMs (): number { return this.timing.heartbeatMs * 2 }

  /** Every room this node had users in before an outage, or has now, gets the list of its users there. */
  private draftRosters (draft: TickDraft): void {
    for (const room of this.rosterRooms) draft.room(room).roster = []
    for (const [id, { room }] of this.counted) draft.rooms.get(room)?.roster?.push(id)
    this.rosterRooms.clear()
  }

  /** Records the latest positions of this node's users that only moved since their records were written. */
  private recordMoves (): void {
    const moved: UserT[] = []
    for (const id of this.unrecordedMoves) {
      const user = this.users.get(id)
      if (user?.isLocal === true) moved.push(user.toWire())
    }
    this.unrecordedMoves.clear()
    if (moved.length > 0) this.bus.saveMembers(moved, this.recordTtlMs).catch((err: unknown) => { this.emit('failed', 'saving members', err) })
  }

  private queueData (from: string, payload: string): void {
    const payloads = this.data.get(from)
    if (payloads === undefined) this.data.set(from, [payload])
    else payloads.push(payload)
  }

  private removeRecords (refs: readonly MemberRef[]): void {
    if (refs.length === 0) return
    this.bus.removeMembers(refs).catch((err: unknown) => {
      // Kept for the next beat, within a bound; past it, a record left behind is corrected by the rosters of the rooms its owner serves.
      this.failedRemovals = [...this.failedRemovals, ...refs].slice(-MAX_RETRIED_REMOVALS)
      this.emit('failed', 'removing members', err)
    })
  }

  /** Keeps the rooms served and the users listened to in step with this node's own users. */
  private count (user: LiveUser): void {
    const here = this.users.get(user.id) === user && user.isLocal
    const before = this.counted.get(user.id)
    const now = here ? { room: user.room, listeningTo: user.listeningTo } : undefined
    if (before?.room === now?.room && before?.listeningTo === now?.listeningTo) return
    if (now === undefined) this.counted.delete(user.id)
    else this.counted.set(user.id, now)
    // Adds before removals: a user moving on keeps its topics through the change.
    const previous = new Set(before?.listeningTo)
    for (const id of now?.listeningTo ?? []) if (!previous.delete(id)) this.listened.add(id)
    if (now !== undefined && now.room !== before?.room) this.localRooms.add(now.room)
    for (const id of previous) this.listened.remove(id)
    if (before !== undefined && before.room !== now?.room) this.localRooms.remove(before.room)
  }

  private unwatch (topic: string): void {
    this.bus.unsubscribe(topic).catch((err: unknown) => { this.emit('failed', `unsubscribing from ${topic}`, err) })
  }

  /** The first user of this node entered `room`: subscribe, then load who is there. */
  private serve (room: string): void {
    if (this.lingering.delete(room)) return
    const served: ServedRoom = { waiting: null, loading: null, alone: false, heard: 0, subscribed: false }
    this.served.set(room, served)
    this.load(room, served).catch((err: unknown) => { this.emit('failed', `loading room ${room}`, err) })
  }

  /** The last user of this node left `room`: served for one more beat. */
  private linger (room: string): void {
    this.lingering.set(room, this.clock.now())
  }

  /** Rooms without users here for a beat stop being served. */
  private endLingering (): void {
    const cutoff = this.clock.now() - this.timing.heartbeatMs
    for (const [room, since] of this.lingering) {
      if (since > cutoff) continue
      this.lingering.delete(room)
      this.unserve(room)
    }
  }

  /** Nobody here sees the others in `room` any more. */
  private unserve (room: string): void {
    this.served.delete(room)
    this.asked.delete(room)
    this.unwatch(roomTopic(room))
    this.dropReplicas(room, () => true)
  }

  /** Removes the replicas in `room` that `drop` names (this node's own users stay). */
  private dropReplicas (room: string, drop: (user: LiveUser) => boolean): void {
    for (const user of [...this.users.room(room)?.members.values() ?? []]) {
      if (user.isLocal || !drop(user)) continue
      this.orphans.delete(user.id)
      this.users.remove(user)
    }
  }

  /**
   * Subscribes to the room (batches from then on wait), reads its records into
   * replicas, drops replicas the records no longer have, then applies what waited.
   */
  private async load (room: string, served: ServedRoom): Promise<void> {
    const attempt = {}
    served.loading = attempt
    served.waiting ??= []
    served.alone = false
    let records: unknown[]
    try {
      await this.bus.subscribe(roomTopic(room))
      served.subscribed = true
      // The nodes already there announce their users anew, with positions newer than the records'.
      this.send(roomTopic(room), { kind: 'serving', from: this.nodeId, room })
      // Read now: a node that started since the last beat is alive, and its records are not stale.
      const [stored, alive] = await Promise.all([this.bus.members(room), this.bus.alive()])
      records = stored
      this.alive = alive
    } catch (err) {
      // The resync after the outage loads it again; until then batches apply as they come.
      if (served.loading === attempt) this.flushWaiting(served)
      throw err
    }
    if (this.served.get(room) !== served || served.loading !== attempt) return
    const listed = new Set<string>()
    const stale: MemberRef[] = []
    for (const record of records) {
      const member = this.memberOf(room, record)
      if (member === null) continue
      const local = this.users.get(member.user.id)?.isLocal === true
      // This node's own user, whatever an older record says: its next tick rewrites the record.
      if (local) continue
      if (member.owner === this.nodeId || !this.alive.has(member.owner)) {
        // Left behind by a node that died, or by this node before a restart.
        stale.push({ room, id: member.user.id, owner: member.owner })
        continue
      }
      listed.add(member.user.id)
      this.upsert(member.user, member.owner)
    }
    this.removeRecords(stale)
    this.dropReplicas(room, (user) => !listed.has(user.id))
    this.flushWaiting(served)
  }

  private flushWaiting (served: ServedRoom): void {
    const waiting = served.waiting ?? []
    served.waiting = null
    served.loading = null
    for (const { from, batch } of waiting) this.applyBatch(from, batch)
  }

  /** A stored record that is valid and names its room; null (reported) otherwise. */
  private memberOf (room: string, record: unknown): MemberRecordT | null {
    if (!isMemberRecord.Check(record)) {
      this.emit('invalid', `member record in ${room}: ${problems(isMemberRecord.Errors(record))}`)
      return null
    }
    if (record.user.room !== room) {
      this.emit('invalid', `member record in ${room}: user ${record.user.id} names ${record.user.room}`)
      return null
    }
    return this.fits(record.user) ? record : null
  }

  private async resyncNow (): Promise<void> {
    this.trustPeersAfter = this.clock.now() + this.timing.heartbeatMs
    await this.bus.heartbeat(this.recordTtlMs, [...this.served.keys()])
    // Before any node reloads a room, so that it does not find records of users who left during the outage.
    this.removeRecords(this.failedRemovals.splice(0))
    this.alive = await this.bus.alive()
    // Everything this node has is announced again, as new, to nodes that may have dropped it,
    // with the list of who is still there for nodes that may hold users who left meanwhile.
    for (const { room } of this.published.values()) this.rosterRooms.add(room)
    for (const room of this.localRooms.keys()) this.rosterRooms.add(room)
    this.published.clear()
    for (const user of this.users.values()) {
      if (user.isLocal) this.dirty.add(user)
    }
    this.emit('resync')
    await Promise.all([...this.served].map(async ([room, served]) => await this.load(room, served)))
  }

  private receive (topic: string, raw: unknown): void {
    if (!isClusterMessage.Check(raw)) {
      this.emit('invalid', problems(isClusterMessage.Errors(raw)))
      return
    }
    const message: ClusterMessageT = raw
    if (message.from === this.nodeId) return
    if (message.kind === 'room') {
      const served = topic === roomTopic(message.batch.room) ? this.served.get(message.batch.room) : undefined
      if (served === undefined) return
      this.heardFrom(message.batch.room, served, false)
      if (served.waiting !== null) served.waiting.push({ from: message.from, batch: message.batch })
      else this.applyBatch(message.from, message.batch)
    } else if (message.kind === 'serving') {
      const served = topic === roomTopic(message.room) ? this.served.get(message.room) : undefined
      if (served !== undefined) this.heardFrom(message.room, served, true)
    } else if (message.kind === 'data') {
      if (topic === userTopic(message.user)) this.applyData(message)
    } else if (message.to === this.nodeId && topic === nodeTopic(this.nodeId)) {
      if (message.kind === 'claim') this.handOver(message.from, message.userId, message.requestId)
      else this.claims.get(message.requestId)?.(message.user !== null && this.fits(message.user) ? message.user : null)
    }
  }

  private applyBatch (from: string, room: RoomBatchT): void {
    for (const id of room.left) {
      // Whoever it was a replica of: the sender may have just taken it over, before telling this node.
      const user = this.users.get(id)
      // A move shows as a left here and a joined in the new room's batch, which may have come first.
      if (user !== undefined && !user.isLocal && user.room === room.room) this.users.remove(user)
    }
    for (const user of room.joined) {
      if (user.room !== room.room) this.emit('invalid', `user ${user.id}: joined ${room.room} but names ${user.room}`)
      else if (this.fits(user)) this.upsert(user, from)
    }
    let missing = false
    for (const { id, name, state, listeningTo, connected, info } of room.updated) {
      const user = this.users.get(id)
      if (user === undefined) missing = true
      else if (user.owner === from && this.fits({ id, state, info })) this.users.assign(user, { name, state, listeningTo, connected, info })
    }
    for (const [id, x, y, z] of room.positions) {
      const user = this.users.get(id)
      if (user === undefined) missing = true
      else if (user.owner === from) this.users.setPosition(user, { x, y, z })
    }
    // A user this node lost (a lost message, a node wrongly thought dead): the others announce the room anew.
    if (missing) this.askFor(room.room)
    for (const [id, owner] of room.handed ?? []) {
      const user = this.users.get(id)
      if (user?.owner === from) user.owner = owner
    }
    for (const user of room.present ?? []) {
      if (user.room === room.room && this.users.get(user.id)?.isLocal !== true && this.fits(user)) this.upsert(user, from)
    }
    if (room.roster !== undefined) {
      // `from`'s users in the room are those listed: its replicas there that are not have left.
      const listed = new Set(room.roster)
      this.dropReplicas(room.room, (user) => user.owner === from && !listed.has(user.id))
    }
  }

  /** Asks the nodes serving `room` to announce their users there anew, at most once a beat. */
  private askFor (room: string): void {
    const now = this.clock.now()
    const last = this.asked.get(room)
    if (last !== undefined && now - last < this.timing.heartbeatMs) return
    this.asked.set(room, now)
    this.send(roomTopic(room), { kind: 'serving', from: this.nodeId, room })
  }

  private applyData (message: DataMessageT): void {
    for (const payload of message.payloads) {
      const json = reserialized(payload)
      if (json === null) this.emit('invalid', `data from ${message.user}: not a JSON payload within ${DATA_PAYLOAD_MAX_BYTES} bytes`)
      else this.broadcaster.sendData(message.user, json)
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
      this.send(nodeTopic(claimant), { kind: 'handover', from: this.nodeId, to: claimant, requestId, user: null })
      return
    }
    const latest = user.toWire()
    this.release(user, claimant)
    this.send(nodeTopic(claimant), { kind: 'handover', from: this.nodeId, to: claimant, requestId, user: latest })
  }

  private release (user: LiveUser, owner: string): void {
    const handed = this.handed.get(user.room) ?? []
    handed.push([user.id, owner])
    this.handed.set(user.room, handed)
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
