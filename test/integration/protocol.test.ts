/**
 * Every client and server message row of the wire contract (shared/protocol.md),
 * checked over real sockets.
 */
import t from 'tap'
import type { UserT } from '../../schemas/protocol.js'
import { ManualClock } from '../../src/core/clock.js'
import { harness as setup } from '../helpers.js'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const SECRET = /^[A-Za-z0-9_-]{43}$/

const hasJoined = (id: string) => (m: { joined?: UserT[] }) => (m.joined ?? []).some((u) => u.id === id)
const hasLeft = (id: string) => (m: { left?: string[] }) => (m.left ?? []).includes(id)
const hasUpdated = (id: string) => (m: { updated?: Array<{ id: string }> }) => (m.updated ?? []).some((u) => u.id === id)

t.test('register with no fields: defaults and every welcome field', async (t) => {
  const clock = new ManualClock()
  const { join } = await setup(t, { clock, heartbeatMs: 12_345 })
  const { welcome } = await join()
  t.equal(welcome.type, 'welcome')
  t.equal(welcome.protocol, 1)
  t.match(welcome.id, UUID, 'id is a UUID')
  t.match(welcome.secret, SECRET, 'secret is 32 bytes of base64url')
  t.equal(welcome.room, 'lobby', 'default room')
  t.equal(welcome.resumed, false)
  t.same(welcome.users, [])
  t.equal(welcome.heartbeatMs, 12_345)
  t.equal(welcome.serverTime, clock.now(), 'serverTime is the server clock')
  t.equal(welcome.you.id, welcome.id)
  t.equal(welcome.you.room, 'lobby')
  t.type(welcome.you.name, 'string')
  t.ok(welcome.you.name.length > 0, 'a name is chosen')
  t.same(welcome.you.position, { x: 0, y: 0, z: 0 })
  t.same(welcome.you.state, {})
  t.same(welcome.you.listeningTo, [])
  t.equal(welcome.you.connected, true)
  t.notOk(JSON.stringify(welcome.you).includes(welcome.secret), 'the user object does not carry the secret')
})

t.test('register with fields: z defaults to 0, nulls in state are dropped, name is trimmed', async (t) => {
  const { join } = await setup(t)
  const { welcome } = await join({
    name: '  Ada Lovelace \n',
    room: 'r.1:x-y_z',
    position: { x: 1.5, y: -2 },
    state: { color: 'red', n: 3, on: false, gone: null }
  })
  t.equal(welcome.room, 'r.1:x-y_z')
  t.same(welcome.you, {
    id: welcome.id,
    name: 'Ada Lovelace',
    room: 'r.1:x-y_z',
    position: { x: 1.5, y: -2, z: 0 },
    state: { color: 'red', n: 3, on: false },
    listeningTo: [],
    connected: true
  })
  t.notOk(Object.hasOwn(welcome.you.state, 'gone'), 'null key dropped')
  const other = await join({ room: 'r2', position: { x: 1, y: 2, z: 3 } })
  t.same(other.welcome.you.position, { x: 1, y: 2, z: 3 })
})

t.test('secrets are distinct per user', async (t) => {
  const { join } = await setup(t)
  const a = await join()
  const b = await join()
  t.not(a.welcome.secret, b.welcome.secret)
  t.not(a.welcome.id, b.welcome.id)
})

