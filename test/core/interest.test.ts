/**
 * Interest management (a room option): each member's `positions` carry only the
 * users within the radius (3D), plus those it listens to; users coming into view
 * are sent with their current position; presence stays room-wide.
 */
import t from 'tap'
import type { ServerMessageType } from '../../schemas/protocol.js'
import { Broadcaster, type BroadcastMeter } from '../../src/core/presence/broadcaster.js'
import { ManualClock } from '../../src/core/clock.js'
import type { RoomOptionsT as RoomOptions } from '../../schemas/options.js'
import { INTEREST_HYSTERESIS, Room } from '../../src/core/presence/room.js'
import { SettingsError } from '../../src/core/settings.js'
import { settingsFromEnv } from '../../src/server/env.js'
import { UserStore } from '../../src/core/presence/user-store.js'
import type { LiveUser } from '../../src/core/presence/user.js'
import { connectedUser, positionsOf, type FakePeer, type TapTest } from './fakes.js'

const SKIP = 1_048_576
const CLOSE = 8_388_608
const RADIUS = 100

type Entry = [string, number, number, number]
type Vec = { x: number, y: number, z?: number }

class RecordingMeter implements BroadcastMeter {
  readonly sentCounts: Array<[ServerMessageType, number]> = []
  skippedFrames = 0
  sent (type: ServerMessageType, frames: number): void { this.sentCounts.push([type, frames]) }
  skipped (frames: number): void { this.skippedFrames += frames }
  closedSlow (): void {}
}

interface Member { user: LiveUser, peer: FakePeer, name: string }

/** A store whose rooms have `interestRadius` 100, except 'flat' (none). */
function setup (roomOptions: (room: string) => RoomOptions = (room) => ({ interestRadius: room === 'flat' ? 0 : RADIUS })) {
  const clock = new ManualClock()
  const users = new UserStore(roomOptions)
  const meter = new RecordingMeter()
  const broadcaster = new Broadcaster(users, clock, { slowReaderSkipBytes: SKIP, slowReaderCloseBytes: CLOSE }, meter)
  const members: Member[] = []
  /** Adds a connected user at `at` (as register does). */
  const join = (name: string, at: Vec, room = 'r'): Member => {
    const { user, peer } = connectedUser({ name, room, position: { x: at.x, y: at.y, z: at.z ?? 0 } })
    users.add(user)
    const member = { user, peer, name }
    members.push(member)
    return member
  }
  const move = (member: Member, at: Vec): void => {
    users.setPosition(member.user, { x: at.x, y: at.y, z: at.z ?? 0 })
  }
  /** Flushes a tick and forgets everything sent so far. */
  const settle = (): void => {
    broadcaster.flush()
    clear()
  }
  const clear = (): void => {
    for (const m of members) m.peer.clear()
    meter.sentCounts.length = 0
    meter.skippedFrames = 0
  }
  /** A tick: advances the clock and flushes. */
  const flush = (): void => {
    clock.advance(50)
    broadcaster.flush()
  }
  return { clock, users, meter, broadcaster, join, move, settle, clear, flush, members }
}

/** Every positions entry a peer got, frame by frame. */
const positions = (peer: FakePeer): Entry[][] => peer.ofType('positions').map((f) => f.p as Entry[])

/** The ids in the positions frames a peer got (sorted, one per entry). */
const seenIds = (peer: FakePeer): string[] => positions(peer).flat().map(([id]) => id).sort()

/** The entry of a member (or user) at its current position. */
const entryOf = (who: Member | LiveUser): Entry => {
  const user = 'user' in who ? who.user : who
  return [user.id, user.position.x, user.position.y, user.position.z]
}

const ids = (...members: Member[]): string[] => members.map((m) => m.user.id).sort()

/** Asserts that `peer` got exactly one positions frame and it has exactly `expected` (in any order). */
function gotExactly (t: TapTest, member: Member, expected: Entry[], message: string): void {
  const frames = positions(member.peer)
  t.equal(frames.length, expected.length === 0 ? 0 : 1, `${message}: ${expected.length === 0 ? 'no' : 'one'} positions frame`)
  t.strictSame((frames[0] ?? []).slice().sort(byId), expected.slice().sort(byId), message)
}

