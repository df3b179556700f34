/**
 * The protocol engine without Fastify or ws: a fake socket, a manual clock, the
 * real user store, sessions, broadcaster and handlers. Each test is what a client
 * sees for what it sends.
 */
import t from 'tap'
import type { ErrorCodeT } from '../../schemas/protocol.js'
import { createApi } from '../../src/core/api.js'
import { hashSecret } from '../../src/core/sessions/secrets.js'
import type { Connection } from '../../src/core/transport/connection.js'
import { errorOf, settle, setup } from './engine-harness.js'
import { serializationsDuring } from './fakes.js'

t.test('register: a welcome with a fresh identity, and the room hears of the newcomer at the next tick', async (t) => {
  const s = setup()
  const ann = s.registered('Ann')
  s.broadcaster.flush()
  t.match(ann.welcome, { protocol: 1, room: 'r1', resumed: false, you: { name: 'Ann', connected: true }, users: [], tickHz: 20, heartbeatMs: 10_000 })
  t.match(ann.welcome.secret, /^[A-Za-z0-9_-]{43}$/)
  t.equal(s.connections.size, 1)

  const bob = s.registered('Bob')
  t.strictSame(bob.welcome.users.map((user) => user.name), ['Ann'], 'a newcomer\'s welcome lists who is there')
  s.broadcaster.flush()
  t.strictSame(ann.socket.only('presence').joined?.map((user) => user.name), ['Bob'])
  t.strictSame(bob.socket.ofType('presence'), [], 'the newcomer is not told of itself')
})

t.test('register without a name or room: a guest in the lobby', async (t) => {
  const s = setup()
  const client = s.connect()
  client.send({ type: 'register' })
  const welcome = client.socket.only('welcome')
  t.match(welcome.you.name, /^guest-[0-9a-f]{4}$/)
  t.equal(welcome.room, 'lobby')
})

t.test('a bad register is refused with one error and creates no user', async (t) => {
  const s = setup()
  const client = s.connect()
  client.send({ type: 'register', name: '   ' })
  t.strictSame(errorOf(client.socket), { code: 'invalid_message', ref: 'register' })
  t.equal(s.users.userCount, 0)
  client.socket.clear()
  client.send({ type: 'register', state: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, i])) })
  t.match(client.socket.only('error'), { code: 'invalid_message', message: /state: would exceed 32 keys/ })
  t.equal(s.users.userCount, 0)
})

t.test('update: positions reach the room at the next tick, and the session store gets the change without the handler asking', async (t) => {
  const s = setup()
  const ann = s.registered('Ann')
  const bob = s.registered('Bob')
  s.broadcaster.flush()
  await s.sessions.persist()
  ann.socket.clear()
  bob.socket.clear()
  bob.send({ type: 'update', position: { x: 3, y: 4 }, state: { mood: 'ok' } })
  t.strictSame(bob.socket.frames, [], 'no reply to a good update')
  s.broadcaster.flush()
  t.strictSame(ann.socket.only('positions').p, [[bob.id, 3, 4, 0]])
  t.strictSame(ann.socket.only('presence').updated, [{ id: bob.id, state: { mood: 'ok' } }])
  await s.sessions.persist()
  t.match(await s.store.load(hashSecret(bob.welcome.secret)), { position: { x: 3, y: 4, z: 0 }, state: { mood: 'ok' } })
})

t.test('a bad update changes nothing and gets one error', async (t) => {
  const s = setup()
  const ann = s.registered('Ann')
  ann.send({ type: 'update', position: { x: 1, y: 1 }, state: { 'bad key': 1 } })
  t.match(ann.socket.only('error'), { code: 'invalid_message', ref: 'update', message: /key must match/ })
  t.strictSame(s.users.get(ann.id)?.position, { x: 0, y: 0, z: 0 })
})

t.test('join: a snapshot of the new room; the old room sees the user leave', async (t) => {
  const s = setup()
  const ann = s.registered('Ann', 'r1')
  const bob = s.registered('Bob', 'r1')
  const cid = s.registered('Cid', 'r2')
  s.broadcaster.flush()
  ann.socket.clear()
  cid.socket.clear()
  bob.send({ type: 'join', room: 'r2' })
  t.match(bob.socket.only('snapshot'), { room: 'r2', users: [{ name: 'Cid' }] })
  s.broadcaster.flush()
  t.strictSame(ann.socket.only('presence').left, [bob.id])
  t.strictSame(cid.socket.only('presence').joined?.map((user) => user.name), ['Bob'])
  t.equal(s.users.get(bob.id)?.room, 'r2')
})