t.test('welcome.users lists the others; others get presence.joined; the registrant never sees itself join', async (t) => {
  const { join, tick } = await setup(t)
  const a = await join({ name: 'Ann', room: 'r' })
  const b = await join({ name: 'Bob', room: 'r', state: { k: 1 } })
  t.same(b.welcome.users, [a.welcome.you], 'B sees A, and only A')
  const joined = await a.client.next('presence', hasJoined(b.welcome.id))
  t.equal(joined.room, 'r')
  t.same(joined.joined, [b.welcome.you], 'the joined entry is the whole user')
  t.same(joined.left ?? [], [], 'nobody left')

  // Two registrations close together: each is announced to the other, never to itself.
  const c = await join({ name: 'Cy', room: 'r' })
  const d = await join({ name: 'Di', room: 'r' })
  await b.client.next('presence', hasJoined(d.welcome.id))
  await tick()
  const everyone = [a, b, c, d]
  for (const { client, welcome } of everyone) {
    const frames = await client.drainType('presence')
    t.notOk(frames.some(hasJoined(welcome.id)), `${welcome.you.name} got no joined entry for itself`)
    const seen = JSON.stringify([welcome, ...frames, ...client.received])
    for (const other of everyone.filter((e) => e.welcome.id !== welcome.id)) {
      t.notOk(seen.includes(other.welcome.secret), `${welcome.you.name} never got ${other.welcome.you.name}'s secret`)
    }
  }
  t.same(d.welcome.users.map((u) => u.name).sort(), ['Ann', 'Bob', 'Cy'])
})

t.test('update position: positions frame [[id, x, y, z]] with the server time', async (t) => {
  const clock = new ManualClock()
  const { join, tick } = await setup(t, { clock })
  const a = await join({ room: 'r' })
  const b = await join({ room: 'r' })
  await a.client.next('presence', hasJoined(b.welcome.id))
  a.client.send({ type: 'update', position: { x: 1, y: 2, z: 3 } })
  const frame = await b.client.next('positions', (m) => m.p.some(([id]) => id === a.welcome.id))
  t.same(frame.p, [[a.welcome.id, 1, 2, 3]], 'only the user who moved')
  t.equal(frame.t, clock.now(), 't is the server time')

  // A user who did not move has no entry.
  b.client.send({ type: 'update', position: { x: 9, y: 9 } })
  const next = await a.client.next('positions', (m) => m.p.some(([id]) => id === b.welcome.id))
  t.same(next.p, [[b.welcome.id, 9, 9, 0]])
  // The mover may get its own entry; after that, no frame while nobody moves.
  await b.client.next('positions', (m) => m.p.some(([id]) => id === b.welcome.id))
  await tick()
  t.same(await b.client.drainType('positions'), [], 'no frame when nobody moved')
})

t.test('several position updates within one tick are coalesced into one entry with the latest', async (t) => {
  const { join } = await setup(t, { tickHz: 5 })
  const a = await join({ room: 'r' })
  const b = await join({ room: 'r' })
  await a.client.next('presence', hasJoined(b.welcome.id))
  // Right after a tick, so that the burst has a whole tick (200 ms) to land in.
  b.client.send({ type: 'update', position: { x: -1, y: -1 } })
  await b.client.next('positions', (m) => m.p.some(([id]) => id === b.welcome.id))
  a.client.send({ type: 'update', position: { x: 1, y: 1, z: 1 } })
  a.client.send({ type: 'update', position: { x: 2, y: 2, z: 2 } })
  a.client.send({ type: 'update', position: { x: 3, y: 3 } })
  const frame = await b.client.next('positions', (m) => m.p.some(([id]) => id === a.welcome.id))
  const entries = frame.p.filter(([id]) => id === a.welcome.id)
  t.same(entries, [[a.welcome.id, 3, 3, 0]], 'one entry, the latest position')
})

t.test('a position without z has z 0, even when the previous z was 5', async (t) => {
  const { join } = await setup(t)
  const a = await join({ room: 'r' })
  const b = await join({ room: 'r' })
  a.client.send({ type: 'update', position: { x: 1, y: 1, z: 5 } })
  const first = await b.client.next('positions', (m) => m.p.some(([id]) => id === a.welcome.id))
  t.same(first.p.find(([id]) => id === a.welcome.id), [a.welcome.id, 1, 1, 5])
  a.client.send({ type: 'update', position: { x: 2, y: 2 } })
  const second = await b.client.next('positions', (m) => m.p.some(([id]) => id === a.welcome.id))
  t.same(second.p.find(([id]) => id === a.welcome.id), [a.welcome.id, 2, 2, 0])
  b.client.send({ type: 'sync' })
  const snapshot = await b.client.next('snapshot')
  t.same(snapshot.users.find((u) => u.id === a.welcome.id)?.position, { x: 2, y: 2, z: 0 })
})

