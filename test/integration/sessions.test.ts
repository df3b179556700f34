/**
 * Sessions over real sockets: reconnect, grace, takeover, expiry and leave. Every
 * time-based rule runs on an injected ManualClock: the grace and session expiries
 * are checked on each tick against clock.now(), so advancing the clock and then
 * waiting for the next frame is deterministic.
 */
import t from 'tap'
import type { ShoalOptions } from '../../index.js'
import type { PresenceMessageT, UserT } from '../../schemas/protocol.js'
import { ManualClock } from '../../src/core/clock.js'
import { harness, type Joined } from '../helpers.js'
import { within } from '../wait.js'

const GRACE_MS = 1_000
const TTL_MS = 100_000

/** A server on a ManualClock with short grace and TTL, and its clients. */
async function setup (t: { teardown: (fn: () => unknown) => void }, options: ShoalOptions = {}) {
  const clock = new ManualClock()
  return { clock, ...await harness(t, { clock, graceMs: GRACE_MS, sessionTtlMs: TTL_MS, ...options }) }
}

/** Everything the presence frames say about one user, entry by entry. */
function about (frames: PresenceMessageT[], id: string): Array<{ joined?: UserT, left?: true, updated?: object }> {
  const out: Array<{ joined?: UserT, left?: true, updated?: object }> = []
  for (const frame of frames) {
    for (const user of frame.joined ?? []) if (user.id === id) out.push({ joined: user })
    for (const left of frame.left ?? []) if (left === id) out.push({ left: true })
    for (const update of frame.updated ?? []) if (update.id === id) out.push({ updated: update })
  }
  return out
}

const isUpdate = (id: string, connected: boolean) => (m: PresenceMessageT) =>
  (m.updated ?? []).some((u) => u.id === id && u.connected === connected)
const hasLeft = (id: string) => (m: PresenceMessageT) => (m.left ?? []).includes(id)
const hasJoined = (id: string) => (m: PresenceMessageT) => (m.joined ?? []).some((u) => u.id === id)

/** A user with something in every field a reconnect must restore. */
async function richUser (join: (fields: Record<string, unknown>) => Promise<Joined>, listenTo: string): Promise<{ joined: Joined, expected: UserT }> {
  const joined = await join({ name: 'Rich', room: 'r', position: { x: 1, y: 2, z: 3 }, state: { color: 'red', n: 7, ok: true } })
  joined.client.send({ type: 'updatelisteningto', listeningTo: [listenTo] })
  joined.client.send({ type: 'update', position: { x: 4, y: 5, z: 6 }, state: { n: 8 } })
  await joined.client.drainType('pong')
  const expected: UserT = {
    id: joined.welcome.id,
    name: 'Rich',
    room: 'r',
    position: { x: 4, y: 5, z: 6 },
    state: { color: 'red', n: 8, ok: true },
    listeningTo: [listenTo],
    connected: true
  }
  return { joined, expected }
}

t.test('reconnect within grace restores the user; the room sees connected:false, then connected:true and nothing else', async (t) => {
  const { join, resume, settle, tick, clock } = await setup(t)
  const observer = await join({ name: 'O', room: 'r' })
  const { joined: a, expected } = await richUser(join, observer.welcome.id)
  await settle(observer, a)

  a.client.close()
  t.equal((await a.client.whenClosed()).code, 1005, 'closed by the client, without a code')
  const down = await observer.client.next('presence', isUpdate(a.welcome.id, false))
  t.equal(down.room, 'r')
  t.same(down.updated, [{ id: a.welcome.id, connected: false }], 'only connected changed')

  // Data for a listener in grace is not delivered (nor kept for later).
  observer.client.send({ type: 'data', payload: 'while away' })
  await observer.client.drainType('pong')

  clock.advance(GRACE_MS - 1)
  const back = await resume(a.welcome.secret)
  t.equal(back.welcome.resumed, true)
  t.equal(back.welcome.id, a.welcome.id)
  t.equal(back.welcome.secret, a.welcome.secret, 'the same secret (no rotation)')
  t.equal(back.welcome.room, 'r')
  t.same(back.welcome.you, expected, 'id, name, room, position, state and listeningTo restored')
  t.same(back.welcome.users, [observer.welcome.you], 'the others in the room')
  t.equal(back.welcome.protocol, 1)

  const up = await observer.client.next('presence', isUpdate(a.welcome.id, true))
  t.same(up.updated, [{ id: a.welcome.id, connected: true }])
  await tick()
  t.same(about(await observer.client.drainType('presence'), a.welcome.id), [], 'no joined, no left, nothing else')

  // The resumed user acts as before: it moves, and it still gets data from who it listens to.
  back.client.send({ type: 'update', position: { x: 9, y: 9 } })
  await observer.client.next('positions', (m) => m.p.some(([id, x]) => id === a.welcome.id && x === 9))
  observer.client.send({ type: 'data', payload: 'hi' })
  t.same(await back.client.next('data'), { type: 'data', from: observer.welcome.id, payload: 'hi' })
  t.same(await back.client.drainType('data'), [], 'nothing sent while away was replayed')
})