const byId = (a: Entry, b: Entry): number => a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0

t.test('the room options come from the store\'s function, per room', async (t) => {
  const asked: string[] = []
  const users = new UserStore((room) => { asked.push(room); return { interestRadius: room === 'big' ? 250 : 0 } })
  const a = connectedUser({ room: 'big' })
  const b = connectedUser({ room: 'small' })
  users.add(a.user)
  users.add(b.user)
  users.add(connectedUser({ room: 'big' }).user)
  t.strictSame(asked, ['big', 'small'], 'asked once per room, when it is created')
  t.equal(users.room('big')?.options.interestRadius, 250)
  t.equal(users.room('big')?.hasInterest, true)
  t.equal(users.room('small')?.hasInterest, false)
  t.equal(new UserStore().room('x'), undefined)
  const plain = new UserStore()
  plain.add(connectedUser({ room: 'x' }).user)
  t.equal(plain.room('x')?.hasInterest, false, 'off by default')
  t.equal(new Room('r').hasInterest, false, 'a room is created without interest by default')
  t.equal(INTEREST_HYSTERESIS, 1.1, 'kept in view until 10% beyond the radius')
})

t.test('INTEREST_RADIUS is parsed by settingsFromEnv', async (t) => {
  t.equal(settingsFromEnv({}).interestRadius, 0, 'off by default')
  t.equal(settingsFromEnv({ INTEREST_RADIUS: '' }).interestRadius, 0, 'empty: default')
  t.equal(settingsFromEnv({ INTEREST_RADIUS: '250' }).interestRadius, 250)
  t.equal(settingsFromEnv({ INTEREST_RADIUS: ' 12.5 ' }).interestRadius, 12.5, 'not only integers')
  t.equal(settingsFromEnv({ INTEREST_RADIUS: '1e9' }).interestRadius, 1e9)
  t.equal(settingsFromEnv({ INTEREST_RADIUS: '0' }).interestRadius, 0)
  for (const bad of ['-1', 'far', '2e9', 'Infinity']) {
    t.throws(() => settingsFromEnv({ INTEREST_RADIUS: bad }), SettingsError, `${bad} is refused`)
    try {
      settingsFromEnv({ INTEREST_RADIUS: bad })
    } catch (err) {
      t.match((err as Error).message, /INTEREST_RADIUS/, 'the error names the variable')
    }
  }
})

t.test('a member gets only the users within the radius (3D distance) that moved', async (t) => {
  const s = setup()
  const a = s.join('a', { x: 0, y: 0 })
  const near = s.join('near', { x: 60, y: 0 })
  const above = s.join('above', { x: 0, y: 0, z: 99 })
  const edge = s.join('edge', { x: 0, y: -100 })
  const diagonal = s.join('diagonal', { x: 60, y: 60, z: 60 }) // 103.9 away: inside the 2D cells, outside in 3D
  const high = s.join('high', { x: 0, y: 0, z: 150 })
  const far = s.join('far', { x: 150, y: 0 })
  const idle = s.join('idle', { x: 10, y: 10 })
  s.settle()

  s.move(near, { x: 61, y: 0 })
  s.move(above, { x: 0, y: 1, z: 99 })
  s.move(edge, { x: 0, y: -100, z: 0 })
  s.move(diagonal, { x: 60, y: 60, z: 61 })
  s.move(high, { x: 1, y: 0, z: 150 })
  s.move(far, { x: 151, y: 0 })
  s.flush()
  gotExactly(t, a, [entryOf(near), entryOf(above), entryOf(edge)], 'a gets the movers within 100, exactly 100 included')
  t.notOk(seenIds(a.peer).includes(idle.user.id), 'a user in range that did not move has no entry')
  t.notOk(seenIds(a.peer).includes(a.user.id), 'nor does the recipient')
  t.strictSame(seenIds(far.peer), ids(near), 'far (at 150, 0) sees only near (at 61, 0), 90 away')
  const frame = a.peer.ofType('positions')[0]
  t.equal(frame?.t, s.clock.now(), 't is the server time')
})

