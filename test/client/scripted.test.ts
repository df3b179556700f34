/**
 * The client on a scripted WebSocket and fake timers: the outgoing coalescing
 * schedule, what is kept while offline, pings, gap detection, and the edge
 * cases of the connection lifecycle that a real server cannot time precisely.
 */
import t from 'tap'
import { ShoalClient } from '../../src/client/client.js'
import { backoffDelay } from '../../src/client/backoff.js'
import { encodeCompactPositions } from '../../src/protocol/compact.js'
import type { ShoalError } from '../../src/client/index.js'
import {
  FakeTimers, MemoryStorage, fakeClientOptions, fakeSocketClass, welcomeFor, wireUser, type FakeSocket
} from './support.js'

const ME = '00000000-0000-4000-8000-000000000001'
const BOB = '00000000-0000-4000-8000-000000000002'

function last<T> (list: T[]): T {
  const item = list[list.length - 1]
  if (item === undefined) throw new Error('empty list')
  return item
}

/** A client whose first socket is open and welcomed (tickHz 10: one update per 100 ms). */
function welcomedClient (extra: Parameters<typeof fakeClientOptions>[2] = {}, welcome = welcomeFor(ME, { tickHz: 10, users: [wireUser(BOB, { name: 'Bob' })] })): {
  client: ShoalClient, timers: FakeTimers, sockets: FakeSocket[], socket: FakeSocket, storage: MemoryStorage
} {
  const { Socket, sockets } = fakeSocketClass()
  const timers = new FakeTimers()
  const storage = new MemoryStorage()
  const client = new ShoalClient(fakeClientOptions(Socket, timers, { storage, ...extra }))
  const socket = last(sockets)
  socket.open()
  socket.receive(welcome)
  return { client, timers, sockets, socket, storage }
}

t.test('coalescing: the first move goes at once, later moves of the tick become one update', async (t) => {
  const { client, timers, socket } = welcomedClient()
  t.equal(client.state, 'open')
  client.move({ x: 1, y: 1 })
  t.same(socket.ofType('update'), [{ type: 'update', position: { x: 1, y: 1, z: 0 } }], 'first move sent at once, z filled in')
  for (let i = 2; i <= 50; i++) client.move({ x: i, y: i, z: -i })
  t.equal(socket.ofType('update').length, 1, 'nothing more inside the tick')
  t.same(timers.requests, [100], 'one flush scheduled for the end of the tick (tickHz 10 from welcome)')
  timers.advance(99)
  t.equal(socket.ofType('update').length, 1, 'not before the tick ends')
  timers.advance(1)
  t.same(socket.ofType('update'), [
    { type: 'update', position: { x: 1, y: 1, z: 0 } },
    { type: 'update', position: { x: 50, y: 50, z: -50 } }
  ], 'one update with the latest position')
  t.same(client.me?.position, { x: 50, y: 50, z: -50 }, 'me has the latest local position')

  timers.advance(1000)
  t.equal(socket.ofType('update').length, 2, 'nothing pending, nothing sent')
  client.move({ x: 7, y: 7 })
  t.equal(socket.ofType('update').length, 3, 'a move after a quiet tick goes at once again')
  client.close()
})

t.test('coalescing: position, state and name of one tick merge into one update', async (t) => {
  const { client, timers, socket } = welcomedClient()
  client.setName('first')
  t.equal(socket.ofType('update').length, 1)
  client.setState({ color: 'red', typing: true })
  client.move({ x: 3, y: 4, z: 5 })
  client.setState({ typing: null, mood: 'ok' })
  client.setName('Ada')
  timers.advance(100)
  t.same(socket.ofType('update')[1], {
    type: 'update',
    position: { x: 3, y: 4, z: 5 },
    state: { color: 'red', typing: null, mood: 'ok' },
    name: 'Ada'
  }, 'state patches merged key by key (null kept as a removal), latest name')
  timers.advance(1000)
  t.equal(socket.ofType('update').length, 2, 'sent once')
  client.close()
})