t.test('data goes to the listeners only, across rooms; a payload over the limit is refused', async (t) => {
  const s = setup()
  const ann = s.registered('Ann', 'r1')
  const bob = s.registered('Bob', 'r2')
  const cid = s.registered('Cid', 'r1')
  bob.send({ type: 'updatelisteningto', listeningTo: [ann.id.toUpperCase()] })
  ann.send({ type: 'data', payload: { hello: 'world' } })
  t.strictSame(bob.socket.ofType('data'), [{ type: 'data', from: ann.id, payload: { hello: 'world' } }])
  t.strictSame(cid.socket.ofType('data'), [], 'not a listener: nothing')
  t.strictSame(ann.socket.ofType('data'), [], 'never to the sender')

  ann.send({ type: 'data', payload: 'x'.repeat(9000) })
  t.match(ann.socket.only('error'), { code: 'invalid_message', ref: 'data' })
  t.equal(bob.socket.ofType('data').length, 1, 'the refused payload reached nobody')
})

t.test('errors: each bad frame gets its one error and changes nothing', async (t) => {
  const s = setup()
  const guest = s.connect()
  const cases: Array<[unknown, ErrorCodeT, string | undefined]> = [
    ['{not json', 'bad_json', undefined],
    ['[1,2]', 'invalid_message', undefined],
    [{ type: 'teleport' }, 'unknown_type', 'teleport'],
    [{ type: 'update', position: { x: 1, y: 1 } }, 'not_registered', 'update'],
    [{ type: 'ping', t: 'soon' }, 'invalid_message', 'ping']
  ]
  for (const [frame, code, ref] of cases) {
    guest.socket.clear()
    guest.send(frame)
    t.strictSame(errorOf(guest.socket), { code, ref }, JSON.stringify(frame))
  }
  t.equal(s.users.userCount, 0)
  const ann = s.registered('Ann')
  ann.send({ type: 'register', name: 'again' })
  t.strictSame(errorOf(ann.socket), { code: 'already_registered', ref: 'register' })
  ann.socket.clear()
  s.engine.receive(ann.connection, Buffer.from([1, 2, 3]), true)
  t.strictSame(errorOf(ann.socket), { code: 'unsupported_frame', ref: undefined })
  t.equal(s.users.userCount, 1)
  t.strictSame(s.recorded.errors, ['bad_json', 'invalid_message', 'unknown_type', 'not_registered', 'invalid_message', 'already_registered', 'unsupported_frame'])
})

t.test('a frame over maxPayload closes the connection with 1009', async (t) => {
  const s = setup()
  const ann = s.registered('Ann')
  ann.send({ type: 'data', payload: 'x'.repeat(20_000) })
  t.strictSame(ann.socket.closes, [{ code: 1009, reason: 'message too big' }])
  ann.send({ type: 'ping' })
  t.strictSame(ann.socket.frames, [], 'a closing socket takes no more messages')
})

t.test('rate limit: over the burst, one rate_limited a second; ten seconds of it close with 1008', async (t) => {
  const s = setup({ messageBurst: 3 })
  const client = s.connect()
  for (let i = 0; i < 10; i++) client.send({ type: 'ping', t: i })
  t.equal(client.socket.ofType('pong').length, 3)
  t.equal(client.socket.ofType('error').length, 1, 'a flood gets one error back, not a flood')
  for (let second = 1; second < 10; second++) {
    s.clock.advance(1000)
    for (let i = 0; i < 20; i++) client.send({ type: 'ping' })
  }
  t.strictSame(client.socket.closes, [{ code: 1008, reason: 'rate limit exceeded' }])
})

