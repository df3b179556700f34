/**
 * The compact encoding of `positions`: the codec, and what the broadcaster sends
 * to clients that chose it (binary positions, short ids in presence) next to
 * JSON clients, who must see exactly what they saw before.
 */
import fc from 'fast-check'
import t from 'tap'
import type { ServerMessageType } from '../../schemas/protocol.js'
import { Broadcaster, type BroadcastMeter } from '../../src/core/presence/broadcaster.js'
import { ManualClock } from '../../src/core/clock.js'
import {
  COMPACT_ENTRY_BYTES, COMPACT_HEADER_BYTES, COMPACT_POSITIONS, decodeCompactPositions, encodeCompactPositions, type CompactEntry
} from '../../src/protocol/compact.js'
import { UserStore } from '../../src/core/presence/user-store.js'
import { attach, FakePeer, makeUser } from '../core/fakes.js'

const SKIP = 1_048_576
const CLOSE = 8_388_608

const f32 = (value: number): number => Math.fround(value)

t.test('codec', async (t) => {
  t.test('round trip: sids exact, coordinates as 32-bit floats, time as a double', async (t) => {
    const movers = [
      { sid: 1, position: { x: 0.1, y: -2.5, z: 3 } },
      { sid: 4_294_967_295, position: { x: 1e9, y: -1e9, z: 123456.789 } }
    ]
    const bytes = encodeCompactPositions(1_764_000_000_123.5, movers)
    t.equal(bytes.byteLength, COMPACT_HEADER_BYTES + 2 * COMPACT_ENTRY_BYTES, '9 bytes of header, 16 per entry')
    t.equal(bytes[0], COMPACT_POSITIONS)
    t.strictSame(decodeCompactPositions(bytes), {
      t: 1_764_000_000_123.5,
      entries: [[1, f32(0.1), -2.5, 3], [4_294_967_295, 1e9, -1e9, f32(123456.789)]]
    })
  })

  t.test('an empty frame is just the header', async (t) => {
    const bytes = encodeCompactPositions(5, [])
    t.equal(bytes.byteLength, COMPACT_HEADER_BYTES)
    t.strictSame(decodeCompactPositions(bytes), { t: 5, entries: [] })
  })

  t.test('a view into a larger buffer decodes from its own offset', async (t) => {
    const frame = encodeCompactPositions(7, [{ sid: 9, position: { x: 1, y: 2, z: 3 } }])
    const larger = new Uint8Array(frame.byteLength + 5)
    larger.set(frame, 3)
    t.strictSame(decodeCompactPositions(larger.subarray(3, 3 + frame.byteLength)), { t: 7, entries: [[9, 1, 2, 3]] })
  })

  t.test('bytes that are not a compact positions frame decode to null', async (t) => {
    t.equal(decodeCompactPositions(new Uint8Array(0)), null, 'empty')
    t.equal(decodeCompactPositions(new Uint8Array(8)), null, 'shorter than the header')
    const good = encodeCompactPositions(1, [{ sid: 1, position: { x: 1, y: 1, z: 1 } }])
    t.equal(decodeCompactPositions(good.subarray(0, good.byteLength - 1)), null, 'a truncated entry')
    const wrongKind = good.slice()
    wrongKind[0] = 2
    t.equal(decodeCompactPositions(wrongKind), null, 'another kind')
  })

  t.test('property: every frame decodes to what was encoded, rounded to f32', async (t) => {
    const coordinate = fc.double({ min: -1e9, max: 1e9, noNaN: true })
    fc.assert(fc.property(
      fc.double({ min: 0, max: 4e12, noNaN: true }),
      fc.array(fc.record({ sid: fc.integer({ min: 0, max: 4_294_967_295 }), x: coordinate, y: coordinate, z: coordinate }), { maxLength: 50 }),
      (time, entries) => {
        const decoded = decodeCompactPositions(encodeCompactPositions(time, entries.map(({ sid, x, y, z }) => ({ sid, position: { x, y, z } }))))
        const expected: CompactEntry[] = entries.map(({ sid, x, y, z }) => [sid, f32(x), f32(y), f32(z)])
        return decoded !== null && Object.is(decoded.t, time) && JSON.stringify(decoded.entries) === JSON.stringify(expected)
      }
    ))
    t.pass('holds')
  })
})

class CountingMeter implements BroadcastMeter {
  readonly counts = new Map<ServerMessageType, number>()
  sent (type: ServerMessageType, frames: number): void { this.counts.set(type, (this.counts.get(type) ?? 0) + frames) }
  skipped (): void {}
  closedSlow (): void {}
}

function setup (interestRadius = 0) {
  const clock = new ManualClock(1000)
  const users = new UserStore(() => ({ interestRadius }))
  const meter = new CountingMeter()
  const broadcaster = new Broadcaster(users, clock, { slowReaderSkipBytes: SKIP, slowReaderCloseBytes: CLOSE }, meter)
  const join = (name: string, encoding: 'json' | 'compact', x = 0) => {
    const user = makeUser({ name, room: 'r', position: { x, y: 0, z: 0 } })
    const peer = attach(user, new FakePeer(encoding))
    users.add(user)
    return { user, peer }
  }
  return { clock, users, meter, broadcaster, join }
}

