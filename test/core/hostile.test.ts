/**
 * What one hostile client, within its rate limit, can cost the others in its room:
 * listening churn, join hopping, sync spam, and a big room filling up. Simulated
 * seconds on a manual clock, the real engine, broadcaster and pacing; each test
 * also runs without the pacing to show what the budget is holding back.
 */
import { randomUUID } from 'node:crypto'
import t from 'tap'
import type { PresencePacing } from '../../src/core/presence/broadcaster.js'
import { setup, type FakeSocket, type HarnessLimits } from './engine-harness.js'

const PACED: PresencePacing = { presenceBytesPerSecond: 16_384, presenceWritesPerSecond: 20_000, presenceUserIntervalMs: 250, tickHz: 20 }
const UNPACED: PresencePacing = { presenceBytesPerSecond: Number.POSITIVE_INFINITY, presenceWritesPerSecond: Number.POSITIVE_INFINITY, presenceUserIntervalMs: 0, tickHz: 20 }
const TICK_MS = 50
const SECONDS = 10

/** Bytes of presence frames a socket received (text frames' length). */
const presenceBytes = (socket: FakeSocket): number =>
  socket.sent.filter((frame): frame is string => typeof frame === 'string' && frame.startsWith('{"type":"presence"')).reduce((sum, frame) => sum + frame.length, 0)

/** A room of idle bystanders and the harness, on a clock that the caller advances. */
function room (members: number, pacing: PresencePacing, limits: HarnessLimits = {}) {
  const s = setup({ registerLimit: 100_000, maxConnectionsPerAddress: 100_000, messagesPerSecond: 60, messageBurst: 120, pacing, ...limits })
  const bystanders = Array.from({ length: members }, (_, i) => s.registered(`idle ${i}`, 'big'))
  /** Runs `seconds` of simulated time: `act` at 59 messages a second, a tick every 50 ms. */
  const run = (seconds: number, act: (step: number) => void): void => {
    const interval = 1000 / 59
    let nextTick = s.clock.now() + TICK_MS
    const end = s.clock.now() + seconds * 1000
    for (let step = 0; s.clock.now() < end; step++) {
      act(step)
      s.clock.advance(interval)
      while (s.clock.now() >= nextTick) {
        s.broadcaster.flush()
        nextTick += TICK_MS
      }
    }
  }
  /** Lets every presence frame still waiting go out (at most a second), then forgets what the bystanders got. */
  const settleRoom = (): void => {
    run(1.1, () => {})
    for (const bystander of bystanders) bystander.socket.clear()
  }
  settleRoom()
  return { ...s, bystanders, run, settleRoom }
}

const uuids = (n: number): string[] => Array.from({ length: n }, () => randomUUID())

t.test('listening churn: one client switching between two sets of 256 ids costs each bystander at most the presence budget', async (t) => {
  const sets = [uuids(256), uuids(256)]
  for (const [label, pacing] of [['paced', PACED], ['unpaced', UNPACED]] as const) {
    const r = room(20, pacing)
    const hostile = r.registered('churner', 'big')
    r.settleRoom()
    r.run(SECONDS, (step) => hostile.send({ type: 'updatelisteningto', listeningTo: sets[step % 2] }))
    const perSecond = Math.max(...r.bystanders.map((b) => presenceBytes(b.socket))) / SECONDS
    if (label === 'paced') {
      // One frame may go over before the budget catches up: at most a second's worth plus that frame.
      t.ok(perSecond <= PACED.presenceBytesPerSecond * (SECONDS + 1) / SECONDS + 11_000 / SECONDS, `paced: ${Math.round(perSecond)} B/s per bystander`)
      t.ok(perSecond > 4_000, 'the changes still reach the room')
      r.run(1.1, () => {})
      const last = r.bystanders[0]?.socket.ofType('presence').flatMap((frame) => frame.updated ?? []).filter((u) => u.listeningTo !== undefined).at(-1)
      t.strictSame(last?.listeningTo, r.users.get(hostile.id)?.listeningTo, 'within a second of the last change, the room has the latest set')
    } else {
      t.ok(perSecond > 100_000, `unpaced, the same client costs every bystander ${Math.round(perSecond / 1024)} KiB/s`)
    }
  }
})

