import t from 'tap'
import type { ServerMessageType } from '../../schemas/protocol.js'
import { CloseCode } from '../../src/protocol/close-codes.js'
import { Broadcaster, type BroadcastMeter } from '../../src/core/presence/broadcaster.js'
import { ManualClock } from '../../src/core/clock.js'
import { normalizeListening, type State } from '../../src/core/presence/state.js'
import { UserStore } from '../../src/core/presence/user-store.js'
import type { LiveUser } from '../../src/core/presence/user.js'
import { connectedUser, stateOf, type FakePeer } from './fakes.js'

const SKIP = 1_048_576
const CLOSE = 8_388_608

class RecordingMeter implements BroadcastMeter {
  readonly sentCounts: Array<[ServerMessageType, number]> = []
  skippedFrames = 0
  closed = 0
  sent (type: ServerMessageType, frames: number): void { this.sentCounts.push([type, frames]) }
  skipped (frames: number): void { this.skippedFrames += frames }
  closedSlow (): void { this.closed++ }
  total (type: ServerMessageType): number {
    return this.sentCounts.filter(([t]) => t === type).reduce((sum, [, n]) => sum + n, 0)
  }
}

function setup () {
  const clock = new ManualClock()
  const users = new UserStore()
  const meter = new RecordingMeter()
  const broadcaster = new Broadcaster(users, clock, { slowReaderSkipBytes: SKIP, slowReaderCloseBytes: CLOSE }, meter)
  /** Adds a connected user (as register does) and returns it with its peer. */
  const join = (room = 'r1', name = 'u'): { user: LiveUser, peer: FakePeer } => {
    const member = connectedUser({ room, name, position: { x: Math.random(), y: 1, z: 2 } })
    users.add(member.user)
    return member
  }
  /** Flushes a tick and forgets what was sent so far. */
  const settle = (...peers: FakePeer[]): void => {
    broadcaster.flush()
    for (const peer of peers) peer.clear()
    meter.sentCounts.length = 0
    meter.skippedFrames = 0
  }
  return { clock, users, meter, broadcaster, join, settle }
}

const stateCopy = (state: State | undefined): Record<string, unknown> => ({ ...state })