t.test('takeover: reconnect while the old socket is open closes it with 4001 and shows the room nothing', async (t) => {
  const { join, resume, settle, tick } = await setup(t)
  const observer = await join({ name: 'O', room: 'r' })
  const { joined: first, expected } = await richUser(join, observer.welcome.id)
  await settle(observer, first)

  const second = await resume(first.welcome.secret)
  t.equal((await first.client.whenClosed()).code, 4001, 'the old socket is closed as replaced')
  t.equal(second.welcome.resumed, true)
  t.equal(second.welcome.secret, first.welcome.secret)
  t.same(second.welcome.you, expected)
  await tick()
  t.same(await observer.client.drainType('presence'), [], 'no left, no joined, no connected change')

  // A third socket takes over from the second.
  const third = await resume(first.welcome.secret)
  t.equal((await second.client.whenClosed()).code, 4001)
  t.equal(third.welcome.id, first.welcome.id)
  await tick()
  t.same(await observer.client.drainType('presence'), [], 'still nothing')
  observer.client.send({ type: 'sync' })
  const snapshot = await observer.client.next('snapshot')
  t.same(snapshot.users, [expected], 'one user, connected')

  third.client.send({ type: 'update', position: { x: 1, y: 1 } })
  await observer.client.next('positions', (m) => m.p.some(([id, x]) => id === first.welcome.id && x === 1))
})

t.test('a socket closed without leave: connected:false at once, presence.left after graceMs', async (t) => {
  const { join, settle, tick, clock, server } = await setup(t)
  const observer = await join({ room: 'r' })
  const a = await join({ room: 'r' })
  await settle(observer, a)

  a.client.close()
  const down = await observer.client.next('presence', isUpdate(a.welcome.id, false))
  t.same(down.updated, [{ id: a.welcome.id, connected: false }])
  t.same(down.left ?? [], [], 'not left yet')

  clock.advance(GRACE_MS - 1)
  await tick()
  await tick()
  t.same(about(await observer.client.drainType('presence'), a.welcome.id), [], 'still in the room just before graceMs')
  t.equal(server.app.shoal.user(a.welcome.id)?.connected, false)

  clock.advance(2)
  const left = await observer.client.next('presence', hasLeft(a.welcome.id))
  t.equal(left.room, 'r')
  t.same(left.left, [a.welcome.id])
  t.same(about([left], a.welcome.id), [{ left: true }], 'only the leave')
  observer.client.send({ type: 'sync' })
  t.same((await observer.client.next('snapshot')).users, [], 'gone from the room')
})

t.test('a user in grace is listed with connected:false in welcome.users and in snapshots', async (t) => {
  const { join, settle, clock } = await setup(t)
  const observer = await join({ room: 'r' })
  const a = await join({ name: 'Gone', room: 'r', state: { s: 1 } })
  await settle(observer, a)
  a.client.close()
  await observer.client.next('presence', isUpdate(a.welcome.id, false))
  const inGrace = { ...a.welcome.you, connected: false }

  const newcomer = await join({ room: 'r' })
  t.same(newcomer.welcome.users.find((u) => u.id === a.welcome.id), inGrace, 'in the newcomer\'s welcome')
  t.equal(newcomer.welcome.users.length, 2)

  observer.client.send({ type: 'sync' })
  t.same((await observer.client.next('snapshot')).users.find((u) => u.id === a.welcome.id), inGrace, 'in a sync snapshot')

  const mover = await join({ room: 'elsewhere' })
  mover.client.send({ type: 'join', room: 'r' })
  t.same((await mover.client.next('snapshot')).users.find((u) => u.id === a.welcome.id), inGrace, 'in a join snapshot')

  clock.advance(GRACE_MS + 1)
  await newcomer.client.next('presence', hasLeft(a.welcome.id))
})