t.test('update state and name: presence.updated carries only the changed fields, state whole', async (t) => {
  const { join } = await setup(t)
  const a = await join({ name: 'Ann', room: 'r', state: { color: 'red', size: 2, mood: 'ok' } })
  const b = await join({ room: 'r' })
  await a.client.next('presence', hasJoined(b.welcome.id))

  a.client.send({ type: 'update', state: { color: null, size: 3, hat: true } })
  const stateOnly = await b.client.next('presence', hasUpdated(a.welcome.id))
  t.equal(stateOnly.room, 'r')
  t.same(stateOnly.updated, [{ id: a.welcome.id, state: { size: 3, mood: 'ok', hat: true } }], 'state only, merged, null removed')

  a.client.send({ type: 'update', name: '   Annie  ' })
  const nameOnly = await b.client.next('presence', hasUpdated(a.welcome.id))
  t.same(nameOnly.updated, [{ id: a.welcome.id, name: 'Annie' }], 'name only, trimmed')

  a.client.send({ type: 'update', name: 'Ann', state: { mood: 'good' }, position: { x: 4, y: 4 } })
  const both = await b.client.next('presence', hasUpdated(a.welcome.id))
  t.same(both.updated, [{ id: a.welcome.id, name: 'Ann', state: { size: 3, mood: 'good', hat: true } }])
  await b.client.next('positions', (m) => m.p.some(([id, x]) => id === a.welcome.id && x === 4))

  // The sender sees the same view in a snapshot.
  b.client.send({ type: 'sync' })
  const snapshot = await b.client.next('snapshot')
  t.same(snapshot.users.find((u) => u.id === a.welcome.id)?.state, { size: 3, mood: 'good', hat: true })
})

t.test('an update that changes nothing yields no presence entry', async (t) => {
  const { join, tick } = await setup(t)
  const a = await join({ name: 'Ann', room: 'r', state: { color: 'red' } })
  const b = await join({ room: 'r' })
  await a.client.next('presence', hasJoined(b.welcome.id))
  await tick()
  await b.client.drainType('presence')
  a.client.send({ type: 'update', name: ' Ann ', state: { color: 'red', absent: null } })
  a.client.send({ type: 'update', state: {} })
  await tick()
  t.same(await b.client.drainType('presence'), [], 'nothing changed, nothing sent')
})

t.test('changes within one tick are coalesced: at most one updated entry per user per frame', async (t) => {
  const { join } = await setup(t, { tickHz: 5 })
  const a = await join({ name: 'Ann', room: 'r', state: { n: 0 } })
  const b = await join({ room: 'r' })
  await a.client.next('presence', hasJoined(b.welcome.id))
  b.client.send({ type: 'update', position: { x: 1, y: 1 } })
  await b.client.next('positions', (m) => m.p.some(([id]) => id === b.welcome.id))
  a.client.send({ type: 'update', state: { n: 1 } })
  a.client.send({ type: 'update', state: { n: 2 }, name: 'X' })
  a.client.send({ type: 'update', state: { n: 3 }, name: 'Ann' })
  const frame = await b.client.next('presence', hasUpdated(a.welcome.id))
  t.same(frame.updated, [{ id: a.welcome.id, state: { n: 3 } }], 'one entry; the name ended where it started')
})

