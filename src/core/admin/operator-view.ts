/**
 * What the operator's page shows of one instance: an overview (rooms, users,
 * traffic, errors, ticks, slow readers, the cluster) and one room's users. The
 * counters come as totals (from the metrics); rates are worked out here, between
 * one snapshot and the next, so every page sees the same figures.
 */
import { ADMIN_ROOM_USERS_LISTED, ADMIN_ROOMS_LISTED, type AdminClusterT, type AdminOverviewT, type AdminRoomSummaryT, type AdminRoomT, type AdminUserT } from '../../../schemas/admin.js'
import type { Clock } from '../clock.js'
import type { BusStatus, BusTraffic } from '../cluster/bus.js'
import type { LiveUser } from '../presence/user.js'
import type { UserStore } from '../presence/user-store.js'

/** The metrics' totals at one moment, and the longest tick since the previous reading. */
export interface MeterReading {
  messagesIn: Record<string, number>
  messagesOut: Record<string, number>
  errors: Record<string, number>
  skippedFrames: number
  slowClosed: number
  ticks: number
  tickSeconds: number
  maxTickSeconds: number
}

/** What the view needs of the cluster (ClusterSync). */
export interface ClusterState {
  readonly nodeId: string
  readonly status: BusStatus
  readonly peers: ReadonlySet<string>
  readonly roomCount: number
  readonly traffic: BusTraffic
  replicaCount(): number
}

export interface OperatorSources {
  users: UserStore
  connections: { readonly size: number, readonly draining: boolean }
  cluster: ClusterState | null
  /** Reads the metrics (and starts a new interval for the longest tick). */
  readMeter: () => Promise<MeterReading>
  clock: Clock
  tickHz: number
}

interface Sample { at: number, meter: MeterReading, published: number, received: number }

const perSecond = (now: number, before: number, seconds: number): number => seconds > 0 ? Math.max(0, now - before) / seconds : 0

function ratesOf (now: Record<string, number>, before: Record<string, number>, seconds: number): Record<string, number> {
  const rates: Record<string, number> = {}
  for (const [label, total] of Object.entries(now)) rates[label] = perSecond(total, before[label] ?? 0, seconds)
  return rates
}

export class OperatorView {
  private previous: Sample | null = null

  constructor (private readonly sources: OperatorSources) {}

  /** A snapshot, with rates since the previous one (zero for the first). */
  async overview (): Promise<AdminOverviewT> {
    const { users, connections, cluster, clock, tickHz } = this.sources
    const meter = await this.sources.readMeter()
    const sample: Sample = { at: clock.now(), meter, published: cluster?.traffic.publishedBytes ?? 0, received: cluster?.traffic.receivedBytes ?? 0 }
    const before = this.previous ?? sample
    this.previous = sample
    const seconds = (sample.at - before.at) / 1000
    const ticks = meter.ticks - before.meter.ticks
    const rooms = this.rooms()
    // Every user is in a room: the rooms' counts add up to the users'.
    const connected = rooms.connected
    return {
      node: cluster?.nodeId ?? 'single',
      at: sample.at,
      draining: connections.draining,
      connections: connections.size,
      users: { connected, inGrace: users.userCount - connected },
      rooms: { total: rooms.total, listed: rooms.listed },
      messagesIn: { perSecond: ratesOf(meter.messagesIn, before.meter.messagesIn, seconds), total: meter.messagesIn },
      messagesOut: { perSecond: ratesOf(meter.messagesOut, before.meter.messagesOut, seconds), total: meter.messagesOut },
      errors: { perSecond: ratesOf(meter.errors, before.meter.errors, seconds), total: meter.errors },
      tick: {
        perSecond: perSecond(meter.ticks, before.meter.ticks, seconds),
        meanMs: ticks > 0 ? (meter.tickSeconds - before.meter.tickSeconds) * 1000 / ticks : 0,
        maxMs: meter.maxTickSeconds * 1000,
        budgetMs: 1000 / tickHz
      },
      slowReaders: {
        skippedPerSecond: perSecond(meter.skippedFrames, before.meter.skippedFrames, seconds),
        closedPerSecond: perSecond(meter.slowClosed, before.meter.slowClosed, seconds),
        skippedTotal: meter.skippedFrames,
        closedTotal: meter.slowClosed
      },
      cluster: cluster === null ? null : clusterOf(cluster, sample, before, seconds)
    }
  }

  /** A room's users, the first ADMIN_ROOM_USERS_LISTED by name (none when nobody is in it). */
  room (name: string): AdminRoomT {
    const members = this.sources.users.room(name)?.members
    if (members === undefined) return { name, total: 0, users: [] }
    const node = this.sources.cluster?.nodeId ?? 'single'
    const listed = [...members.values()].sort(byName).slice(0, ADMIN_ROOM_USERS_LISTED)
    return { name, total: members.size, users: listed.map((user) => adminUser(user, node)) }
  }

  /** Every room's counts, the largest listed, and the users connected in all: one walk over the rooms' member maps. */
  private rooms (): AdminOverviewT['rooms'] & { connected: number } {
    const { users } = this.sources
    const summaries: AdminRoomSummaryT[] = []
    let connectedInAll = 0
    for (const name of users.roomNames()) {
      const members = users.room(name)?.members
      if (members === undefined) continue
      let connected = 0
      for (const user of members.values()) if (user.connected) connected++
      connectedInAll += connected
      summaries.push({ name, members: members.size, connected })
    }
    summaries.sort((a, b) => b.members - a.members || (a.name < b.name ? -1 : 1))
    return { total: summaries.length, listed: summaries.slice(0, ADMIN_ROOMS_LISTED), connected: connectedInAll }
  }
}

const byName = (a: LiveUser, b: LiveUser): number => a.name < b.name ? -1 : a.name > b.name ? 1 : (a.id < b.id ? -1 : 1)

function adminUser (user: LiveUser, thisNode: string): AdminUserT {
  const { x, y, z } = user.position
  return {
    id: user.id,
    name: user.name,
    position: { x, y, z },
    state: { ...user.state },
    connection: user.connected ? 'connected' : 'grace',
    node: user.owner ?? thisNode,
    listeningTo: [...user.listeningTo]
  }
}

function clusterOf (cluster: ClusterState, now: Sample, before: Sample, seconds: number): AdminClusterT {
  return {
    bus: cluster.status,
    nodes: [cluster.nodeId, ...[...cluster.peers].sort()],
    servedRooms: cluster.roomCount,
    replicas: cluster.replicaCount(),
    publishedBytesPerSecond: perSecond(now.published, before.published, seconds),
    receivedBytesPerSecond: perSecond(now.received, before.received, seconds)
  }
}