t.test('presence', async (t) => {
  t.test('one frame text goes to every member that did not just join', async (t) => {
    const s = setup()
    const a = s.join('r1', 'a')
    const b = s.join('r1', 'b')
    const c = s.join('r1', 'c')
    s.settle(a.peer, b.peer, c.peer)
    const d = s.join('r1', 'd')
    s.users.setProfile(a.user, 'A', a.user.state)
    s.broadcaster.flush()

    t.equal(a.peer.raw.length, 1)
    t.equal(a.peer.raw[0], b.peer.raw[0], 'a and b got the identical frame text')
    t.equal(b.peer.raw[0], c.peer.raw[0], 'b and c got the identical frame text')
    const frame = a.peer.ofType('presence')[0]
    t.equal(frame?.room, 'r1')
    t.strictSame(frame?.joined?.map((u) => u.id), [d.user.id])
    t.strictSame(frame?.updated, [{ id: a.user.id, name: 'A' }])
    t.equal(frame?.left, undefined)

    const own = d.peer.ofType('presence')
    t.equal(own.length, 1, 'the newcomer gets its own variant')
    t.equal(own[0]?.joined, undefined, 'without itself in joined')
    t.strictSame(own[0]?.updated, [{ id: a.user.id, name: 'A' }], 'but with everything else')
    t.strictSame(s.meter.sentCounts, [['presence', 4]])
  })

  t.test('a newcomer whose variant would be empty gets nothing', async (t) => {
    const s = setup()
    const a = s.join('r1', 'a')
    s.settle(a.peer)
    const d = s.join('r1', 'd')
    s.broadcaster.flush()
    t.strictSame(d.peer.raw, [])
    t.strictSame(a.peer.ofType('presence').map((f) => f.joined?.map((u) => u.id)), [[d.user.id]])
    t.strictSame(s.meter.sentCounts, [['presence', 1]])
  })

  t.test('members joining in the same tick each see the others joined, never themselves', async (t) => {
    const s = setup()
    const a = s.join('r1', 'a')
    const b = s.join('r1', 'b')
    const c = s.join('r1', 'c')
    s.broadcaster.flush()
    for (const [self, others] of [[a, [b, c]], [b, [a, c]], [c, [a, b]]] as const) {
      const frames = self.peer.ofType('presence')
      t.equal(frames.length, 1)
      t.strictSame(frames[0]?.joined?.map((u) => u.id).sort(), others.map((o) => o.user.id).sort())
    }
  })

  t.test('a joined entry is the whole user as it is at the end of the tick', async (t) => {
    const s = setup()
    const a = s.join('r1', 'a')
    s.settle(a.peer)
    const b = s.join('r1', 'b')
    s.users.setProfile(b.user, 'Bob', stateOf({ color: 'red' }))
    s.users.setPosition(b.user, { x: 5, y: 6, z: 7 })
    s.broadcaster.flush()
    const joined = a.peer.ofType('presence')[0]?.joined?.[0]
    t.strictSame(joined, {
      id: b.user.id,
      name: 'Bob',
      room: 'r1',
      position: { x: 5, y: 6, z: 7 },
      state: { color: 'red' },
      listeningTo: [],
      connected: true
    })
  })

  t.test('a state change is sent as the whole new state', async (t) => {
    const s = setup()
    const a = s.join('r1', 'a')
    const b = s.join('r1', 'b')
    s.users.setProfile(b.user, 'b', stateOf({ color: 'red', size: 1 }))
    s.settle(a.peer, b.peer)
    s.users.setProfile(b.user, 'b', stateOf({ color: 'blue', size: 1 }))
    s.broadcaster.flush()
    const updated = a.peer.ofType('presence')[0]?.updated
    t.strictSame(updated?.map((u) => ({ ...u, state: stateCopy(u.state) })), [{ id: b.user.id, state: { color: 'blue', size: 1 } }])
  })

  t.test('a room is told nothing when nothing changed', async (t) => {
    const s = setup()
    const a = s.join('r1', 'a')
    const b = s.join('r1', 'b')
    s.settle(a.peer, b.peer)
    s.users.setProfile(b.user, b.user.name, stateOf({ ...b.user.state }))
    s.broadcaster.flush()
    s.broadcaster.flush()
    t.strictSame(a.peer.raw, [])
    t.strictSame(b.peer.raw, [])
  })

  t.test('presence stays in its room', async (t) => {
    const s = setup()
    const a = s.join('r1', 'a')
    const x = s.join('r2', 'x')
    s.settle(a.peer, x.peer)
    s.users.setProfile(a.user, 'A', a.user.state)
    s.join('r1', 'b')
    s.broadcaster.flush()
    t.strictSame(x.peer.raw, [])
  })

  t.test('members in grace are skipped and a leaving member is not sent its own leave', async (t) => {
    const s = setup()
    const a = s.join('r1', 'a')
    const b = s.join('r1', 'b')
    const c = s.join('r1', 'c')
    s.settle(a.peer, b.peer, c.peer)
    s.users.detach(b.user, 0)
    s.broadcaster.flush()
    t.strictSame(b.peer.raw, [], 'a member without a socket is sent nothing')
    t.strictSame(a.peer.ofType('presence')[0]?.updated, [{ id: b.user.id, connected: false }])
    a.peer.clear()
    c.peer.clear()
    s.users.moveToRoom(c.user, 'r2')
    s.broadcaster.flush()
    t.strictSame(a.peer.ofType('presence')[0]?.left, [c.user.id])
    t.equal(c.peer.ofType('presence').length, 0, 'the mover is alone in r2 and is not told about r1')
  })
})