t.test('updatelisteningto: own id dropped, duplicates collapse, ids lowered, absent ids kept', async (t) => {
  const { join, tick } = await setup(t)
  const a = await join({ room: 'r' })
  const b = await join({ room: 'r' })
  await a.client.next('presence', hasJoined(b.welcome.id))
  const absent = '0f0e0d0c-0b0a-4908-8706-050403020100'
  a.client.send({
    type: 'updatelisteningto',
    listeningTo: [a.welcome.id, b.welcome.id, b.welcome.id.toUpperCase(), absent.toUpperCase(), absent, a.welcome.id.toUpperCase()]
  })
  const frame = await b.client.next('presence', hasUpdated(a.welcome.id))
  const entry = frame.updated?.find((u) => u.id === a.welcome.id)
  t.same(Object.keys(entry ?? {}).sort(), ['id', 'listeningTo'], 'only listeningTo changed')
  t.same([...(entry?.listeningTo ?? [])].sort(), [b.welcome.id, absent].sort())
  await tick()
  await b.client.drainType('presence')

  // Same set again (other order and case): no entry.
  a.client.send({ type: 'updatelisteningto', listeningTo: [absent.toUpperCase(), b.welcome.id] })
  await tick()
  t.same(await b.client.drainType('presence'), [], 'the same set changes nothing')

  a.client.send({ type: 'updatelisteningto', listeningTo: [] })
  const cleared = await b.client.next('presence', hasUpdated(a.welcome.id))
  t.same(cleared.updated, [{ id: a.welcome.id, listeningTo: [] }])
})

t.test('data goes to every connected listener in any room, never to the sender or non-listeners', async (t) => {
  const { join, tick } = await setup(t)
  const sender = await join({ name: 'S', room: 'r1' })
  const near = await join({ name: 'near', room: 'r1' })
  const far = await join({ name: 'far', room: 'r2' })
  const deaf = await join({ name: 'deaf', room: 'r1' })
  const other = await join({ name: 'other', room: 'r1' })
  near.client.send({ type: 'updatelisteningto', listeningTo: [sender.welcome.id] })
  far.client.send({ type: 'updatelisteningto', listeningTo: [sender.welcome.id.toUpperCase()] })
  // The sender lists itself (dropped) and another user; `other` listens to someone else.
  sender.client.send({ type: 'updatelisteningto', listeningTo: [sender.welcome.id, near.welcome.id] })
  other.client.send({ type: 'updatelisteningto', listeningTo: [near.welcome.id] })
  // Each client's messages are handled in order: a round trip proves the listening sets are in place.
  for (const c of [near, far, sender, other]) await c.client.drainType('data')

  const payload = { hello: ['world', 1, true, null], nested: { a: { b: 2 } } }
  sender.client.send({ type: 'data', payload })
  t.same(await near.client.next('data'), { type: 'data', from: sender.welcome.id, payload }, 'listener in the same room')
  t.same(await far.client.next('data'), { type: 'data', from: sender.welcome.id, payload }, 'listener in another room')

  for (const value of [null, 0, 'text', [1, 2]]) {
    sender.client.send({ type: 'data', payload: value })
    t.same((await far.client.next('data')).payload, value, `payload ${JSON.stringify(value)} delivered as is`)
  }
  await tick()
  t.same(await sender.client.drainType('data'), [], 'never to the sender')
  t.same(await deaf.client.drainType('data'), [], 'not to a non-listener')
  t.same(await other.client.drainType('data'), [], 'not to a user who listens to someone else')
  const later = [null, 0, 'text', [1, 2]].map((payload) => ({ type: 'data', from: sender.welcome.id, payload }))
  t.same(await near.client.drainType('data'), later, 'the listener in the room got the later payloads too, in order')
})

