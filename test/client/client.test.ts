/**
 * ShoalClient against a real Shoal server in this process, over real sockets
 * (`ws`'s WebSocket): registration, the room mirror, movement, state, data,
 * leave, resuming after drops, takeover, a server restart, coalescing and errors.
 */
import t from 'tap'
import { MemorySessionStore, type ShoalOptions } from '../../index.js'
import type { TestServer } from '../helpers.js'
import { ShoalClient } from '../../src/client/client.js'
import type { ShoalClientOptions, ShoalError, StateT, Timers, UserT, WelcomeMessageT } from '../../src/client/index.js'
import {
  FakeTimers, MemoryStorage, NodeWebSocket, dropConnection, metric, mirrorOf, once, recordEvents, seeded, serverTruth,
  socketClosed, socketOf, startServerOn, until
} from './support.js'

type Tap = Parameters<Parameters<typeof t.test>[0]>[0]

const UPDATES_IN = 'shoal_messages_in_total{type="update"}'

interface Harness {
  server: TestServer
  /** A client of this server (closed at teardown). */
  client: (options?: Partial<ShoalClientOptions>) => ShoalClient
  /** A client that has been welcomed. */
  joined: (options?: Partial<ShoalClientOptions>) => Promise<{ client: ShoalClient, welcome: WelcomeMessageT }>
}

/** A server and the clients of one test; at teardown the clients close first, then the server. */
async function harness (t: Tap, options: ShoalOptions = {}): Promise<Harness> {
  const server = await startServerOn(0, options)
  const clients: ShoalClient[] = []
  t.teardown(async () => {
    for (const client of clients) client.close()
    await server.close()
  })
  const client = (options: Partial<ShoalClientOptions> = {}): ShoalClient => {
    const created = new ShoalClient({
      url: server.wsUrl,
      WebSocket: NodeWebSocket,
      storage: new MemoryStorage(),
      pingIntervalMs: 0,
      backoff: { initialMs: 50, maxMs: 200 },
      ...options
    })
    clients.push(created)
    return created
  }
  const joined = async (options: Partial<ShoalClientOptions> = {}): Promise<{ client: ShoalClient, welcome: WelcomeMessageT }> => {
    const created = client(options)
    const [welcome] = await once(created, 'welcome')
    return { client: created, welcome }
  }
  return { server, client, joined }
}

/**
 * Waits until `older` knows `newer` and `newer` has processed its first presence
 * frame (sent in the same tick, and allowed to repeat users of its welcome):
 * a server message sent now reaches `newer` after that frame.
 */
async function introduce (server: TestServer, older: ShoalClient, newer: ShoalClient): Promise<void> {
  await until(older, () => newer.id !== null && older.users.has(newer.id))
  const id = newer.id as string
  const token = `introduced ${id}`
  server.app.shoal.sendToUser(id, token)
  await once(newer, 'data', (from, payload) => from === 'server' && payload === token)
  if (!newer.users.has(older.id as string)) throw new Error('the newer client does not know the older one')
}

/** JSON with sorted keys: equal values give equal strings whatever the key order. */
function canonical (value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v
    return Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)))
  })
}

/** The client's room copy equals the server's room minus the client itself. */
function consistent (server: TestServer, client: ShoalClient): boolean {
  return canonical(mirrorOf(client)) === canonical(serverTruth(server, client.room, client.id))
}

/** The events of `log` about user `id`. */
function about (log: ReturnType<typeof recordEvents>, id: string): Array<{ event: string, changes?: unknown }> {
  const found: Array<{ event: string, changes?: unknown }> = []
  for (const { event, args } of log) {
    if (event === 'join' || event === 'leave') {
      if ((args[0] as UserT).id === id) found.push({ event })
    } else if (event === 'update') {
      if ((args[0] as UserT).id === id) found.push({ event, changes: args[1] })
    }
  }
  return found
}

