/**
 * Benchmark: one crowd tick in process (the engine alone: no sockets, no
 * sessions). `--users` local users in one room with interest management,
 * spread over a square sized so that each has about `--neighbours` others
 * within `--radius`, as in `npm run bench -- crowd`. Each round, half of them
 * move (10 Hz movers at a 20 Hz tick, 2 units a move) and the broadcaster's
 * tick runs: every member's view is worked out and its `positions` frame built,
 * in the encoding given (`json` or `compact`), and handed to a peer that keeps
 * nothing. What is left of a tick in the server is writing those frames. With
 * `--views`, only the views are worked out (the room's own step, no frames).
 *
 * Run: `npx tsx bench/crowd-tick.ts [--users 3000] [--encoding json|compact] [--views] [--rounds 400] [--radius 100] [--neighbours 45]`
 * Prints CPU per tick and per member-tick (process.cpuUsage over the rounds, the moves included), and the frames and bytes built.
 */
import { randomUUID } from 'node:crypto'
import { parseArgs } from 'node:util'
import { ManualClock } from '../src/core/clock.js'
import { Broadcaster } from '../src/core/presence/broadcaster.js'
import { emptyState } from '../src/core/presence/state.js'
import { UserStore } from '../src/core/presence/user-store.js'
import { LiveUser, type OutboundFrame, type Peer } from '../src/core/presence/user.js'

const { values } = parseArgs({
  options: {
    users: { type: 'string', default: '3000' },
    encoding: { type: 'string', default: 'json' },
    rounds: { type: 'string', default: '400' },
    radius: { type: 'string', default: '100' },
    neighbours: { type: 'string', default: '45' },
    views: { type: 'boolean', default: false }
  }
})
const count = Number(values.users)
const rounds = Number(values.rounds)
const radius = Number(values.radius)
const encoding = values.encoding === 'compact' ? 'compact' : 'json'
const side = Math.sqrt(count * Math.PI * radius * radius / Number(values.neighbours))
const STEP = 2

/** A client that takes every frame and keeps none, counting them. */
class CountingPeer implements Peer {
  user: LiveUser | null = null
  bufferedAmount = 0
  readonly encoding = encoding
  static frames = 0
  static bytes = 0
  send (frame: OutboundFrame): void {
    CountingPeer.frames++
    CountingPeer.bytes += typeof frame === 'string' ? frame.length : frame instanceof Uint8Array ? frame.byteLength : 0
  }

  close (): void {}
}

/** A seeded PRNG (mulberry32), so every run walks the same paths. */
let seed = 0x9e3779b9
function random (): number {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), seed | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

const clock = new ManualClock()
const users = new UserStore(() => ({ interestRadius: radius }))
const broadcaster = new Broadcaster(users, clock, { slowReaderSkipBytes: 1e9, slowReaderCloseBytes: 1e10 }, { sent () {}, skipped () {}, closedSlow () {} })
const crowd: LiveUser[] = []
for (let i = 0; i < count; i++) {
  const user = new LiveUser(randomUUID(), 'secret', `u${i}`, 'crowd', { x: random() * side, y: random() * side, z: 0 }, emptyState(), [])
  users.add(user, new CountingPeer())
  crowd.push(user)
}

const clamp = (value: number): number => Math.min(side, Math.max(0, value))
function round (k: number): void {
  for (let i = k % 2; i < crowd.length; i += 2) {
    const user = crowd[i] as LiveUser
    const heading = random() * 2 * Math.PI
    users.setPosition(user, { x: clamp(user.position.x + Math.cos(heading) * STEP), y: clamp(user.position.y + Math.sin(heading) * STEP), z: 0 })
  }
  clock.advance(50)
  if (!values.views) {
    broadcaster.flush()
    return
  }
  users.room('crowd')?.takePositionsInView((_member, needed, count) => {
    CountingPeer.frames++
    // `count` is undefined in builds before issue 15, whose visitor had none: this script runs against them for the before figures.
    CountingPeer.bytes += count ?? needed.length
  })
}

for (let k = 0; k < 40; k++) round(k)
CountingPeer.frames = 0
CountingPeer.bytes = 0
const before = process.cpuUsage()
for (let k = 0; k < rounds; k++) round(k)
const used = process.cpuUsage(before)
const perTick = (used.user + used.system) / rounds
const built = values.views
  ? `views only: ${Math.round(CountingPeer.frames / rounds)} members visited per tick, ${(CountingPeer.bytes / CountingPeer.frames).toFixed(1)} users each`
  : `${Math.round(CountingPeer.frames / rounds)} frames of ${Math.round(CountingPeer.bytes / CountingPeer.frames)} bytes per tick`
process.stdout.write(`crowd-tick: ${count} users (${values.views ? 'views' : encoding}, radius ${radius}, square ${Math.round(side)}), ${rounds} ticks: ` +
  `${(perTick / 1000).toFixed(2)} ms of CPU per tick, ${(perTick / count).toFixed(2)} µs per member; ${built}\n`)