t.test('data payload size is measured as the server re-serializes it', async (t) => {
  const { join } = await setup(t)
  const sender = await join()
  const listener = await join()
  listener.client.send({ type: 'updatelisteningto', listeningTo: [sender.welcome.id] })
  await listener.client.drainType('data')
  // Exactly 8 KiB once re-serialized, padded with whitespace to well over 8 KiB on the wire.
  const text = 'x'.repeat(8188)
  t.equal(Buffer.byteLength(JSON.stringify([text])), 8192)
  const padded = `{"type":"data","payload":[${' '.repeat(2000)}${JSON.stringify(text)}${' '.repeat(2000)}]}`
  t.ok(padded.length > 12_000, 'over 8 KiB as sent')
  sender.client.send(padded)
  const got = await listener.client.next('data')
  t.same(got.payload, [text])
  t.same(await sender.client.drainType('error'), [], 'no error for the sender')
})

t.test('ping: pong at once, with t when the ping had one and without t otherwise', async (t) => {
  const clock = new ManualClock()
  const { join, connect } = await setup(t, { clock })
  const { client } = await join()
  client.send({ type: 'ping', t: 42.5 })
  const pong = await client.next('pong')
  t.same(pong, { type: 'pong', t: 42.5, serverTime: clock.now() })
  client.send({ type: 'ping' })
  const bare = await client.next('pong')
  t.notOk(Object.hasOwn(bare, 't'), 't omitted')
  t.same(bare, { type: 'pong', serverTime: clock.now() })
  const guest = await connect()
  guest.send({ type: 'ping', t: 0 })
  t.same(await guest.next('pong'), { type: 'pong', t: 0, serverTime: clock.now() }, 'works before register, t 0 kept')
})

t.test('join: old room sees left, new room sees joined, reply is the new room\'s snapshot; position, state and listening kept', async (t) => {
  const { join, tick } = await setup(t)
  const mover = await join({ name: 'M', room: 'old', position: { x: 1, y: 2, z: 3 }, state: { s: 'x' } })
  const oldie = await join({ name: 'O', room: 'old' })
  const newbie = await join({ name: 'N', room: 'new' })
  const target = '0f0e0d0c-0b0a-4908-8706-050403020100'
  mover.client.send({ type: 'updatelisteningto', listeningTo: [target] })
  await mover.client.drainType('error')
  await tick()
  await oldie.client.drainType('presence')

  mover.client.send({ type: 'join', room: 'new' })
  const snapshot = await mover.client.next('snapshot')
  t.equal(snapshot.room, 'new')
  t.same(snapshot.users, [newbie.welcome.you], 'the others in the new room')

  const left = await oldie.client.next('presence', hasLeft(mover.welcome.id))
  t.equal(left.room, 'old')
  t.same(left.left, [mover.welcome.id])
  const joined = await newbie.client.next('presence', hasJoined(mover.welcome.id))
  t.equal(joined.room, 'new')
  t.same(joined.joined, [{
    id: mover.welcome.id,
    name: 'M',
    room: 'new',
    position: { x: 1, y: 2, z: 3 },
    state: { s: 'x' },
    listeningTo: [target],
    connected: true
  }], 'position, state and listening set kept')
  await tick()
  t.notOk((await mover.client.drainType('presence')).some(hasJoined(mover.welcome.id)), 'the mover does not see itself join')

  // From now on the mover's traffic goes to the new room only.
  mover.client.send({ type: 'update', position: { x: 5, y: 5 } })
  await newbie.client.next('positions', (m) => m.p.some(([id, x]) => id === mover.welcome.id && x === 5))
  await tick()
  t.same(await oldie.client.drainType('positions'), [], 'the old room no longer sees its moves')
  mover.client.send({ type: 'sync' })
  t.same((await mover.client.next('snapshot')).users.map((u) => u.id), [newbie.welcome.id])
})

t.test('joining the room you are in only replies a snapshot', async (t) => {
  const { join, tick } = await setup(t)
  const a = await join({ room: 'r' })
  const b = await join({ room: 'r' })
  await a.client.next('presence', hasJoined(b.welcome.id))
  await tick()
  await a.client.drainType('presence')
  await b.client.drainType('presence')
  b.client.send({ type: 'join', room: 'r' })
  const snapshot = await b.client.next('snapshot')
  t.same(snapshot, { type: 'snapshot', room: 'r', users: [a.welcome.you] })
  await tick()
  t.same(await a.client.drainType('presence'), [], 'the room sees nothing')
  t.same(await b.client.drainType('presence'), [], 'the joiner sees nothing either')
})