t.test('coalescing: without welcome.tickHz the configured tickHz paces updates', async (t) => {
  const welcome: Record<string, unknown> = { ...welcomeFor(ME) }
  delete welcome.tickHz
  const { Socket, sockets } = fakeSocketClass()
  const timers = new FakeTimers()
  const client = new ShoalClient(fakeClientOptions(Socket, timers, { tickHz: 4 }))
  const socket = last(sockets)
  socket.open()
  socket.receive(welcome)
  t.equal(client.state, 'open')
  client.move({ x: 1, y: 0 })
  client.move({ x: 2, y: 0 })
  t.same(timers.requests, [250], '4 updates per second')
  client.close()
})

t.test('listenTo is sent as updatelisteningto, latest set wins', async (t) => {
  const { client, timers, socket } = welcomedClient()
  client.move({ x: 1, y: 1 })
  client.listenTo([BOB])
  client.listenTo([BOB, ME])
  t.same(socket.ofType('updatelisteningto'), [], 'waits for the tick like the rest')
  timers.advance(100)
  t.same(socket.ofType('updatelisteningto'), [{ type: 'updatelisteningto', listeningTo: [BOB, ME] }])
  client.close()
})

t.test('offline: only the latest values are kept and sent after the welcome', async (t) => {
  const { Socket, sockets } = fakeSocketClass()
  const timers = new FakeTimers()
  const client = new ShoalClient(fakeClientOptions(Socket, timers))
  client.move({ x: 1, y: 1 })
  client.move({ x: 2, y: 2 })
  client.setState({ color: 'red' })
  client.move({ x: 3, y: 3, z: 3 })
  const socket = last(sockets)
  socket.open()
  t.same(socket.sent.map((m) => m.type), ['register'], 'only register before the welcome')
  socket.receive(welcomeFor(ME))
  t.same(socket.ofType('update'), [{ type: 'update', position: { x: 3, y: 3, z: 3 }, state: { color: 'red' } }], 'one update, latest position')
  t.same(client.me?.position, { x: 3, y: 3, z: 3 }, 'me shows the pending position, not the welcome one')

  // Dropped: moves while reconnecting are kept, the flush timer is gone.
  client.move({ x: 4, y: 4 })
  t.equal(timers.pending.size, 1, 'a flush is scheduled for the end of the tick')
  socket.serverClose(1006)
  t.equal(client.state, 'reconnecting')
  client.move({ x: 5, y: 5 })
  client.move({ x: 6, y: 6 })
  timers.fireAll()
  const second = last(sockets)
  t.not(second, socket, 'a new socket')
  t.same(socket.ofType('update').length, 1, 'nothing was sent on the dead socket')
  second.open()
  t.same(second.sent, [{ type: 'reconnect', secret: `secret-of-${ME}` }])
  second.receive(welcomeFor(ME, { resumed: true }))
  t.same(second.ofType('update'), [{ type: 'update', position: { x: 6, y: 6, z: 0 } }], 'the latest position, once')
  client.close()
})

t.test('send() is not queued while offline', async (t) => {
  const { Socket, sockets } = fakeSocketClass()
  const client = new ShoalClient(fakeClientOptions(Socket, new FakeTimers()))
  t.equal(client.send({ hi: 1 }), false, 'false before the socket opens')
  const socket = last(sockets)
  socket.open()
  t.equal(client.send({ hi: 2 }), false, 'false before the welcome')
  socket.receive(welcomeFor(ME))
  t.equal(client.send({ hi: 3 }), true)
  t.same(socket.ofType('data'), [{ type: 'data', payload: { hi: 3 } }])
  client.close()
})