t.test('reconnect after grace, before expiry: the user is restored and the room sees it join again', async (t) => {
  const { join, resume, settle, tick, clock } = await setup(t)
  const observer = await join({ name: 'O', room: 'r' })
  const { joined: a, expected } = await richUser(join, observer.welcome.id)
  await settle(observer, a)
  a.client.close()
  await observer.client.next('presence', isUpdate(a.welcome.id, false))
  clock.advance(GRACE_MS + 1)
  await observer.client.next('presence', hasLeft(a.welcome.id))

  clock.advance(TTL_MS - GRACE_MS - 2)
  const back = await resume(a.welcome.secret)
  t.equal(back.welcome.resumed, true)
  t.equal(back.welcome.secret, a.welcome.secret)
  t.same(back.welcome.you, expected, 'id, name, room, position, state and listeningTo restored')
  t.same(back.welcome.users, [observer.welcome.you])

  const joined = await observer.client.next('presence', hasJoined(a.welcome.id))
  t.same(joined.joined, [expected], 'joined again, whole and connected')
  await tick()
  t.same(about(await observer.client.drainType('presence'), a.welcome.id), [], 'nothing more')
  await tick()
  t.same(about(await back.client.drainType('presence'), a.welcome.id), [], 'the resumed user does not see itself join')

  observer.client.send({ type: 'data', payload: 1 })
  t.equal((await back.client.next('data')).payload, 1, 'listening restored')
})

t.test('after sessionTtlMs the secret is refused with invalid_secret', async (t) => {
  const { join, connect, settle, clock } = await setup(t)
  const observer = await join({ room: 'r' })
  const a = await join({ room: 'r' })
  await settle(observer, a)
  a.client.close()
  await observer.client.next('presence', isUpdate(a.welcome.id, false))
  clock.advance(GRACE_MS + 1)
  await observer.client.next('presence', hasLeft(a.welcome.id))
  clock.advance(TTL_MS)

  const client = await connect()
  client.send({ type: 'reconnect', secret: a.welcome.secret })
  const error = await client.next('error')
  t.equal(error.code, 'invalid_secret')
  t.equal(error.ref, 'reconnect')
  t.same(await client.drainType('error'), [], 'one error')
  client.send({ type: 'reconnect', secret: a.welcome.secret })
  t.equal((await client.next('error')).code, 'invalid_secret', 'and again')
  const welcome = await client.register({ room: 'r' })
  t.equal(welcome.resumed, false, 'the connection may register')
})

t.test('a session that expires while still in grace is refused too', async (t) => {
  const { join, connect, settle, clock } = await setup(t, { graceMs: 5_000, sessionTtlMs: 2_000 })
  const observer = await join({ room: 'r' })
  const a = await join({ room: 'r' })
  await settle(observer, a)
  a.client.close()
  await observer.client.next('presence', isUpdate(a.welcome.id, false))
  clock.advance(2_000)
  const client = await connect()
  client.send({ type: 'reconnect', secret: a.welcome.secret })
  t.equal((await client.next('error')).code, 'invalid_secret')
})

t.test('expiry counts from when the user was last connected, not from register', async (t) => {
  const { join, resume, settle, clock } = await setup(t)
  const observer = await join({ room: 'r' })
  const a = await join({ room: 'r' })
  await settle(observer, a)
  clock.advance(TTL_MS * 3)
  await settle(observer, a)
  a.client.close()
  await observer.client.next('presence', isUpdate(a.welcome.id, false))
  clock.advance(GRACE_MS + 1)
  await observer.client.next('presence', hasLeft(a.welcome.id))
  const back = await resume(a.welcome.secret)
  t.equal(back.welcome.resumed, true)
  t.equal(back.welcome.id, a.welcome.id)
})