t.test('a user out of range that moves is not sent', async (t) => {
  const s = setup()
  const a = s.join('a', { x: 0, y: 0 })
  const far = s.join('far', { x: 150, y: 0 })
  s.settle()
  s.move(far, { x: 140, y: 5 })
  s.flush()
  t.strictSame(a.peer.raw, [], 'a is sent nothing')
  t.strictSame(far.peer.raw, [], 'nor is the mover')
  t.strictSame(s.meter.sentCounts, [['positions', 0]])
  t.notOk(s.users.room('r')?.hasPendingPositions, 'the tick consumed the move')
})

t.test('a user who comes into range by its own move is sent with its current position', async (t) => {
  const s = setup()
  const a = s.join('a', { x: 0, y: 0 })
  const b = s.join('b', { x: 150, y: 0 })
  s.settle()
  s.move(b, { x: 90, y: 0, z: 10 })
  s.flush()
  gotExactly(t, a, [[b.user.id, 90, 0, 10]], 'a gets b')
  gotExactly(t, b, [entryOf(a)], 'b gets a, now in its range, though a did not move')
})

t.test('a user who comes into range by the recipient\'s move is sent even though it did not move', async (t) => {
  const s = setup()
  const a = s.join('a', { x: 0, y: 0 })
  const b = s.join('b', { x: 150, y: 7, z: 3 })
  const c = s.join('c', { x: 300, y: 0 })
  s.settle()
  s.move(a, { x: 60, y: 0 })
  s.flush()
  gotExactly(t, a, [[b.user.id, 150, 7, 3]], 'a gets b, which did not move, at its current position')
  gotExactly(t, b, [[a.user.id, 60, 0, 0]], 'b gets a, which moved into its range')
  gotExactly(t, c, [], 'c is still out of range of both')

  s.clear()
  s.flush()
  t.strictSame(a.peer.raw, [], 'b is not sent again while nobody moves')
})

t.test('hysteresis: a user in view stays in view until beyond 110 and is not re-sent unless it moves', async (t) => {
  const s = setup()
  const a = s.join('a', { x: 0, y: 0 })
  const b = s.join('b', { x: 90, y: 0 })
  s.settle()

  s.move(b, { x: 105, y: 0 })
  s.flush()
  gotExactly(t, a, [[b.user.id, 105, 0, 0]], 'at 105, in view: its move is sent')

  s.clear()
  s.move(a, { x: -3, y: 0 }) // b now 108 away
  s.flush()
  gotExactly(t, a, [], 'at 108, in view, did not move: not re-sent')
  gotExactly(t, b, [[a.user.id, -3, 0, 0]], 'and b keeps a in view the same way')

  s.clear()
  s.move(b, { x: 107, y: 0, z: 0 }) // exactly 110 away
  s.flush()
  gotExactly(t, a, [[b.user.id, 107, 0, 0]], 'at exactly 110, still in view: its move is sent')

  s.clear()
  s.move(b, { x: 108, y: 0 }) // 111
  s.flush()
  gotExactly(t, a, [], 'at 111, out of view')

  s.clear()
  s.move(b, { x: 100, y: 0 }) // 103: within 110 but not within 100
  s.flush()
  gotExactly(t, a, [], 'back at 103: not within the radius, and no longer in view, so not sent')

  s.clear()
  s.move(b, { x: 95, y: 0 }) // 98
  s.flush()
  gotExactly(t, a, [[b.user.id, 95, 0, 0]], 'within 100 again: sent again')

  s.clear()
  s.move(b, { x: 96, y: 0 }) // 99
  s.flush()
  gotExactly(t, a, [[b.user.id, 96, 0, 0]], 'and its moves are sent as usual')
})

