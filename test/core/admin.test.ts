/** The operator's view and feed, in process: figures and rates from the store and the meter, one serialization per snapshot. */
import t from 'tap'
import { ADMIN_ROOM_USERS_LISTED, ADMIN_ROOMS_LISTED } from '../../schemas/admin.js'
import { AdminFeed, type FeedSink } from '../../src/core/admin/feed.js'
import { OperatorView, type ClusterState, type MeterReading } from '../../src/core/admin/operator-view.js'
import { ManualClock } from '../../src/core/clock.js'
import { UserStore } from '../../src/core/presence/user-store.js'
import { FakePeer, makeUser } from './fakes.js'

const reading = (fields: Partial<MeterReading> = {}): MeterReading => ({
  messagesIn: {}, messagesOut: {}, errors: {}, skippedFrames: 0, slowClosed: 0, ticks: 0, tickSeconds: 0, maxTickSeconds: 0, ...fields
})

function setup (cluster: ClusterState | null = null) {
  const clock = new ManualClock()
  const users = new UserStore()
  let meter = reading()
  const connections = { size: 0, draining: false }
  const view = new OperatorView({ users, connections, cluster, readMeter: async () => meter, clock, tickHz: 20 })
  return { clock, users, view, connections, setMeter: (next: MeterReading) => { meter = next } }
}

t.test('overview: users connected and in grace, rooms largest first, tick budget', async (t) => {
  const { users, view, connections } = setup()
  users.add(makeUser({ name: 'ann', room: 'lobby' }), new FakePeer())
  users.add(makeUser({ name: 'bob', room: 'lobby' }))
  users.add(makeUser({ name: 'cy', room: 'big' }), new FakePeer())
  users.add(makeUser({ name: 'di', room: 'big' }), new FakePeer())
  users.add(makeUser({ name: 'ed', room: 'big' }), new FakePeer())
  connections.size = 4
  const overview = await view.overview()
  t.same(overview.users, { connected: 4, inGrace: 1 })
  t.equal(overview.connections, 4)
  t.same(overview.rooms, { total: 2, listed: [{ name: 'big', members: 3, connected: 3 }, { name: 'lobby', members: 2, connected: 1 }] })
  t.equal(overview.tick.budgetMs, 50)
  t.equal(overview.node, 'single')
  t.equal(overview.cluster, null)
})

t.test('overview: rates are per second since the previous snapshot, by label; the first snapshot has none', async (t) => {
  const { clock, view, setMeter } = setup()
  setMeter(reading({ messagesIn: { update: 100 }, errors: { invalid_message: 2 }, ticks: 10, tickSeconds: 0.01, maxTickSeconds: 0.002 }))
  const first = await view.overview()
  t.same(first.messagesIn, { perSecond: { update: 0 }, total: { update: 100 } })
  t.equal(first.tick.maxMs, 2)
  clock.advance(2000)
  setMeter(reading({ messagesIn: { update: 300, ping: 4 }, errors: { invalid_message: 2 }, skippedFrames: 10, slowClosed: 1, ticks: 50, tickSeconds: 0.05, maxTickSeconds: 0.004 }))
  const second = await view.overview()
  t.same(second.messagesIn.perSecond, { update: 100, ping: 2 })
  t.same(second.errors.perSecond, { invalid_message: 0 })
  t.equal(second.tick.perSecond, 20)
  t.equal(second.tick.meanMs, 1, 'mean of the ticks between the two snapshots: 40 ms over 40 ticks')
  t.equal(second.tick.maxMs, 4)
  t.same(second.slowReaders, { skippedPerSecond: 5, closedPerSecond: 0.5, skippedTotal: 10, closedTotal: 1 })
})

t.test('overview: the cluster, with the nodes alive and the bus traffic per second', async (t) => {
  const traffic = { receivedMessages: 0, receivedBytes: 0, publishedMessages: 0, publishedBytes: 0 }
  const cluster: ClusterState = { nodeId: 'node-b', status: 'ok', peers: new Set(['node-c', 'node-a']), roomCount: 3, traffic, replicaCount: () => 7 }
  const { clock, view } = setup(cluster)
  await view.overview()
  clock.advance(1000)
  traffic.publishedBytes = 5000
  traffic.receivedBytes = 200
  const overview = await view.overview()
  t.equal(overview.node, 'node-b')
  t.same(overview.cluster, { bus: 'ok', nodes: ['node-b', 'node-a', 'node-c'], servedRooms: 3, replicas: 7, publishedBytesPerSecond: 5000, receivedBytesPerSecond: 200 })
})