t.test('pings measure the round trip with the injected clock', async (t) => {
  const { client, timers, socket } = welcomedClient({ pingIntervalMs: 1000 })
  const rtts: number[] = []
  client.on('rtt', (ms) => rtts.push(ms))
  t.same(socket.ofType('ping'), [{ type: 'ping', t: 1000 }], 'first ping right after the welcome')
  timers.advance(37)
  socket.receive({ type: 'pong', t: 1000, serverTime: 5 })
  t.same(rtts, [37])
  t.equal(client.rtt, 37)
  socket.receive({ type: 'pong', serverTime: 5 })
  t.same(rtts, [37], 'a pong without t is not a measurement')
  timers.advance(963)
  t.same(socket.ofType('ping').map((m) => m.t), [1000, 2000], 'next ping after the interval')
  const requests = timers.requests.length
  socket.serverClose(1006)
  timers.advance(1000)
  t.equal(timers.requests.length, requests + 1, 'after a drop only the retry is scheduled, no more pings')
  client.close()
})

t.test('a gap (unknown id) triggers one sync until the snapshot answers', async (t) => {
  const { client, socket } = welcomedClient()
  const snapshots: string[][] = []
  client.on('snapshot', (_room, users) => snapshots.push(users.map((u) => u.id)))
  socket.receive({ type: 'presence', room: 'lobby', updated: [{ id: 'ghost', name: 'x' }] })
  socket.receive({ type: 'positions', t: 1, p: [['ghost2', 1, 2, 3]] })
  t.equal(socket.ofType('sync').length, 1, 'one sync for two gaps')
  socket.receive({ type: 'snapshot', room: 'lobby', users: [wireUser(BOB), wireUser('ghost')] })
  t.same(snapshots, [[BOB, 'ghost']])
  t.same([...client.users.keys()], [BOB, 'ghost'])
  socket.receive({ type: 'positions', t: 2, p: [['ghost3', 1, 2, 3]] })
  t.equal(socket.ofType('sync').length, 2, 'a new gap after the snapshot syncs again')
  client.close()
})

t.test('positions of own id and unknown ids are not reported', async (t) => {
  const { client, socket } = welcomedClient()
  const moved: string[][] = []
  client.on('positions', (list) => moved.push(list.map((m) => m.user.id)))
  socket.receive({ type: 'positions', t: 1, p: [[ME, 1, 1, 1]] })
  t.same(moved, [], 'no event for own entry only')
  socket.receive({ type: 'positions', t: 2, p: [[ME, 1, 1, 1], [BOB, 2, 2, 2]] })
  t.same(moved, [[BOB]])
  t.same(client.users.get(BOB)?.position, { x: 2, y: 2, z: 2 })
  client.close()
})

t.test('join sends join; the snapshot of the new room replaces the roster', async (t) => {
  const { client, socket } = welcomedClient()
  client.join('garden')
  t.same(socket.ofType('join'), [{ type: 'join', room: 'garden' }])
  socket.receive({ type: 'snapshot', room: 'garden', users: [wireUser('gina', { room: 'garden' })] })
  t.equal(client.room, 'garden')
  t.same([...client.users.keys()], ['gina'])
  const left: string[] = []
  client.on('leave', (user) => left.push(user.id))
  socket.receive({ type: 'presence', room: 'lobby', left: [BOB] })
  t.same(left, [], 'a late frame of the old room is ignored')
  client.close()
})

t.test('server errors are events, never exceptions', async (t) => {
  const { client, socket } = welcomedClient()
  const errors: ShoalError[] = []
  client.on('error', (error) => errors.push(error))
  t.doesNotThrow(() => socket.receive({ type: 'error', code: 'invalid_message', message: 'state.bad: expected a flat value', ref: 'update' }))
  t.doesNotThrow(() => socket.receive({ type: 'error', code: 'bad_json', message: 'not JSON' }))
  t.same(errors, [
    { code: 'invalid_message', message: 'state.bad: expected a flat value', ref: 'update' },
    { code: 'bad_json', message: 'not JSON' }
  ])
  t.equal(client.state, 'open', 'an error does not close anything')
  t.doesNotThrow(() => socket.onmessage?.({ data: 'not json' }), 'garbage from the server is ignored')
  t.doesNotThrow(() => socket.onmessage?.({ data: new Uint8Array([1, 2]) }), 'binary frames are ignored')
  client.close()
})