t.test('leave ends the session for good: left (without a connected change), close 1000, secret refused', async (t) => {
  const { join, connect, settle, tick, clock } = await setup(t)
  const observer = await join({ room: 'r' })
  const a = await join({ room: 'r' })
  await settle(observer, a)
  // A change not yet written to the session store, then leave in the same breath.
  a.client.send({ type: 'update', state: { unsaved: true } })
  a.client.send({ type: 'leave' })
  t.equal((await a.client.whenClosed()).code, 1000)
  await observer.client.next('presence', hasLeft(a.welcome.id))
  await tick()
  const frames = await observer.client.drainType('presence')
  t.same(about(frames, a.welcome.id).filter((e) => e.updated !== undefined && 'connected' in e.updated), [], 'no connected:false')

  for (const advance of [0, GRACE_MS + 1]) {
    clock.advance(advance)
    await tick()
    const client = await connect()
    client.send({ type: 'reconnect', secret: a.welcome.secret })
    t.equal((await client.next('error')).code, 'invalid_secret', `refused ${advance} ms later`)
    client.close()
  }
  await tick()
  t.same(about(await observer.client.drainType('presence'), a.welcome.id), [], 'no later presence for that user')
})

t.test('leave after a takeover ends the session: the room sees one left and nothing else', async (t) => {
  const { join, resume, settle, tick } = await setup(t)
  const observer = await join({ room: 'r' })
  const a = await join({ room: 'r' })
  await settle(observer, a)
  const b = await resume(a.welcome.secret)
  await a.client.whenClosed()
  t.equal(b.welcome.id, a.welcome.id)
  b.client.send({ type: 'leave' })
  t.equal((await b.client.whenClosed()).code, 1000)
  await observer.client.next('presence', hasLeft(a.welcome.id))
  await tick()
  t.same(about(await observer.client.drainType('presence'), a.welcome.id), [])
})

t.test('messages sent right behind reconnect (without waiting for welcome) act as the resumed user', async (t) => {
  const { join, connect, settle } = await setup(t)
  const observer = await join({ room: 'r' })
  const a = await join({ room: 'r', name: 'A' })
  await settle(observer, a)
  a.client.close()
  await observer.client.next('presence', isUpdate(a.welcome.id, false))

  const client = await connect()
  client.send({ type: 'reconnect', secret: a.welcome.secret })
  client.send({ type: 'update', name: 'A2', position: { x: 3, y: 3 } })
  client.send({ type: 'sync' })
  client.send({ type: 'reconnect', secret: a.welcome.secret })
  const welcome = await client.next('welcome')
  t.equal(welcome.id, a.welcome.id)
  t.same((await client.next('snapshot')).users.map((u) => u.id), [observer.welcome.id], 'sync answered as the user')
  const error = await client.next('error')
  t.equal(error.code, 'already_registered', 'a second reconnect on the same connection')
  t.notOk(client.received.some((m) => m.type === 'error'), 'no not_registered for the pipelined messages')
  await observer.client.next('presence', (m) => (m.updated ?? []).some((u) => u.id === a.welcome.id && u.name === 'A2'))
  await observer.client.next('positions', (m) => m.p.some(([id, x]) => id === a.welcome.id && x === 3))
})

t.test('two sockets resuming a stored session at once: one user, the loser closed with 4001, the room sees one join', async (t) => {
  const { join, connect, settle, tick, clock } = await setup(t)
  const observer = await join({ room: 'r' })
  const a = await join({ room: 'r' })
  await settle(observer, a)
  a.client.close()
  await observer.client.next('presence', isUpdate(a.welcome.id, false))
  clock.advance(GRACE_MS + 1)
  await observer.client.next('presence', hasLeft(a.welcome.id))

  const one = await connect()
  const two = await connect()
  one.send({ type: 'reconnect', secret: a.welcome.secret })
  two.send({ type: 'reconnect', secret: a.welcome.secret })
  const [w1, w2] = await Promise.all([one.next('welcome'), two.next('welcome')])
  t.equal(w1.id, a.welcome.id)
  t.equal(w2.id, a.welcome.id)
  const closed = await within('one of the two racing sockets to close', Promise.race([one.closed.then((c) => ({ c, loser: one, winner: two })), two.closed.then((c) => ({ c, loser: two, winner: one }))]))
  t.equal(closed.c.code, 4001, 'the one resumed first is replaced')
  await observer.client.next('presence', hasJoined(a.welcome.id))
  await tick()
  t.same(about(await observer.client.drainType('presence'), a.welcome.id), [], 'one join and nothing else')
  closed.winner.send({ type: 'sync' })
  await closed.winner.next('snapshot')
  t.equal(closed.winner.socket.readyState, closed.winner.socket.OPEN, 'the winner stays connected')
  observer.client.send({ type: 'sync' })
  const users = (await observer.client.next('snapshot')).users.filter((u) => u.id === a.welcome.id)
  t.equal(users.length, 1, 'one user')
  t.equal(users[0]?.connected, true)
})