t.test('join hopping: four clients hopping in and out of a room are held to the join budget and the presence budget', async (t) => {
  const r = room(50, PACED)
  const hoppers = Array.from({ length: 4 }, (_, i) => r.registered(`hopper ${i}`, 'side'))
  r.settleRoom()
  r.run(SECONDS, (step) => {
    for (const hopper of hoppers) hopper.send({ type: 'join', room: step % 2 === 0 ? 'big' : 'side' })
  })
  for (const hopper of hoppers) {
    const snapshots = hopper.socket.ofType('snapshot').length
    t.ok(snapshots <= 5 + SECONDS + 1, `a hopper got ${snapshots} snapshots: the burst, then one a second`)
    t.ok(hopper.socket.ofType('error').every((error) => error.code === 'rate_limited' && error.ref === 'join'))
  }
  const perSecond = Math.max(...r.bystanders.map((b) => presenceBytes(b.socket))) / SECONDS
  t.ok(perSecond <= PACED.presenceBytesPerSecond, `each bystander: ${Math.round(perSecond)} B/s of presence`)
})

t.test('sync spam: the spammer gets a snapshot a second after its burst; the room gets nothing', async (t) => {
  const r = room(30, PACED)
  const spammer = r.registered('spammer', 'big')
  r.settleRoom()
  r.run(SECONDS, () => spammer.send({ type: 'sync' }))
  const snapshots = spammer.socket.ofType('snapshot').length
  t.ok(snapshots >= SECONDS && snapshots <= 5 + SECONDS + 1, `${snapshots} snapshots in ${SECONDS} s`)
  t.ok(spammer.socket.ofType('error').length > 0 && spammer.socket.ofType('error').every((e) => e.ref === 'sync'))
  t.strictSame(r.bystanders.map((b) => b.socket.sent.length), r.bystanders.map(() => 0), 'bystanders receive nothing')
})

t.test('a big room filling up: presence costs the room a bounded number of writes a second, not one per member per tick', async (t) => {
  for (const [label, pacing] of [['paced', { ...PACED, presenceWritesPerSecond: 3_000 }], ['unpaced', UNPACED]] as const) {
    const r = room(300, pacing)
    let arrivals = 0
    r.run(5, (step) => { if (step % 2 === 0) r.registered(`arrival ${arrivals++}`, 'big') })
    const framesPerSecond = Math.max(...r.bystanders.map((b) => b.socket.ofType('presence').length)) / 5
    if (label === 'paced') {
      t.ok(framesPerSecond <= 3_000 / 300 + 1, `paced: ${framesPerSecond} presence frames a second per member (room of 300 to ${300 + arrivals})`)
      t.ok(framesPerSecond >= 1, 'at least one a second: nobody waits more than the contract allows')
      const seen = new Set(r.bystanders[0]?.socket.ofType('presence').flatMap((frame) => frame.joined ?? []).map((user) => user.name))
      r.run(1.1, () => {})
      const all = new Set(r.bystanders[0]?.socket.ofType('presence').flatMap((frame) => frame.joined ?? []).map((user) => user.name))
      t.equal(all.size, arrivals, `every arrival announced (${seen.size} before the last second)`)
    } else {
      t.ok(framesPerSecond > 15, `unpaced: ${framesPerSecond} frames a second per member`)
    }
  }
})

t.test('however busy the room, no change waits more than a second to reach the members', async (t) => {
  const r = room(100, { ...PACED, presenceBytesPerSecond: 256 })
  const busy = Array.from({ length: 5 }, (_, i) => r.registered(`busy ${i}`, 'big'))
  r.settleRoom()
  const watcher = r.bystanders[0]
  if (watcher === undefined) throw new Error('fixture')
  const seenAt: number[] = []
  let framesSeen = 0
  let changedAt = 0
  r.run(6, (step) => {
    for (const user of busy) user.send({ type: 'update', state: { step } })
    changedAt = r.clock.now()
    const frames = watcher.socket.ofType('presence').length
    if (frames > framesSeen) seenAt.push(r.clock.now())
    framesSeen = frames
  })
  const gaps = seenAt.slice(1).map((at, i) => at - (seenAt[i] ?? at))
  t.ok(gaps.length >= 5, `${seenAt.length} frames in 6 s on a tiny budget`)
  t.ok(Math.max(...gaps) <= 1000, `the longest wait between frames: ${Math.round(Math.max(...gaps))} ms`)
  r.run(1 + TICK_MS / 1000, () => {})
  const last = watcher.socket.ofType('presence').flatMap((frame) => frame.updated ?? []).filter((u) => u.id === busy[4]?.id).at(-1)
  t.match(last?.state, { step: Number }, 'the latest state arrives')
  t.ok(r.clock.now() - changedAt <= 1000 + 2 * TICK_MS + 1000 / 59)
})