t.test('positions', async (t) => {
  t.test('moves are sent once per tick to every connected member, with the latest value', async (t) => {
    const s = setup()
    const a = s.join('r1', 'a')
    const b = s.join('r1', 'b')
    s.settle(a.peer, b.peer)
    s.clock.advance(50)
    s.users.setPosition(a.user, { x: 1, y: 1, z: 1 })
    s.users.setPosition(a.user, { x: 2, y: 3, z: 4 })
    s.broadcaster.flush()
    const frame = { type: 'positions', t: s.clock.now(), p: [[a.user.id, 2, 3, 4]] }
    t.strictSame(b.peer.frames, [frame])
    t.strictSame(a.peer.frames, [frame], 'the mover may get its own entry')
    t.equal(a.peer.raw[0], b.peer.raw[0])
    t.strictSame(s.meter.sentCounts, [['positions', 2]])
    s.broadcaster.flush()
    t.equal(b.peer.raw.length, 1, 'nothing when nobody moved')
  })

  t.test('a slow reader is skipped, then caught up with every position once it drains, even if nobody moves', async (t) => {
    const s = setup()
    const a = s.join('r1', 'a')
    const b = s.join('r1', 'b')
    const c = s.join('r1', 'c')
    s.settle(a.peer, b.peer, c.peer)
    b.peer.bufferedAmount = SKIP + 1
    s.users.setPosition(a.user, { x: 1, y: 1, z: 1 })
    s.broadcaster.flush()
    t.strictSame(b.peer.raw, [], 'skipped')
    t.equal(c.peer.ofType('positions').length, 1)
    t.equal(s.meter.skippedFrames, 1)
    t.strictSame(s.meter.sentCounts, [['positions', 2]])
    t.strictSame(b.peer.closes, [], 'not closed')

    s.users.setPosition(c.user, { x: 3, y: 3, z: 3 })
    s.broadcaster.flush()
    t.strictSame(b.peer.raw, [], 'still behind: skipped again')

    s.broadcaster.flush()
    t.strictSame(b.peer.raw, [], 'still behind, nobody moved: nothing')

    b.peer.bufferedAmount = SKIP
    s.clock.advance(50)
    s.broadcaster.flush()
    const frames = b.peer.ofType('positions')
    t.equal(frames.length, 1, 'one catch-up frame')
    t.equal(frames[0]?.t, s.clock.now())
    t.strictSame(frames[0]?.p.sort(), [
      [a.user.id, 1, 1, 1],
      [b.user.id, b.user.position.x, b.user.position.y, b.user.position.z],
      [c.user.id, 3, 3, 3]
    ].sort(), 'every member\'s position')
    t.equal(a.peer.ofType('positions').length, 2, 'the others got no catch-up')

    b.peer.clear()
    s.broadcaster.flush()
    t.strictSame(b.peer.raw, [], 'caught up once only')
  })

  t.test('a slow reader still gets presence', async (t) => {
    const s = setup()
    const a = s.join('r1', 'a')
    const b = s.join('r1', 'b')
    s.settle(a.peer, b.peer)
    b.peer.bufferedAmount = SKIP + 1
    s.users.setProfile(a.user, 'A', a.user.state)
    s.broadcaster.flush()
    t.strictSame(b.peer.ofType('presence')[0]?.updated, [{ id: a.user.id, name: 'A' }])
  })

  t.test('a slow reader that left its room is not caught up', async (t) => {
    const s = setup()
    const a = s.join('r1', 'a')
    const b = s.join('r1', 'b')
    s.settle(a.peer, b.peer)
    b.peer.bufferedAmount = SKIP + 1
    s.users.setPosition(a.user, { x: 1, y: 1, z: 1 })
    s.broadcaster.flush()
    s.users.remove(b.user)
    b.peer.bufferedAmount = 0
    s.broadcaster.flush()
    t.strictSame(b.peer.ofType('positions'), [])
  })

  t.test('positions stay in their room', async (t) => {
    const s = setup()
    const a = s.join('r1', 'a')
    const x = s.join('r2', 'x')
    s.settle(a.peer, x.peer)
    s.users.setPosition(a.user, { x: 1, y: 1, z: 1 })
    s.broadcaster.flush()
    t.strictSame(x.peer.raw, [])
  })
})

t.test('slow readers over slowReaderCloseBytes', async (t) => {
  t.test('are closed with 1013 and sent nothing instead of presence', async (t) => {
    const s = setup()
    const a = s.join('r1', 'a')
    const b = s.join('r1', 'b')
    s.settle(a.peer, b.peer)
    b.peer.bufferedAmount = CLOSE + 1
    s.users.setProfile(a.user, 'A', a.user.state)
    s.broadcaster.flush()
    t.strictSame(b.peer.raw, [])
    t.equal(b.peer.closes[0]?.code, CloseCode.tooSlow)
    t.equal(CloseCode.tooSlow, 1013)
    t.equal(s.meter.closed, 1)
    t.strictSame(s.meter.sentCounts, [['presence', 1]], 'only a was counted')
  })

  t.test('exactly slowReaderCloseBytes is not too slow', async (t) => {
    const s = setup()
    const a = s.join('r1', 'a')
    const b = s.join('r1', 'b')
    s.settle(a.peer, b.peer)
    b.peer.bufferedAmount = CLOSE
    s.users.setProfile(a.user, 'A', a.user.state)
    s.broadcaster.flush()
    t.equal(b.peer.raw.length, 1)
    t.strictSame(b.peer.closes, [])
  })

  t.test('are closed when the tick has only positions for them', async (t) => {
    const s = setup()
    const a = s.join('r1', 'a')
    const b = s.join('r1', 'b')
    s.settle(a.peer, b.peer)
    b.peer.bufferedAmount = CLOSE + 1
    s.users.setPosition(a.user, { x: 1, y: 1, z: 1 })
    s.broadcaster.flush()
    t.strictSame(b.peer.raw, [])
    t.equal(b.peer.closes[0]?.code, 1013, 'over 8 MiB buffered: closed with 1013')
  })

  t.test('are closed instead of being sent a direct frame', async (t) => {
    const s = setup()
    const a = s.join('r1', 'a')
    a.peer.bufferedAmount = CLOSE + 1
    s.broadcaster.broadcast('{"type":"pong","serverTime":1}', 'pong', { peer: a.peer })
    t.strictSame(a.peer.raw, [])
    t.equal(a.peer.closes[0]?.code, 1013)
    t.equal(s.meter.total('pong'), 0)
  })
})