t.test('connect and register: connecting -> open, welcome, secret stored under storageKey', async (t) => {
  const h = await harness(t)
  const storage = new MemoryStorage()
  const client = h.client({
    storage,
    storageKey: 'app:secret',
    autoConnect: false,
    register: { name: 'Ada', room: 'atrium', state: { color: 'teal' }, position: { x: 1, y: 2 } }
  })
  t.equal(client.state, 'connecting')
  t.equal(client.id, null)
  const order: string[] = []
  client.on('state', (state) => order.push(`state:${state}`))
  client.on('open', () => order.push('open'))
  client.on('welcome', () => order.push('welcome'))
  const welcomed = once(client, 'welcome')
  client.connect()
  const [welcome] = await welcomed
  t.same(order, ['open', 'state:open', 'welcome'], 'socket open, then state open, then the welcome event')
  t.equal(client.state, 'open')
  t.equal(welcome.resumed, false)
  t.equal(client.id, welcome.id)
  t.equal(client.room, 'atrium')
  t.match(client.me, { id: welcome.id, name: 'Ada', room: 'atrium', state: { color: 'teal' }, position: { x: 1, y: 2, z: 0 }, connected: true })
  t.equal(storage.getItem('app:secret'), welcome.secret, 'the secret is saved under the storage key')
  t.equal(storage.getItem('shoal:secret'), null, 'and not under the default key')
  t.match(h.server.app.shoal.user(welcome.id), { name: 'Ada', room: 'atrium' }, 'the server has the user')
  t.equal(client.users.size, 0)
})

t.test('a second client appears in the first one\'s users through a join event', async (t) => {
  const h = await harness(t)
  const { client: a, welcome: wa } = await h.joined({ register: { name: 'Ann', room: 'r' } })
  const joinedEvent = once(a, 'join')
  const { client: b, welcome: wb } = await h.joined({ register: { name: 'Bob', room: 'r', state: { color: 'red', level: 3 }, position: { x: 5, y: 6, z: 7 } } })
  const [user] = await joinedEvent
  t.match(user, { id: wb.id, name: 'Bob', room: 'r', state: { color: 'red', level: 3 }, position: { x: 5, y: 6, z: 7 }, listeningTo: [], connected: true })
  t.equal(a.users.get(wb.id), user, 'the event carries the mirrored user')
  t.same([...a.users.keys()], [wb.id])
  t.same([...b.users.keys()], [wa.id], 'the newcomer got the first client from its welcome')
  t.equal(b.users.get(wa.id)?.name, 'Ann')
  t.ok(consistent(h.server, a) && consistent(h.server, b), 'both mirrors match the server')
})

t.test('move: the other client\'s mirror shows the new position', async (t) => {
  const h = await harness(t)
  const { client: a } = await h.joined()
  const { client: b, welcome: wb } = await h.joined()
  b.move({ x: 3, y: 4, z: 5 })
  const [moved, serverTime] = await once(a, 'positions', (list) => list.some((m) => m.user.id === wb.id))
  t.same(moved.find((m) => m.user.id === wb.id)?.position, { x: 3, y: 4, z: 5 })
  t.type(serverTime, 'number')
  t.same(a.users.get(wb.id)?.position, { x: 3, y: 4, z: 5 }, 'mirror updated')
  b.move({ x: -1, y: 0.5 })
  await once(a, 'positions', (list) => list.some((m) => m.user.id === wb.id && m.position.x === -1))
  t.same(a.users.get(wb.id)?.position, { x: -1, y: 0.5, z: 0 }, 'a move without z puts z at 0')
  t.same(h.server.app.shoal.user(wb.id)?.position, { x: -1, y: 0.5, z: 0 })
})

t.test('setState and setName: the other client sees update with the changed fields', async (t) => {
  const h = await harness(t)
  const { client: a } = await h.joined()
  const { client: b, welcome: wb } = await h.joined({ register: { name: 'Bob', state: { color: 'red' } } })
  await introduce(h.server, a, b)
  const updates: unknown[] = []
  a.on('update', (user, changes) => { if (user.id === wb.id) updates.push(changes) })

  b.setState({ typing: true })
  const [user, changes] = await once(a, 'update', (u) => u.id === wb.id)
  t.same(changes, { id: wb.id, state: { color: 'red', typing: true } }, 'only state changed; it comes whole')
  t.same(user.state, { color: 'red', typing: true })
  t.equal(user.name, 'Bob')

  b.setName('Robert')
  const [, named] = await once(a, 'update', (u, c) => u.id === wb.id && c.name !== undefined)
  t.same(named, { id: wb.id, name: 'Robert' }, 'only the name')
  t.equal(a.users.get(wb.id)?.name, 'Robert')

  b.setState({ typing: null, color: 'blue' })
  await once(a, 'update', (u, c) => u.id === wb.id && c.state?.color === 'blue')
  t.same(a.users.get(wb.id)?.state, { color: 'blue' }, 'a key set to null is gone: the state is replaced, not merged')
  t.ok(consistent(h.server, a))
  t.equal(updates.length, 3)
})