t.test('invalid_secret: the secret is dropped and register goes on the same socket', async (t) => {
  const { Socket, sockets } = fakeSocketClass()
  const storage = new MemoryStorage()
  storage.setItem('k', 'stale')
  const client = new ShoalClient(fakeClientOptions(Socket, new FakeTimers(), { storage, storageKey: 'k', register: { name: 'Ada' } }))
  const socket = last(sockets)
  socket.open()
  t.same(socket.sent, [{ type: 'reconnect', secret: 'stale' }])
  socket.receive({ type: 'error', code: 'invalid_secret', message: 'secret: not a live session secret', ref: 'reconnect' })
  t.same(socket.sent[1], { type: 'register', name: 'Ada' })
  t.equal(storage.getItem('k'), null, 'the dead secret is gone')
  socket.receive(welcomeFor(ME, { secret: 'fresh' }))
  t.equal(storage.getItem('k'), 'fresh')
  t.equal(sockets.length, 1, 'no new socket needed')
  client.close()
})

t.test('4001 is final: connection error, closed, no new socket', async (t) => {
  const { client, timers, sockets, socket, storage } = welcomedClient()
  const errors: ShoalError[] = []
  client.on('error', (error) => errors.push(error))
  socket.serverClose(4001)
  t.equal(client.state, 'closed')
  t.same(errors.map((e) => e.code), ['connection'])
  t.equal(timers.pending.size, 0)
  timers.advance(60_000)
  t.equal(sockets.length, 1)
  t.equal(storage.getItem('shoal:secret'), `secret-of-${ME}`, 'the secret stays: the user lives on elsewhere')
})

t.test('reconnect delays grow, 1012 retries at once, a welcome resets', async (t) => {
  const { Socket, sockets } = fakeSocketClass()
  const timers = new FakeTimers()
  const backoff = { initialMs: 100, maxMs: 800 }
  const client = new ShoalClient(fakeClientOptions(Socket, timers, { backoff, random: () => 1 }))
  for (let i = 0; i < 5; i++) {
    last(sockets).serverClose(1006)
    timers.fireAll()
  }
  t.same(timers.requests, [100, 200, 400, 800, 800])
  const socket = last(sockets)
  socket.open()
  socket.receive(welcomeFor(ME))
  socket.serverClose(1012)
  t.same(timers.requests.slice(5), [0], '1012: no delay')
  timers.fireAll()
  last(sockets).open()
  last(sockets).receive(welcomeFor(ME, { resumed: true }))
  last(sockets).serverClose(1006)
  t.same(timers.requests.slice(6), [backoffDelay(0, () => 1, backoff)], 'first step again after the welcome')
  client.close()
})

// ---- intended behaviour the client gets wrong (see the report) ----------------

t.test('leave() before the welcome: the late welcome must not bring the session back', async (t) => {
  const { Socket, sockets } = fakeSocketClass()
  const storage = new MemoryStorage()
  const client = new ShoalClient(fakeClientOptions(Socket, new FakeTimers(), { storage }))
  const socket = last(sockets)
  socket.open()
  t.same(socket.sent.map((m) => m.type), ['register'])
  client.leave()
  t.equal(client.state, 'closed')
  // The server answers the register that was already on its way.
  socket.receive(welcomeFor(ME, { secret: 'late' }))
  t.equal(client.state, 'closed', 'still closed after the late welcome')
  t.equal(storage.getItem('shoal:secret'), null, 'the late secret is not stored')
  t.ok(socket.readyState === 3 || socket.ofType('leave').length === 1, 'the late session is ended (leave sent) or the socket closed')
  client.close()
})

t.test('rate_limited on reconnect: the secret is kept and the client retries after a delay', async (t) => {
  const { Socket, sockets } = fakeSocketClass()
  const storage = new MemoryStorage()
  storage.setItem('shoal:secret', 'mine')
  const timers = new FakeTimers()
  const client = new ShoalClient(fakeClientOptions(Socket, timers, { storage, backoff: { initialMs: 100, maxMs: 1000 } }))
  const socket = last(sockets)
  socket.open()
  socket.receive({ type: 'error', code: 'rate_limited', message: 'too many register and reconnect messages from this address; try again later', ref: 'reconnect' })
  t.equal(storage.getItem('shoal:secret'), 'mine', 'the secret is kept')
  timers.advance(5_000)
  for (const s of sockets) if (s.readyState === 0) s.open()
  const attempts = sockets.flatMap((s) => s.ofType('reconnect'))
  t.ok(attempts.length >= 2, `reconnect is sent again after a delay (sent ${attempts.length} time(s))`)
  client.close()
})