t.test('hysteresis: back within the radius by the recipient\'s move, the user is sent again without moving', async (t) => {
  const s = setup()
  const a = s.join('a', { x: 0, y: 0 })
  const b = s.join('b', { x: 50, y: 0 })
  s.settle()
  s.move(a, { x: -70, y: 0 }) // 120: out
  s.flush()
  gotExactly(t, a, [], 'b went out of view: nothing for a')
  s.clear()
  s.move(a, { x: -55, y: 0 }) // 105: within 110 but was out of view
  s.flush()
  gotExactly(t, a, [], 'at 105, not back in view')
  s.clear()
  s.move(a, { x: -49, y: 0 }) // 99
  s.flush()
  gotExactly(t, a, [[b.user.id, 50, 0, 0]], 'within 100: b is sent again, at its current position')
})

t.test('users a member listens to are in its view at any distance, if they are in its room', async (t) => {
  const s = setup()
  const a = s.join('a', { x: 0, y: 0 })
  const far = s.join('far', { x: 5000, y: -5000, z: 7 })
  const other = s.join('other', { x: 0, y: 0 }, 'elsewhere')
  const near = s.join('near', { x: 20, y: 0 })
  s.settle()

  s.users.setListening(a.user, [far.user.id, other.user.id, near.user.id])
  s.flush()
  gotExactly(t, a, [[far.user.id, 5000, -5000, 7]], 'after the listening change, far is sent at its current position without moving')
  t.strictSame(other.peer.ofType('positions'), [], 'nothing crosses rooms')

  s.clear()
  s.move(far, { x: 6000, y: 0 })
  s.move(other, { x: 1, y: 1 })
  s.move(near, { x: 21, y: 0 })
  s.flush()
  gotExactly(t, a, [[far.user.id, 6000, 0, 0], [near.user.id, 21, 0, 0]], 'far\'s moves reach a; a user both near and listened to has one entry; a user in another room none')

  s.clear()
  s.users.moveToRoom(other.user, 'r')
  s.flush()
  t.ok(seenIds(a.peer).includes(other.user.id), 'a listened user entering the room comes into view')

  s.clear()
  s.users.setListening(a.user, [])
  s.flush()
  s.clear()
  s.move(far, { x: 6001, y: 0 })
  s.flush()
  gotExactly(t, a, [], 'no longer listened to: far\'s moves are not sent')

  s.clear()
  s.users.setListening(a.user, [far.user.id])
  s.flush()
  gotExactly(t, a, [[far.user.id, 6001, 0, 0]], 'listened to again: sent again at its current position')
})

t.test('a newly joined member gets the positions of everyone in range on the next flush', async (t) => {
  const s = setup()
  const a = s.join('a', { x: 0, y: 0 })
  const b = s.join('b', { x: -40, y: 30, z: 5 })
  const far = s.join('far', { x: 400, y: 0 })
  s.settle()
  const n = s.join('n', { x: 10, y: 10 })
  s.flush()
  gotExactly(t, n, [entryOf(a), entryOf(b)], 'the newcomer gets a and b at their positions, not far')
  gotExactly(t, a, [entryOf(n)], 'a gets the newcomer, who came into range')
  gotExactly(t, b, [entryOf(n)], 'so does b')
  gotExactly(t, far, [], 'far does not')

  s.clear()
  s.flush()
  t.strictSame(n.peer.raw, [], 'once only')

  // Entering through join (another room) works the same.
  const x = s.join('x', { x: 5, y: 5 }, 'elsewhere')
  s.settle()
  s.users.moveToRoom(x.user, 'r')
  s.flush()
  gotExactly(t, x, [entryOf(a), entryOf(b), entryOf(n)], 'a member arriving by join gets everyone in range')
})