t.test('listenTo and send: data reaches the listener with from and payload, never the sender', async (t) => {
  const h = await harness(t)
  const { client: a, welcome: wa } = await h.joined()
  const { client: b, welcome: wb } = await h.joined()
  await introduce(h.server, a, b)
  const bData: Array<[string, unknown]> = []
  b.on('data', (from, payload) => bData.push([from, payload]))

  a.listenTo([wb.id])
  await once(b, 'update', (u, c) => u.id === wa.id && c.listeningTo?.includes(wb.id) === true)
  t.same(b.users.get(wa.id)?.listeningTo, [wb.id])

  t.equal(b.send({ kind: 'wave', emoji: '👋' }), true)
  const [from, payload] = await once(a, 'data')
  t.equal(from, wb.id)
  t.same(payload, { kind: 'wave', emoji: '👋' })

  // Ordered after b's own data on b's socket: if b had been sent its data, it would be here first.
  h.server.app.shoal.sendToUser(wb.id, 'barrier')
  await once(b, 'data', (f) => f === 'server')
  t.same(bData, [['server', 'barrier']], 'the sender never gets its own data')
})

t.test('leave: the other sees leave; the leaver forgets its secret and is closed', async (t) => {
  const h = await harness(t)
  const { client: a } = await h.joined()
  const storage = new MemoryStorage()
  const { client: b, welcome: wb } = await h.joined({ storage })
  await introduce(h.server, a, b)
  t.equal(storage.getItem('shoal:secret'), wb.secret)
  const left = once(a, 'leave', (u) => u.id === wb.id)
  const closed = socketClosed(b)
  b.leave()
  t.equal(b.state, 'closed')
  t.equal(storage.getItem('shoal:secret'), null, 'secret removed from storage')
  const [user] = await left
  t.equal(user.name, wb.you.name)
  t.equal(a.users.has(wb.id), false)
  t.equal(await closed, 1000, 'the server closed with 1000')
  t.equal(b.state, 'closed', 'and the client stays closed')
  t.equal(h.server.app.shoal.user(wb.id), undefined, 'the user is gone from the server')
})

t.test('a dropped socket resumes: reconnecting -> open, same id, others only see connected false/true', async (t) => {
  // random 0 with initialMs 200: the retry comes 100 ms later, several server ticks after the drop.
  const h = await harness(t)
  const { client: a, welcome: wa } = await h.joined({ register: { name: 'Ann' }, backoff: { initialMs: 200 }, random: () => 0 })
  const { client: b } = await h.joined()
  await introduce(h.server, a, b)
  const log = recordEvents(b)
  const states: string[] = []
  a.on('state', (state) => states.push(state))
  const resumed = once(a, 'welcome')
  dropConnection(a)
  const [welcome] = await resumed
  t.same(states, ['reconnecting', 'open'])
  t.equal(welcome.resumed, true)
  t.equal(welcome.secret, wa.secret, 'secrets are not rotated')
  t.equal(a.id, wa.id, 'same id')
  t.equal(a.me?.name, 'Ann')
  await until(b, () => b.users.get(wa.id)?.connected === true && about(log, wa.id).length >= 2)

  a.setName('barrier') // presence is ordered: anything about the drop comes before this
  await once(b, 'update', (u, c) => u.id === wa.id && c.name === 'barrier')
  t.same(about(log, wa.id), [
    { event: 'update', changes: { id: wa.id, connected: false } },
    { event: 'update', changes: { id: wa.id, connected: true } },
    { event: 'update', changes: { id: wa.id, name: 'barrier' } }
  ], 'no leave and no join, only connected false then true')
  t.ok(consistent(h.server, b))
})