t.test('register and reconnect share a budget per address; a reconnect that resumes a user is free', async (t) => {
  const s = setup({ registerLimit: 3 })
  const a = s.connect('10.0.0.7')
  a.send({ type: 'register' })
  const secret = a.socket.only('welcome').secret
  a.send({ type: 'reconnect', secret: 'nope' })
  const guess = s.connect('10.0.0.7')
  guess.send({ type: 'reconnect', secret: 'nope' })
  await settle()
  t.strictSame(errorOf(guess.socket), { code: 'invalid_secret', ref: 'reconnect' })
  const b = s.connect('10.0.0.7')
  b.send({ type: 'register' })
  t.strictSame(errorOf(b.socket), { code: 'rate_limited', ref: 'register' }, 'a register, a refused reconnect and a bad secret spent it')
  b.socket.clear()
  b.send({ type: 'reconnect', secret: 'nope' })
  await settle()
  t.strictSame(errorOf(b.socket), { code: 'rate_limited', ref: 'reconnect' }, 'over the budget, a bad secret is rate_limited')
  for (let i = 0; i < 5; i++) {
    const tab = s.connect('10.0.0.7')
    tab.send({ type: 'reconnect', secret })
    await settle()
    t.equal(tab.socket.only('welcome').resumed, true, `resume ${i + 1} over the budget`)
  }
  const other = s.connect('10.0.0.8')
  other.send({ type: 'register' })
  t.equal(other.socket.ofType('welcome').length, 1, 'another address has its own budget')
})

t.test('reconnect: resumes the user on a new socket, closes the old one with 4001, and queues what follows', async (t) => {
  const s = setup()
  const ann = s.registered('Ann')
  const tab = s.connect()
  tab.send({ type: 'reconnect', secret: ann.welcome.secret })
  tab.send({ type: 'update', name: 'Ann B' })
  await settle()
  t.match(tab.socket.only('welcome'), { id: ann.id, resumed: true, you: { name: 'Ann' } })
  t.strictSame(ann.socket.closes, [{ code: 4001, reason: 'replaced by a newer connection' }])
  t.equal(s.users.get(ann.id)?.name, 'Ann B', 'the update sent right after reconnect applied to the resumed user')
  t.equal(s.users.userCount, 1)

  const stranger = s.connect()
  stranger.send({ type: 'reconnect', secret: 'x'.repeat(43) })
  await settle()
  t.strictSame(errorOf(stranger.socket), { code: 'invalid_secret', ref: 'reconnect' })
})

t.test('a closed socket leaves its user in grace; leave ends the session for good', async (t) => {
  const s = setup()
  const ann = s.registered('Ann')
  const bob = s.registered('Bob')
  s.broadcaster.flush()
  ann.socket.clear()
  s.engine.closed(bob.connection)
  t.equal(s.connections.size, 1)
  s.broadcaster.flush()
  t.strictSame(ann.socket.only('presence').updated, [{ id: bob.id, connected: false }])

  ann.socket.clear()
  ann.send({ type: 'leave' })
  t.strictSame(ann.socket.closes, [{ code: 1000, reason: 'left' }])
  t.equal(s.users.get(ann.id), undefined)
  const again = s.connect()
  again.send({ type: 'reconnect', secret: ann.welcome.secret })
  await settle()
  t.strictSame(errorOf(again.socket), { code: 'invalid_secret', ref: 'reconnect' })
})

t.test('pong marks the connection alive for the heartbeat', async (t) => {
  const s = setup()
  const client = s.connect()
  const connection: Connection = client.connection
  connection.alive = false
  s.engine.pong(connection)
  t.equal(connection.alive, true)
})

t.test('the host API sends `data` from `server` through the same broadcast, a payload JSON cannot express as null', async (t) => {
  const s = setup()
  const ann = s.registered('Ann', 'r1')
  const bob = s.registered('Bob', 'r2')
  const api = createApi(s.engine)
  t.equal(api.sendToRoom('r1', { notice: 'hi' }), 1)
  t.strictSame(ann.socket.ofType('data'), [{ type: 'data', from: 'server', payload: { notice: 'hi' } }])
  t.equal(api.sendToUser(bob.id, undefined), true)
  t.strictSame(bob.socket.ofType('data'), [{ type: 'data', from: 'server', payload: null }], 'every data frame has a payload')
  t.equal(api.disconnect(bob.id), true)
  t.strictSame(bob.socket.closes, [{ code: 1000, reason: 'disconnected by the server' }])
  t.strictSame(api.rooms(), ['r1'])
})

t.test('a data payload nested too deeply to serialize gets its one error reply and reaches nobody', async (t) => {
  const s = setup()
  const ann = s.registered('Ann')
  const bob = s.registered('Bob')
  bob.send({ type: 'updatelisteningto', listeningTo: [ann.id] })
  ann.send(`{"type":"data","payload":${'['.repeat(8000)}${']'.repeat(8000)}}`)
  t.match(ann.socket.only('error'), { code: 'invalid_message', ref: 'data', message: 'payload: nested too deeply to serialize' })
  t.strictSame(bob.socket.ofType('data'), [])
})