t.test('a room: its users by name with position, state, connection, node and listening set; lists are bounded', async (t) => {
  const { users, view } = setup()
  const bob = makeUser({ name: 'bob', room: 'lobby', position: { x: 1, y: 2, z: 0 }, state: { mood: 'ok' } })
  const ann = makeUser({ name: 'ann', room: 'lobby', listeningTo: [bob.id] })
  users.add(bob)
  users.add(ann, new FakePeer())
  const room = view.room('lobby')
  t.equal(room.total, 2)
  t.same(room.users.map((user) => [user.name, user.connection, user.node]), [['ann', 'connected', 'single'], ['bob', 'grace', 'single']])
  t.same(room.users[0]?.listeningTo, [bob.id])
  t.same(room.users[1]?.position, { x: 1, y: 2, z: 0 })
  t.same(room.users[1]?.state, { mood: 'ok' })
  t.same(view.room('nowhere'), { name: 'nowhere', total: 0, users: [] })

  for (let i = 0; i < ADMIN_ROOM_USERS_LISTED + 5; i++) users.add(makeUser({ name: `u${String(i).padStart(4, '0')}`, room: 'crowd' }))
  const crowd = view.room('crowd')
  t.equal(crowd.total, ADMIN_ROOM_USERS_LISTED + 5)
  t.equal(crowd.users.length, ADMIN_ROOM_USERS_LISTED)
  t.equal(crowd.users[0]?.name, 'u0000')
  for (let i = 0; i < ADMIN_ROOMS_LISTED + 3; i++) users.add(makeUser({ room: `r${i}` }))
  const overview = await view.overview()
  t.equal(overview.rooms.total, ADMIN_ROOMS_LISTED + 5)
  t.equal(overview.rooms.listed.length, ADMIN_ROOMS_LISTED)
  t.equal(overview.rooms.listed[0]?.name, 'crowd')
})

class Sink implements FeedSink {
  readonly chunks: string[] = []
  backlog = 0
  ended = false
  write (chunk: string): void { this.chunks.push(chunk) }
  end (): void { this.ended = true }
  events (): Array<{ event: string, data: unknown }> {
    return this.chunks.map((chunk) => {
      const [, event = '', data = ''] = /^event: (\w+)\ndata: (.*)\n\n$/.exec(chunk) ?? []
      return { event, data: JSON.parse(data) as unknown }
    })
  }
}

function feedOf (view: OperatorView, maxWatchers = 4) {
  const errors: unknown[] = []
  const feed = new AdminFeed(view, { maxWatchers, maxBacklogBytes: 1000, onError: (err) => errors.push(err) })
  return { feed, errors }
}

t.test('feed: one overview serialized once for every page, each watched room once', async (t) => {
  const { users, view } = setup()
  users.add(makeUser({ name: 'ann', room: 'lobby' }))
  const { feed } = feedOf(view)
  const pages = [new Sink(), new Sink(), new Sink()]
  feed.watch(pages[0] as Sink, 'lobby')
  await feed.publish()
  feed.watch(pages[1] as Sink, 'lobby')
  feed.watch(pages[2] as Sink, null)
  for (const page of pages) page.chunks.length = 0
  await feed.publish()
  const [a, b, c] = pages as [Sink, Sink, Sink]
  t.same(a.events().map((e) => e.event), ['overview', 'room'])
  t.same(c.events().map((e) => e.event), ['overview'], 'a page without a room gets the overview only')
  t.equal(a.chunks[0], b.chunks[0], 'the same overview text')
  t.equal(a.chunks[1], b.chunks[1], 'the same room text')
  t.match(a.events()[1]?.data, { name: 'lobby', total: 1, users: [{ name: 'ann' }] })
})

t.test('feed: a new page gets a snapshot at once; pages are bounded; a page that does not read misses snapshots', async (t) => {
  const { view } = setup()
  const { feed, errors } = feedOf(view, 2)
  const first = new Sink()
  const unwatch = feed.watch(first, null)
  await feed.publish()
  t.ok(first.chunks.length >= 1, 'the first page is sent a snapshot without waiting for the interval')
  const second = new Sink()
  feed.watch(second, 'lobby')
  t.same(second.events().map((e) => e.event), ['overview', 'room'], 'a later page gets the last overview and its room at once')
  t.ok(feed.full, 'as many pages as maxWatchers')
  t.throws(() => feed.watch(new Sink(), null), /2 pages watch already/, 'one more is refused')
  unwatch()
  t.equal(feed.watcherCount, 1)

  second.backlog = 5000
  const before = second.chunks.length
  await feed.publish()
  t.equal(second.chunks.length, before, 'nothing more for a page with more than maxBacklogBytes unread')
  second.backlog = 0
  await feed.publish()
  t.ok(second.chunks.length > before, 'it gets the next snapshot once it caught up')
  feed.close()
  t.ok(second.ended)
  t.equal(feed.watcherCount, 0)
  t.same(errors, [])
})

t.test('feed: a failing meter is reported, and the next snapshot still goes out', async (t) => {
  const users = new UserStore()
  let fail = true
  const view = new OperatorView({ users, connections: { size: 0, draining: false }, cluster: null, readMeter: async () => { if (fail) throw new Error('meter down'); return reading() }, clock: new ManualClock(), tickHz: 20 })
  const { feed, errors } = feedOf(view)
  const page = new Sink()
  feed.watch(page, null)
  await new Promise((resolve) => setImmediate(resolve))
  t.match(errors, [{ message: 'meter down' }])
  fail = false
  await feed.publish()
  t.same(page.events().map((e) => e.event), ['overview'])
})