t.test('takeover: a second client with the same secret wins; the first closes with 4001 for good', async (t) => {
  const h = await harness(t)
  const storage = new MemoryStorage()
  const { client: first, welcome: w1 } = await h.joined({ storage, register: { name: 'Tab1' } })
  const { client: observer } = await h.joined()
  await introduce(h.server, first, observer)
  const log = recordEvents(observer)
  const firstLog = recordEvents(first)
  const errored = once(first, 'error')
  const closed = socketClosed(first)
  const { client: second, welcome: w2 } = await h.joined({ storage })
  t.equal(await closed, 4001, 'the first socket was closed with 4001')
  const [error] = await errored
  t.equal(error.code, 'connection')
  t.equal(first.state, 'closed')
  t.equal(w2.resumed, true)
  t.equal(w2.id, w1.id, 'the second client has the same user')
  t.equal(second.id, w1.id)

  second.setName('Tab2')
  await once(observer, 'update', (u, c) => u.id === w1.id && c.name === 'Tab2')
  t.same(about(log, w1.id), [{ event: 'update', changes: { id: w1.id, name: 'Tab2' } }], 'the room saw nothing of the takeover')
  t.equal(first.state, 'closed', 'the first client did not reconnect')
  t.equal(socketOf(first), null, 'and has no socket')
  t.same(firstLog.map((e) => e.event === 'state' ? `state:${String(e.args[0])}` : e.event), ['error', 'state:closed'])
  t.equal(h.server.app.shoal.stats.connections, 2, 'only the second client and the observer are connected')
  t.equal(storage.getItem('shoal:secret'), w1.secret, 'the shared secret is still there')
})

/** Real timers that remember the delays asked for. */
function recordingTimers (): Timers & { requests: number[] } {
  const requests: number[] = []
  return {
    requests,
    setTimeout: (callback, ms) => { requests.push(ms); return setTimeout(callback, ms) },
    clearTimeout: (handle) => { clearTimeout(handle as ReturnType<typeof setTimeout>) },
    now: () => performance.now()
  }
}

t.test('server restart: 1012, immediate retry, the same users resume on a new server with the same store', async (t) => {
  const sessionStore = new MemorySessionStore()
  let server = await startServerOn(0, { sessionStore })
  const port = Number(new URL(server.url).port)
  const clients: ShoalClient[] = []
  t.teardown(async () => {
    for (const client of clients) client.close()
    await server.close()
  })
  const make = (name: string, timers: Timers): ShoalClient => {
    const client = new ShoalClient({
      url: server.wsUrl,
      WebSocket: NodeWebSocket,
      storage: new MemoryStorage(),
      pingIntervalMs: 0,
      timers,
      backoff: { initialMs: 20, maxMs: 100 },
      register: { name, room: 'restart', position: { x: 1, y: 1 } }
    })
    clients.push(client)
    return client
  }
  const timersA = recordingTimers()
  const a = make('Ann', timersA)
  const [wa] = await once(a, 'welcome')
  const b = make('Bob', recordingTimers())
  const [wb] = await once(b, 'welcome')
  await until(a, () => a.users.has(wb.id))
  b.setState({ color: 'red' })
  await until(a, () => a.users.get(wb.id)?.state.color === 'red')

  const closedA = socketClosed(a)
  const closedB = socketClosed(b)
  const reconnectingA = once(a, 'state', (s) => s === 'reconnecting')
  await server.close()
  t.equal(await closedA, 1012)
  t.equal(await closedB, 1012)
  await reconnectingA
  t.equal(timersA.requests[0], 0, 'the first retry after 1012 is immediate')

  // Offline: only the latest position survives.
  a.move({ x: 10, y: 0 })
  a.move({ x: 11, y: 0 })
  a.move({ x: 12, y: 5, z: 2 })
  t.same(a.me?.position, { x: 12, y: 5, z: 2 })

  const resumedA = once(a, 'welcome')
  const resumedB = once(b, 'welcome')
  server = await startServerOn(port, { sessionStore })
  const [[ra], [rb]] = await Promise.all([resumedA, resumedB])
  t.equal(ra.resumed, true, 'A resumed on the new server')
  t.equal(rb.resumed, true, 'B resumed on the new server')
  t.equal(a.id, wa.id)
  t.equal(b.id, wb.id)
  t.equal(a.state, 'open')
  t.equal(b.state, 'open')

  const restarted = server
  await until(b, () => b.users.get(wa.id)?.position.x === 12 && consistent(restarted, b))
  await until(a, () => consistent(restarted, a))
  t.match(a.users.get(wb.id), { name: 'Bob', state: { color: 'red' }, connected: true }, 'A sees B as it was')
  t.match(b.users.get(wa.id), { name: 'Ann', position: { x: 12, y: 5, z: 2 }, connected: true }, 'B sees A at its latest position')
  t.same(server.app.shoal.user(wa.id)?.position, { x: 12, y: 5, z: 2 }, 'the server has the latest offline position')
  t.equal(await metric(server, UPDATES_IN), 1, 'the three offline moves reached the new server as one update')
})