t.test('a member who left the room is out of everyone\'s view, and gets a fresh view if it comes back', async (t) => {
  const s = setup()
  const a = s.join('a', { x: 0, y: 0 })
  const b = s.join('b', { x: 10, y: 0 })
  s.settle()
  s.users.moveToRoom(b.user, 'elsewhere')
  s.flush()
  s.clear()
  s.move(b, { x: 11, y: 0 })
  s.flush()
  gotExactly(t, a, [], 'b\'s moves elsewhere are not sent')
  s.clear()
  s.users.moveToRoom(b.user, 'r')
  s.flush()
  gotExactly(t, b, [entryOf(a)], 'back in the room, b gets a again')
  gotExactly(t, a, [[b.user.id, 11, 0, 0]], 'and a gets b')
})

t.test('members without a socket are not visited and break nothing', async (t) => {
  const s = setup()
  const a = s.join('a', { x: 0, y: 0 })
  const b = s.join('b', { x: 10, y: 0 })
  const c = s.join('c', { x: 20, y: 0 })
  s.settle()
  s.users.detach(b.user, 0)
  s.move(a, { x: 1, y: 0 })
  s.move(c, { x: 21, y: 0 })
  t.doesNotThrow(() => s.flush())
  t.strictSame(b.peer.ofType('positions'), [], 'b, in grace, is sent no positions')
  gotExactly(t, a, [[c.user.id, 21, 0, 0]], 'the others are served')
  gotExactly(t, c, [[a.user.id, 1, 0, 0]], 'the others are served')

  // Someone comes into b's range while b is away; b gets it once back.
  const d = s.join('d', { x: 500, y: 0 })
  s.settle()
  s.move(d, { x: 40, y: 0 })
  s.flush()
  t.strictSame(b.peer.ofType('positions'), [], 'b, still away, gets nothing')
  s.clear()
  s.users.attach(b.user, b.peer)
  s.flush()
  gotExactly(t, b, [[d.user.id, 40, 0, 0]], 'back, b gets d, who came into its range meanwhile')

  // At the room level: the visitor never sees b.
  const room = new Room('r', { interestRadius: RADIUS })
  const members = [0, 1, 2, 3].map((i) => connectedUser({ room: 'r', position: { x: i * 10, y: 0, z: 0 } }).user)
  for (const m of members) room.add(m)
  const ghost = members[1]
  if (ghost === undefined) throw new Error('fixture')
  ghost.peer = null
  room.touch(ghost)
  const visited: string[] = []
  room.takePositionsInView((member, users, count) => {
    visited.push(member.id)
    t.ok(users.slice(0, count).includes(ghost), 'a disconnected member is still seen by the others')
  })
  t.strictSame(visited.sort(), members.filter((m) => m !== ghost).map((m) => m.id).sort(), 'every connected member, not the disconnected one')
})

t.test('a room without a radius behaves as before: every member gets every mover, in one shared frame', async (t) => {
  const s = setup()
  const a = s.join('a', { x: 0, y: 0 }, 'flat')
  const b = s.join('b', { x: 1e6, y: 0 }, 'flat')
  const c = s.join('c', { x: -1e6, y: 1e6, z: 1e6 }, 'flat')
  s.settle()
  const room = s.users.room('flat')
  t.equal(room?.hasInterest, false)
  t.throws(() => room?.takePositionsInView(() => {}), /no interest radius/)
  s.users.setListening(a.user, [b.user.id])
  s.users.setProfile(c.user, 'C', c.user.state)
  s.broadcaster.flush()
  for (const m of [a, b, c]) t.strictSame(m.peer.ofType('positions'), [], `${m.name}: presence changes alone send no positions`)

  s.clear()
  s.move(a, { x: 1, y: 0 })
  s.move(c, { x: 2, y: 0 })
  s.flush()
  const frame = { type: 'positions', t: s.clock.now(), p: [entryOf(a), entryOf(c)] }
  for (const m of [a, b, c]) t.strictSame(m.peer.frames, [frame], `${m.name} gets every mover, however far`)
  t.equal(a.peer.raw[0], b.peer.raw[0], 'the identical frame text')
  t.equal(b.peer.raw[0], c.peer.raw[0], 'the identical frame text')
  t.strictSame(s.meter.sentCounts, [['positions', 3]])
  t.strictSame(positionsOf(room?.usersInViewOf(b.user) ?? []).sort(byId), [entryOf(a), entryOf(b), entryOf(c)].sort(byId), 'a member of a flat room sees everyone')
})

