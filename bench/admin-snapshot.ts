/**
 * Benchmark: what one admin feed snapshot costs the server, in process. A
 * UserStore of `--users` users (nine in ten connected) in `--rooms` rooms, the
 * largest holding `--watched` users; each round takes the overview and the
 * largest room's users, serialized as the feed sends them (once per interval,
 * whatever number of pages watch). The meter is a fixed reading: prom-client's
 * reads are measured on their own (`--meter`), on a registry with the labels a
 * busy server has.
 *
 * Run: `npx tsx bench/admin-snapshot.ts [--users 20000] [--rooms 400] [--watched 2000] [--rounds 200] [--meter]`
 * Prints CPU per snapshot and its size in bytes.
 */
import { randomUUID } from 'node:crypto'
import { parseArgs } from 'node:util'
import { ShoalMetrics } from '../src/adapters/prometheus.js'
import { AdminFeed, type FeedSink } from '../src/core/admin/feed.js'
import { OperatorView, type MeterReading } from '../src/core/admin/operator-view.js'
import { ManualClock } from '../src/core/clock.js'
import { emptyState } from '../src/core/presence/state.js'
import { UserStore } from '../src/core/presence/user-store.js'
import { LiveUser, type OutboundFrame, type Peer } from '../src/core/presence/user.js'

const { values } = parseArgs({
  options: {
    users: { type: 'string', default: '20000' },
    rooms: { type: 'string', default: '400' },
    watched: { type: 'string', default: '2000' },
    rounds: { type: 'string', default: '200' },
    meter: { type: 'boolean', default: false }
  }
})
const users = Number(values.users)
const rooms = Number(values.rooms)
const watched = Math.min(users, Number(values.watched))
const rounds = Number(values.rounds)

class IdlePeer implements Peer {
  user: LiveUser | null = null
  bufferedAmount = 0
  readonly encoding = 'json'
  send (_frame: OutboundFrame): void {}
  close (): void {}
}

const store = new UserStore()
for (let i = 0; i < users; i++) {
  const room = i < watched ? 'room-0' : `room-${1 + (i % (rooms - 1))}`
  const user = new LiveUser(randomUUID(), `hash-${i}`, `user ${i}`, room, { x: i % 1000, y: i % 700, z: 0 }, Object.assign(emptyState(), { color: 'teal' }), [])
  store.add(user, i % 10 === 0 ? null : new IdlePeer())
}

const metrics = new ShoalMetrics()
for (const type of ['register', 'update', 'ping', 'data', 'join', 'updatelisteningto']) metrics.received(type)
for (const type of ['welcome', 'positions', 'presence', 'pong', 'data']) metrics.sent(type as never, 1)
for (const code of ['invalid_message', 'rate_limited', 'forbidden']) metrics.error(code)
const fixed: MeterReading = await metrics.reading()
const clock = new ManualClock()
const view = new OperatorView({
  users: store,
  connections: { size: users, draining: false },
  cluster: null,
  readMeter: async () => values.meter ? await metrics.reading() : fixed,
  clock,
  tickHz: 20
})
let bytes = 0
const sink: FeedSink = { write: (chunk) => { bytes += chunk.length }, end: () => {}, backlog: 0 }
const feed = new AdminFeed(view, { maxWatchers: 16, maxBacklogBytes: Infinity, onError: (err) => { throw err } })
feed.watch(sink, 'room-0')

for (let i = 0; i < 20; i++) await feed.publish()
bytes = 0
const started = process.cpuUsage()
for (let i = 0; i < rounds; i++) {
  clock.advance(1000)
  await feed.publish()
}
const used = process.cpuUsage(started)
const cpuMs = (used.user + used.system) / 1000 / rounds
process.stdout.write(`${users} users in ${rooms} rooms, the watched one of ${watched}${values.meter ? ', prom-client read each time' : ''}: ${cpuMs.toFixed(2)} ms CPU per snapshot, ${Math.round(bytes / rounds)} bytes sent per page (${(cpuMs / 10).toFixed(2)}% of a core at one snapshot a second)\n`)