t.test('coalescing: 50 rapid moves become at most one update per tick', async (t) => {
  const h = await harness(t)
  const { client: a, welcome: wa } = await h.joined()
  const { client: b } = await h.joined()
  const before = await metric(h.server, UPDATES_IN)
  for (let i = 1; i <= 50; i++) a.move({ x: i, y: -i })
  await until(b, () => b.users.get(wa.id)?.position.x === 50)
  const sent = (await metric(h.server, UPDATES_IN)) - before
  t.ok(sent >= 1 && sent <= 2, `50 moves in one tick arrived as ${sent} update(s): the first at once, the rest at the end of the tick`)
  t.same(b.users.get(wa.id)?.position, { x: 50, y: -50, z: 0 }, 'the final position is the last one')
  t.same(h.server.app.shoal.user(wa.id)?.position, { x: 50, y: -50, z: 0 })
})

t.test('invalid_secret: a garbage secret is replaced by a newly registered user', async (t) => {
  const h = await harness(t)
  const storage = new MemoryStorage()
  storage.setItem('shoal:secret', 'garbage')
  const client = h.client({ storage, register: { name: 'Fresh' } })
  const errors: ShoalError[] = []
  client.on('error', (error) => errors.push(error))
  const [welcome] = await once(client, 'welcome')
  t.equal(welcome.resumed, false, 'a new user')
  t.equal(welcome.you.name, 'Fresh', 'registered with the configured fields')
  t.equal(storage.getItem('shoal:secret'), welcome.secret)
  t.not(welcome.secret, 'garbage')
  t.equal(client.state, 'open')
  t.ok(errors.every((e) => e.code === 'invalid_secret'), 'no other error on the way')
})

t.test('server errors surface as error events, never thrown', async (t) => {
  const h = await harness(t)
  const { client: a, welcome: wa } = await h.joined({ register: { name: 'Ann', state: { color: 'red' } } })
  const bad = { color: 'blue', nested: { deep: 1 } } as unknown as StateT
  t.doesNotThrow(() => a.setState(bad))
  const [error] = await once(a, 'error')
  t.equal(error.code, 'invalid_message')
  t.equal(error.ref, 'update')
  t.match(error.message, /^state\.nested/, 'the message names the field')
  t.equal(a.state, 'open', 'the connection stays open')
  t.same(h.server.app.shoal.user(wa.id)?.state, { color: 'red' }, 'nothing changed')

  a.setName('   ')
  const [nameError] = await once(a, 'error')
  t.match(nameError, { code: 'invalid_message', ref: 'update' })
  t.match(nameError.message, /^name/)

  const { client: b } = await h.joined()
  a.setState({ color: 'green' })
  await once(b, 'update', (u, c) => u.id === wa.id && c.state?.color === 'green')
  t.same(h.server.app.shoal.user(wa.id)?.state, { color: 'green' }, 'the client keeps working after errors')
})

t.test('rtt: pings measure a small positive round trip', async (t) => {
  const h = await harness(t)
  const client = h.client({ pingIntervalMs: 30 })
  const [first] = await once(client, 'rtt')
  t.ok(first > 0 && first < 1000, `rtt ${first} ms`)
  t.equal(client.rtt, first)
  const [second] = await once(client, 'rtt')
  t.ok(second > 0 && second < 1000, 'pings repeat')
})