t.test('compact encoding: asked for at register and reconnect, binary positions by short id, unknown ids are a gap', async (t) => {
  const CAROL = '00000000-0000-4000-8000-000000000003'
  const { Socket, sockets } = fakeSocketClass()
  const timers = new FakeTimers()
  const storage = new MemoryStorage()
  const client = new ShoalClient(fakeClientOptions(Socket, timers, { storage, encoding: 'compact', register: { name: 'me' } }))
  const socket = last(sockets)
  t.equal(socket.binaryType, 'arraybuffer', 'binary frames arrive as ArrayBuffer, not Blob')
  socket.open()
  t.same(socket.ofType('register'), [{ type: 'register', name: 'me', encoding: 'compact' }])
  socket.receive(welcomeFor(ME, { encoding: 'compact', you: wireUser(ME, { sid: 1 }), users: [wireUser(BOB, { sid: 2 })] }))
  const moved: unknown[] = []
  client.on('positions', (list, serverTime) => moved.push([list.map(({ user, position }) => [user.id, position]), serverTime]))

  socket.receiveBinary(encodeCompactPositions(500, [{ sid: 1, position: { x: 9, y: 9, z: 9 } }, { sid: 2, position: { x: 1.5, y: 2, z: 0 } }]))
  t.same(moved, [[[[BOB, { x: 1.5, y: 2, z: 0 }]], 500]], 'our own entry is skipped, Bob is found by short id')
  t.same(client.users.get(BOB)?.position, { x: 1.5, y: 2, z: 0 })
  t.same(socket.ofType('sync'), [], 'no gap')

  socket.receive({ type: 'presence', room: 'lobby', joined: [wireUser(CAROL, { sid: 3 })], left: [BOB] })
  socket.receiveBinary(encodeCompactPositions(550, [{ sid: 3, position: { x: 4, y: 4, z: 4 } }]))
  t.same(client.users.get(CAROL)?.position, { x: 4, y: 4, z: 4 }, 'a newcomer\'s short id from presence')
  t.same(socket.ofType('sync'), [], 'still no gap')
  socket.receiveBinary(encodeCompactPositions(600, [{ sid: 2, position: { x: 0, y: 0, z: 0 } }]))
  t.equal(socket.ofType('sync').length, 1, 'a short id of someone who left (or was never announced) asks for a sync')
  socket.receive({ type: 'snapshot', room: 'lobby', users: [wireUser(CAROL, { sid: 3 })] })

  socket.onmessage?.({ data: new Uint8Array([7, 7, 7]).buffer })
  t.equal(moved.length, 2, 'bytes that are not a compact frame are ignored')

  socket.serverClose(1006)
  timers.fireAll()
  const next = last(sockets)
  next.open()
  t.same(next.ofType('reconnect'), [{ type: 'reconnect', secret: `secret-of-${ME}`, encoding: 'compact' }], 'asked for again on reconnect')
  client.close()
})

t.test('a JSON client sends exactly the contract\'s register and reconnect', async (t) => {
  const { Socket, sockets } = fakeSocketClass()
  const timers = new FakeTimers()
  const storage = new MemoryStorage()
  storage.setItem('shoal:secret', 's1')
  const client = new ShoalClient(fakeClientOptions(Socket, timers, { storage }))
  const socket = last(sockets)
  socket.open()
  t.same(socket.sent, [{ type: 'reconnect', secret: 's1' }], 'no encoding field')
  socket.receive({ type: 'error', code: 'invalid_secret', message: 'secret: not a live session secret', ref: 'reconnect' })
  t.same(socket.ofType('register'), [{ type: 'register' }], 'nor in the register that follows')
  client.close()
})
