/**
 * Benchmark: what a cluster node spends applying other nodes' room batches, per
 * replica move, in process (the engine alone: no sockets, no Redis). One node
 * serves one room holding `--replicas` users of another node (and one local
 * user); each round delivers a batch moving `--batch` of them, as the bus would:
 * JSON text in, parsed, checked against the cluster schema, applied to the
 * replicas and the room's spatial index (with `--radius`, interest management as
 * the room's option). The node's tick runs after each batch, as the engine would.
 *
 * This is the input to the capacity model of docs/deployment.md for a large room
 * split over many nodes: every node serving it applies every other node's moves.
 *
 * Run: `npx tsx bench/cluster-apply.ts [--replicas 20000] [--batch 1000] [--rounds 400] [--radius 100]`
 * Prints microseconds of CPU per replica move (process.cpuUsage over the rounds).
 */
import { parseArgs } from 'node:util'
import { randomUUID } from 'node:crypto'
import { ManualClock } from '../src/core/clock.js'
import { MemoryClusterHub } from '../src/core/cluster/bus.js'
import { ClusterSync } from '../src/core/cluster/cluster.js'
import { Broadcaster } from '../src/core/presence/broadcaster.js'
import { emptyState } from '../src/core/presence/state.js'
import { UserStore } from '../src/core/presence/user-store.js'
import { LiveUser, type OutboundFrame, type Peer } from '../src/core/presence/user.js'

const { values } = parseArgs({
  options: {
    replicas: { type: 'string', default: '20000' },
    batch: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '400' },
    radius: { type: 'string', default: '100' }
  }
})
const replicas = Number(values.replicas)
const batchSize = Number(values.batch)
const rounds = Number(values.rounds)
const radius = Number(values.radius)
const ROOM = 'big'
const AREA = Math.sqrt(replicas) * 25

/** A client that takes every frame and keeps none. */
class NullPeer implements Peer {
  user: LiveUser | null = null
  bufferedAmount = 0
  encoding = 'json' as const
  send (_frame: OutboundFrame): void {}
  close (): void {}
}

const clock = new ManualClock()
const hub = new MemoryClusterHub(clock)
const users = new UserStore(() => ({ interestRadius: radius }))
const broadcaster = new Broadcaster(users, clock, { slowReaderSkipBytes: 1e9, slowReaderCloseBytes: 1e10 }, { sent () {}, skipped () {}, closedSlow () {} })
const bus = hub.bus('here')
const sync = new ClusterSync(users, broadcaster, bus, clock, { graceMs: 30_000, heartbeatMs: 2000, claimTimeoutMs: 1000 })
await sync.start()
users.add(new LiveUser(randomUUID(), 'local', 'Local', ROOM, { x: AREA / 2, y: AREA / 2, z: 0 }, emptyState(), []), new NullPeer())
await new Promise((resolve) => setTimeout(resolve, 10))

const ids = Array.from({ length: replicas }, () => randomUUID())
const receive = (message: unknown): void => { (bus as unknown as { receive: (topic: string, json: string) => void }).receive(`room:${ROOM}`, JSON.stringify(message)) }
for (let start = 0; start < replicas; start += batchSize) {
  const joined = ids.slice(start, start + batchSize).map((id, i) => ({
    id, name: `r${start + i}`, room: ROOM, position: { x: Math.random() * AREA, y: Math.random() * AREA, z: 0 }, state: {}, listeningTo: [], connected: true
  }))
  receive({ kind: 'room', from: 'there', batch: { room: ROOM, joined, left: [], updated: [], positions: [] } })
}
broadcaster.flush()
if (users.room(ROOM)?.members.size !== replicas + 1) throw new Error(`expected ${replicas + 1} members, got ${String(users.room(ROOM)?.members.size)}`)

const batches = Array.from({ length: 20 }, (_, k) => JSON.stringify({
  kind: 'room',
  from: 'there',
  batch: {
    room: ROOM,
    joined: [],
    left: [],
    updated: [],
    positions: Array.from({ length: batchSize }, (_, i) => [ids[(k * batchSize + i) % replicas], Math.random() * AREA, Math.random() * AREA, 0])
  }
}))
const deliver = (json: string): void => { (bus as unknown as { receive: (topic: string, json: string) => void }).receive(`room:${ROOM}`, json) }
for (let i = 0; i < 20; i++) { deliver(batches[i % batches.length] ?? ''); broadcaster.flush() }

const before = process.cpuUsage()
for (let round = 0; round < rounds; round++) {
  deliver(batches[round % batches.length] ?? '')
  broadcaster.flush()
}
const used = process.cpuUsage(before)
const moves = rounds * batchSize
const micros = (used.user + used.system) / moves
process.stdout.write(`cluster-apply: ${replicas} replicas in one room (interest radius ${radius}), ${rounds} batches of ${batchSize} moves: ` +
  `${micros.toFixed(2)} µs of CPU per replica move (${Math.round(1e6 / micros).toLocaleString('en')} moves per second on one core), ` +
  `batch JSON ${Math.round((batches[0]?.length ?? 0) / batchSize)} bytes per move\n`)