t.test('join: the client moves to another room and its roster follows', async (t) => {
  const h = await harness(t)
  const { client: a, welcome: wa } = await h.joined({ register: { room: 'one' } })
  const { client: b } = await h.joined({ register: { room: 'one' } })
  const { client: c, welcome: wc } = await h.joined({ register: { room: 'two' } })
  await until(a, () => a.users.size === 1)
  a.join('two')
  const [room, users] = await once(a, 'snapshot')
  t.equal(room, 'two')
  t.same(users.map((u) => u.id), [wc.id])
  t.equal(a.room, 'two')
  await until(b, () => !b.users.has(wa.id))
  await until(c, () => c.users.has(wa.id))
  t.ok(consistent(h.server, a) && consistent(h.server, b) && consistent(h.server, c))
})

t.test('the mirror stays consistent through random joins, leaves, drops and updates of 3 others', async (t) => {
  const h = await harness(t)
  const room = 'mix'
  const { client: a } = await h.joined({ register: { name: 'Watcher', room } })
  const random = seeded(20240611)
  const pick = <T>(list: T[]): T => list[Math.floor(random() * list.length)] as T
  const slots: Array<ShoalClient | null> = [null, null, null]
  const ops: string[] = []
  let serial = 0

  for (let step = 0; step < 60; step++) {
    const slot = Math.floor(random() * slots.length)
    const other = slots[slot] ?? null
    if (other === null) {
      serial++
      const { client } = await h.joined({
        register: { name: `other-${serial}`, room, state: { n: serial }, position: { x: serial, y: 0 } }
      })
      slots[slot] = client
      ops.push(`join ${serial}`)
      continue
    }
    const op = pick(['move', 'move', 'state', 'state', 'name', 'listen', 'leave', 'drop'])
    ops.push(op)
    switch (op) {
      case 'move': other.move({ x: Math.round(random() * 100), y: Math.round(random() * 100), z: Math.round(random() * 10) }); break
      case 'state': other.setState(random() < 0.3 ? { n: null } : { n: Math.round(random() * 1000), flag: random() < 0.5 }); break
      case 'name': other.setName(`renamed-${Math.round(random() * 1000)}`); break
      case 'listen': other.listenTo(slots.filter((s): s is ShoalClient => s !== null && s !== other && s.id !== null).map((s) => s.id as string)); break
      case 'leave': other.leave(); slots[slot] = null; break
      case 'drop': other.close(); slots[slot] = null; break
    }
  }
  t.comment(`operations: ${ops.join(', ')}`)

  // Dropped users leave after the grace period; wait for the room to settle and the mirror to match it.
  const settled = (): boolean => serverTruth(h.server, room, a.id).every((u) => u.connected) && consistent(h.server, a)
  await until(a, settled, 5000).catch(() => {})
  t.same(mirrorOf(a), serverTruth(h.server, room, a.id), 'users equal the server\'s room minus the client (ids, names, states, positions, connected)')
  t.equal(a.users.size, slots.filter((s) => s !== null).length, 'exactly the clients still present')
})

// ---- intended behaviour the client gets wrong (see the report) ----------------

t.test('a close with 1000 from the server (app.shoal.disconnect) ends the session: no reconnect, no new user', async (t) => {
  const h = await harness(t)
  const storage = new MemoryStorage()
  const timers = new FakeTimers() // real sockets; the retry, if any, waits for the test
  const { client: a, welcome: wa } = await h.joined({ storage, timers, register: { room: 'd' } })
  const { client: b } = await h.joined({ register: { room: 'd' } })
  const closed = socketClosed(a)
  t.equal(h.server.app.shoal.disconnect(wa.id), true)
  t.equal(await closed, 1000)
  t.equal(a.state, 'closed', 'the client goes to closed, as after leave()')
  t.equal(storage.getItem('shoal:secret'), null, 'the dead secret is forgotten')
  t.same(timers.requests, [], 'no reconnect is scheduled')
  await until(b, () => !b.users.has(wa.id))
  // Had a retry been scheduled, it would reconnect, get invalid_secret and register a new user.
  const welcomed = timers.pending.size > 0 ? once(a, 'welcome') : null
  timers.fireAll()
  if (welcomed !== null) {
    const [welcome] = await welcomed
    t.fail(`the client came back as a new user ${welcome.id} (resumed: ${String(welcome.resumed)})`)
  }
  t.same(h.server.app.shoal.users('d').map((u) => u.id), [b.id], 'no new user was registered in its place')
})