t.test('short ids', async (t) => {
  const s = setup()
  const a = s.join('a', 'json')
  const b = s.join('b', 'json')
  t.ok(a.user.sid > 0 && b.user.sid > 0, 'every user gets one when it enters the store')
  t.not(a.user.sid, b.user.sid, 'unique')
  s.users.moveToRoom(a.user, 'elsewhere')
  const sid = a.user.sid
  s.users.moveToRoom(a.user, 'r')
  t.equal(a.user.sid, sid, 'kept across rooms, so a client never has to learn its own again')
  s.users.remove(b.user)
  const c = s.join('c', 'json')
  t.not(c.user.sid, b.user.sid, 'not reused after a user is gone')
  t.equal(a.user.toWire().sid, undefined, 'not part of the JSON user object')
  t.equal(a.user.toWire(true).sid, a.user.sid, 'only of the compact one')
})

t.test('a flat room: one binary frame for compact clients, the unchanged JSON frame for the others', async (t) => {
  const s = setup()
  const json1 = s.join('json1', 'json')
  const json2 = s.join('json2', 'json')
  const compact1 = s.join('compact1', 'compact')
  const compact2 = s.join('compact2', 'compact')
  s.broadcaster.flush()
  for (const m of [json1, json2, compact1, compact2]) m.peer.clear()

  s.users.setPosition(json1.user, { x: 1.5, y: 2.25, z: -3 })
  s.users.setPosition(compact1.user, { x: 0.1, y: 0, z: 7 })
  s.broadcaster.flush()

  const expectedJson = JSON.stringify({ type: 'positions', t: 1000, p: [[json1.user.id, 1.5, 2.25, -3], [compact1.user.id, 0.1, 0, 7]] })
  for (const m of [json1, json2]) {
    t.strictSame(m.peer.raw, [expectedJson], 'JSON clients get the contract\'s frame')
    t.equal(m.peer.binary.length, 0, 'and nothing binary')
  }
  for (const m of [compact1, compact2]) {
    t.strictSame(m.peer.raw, [], 'compact clients get no JSON positions')
    t.equal(m.peer.binary.length, 1)
    t.strictSame(decodeCompactPositions(m.peer.binary[0] as Uint8Array), {
      t: 1000,
      entries: [[json1.user.sid, 1.5, 2.25, -3], [compact1.user.sid, f32(0.1), 0, 7]]
    })
  }
  t.equal(compact1.peer.binary[0], compact2.peer.binary[0], 'the very same buffer: encoded once per tick')
  t.equal(s.meter.counts.get('positions'), 4, 'counted like JSON frames')
})

t.test('with interest management each compact client gets only what it sees', async (t) => {
  const s = setup(100)
  const near = s.join('near', 'compact', 0)
  const mover = s.join('mover', 'json', 50)
  const far = s.join('far', 'compact', 1000)
  const jsonNear = s.join('jsonNear', 'json', 10)
  s.broadcaster.flush()
  for (const m of [near, mover, far, jsonNear]) m.peer.clear()

  s.users.setPosition(mover.user, { x: 60, y: 0, z: 0 })
  s.broadcaster.flush()
  t.strictSame(decodeCompactPositions(near.peer.binary[0] as Uint8Array)?.entries, [[mover.user.sid, 60, 0, 0]], 'the neighbour, by short id')
  t.strictSame(far.peer.binary, [], 'nothing for a client out of range')
  t.strictSame(jsonNear.peer.ofType('positions').map((f) => f.p), [[[mover.user.id, 60, 0, 0]]], 'JSON as before')
})

t.test('presence: compact clients learn short ids; JSON clients see no new field', async (t) => {
  const s = setup()
  const json = s.join('json', 'json')
  const compact = s.join('compact', 'compact')
  s.broadcaster.flush()
  json.peer.clear()
  compact.peer.clear()

  const newcomer = s.join('newcomer', 'compact')
  s.users.setProfile(json.user, 'renamed', json.user.state)
  s.broadcaster.flush()

  const [jsonFrame] = json.peer.ofType('presence')
  t.equal(jsonFrame?.joined?.[0]?.id, newcomer.user.id)
  t.notOk(json.peer.raw[0]?.includes('"sid"'), 'no sid anywhere in a JSON client\'s frame')
  const [compactFrame] = compact.peer.ofType('presence')
  t.equal(compactFrame?.joined?.[0]?.sid, newcomer.user.sid, 'the joined user with its short id')
  t.strictSame(compactFrame?.updated, jsonFrame?.updated, 'the same updates')
  const [own] = newcomer.peer.ofType('presence')
  t.strictSame(own?.joined, undefined, 'a compact newcomer is not told about itself')
  t.equal(own?.updated?.[0]?.id, json.user.id, 'but gets the rest')
})

t.test('a compact slow reader catches up with a binary frame of everyone in view', async (t) => {
  const s = setup()
  const slow = s.join('slow', 'compact')
  const other = s.join('other', 'json', 5)
  s.broadcaster.flush()
  slow.peer.clear()
  slow.peer.bufferedAmount = SKIP + 1
  s.users.setPosition(other.user, { x: 6, y: 0, z: 0 })
  s.broadcaster.flush()
  t.strictSame(slow.peer.binary, [], 'skipped while behind')
  slow.peer.bufferedAmount = 0
  s.clock.advance(50)
  s.broadcaster.flush()
  const caughtUp = decodeCompactPositions(slow.peer.binary[0] as Uint8Array)
  t.equal(caughtUp?.t, 1050)
  t.strictSame(caughtUp?.entries.map(([sid]) => sid).sort(), [slow.user.sid, other.user.sid].sort(), 'everyone in view, by short id')
})