t.test('broadcast to one peer, to a room, and to some users', async (t) => {
  const s = setup()
  const a = s.join('r1', 'a')
  const b = s.join('r1', 'b')
  const c = s.join('r1', 'c')
  const x = s.join('r2', 'x')
  s.settle(a.peer, b.peer, c.peer, x.peer)
  s.broadcaster.broadcast('{"type":"pong","serverTime":1}', 'pong', { peer: a.peer })
  t.strictSame(a.peer.raw, ['{"type":"pong","serverTime":1}'])
  t.strictSame(s.meter.sentCounts, [['pong', 1]])

  c.user.peer = null
  const frame = '{"type":"snapshot","room":"r1","users":[]}'
  t.equal(s.broadcaster.broadcast(frame, 'snapshot', { room: 'r1' }), 2)
  t.strictSame(b.peer.raw, [frame])
  t.strictSame(c.peer.raw, [], 'members in grace get nothing')
  t.strictSame(x.peer.raw, [])
  t.equal(s.broadcaster.broadcast(frame, 'snapshot', { room: 'nowhere' }), 0)

  b.peer.clear()
  x.peer.clear()
  t.equal(s.broadcaster.broadcast(frame, 'snapshot', { room: 'r1', except: b.user }), 1, 'except leaves one member out')
  t.strictSame(b.peer.raw, [])
  t.equal(s.broadcaster.broadcast(frame, 'snapshot', { users: [a.user, b.user, c.user, x.user], except: a.user }), 2, 'users: those connected, less except')
  t.strictSame(x.peer.raw, [frame])
  t.strictSame(c.peer.raw, [])
})

t.test('sendData', async (t) => {
  t.test('goes to every connected listener of the sender, in any room, never to the sender', async (t) => {
    const s = setup()
    const sender = s.join('r1', 'sender')
    const sameRoom = s.join('r1', 'same room')
    const otherRoom = s.join('r2', 'other room')
    const inGrace = s.join('r1', 'in grace')
    const deaf = s.join('r1', 'not listening')
    for (const listener of [sameRoom, otherRoom, inGrace]) s.users.setListening(listener.user, [sender.user.id])
    s.users.setListening(sender.user, normalizeListening([sender.user.id, sameRoom.user.id], sender.user.id))
    inGrace.user.peer = null
    s.settle(sender.peer, sameRoom.peer, otherRoom.peer, inGrace.peer, deaf.peer)

    const payload = { text: 'héllo "quoted"', list: [1, 2.5, null, true], nested: { deep: { id: sender.user.id } } }
    const sent = s.broadcaster.sendData(sender.user.id, JSON.stringify(payload))
    t.equal(sent, 2)
    const expected = { type: 'data', from: sender.user.id, payload }
    t.strictSame(sameRoom.peer.frames, [expected])
    t.strictSame(otherRoom.peer.frames, [expected])
    t.strictSame(sender.peer.raw, [], 'never to the sender')
    t.strictSame(inGrace.peer.raw, [], 'not to a listener without a socket')
    t.strictSame(deaf.peer.raw, [])
    t.strictSame(s.meter.sentCounts, [['data', 2]], 'meter counts recipients')
  })

  t.test('any JSON payload arrives as sent, null included', async (t) => {
    const s = setup()
    const sender = s.join('r1', 'sender')
    const listener = s.join('r1', 'listener')
    s.users.setListening(listener.user, [sender.user.id])
    s.settle(sender.peer, listener.peer)
    const payloads: unknown[] = [null, 0, -1.5e-7, '', 'text', [], [[[]]], {}, { a: { b: [null] } }, '\u2028</script>']
    for (const payload of payloads) s.broadcaster.sendData(sender.user.id, JSON.stringify(payload))
    t.strictSame(listener.peer.ofType('data').map((f) => f.payload), payloads)
    t.ok(listener.peer.ofType('data').every((f) => f.from === sender.user.id))
  })

  t.test('with no listeners nobody gets anything', async (t) => {
    const s = setup()
    const sender = s.join('r1', 'sender')
    const other = s.join('r1', 'other')
    s.settle(sender.peer, other.peer)
    t.equal(s.broadcaster.sendData(sender.user.id, '1'), 0)
    t.strictSame(other.peer.raw, [])
    t.strictSame(s.meter.sentCounts, [['data', 0]])
  })

  t.test('a listener over slowReaderCloseBytes is closed instead', async (t) => {
    const s = setup()
    const sender = s.join('r1', 'sender')
    const listener = s.join('r1', 'listener')
    s.users.setListening(listener.user, [sender.user.id])
    s.settle(sender.peer, listener.peer)
    listener.peer.bufferedAmount = CLOSE + 1
    t.equal(s.broadcaster.sendData(sender.user.id, '{}'), 0)
    t.strictSame(listener.peer.raw, [])
    t.equal(listener.peer.closes[0]?.code, 1013)
  })
})