t.test('entries are serialized once per tick, however many members see them', async (t) => {
  const s = setup()
  const count = 60
  const crowd: Member[] = []
  for (let i = 0; i < count; i++) crowd.push(s.join(`m${i}`, { x: (i % 8) * 10, y: Math.floor(i / 8) * 10 }))
  // A line of members 30 apart: each sees only its neighbours within 100.
  const line: Member[] = []
  for (let i = 0; i < 40; i++) line.push(s.join(`l${i}`, { x: 1000 + i * 30, y: 0 }))
  s.settle()
  const mover = crowd[0]
  const walker = line[20]
  if (mover === undefined || walker === undefined) throw new Error('fixture')
  s.move(mover, { x: 5, y: 5, z: 5 })
  s.move(walker, { x: 1000 + 20 * 30, y: 1 })

  const original = JSON.stringify
  let calls = 0
  JSON.stringify = function (this: unknown, ...args: unknown[]) {
    calls++
    return Reflect.apply(original, JSON, args) as string
  } as typeof JSON.stringify
  try {
    s.flush()
  } finally {
    JSON.stringify = original
  }
  t.equal(calls, 2, 'one serialization per moved user, for all members who see it')

  const moverText = original([mover.user.id, 5, 5, 5])
  const walkerText = original([walker.user.id, 1600, 1, 0])
  for (const m of crowd) {
    if (m === mover) continue
    t.equal(m.peer.raw.length, 1, `${m.name}: one frame`)
    t.equal(m.peer.raw[0], `{"type":"positions","t":${s.clock.now()},"p":[${moverText}]}`, `${m.name}: the identical text`)
  }
  const walkerSeenBy = line.filter((m) => m.peer.raw.some((raw) => raw.includes(walkerText))).map((m) => m.name)
  t.strictSame(walkerSeenBy.sort(), ['l17', 'l18', 'l19', 'l21', 'l22', 'l23'], 'the walker\'s entry reaches exactly its neighbours within 100')
  for (const m of line) {
    if (m.peer.raw.length > 0) t.equal(m.peer.raw[0], `{"type":"positions","t":${s.clock.now()},"p":[${walkerText}]}`)
  }

  // At the room level: every other member is visited with the one mover.
  const room = new Room('r', { interestRadius: RADIUS })
  const users = [0, 1, 2, 3, 4].map((i) => connectedUser({ room: 'r', position: { x: i, y: i, z: 0 } }).user)
  for (const u of users) room.add(u)
  room.takePositionsInView(() => {})
  const [first] = users
  if (first === undefined) throw new Error('fixture')
  first.position = { x: 0.5, y: 0.25, z: -1 }
  room.move(first)
  const got: LiveUser[][] = []
  room.takePositionsInView((_member, movers, count) => { got.push(movers.slice(0, count)) })
  t.equal(got.length, 4, 'every other member is visited')
  t.ok(got.every((movers) => movers.length === 1 && movers[0] === first), 'with the one mover')
})