t.test('a big room\'s welcome and snapshots are one message in fragments, sharing one copy of the room', async (t) => {
  const s = setup({ registerLimit: 1000, maxConnectionsPerAddress: 1000 })
  const bulky = Object.fromEntries(Array.from({ length: 7 }, (_, i) => [`k${i}`, 'x'.repeat(250)]))
  const members = Array.from({ length: 40 }, (_, i) => {
    const client = s.connect()
    client.send({ type: 'register', name: `m${i}`, room: 'big', state: bulky })
    return client
  })
  t.equal(members[0]?.socket.fragmented.length, 0, 'a small welcome is one frame')
  s.broadcaster.flush()
  const late = s.connect()
  late.send({ type: 'register', name: 'late', room: 'big' })
  const welcome = late.socket.only('welcome')
  t.equal(welcome.users.length, 40)
  t.strictSame(welcome.users.map((user) => user.state), Array(40).fill(bulky), 'every member whole')
  t.equal(late.socket.fragmented.length, 1, 'a big welcome: fragments of one message')
  t.ok((late.socket.fragmented[0]?.length ?? 0) > 1)

  s.broadcaster.flush()
  const [a, b] = members
  if (a === undefined || b === undefined) throw new Error('fixture')
  a.send({ type: 'sync' })
  b.send({ type: 'sync' })
  const listingOf = (fragments: Uint8Array[] | undefined): ArrayBufferLike | undefined => fragments?.reduce((big, part) => part.length > big.length ? part : big).buffer
  const [snapshotA, snapshotB] = [a.socket.fragmented.at(-1), b.socket.fragmented.at(-1)]
  t.equal(listingOf(snapshotA), listingOf(snapshotB), 'the two snapshots send the same bytes of the room, not copies')
  t.equal(a.socket.only('snapshot').users.length, 40)
  t.notOk(a.socket.only('snapshot').users.some((user) => user.name === 'm0'), 'without the one asking')
})

t.test('what a whole room gets is sent as the same bytes for all, framed once; what one member alone gets is not', async (t) => {
  const s = setup()
  const [ann, bob] = [s.registered('Ann'), s.registered('Bob')]
  s.broadcaster.flush()
  const [carl, dan] = [s.registered('Carl'), s.registered('Dan')]
  s.broadcaster.flush()
  const [forAnn, forBob] = [ann.socket.shared.at(-1), bob.socket.shared.at(-1)]
  t.ok(forAnn !== undefined && forAnn === forBob, 'the room\'s presence: one buffer, shared')
  t.match(JSON.parse(Buffer.from(forAnn ?? []).toString()), { type: 'presence', joined: [{ name: 'Carl' }, { name: 'Dan' }] })
  t.strictSame(carl.socket.only('presence').joined?.map((user) => user.name), ['Dan'], 'a newcomer hears of the other newcomer')
  t.strictSame([carl.socket.shared.length, dan.socket.shared.length], [0, 0], 'in a presence of its own, not shared')

  ann.send({ type: 'update', position: { x: 1, y: 2, z: 0 } })
  s.broadcaster.flush()
  const positions = bob.socket.shared.at(-1)
  t.ok(positions !== undefined && positions === carl.socket.shared.at(-1), 'positions: one buffer for the room')
  t.match(JSON.parse(Buffer.from(positions ?? []).toString()), { type: 'positions' })
})

t.test('a room\'s listing idle for 10 s is let go of, and the next welcome serializes every member again', async (t) => {
  const s = setup()
  for (const name of ['Ann', 'Bob', 'Carl']) s.registered(name)
  const serializationsOfRegister = (name: string): number => serializationsDuring(() => { s.registered(name) })
  s.broadcaster.flush()
  s.clock.advance(9000)
  s.broadcaster.flush()
  const kept = serializationsOfRegister('Dan')
  s.broadcaster.flush()
  s.clock.advance(10_000)
  s.broadcaster.flush()
  const rebuilt = serializationsOfRegister('Erin')
  t.equal(rebuilt - kept, 4, 'unused for 9 s: kept; for 10 s: let go of, and the four members before Erin serialized again')
})

t.test('a socket that opens once the drain has begun is closed with 1012 too', async (t) => {
  const s = setup()
  const ann = s.registered('Ann')
  const drained = s.connections.drain()
  const late = s.connect()
  t.strictSame(late.socket.closes, [{ code: 1012, reason: 'server shutting down' }], 'the upgrade raced past the check')
  t.strictSame(ann.socket.closes.map((close) => close.code), [1012])
  await drained
})