t.test('sync replies a snapshot of the current room (the others)', async (t) => {
  const { join } = await setup(t)
  const a = await join({ room: 'r', name: 'A' })
  const b = await join({ room: 'r', name: 'B' })
  await join({ room: 'elsewhere' })
  a.client.send({ type: 'sync' })
  const snapshot = await a.client.next('snapshot')
  t.same(snapshot, { type: 'snapshot', room: 'r', users: [b.welcome.you] })
})

t.test('leave: the room sees left, the server closes with 1000, the secret stops working', async (t) => {
  const { join, connect } = await setup(t)
  const a = await join({ room: 'r' })
  const b = await join({ room: 'r' })
  await a.client.next('presence', hasJoined(b.welcome.id))
  b.client.send({ type: 'leave' })
  const closed = await b.client.whenClosed()
  t.equal(closed.code, 1000)
  const left = await a.client.next('presence', hasLeft(b.welcome.id))
  t.same(left.left, [b.welcome.id])
  const again = await connect()
  again.send({ type: 'reconnect', secret: b.welcome.secret })
  const error = await again.next('error')
  t.equal(error.code, 'invalid_secret')
  t.equal(error.ref, 'reconnect')
  a.client.send({ type: 'sync' })
  t.same((await a.client.next('snapshot')).users, [], 'gone from the room')
})

t.test('two rooms are isolated: nothing of room A reaches room B', async (t) => {
  const { join, tick, settle } = await setup(t)
  const a1 = await join({ room: 'A' })
  const b1 = await join({ room: 'B' })
  t.same(b1.welcome.users, [], 'B does not list A\'s users')
  const a2 = await join({ room: 'A' })
  await settle(a1, a2)
  a1.client.send({ type: 'update', position: { x: 1, y: 1 }, state: { v: 1 } })
  a2.client.send({ type: 'update', name: 'renamed' })
  await a2.client.next('positions', (m) => m.p.some(([id]) => id === a1.welcome.id))
  await a1.client.next('presence', hasUpdated(a2.welcome.id))
  a2.client.send({ type: 'leave' })
  await a1.client.next('presence', hasLeft(a2.welcome.id))
  await tick()
  t.same(await b1.client.drainType('presence'), [], 'no presence from room A')
  t.same(await b1.client.drainType('positions'), [], 'no positions from room A')
  b1.client.send({ type: 'sync' })
  t.same((await b1.client.next('snapshot')).users, [])
})

t.test('__proto__, constructor and toString are ordinary state keys, and __proto__ an ordinary room', async (t) => {
  const { join, connect, settle } = await setup(t)
  const client = await connect()
  client.send('{"type":"register","room":"__proto__","state":{"__proto__":"p","constructor":1,"toString":true}}')
  const welcome = await client.next('welcome')
  t.equal(welcome.room, '__proto__')
  t.same(Object.keys(welcome.you.state).sort(), ['__proto__', 'constructor', 'toString'])
  t.equal(welcome.you.state.constructor, 1)
  t.equal(welcome.you.state.toString, true)
  const other = await join({ room: '__proto__' })
  t.same(other.welcome.users.map((u) => u.id), [welcome.id], 'the room works like any other')
  t.same(other.welcome.users[0]?.state, welcome.you.state)
  await settle(other)
  client.send('{"type":"update","state":{"__proto__":null,"constructor":2}}')
  const updated = await other.client.next('presence', hasUpdated(welcome.id))
  t.same(Object.keys(updated.updated?.[0]?.state ?? {}).sort(), ['constructor', 'toString'], '__proto__ removed like any key')
})