t.test('slow readers with interest: skipped, then sent the positions of exactly the users in view', async (t) => {
  const s = setup()
  const a = s.join('a', { x: 0, y: 0 })
  const b = s.join('b', { x: 50, y: 0 })
  const c = s.join('c', { x: 80, y: 0 })
  const d = s.join('d', { x: 500, y: 0 })
  const e = s.join('e', { x: 1000, y: 0 })
  const listened = s.join('listened', { x: -3000, y: 0 })
  s.users.setListening(a.user, [listened.user.id])
  s.settle()

  a.peer.bufferedAmount = SKIP + 1
  s.move(b, { x: 51, y: 0 })
  s.move(c, { x: 81, y: 0 })
  s.move(e, { x: 1001, y: 0 })
  s.flush()
  t.strictSame(a.peer.raw, [], 'skipped')
  t.equal(s.meter.skippedFrames, 1)
  t.strictSame(a.peer.closes, [], 'not closed')
  t.strictSame(seenIds(b.peer), ids(c), 'the others are served')

  s.clear()
  s.move(d, { x: 90, y: 0 }) // comes into a's range while a is behind
  s.move(c, { x: 300, y: 0 }) // leaves a's view while a is behind
  s.move(listened, { x: -3001, y: 0 })
  s.flush()
  t.strictSame(a.peer.raw, [], 'still behind: skipped again')

  s.clear()
  s.flush()
  t.strictSame(a.peer.raw, [], 'still behind, nobody moved: nothing')

  a.peer.bufferedAmount = SKIP
  s.flush()
  const frames = positions(a.peer)
  t.equal(frames.length, 1, 'one catch-up frame once drained')
  t.strictSame((frames[0] ?? []).slice().sort(byId), [entryOf(b), entryOf(d), entryOf(listened)].sort(byId),
    'the users in its view now, at their current positions: not c (gone), not e (far), not itself')
  t.equal(a.peer.ofType('positions')[0]?.t, s.clock.now())

  s.clear()
  s.flush()
  t.strictSame(a.peer.raw, [], 'caught up once only')

  s.move(b, { x: 52, y: 0 })
  s.flush()
  gotExactly(t, a, [[b.user.id, 52, 0, 0]], 'and then served as usual')
})

t.test('a slow reader that nobody in view moved for is not marked behind', async (t) => {
  const s = setup()
  const a = s.join('a', { x: 0, y: 0 })
  const far = s.join('far', { x: 500, y: 0 })
  s.settle()
  a.peer.bufferedAmount = SKIP + 1
  s.move(far, { x: 501, y: 0 })
  s.flush()
  t.equal(s.meter.skippedFrames, 0, 'nothing to skip')
  a.peer.bufferedAmount = 0
  s.flush()
  t.strictSame(a.peer.raw, [], 'and no catch-up is owed')
})

t.test('presence stays room-wide', async (t) => {
  const s = setup()
  const a = s.join('a', { x: 0, y: 0 })
  const b = s.join('b', { x: 10, y: 0 })
  s.settle()
  const far = s.join('far', { x: 1e6, y: 1e6 })
  s.flush()
  for (const m of [a, b]) {
    t.strictSame(m.peer.ofType('presence').map((f) => f.joined?.map((u) => u.id)), [[far.user.id]], `${m.name} sees far join`)
  }
  t.strictSame(far.peer.ofType('presence').map((f) => f.joined), [], 'far, alone in its variant, is told nothing new')

  s.clear()
  s.users.setProfile(far.user, 'Far Away', far.user.state)
  s.flush()
  for (const m of [a, b]) {
    t.strictSame(m.peer.ofType('presence').map((f) => f.updated), [[{ id: far.user.id, name: 'Far Away' }]], `${m.name} sees far's new name`)
  }

  s.clear()
  s.users.setProfile(a.user, 'A', a.user.state)
  s.flush()
  t.strictSame(far.peer.ofType('presence').map((f) => f.updated), [[{ id: a.user.id, name: 'A' }]], 'far sees a\'s new name')

  s.clear()
  s.users.remove(far.user)
  s.flush()
  for (const m of [a, b]) {
    t.strictSame(m.peer.ofType('presence').map((f) => f.left), [[far.user.id]], `${m.name} sees far leave`)
  }
  t.strictSame(seenIds(a.peer), [], 'and no positions came with it')
})

t.test('room bookkeeping: pending positions and positionsInViewOf', async (t) => {
  const room = new Room('r', { interestRadius: RADIUS })
  t.equal(room.hasInterest, true)
  t.notOk(room.hasPendingPositions)
  const a = connectedUser({ room: 'r', position: { x: 0, y: 0, z: 0 } }).user
  const b = connectedUser({ room: 'r', position: { x: 30, y: 40, z: 0 } }).user
  const c = connectedUser({ room: 'r', position: { x: 300, y: 0, z: 0 } }).user
  room.add(a)
  t.ok(room.hasPendingPositions, 'a newcomer may change views')
  room.add(b)
  room.add(c)
  room.takePositionsInView(() => {})
  t.notOk(room.hasPendingPositions, 'nothing pending after a tick')
  t.strictSame(positionsOf(room.usersInViewOf(a)), [[b.id, 30, 40, 0]])
  t.strictSame(positionsOf(room.usersInViewOf(c)), [], 'nobody near c')

  a.listeningTo = [c.id]
  room.touchView(a)
  t.ok(room.hasPendingPositions, 'a listening change may change views without a move')
  room.takePositionsInView(() => {})
  t.strictSame(positionsOf(room.usersInViewOf(a)).sort(byId), ([[b.id, 30, 40, 0], [c.id, 300, 0, 0]] as Entry[]).sort(byId))

  b.position = { x: 31, y: 40, z: 0 }
  room.move(b)
  t.ok(room.hasPendingPositions)
  t.strictSame(positionsOf(room.usersInViewOf(a)).sort(byId), ([[b.id, 31, 40, 0], [c.id, 300, 0, 0]] as Entry[]).sort(byId), 'current positions')
  room.takePositionsInView(() => {})

  room.remove(c)
  t.ok(room.hasPendingPositions, 'a leaver may change views')
  t.strictSame(positionsOf(room.usersInViewOf(a)), [[b.id, 31, 40, 0]], 'a member who left is not listed')
  room.takePositionsInView(() => {})
  room.remove(a)
  room.remove(b)
  room.takePresence()
  t.ok(room.isIdle, 'empty rooms can still be dropped')
})

t.test('a user who takes the place of one who left in the same tick is new to everyone in view', async (t) => {
  const s = setup()
  const a = s.join('a', { x: 0, y: 0 })
  const b = s.join('b', { x: 10, y: 0 })
  const far = s.join('far', { x: 5000, y: 0 })
  s.settle()
  // b leaves and c comes in before the next tick: c may be given b's place in the index.
  s.users.moveToRoom(b.user, 'elsewhere')
  const c = s.join('c', { x: 20, y: 0 })
  s.flush()
  gotExactly(t, a, [entryOf(c)], 'a gets c, at its position, though c never moved')
  gotExactly(t, c, [entryOf(a)], 'and c gets a')
  s.clear()
  // Places given up and taken again over many ticks: every view stays exactly right.
  for (let round = 0; round < 5; round++) {
    s.users.moveToRoom(c.user, 'elsewhere')
    s.flush()
    s.users.moveToRoom(c.user, 'r')
    s.move(far, { x: 5000 + round, y: 0 })
    s.flush()
    t.strictSame(seenIds(a.peer), ids(c), `round ${round}: a gets c back once, and not the far mover`)
    t.strictSame(s.users.room('r')?.usersInViewOf(a.user).map((u) => u.id), ids(c), `round ${round}: a's view is c alone`)
    s.clear()
  }
})

t.test('views far larger than a few users grow and stay exact', async (t) => {
  const s = setup()
  const centre = s.join('centre', { x: 0, y: 0 })
  const ring: Member[] = []
  for (let i = 0; i < 300; i++) ring.push(s.join(`r${i}`, { x: 50 * Math.cos(i), y: 50 * Math.sin(i) }))
  s.flush()
  t.equal(positions(centre.peer)[0]?.length, 300, 'every one of 300 users within the radius is sent once')
  s.clear()
  for (const member of ring.slice(0, 150)) s.move(member, { x: 500, y: 500 })
  s.flush()
  t.strictSame(s.users.room('r')?.usersInViewOf(centre.user).map((u) => u.id).sort(), ids(...ring.slice(150)), 'the 150 who walked off are out of view')
  t.equal(seenIds(centre.peer).length, 0, 'and nobody in view moved')
})
