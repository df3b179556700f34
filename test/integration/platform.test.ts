/**
 * Shoal as a platform, over real sockets: identities from the host's auth
 * (authorize at the upgrade, authenticate with `auth`), room permissions
 * (canJoin, canUpdate), and the server's own actions on users.
 */
import t from 'tap'
import type { FastifyRequest } from 'fastify'
import { ShoalError, type ShoalIdentity, type ShoalOptions } from '../../index.js'
import WebSocket from 'ws'
import { ShoalClient } from '../../src/client/index.js'
import { harness, TestClient } from '../helpers.js'
import { within } from '../wait.js'

/** Accounts of the tests' host: a token names one. */
const ACCOUNTS: Record<string, ShoalIdentity> = {
  'tok-alice': { userId: 'alice', name: 'Alice', info: { role: 'admin', team: 'red' } },
  'tok-bob': { userId: 'bob', info: { role: 'member', team: 'blue' } },
  'tok-carol': { userId: 'carol' }
}

/** authorize reads `?token=` of the upgrade, as a host with a cookie or query token would; without one, anonymous. */
const byQueryToken: ShoalOptions = {
  authorize: (request: FastifyRequest) => {
    const token = new URL(request.url, 'http://x').searchParams.get('token')
    return token === null ? true : ACCOUNTS[token] ?? { statusCode: 401, message: 'unknown token' }
  }
}

t.test('an identity from authorize binds the user', async (t) => {
  const { server, join } = await harness(t, byQueryToken)
  const connectAs = async (token: string): Promise<TestClient> => await TestClient.connect(`${server.wsUrl}?token=${token}`)

  const alice = await connectAs('tok-alice')
  t.teardown(() => { alice.close() })
  // The client asks for another name: the host's wins.
  const welcome = await alice.register({ name: 'Mallory', room: 'hall' })
  t.equal(welcome.you.name, 'Alice', 'the name the host gave')
  t.equal(welcome.you.userId, 'alice')
  t.same(welcome.you.info, { role: 'admin', team: 'red' })

  const bob = await connectAs('tok-bob')
  t.teardown(() => { bob.close() })
  const bobWelcome = await bob.register({ name: 'Bobby', room: 'hall' })
  t.equal(bobWelcome.you.name, 'Bobby', 'without a name from the host, the client picks')
  const seenAlice = bobWelcome.users.find((user) => user.id === welcome.id)
  t.equal(seenAlice?.userId, 'alice', 'others see the account id')
  t.same(seenAlice?.info, { role: 'admin', team: 'red' }, 'and the info')
  const joined = await alice.next('presence', (m) => (m.joined ?? []).some((user) => user.id === bobWelcome.id))
  t.same(joined.joined?.[0]?.info, { role: 'member', team: 'blue' })

  alice.send({ type: 'update', name: 'Eve' })
  const refused = await alice.next('error')
  t.match(refused, { code: 'forbidden', ref: 'update' }, 'a fixed name cannot change')
  t.match(refused.message, /name/)
  alice.send({ type: 'update', name: ' Alice ', state: { mood: 'ok' } })
  const updated = await bob.next('presence', (m) => (m.updated ?? []).some((u) => u.id === welcome.id))
  t.same(updated.updated, [{ id: welcome.id, state: { mood: 'ok' } }], 'the same name with a state change passes')

  // Two tabs of one account are two users.
  const aliceTab = await connectAs('tok-alice')
  t.teardown(() => { aliceTab.close() })
  const tab = await aliceTab.register({ room: 'hall' })
  t.not(tab.id, welcome.id)
  t.equal(tab.you.userId, 'alice')

  const anonymous = await join({ room: 'hall' })
  t.equal(anonymous.welcome.you.userId, undefined, 'a user authorize gave no identity is anonymous')
  t.equal('info' in anonymous.welcome.you, false)
  const unknown = await TestClient.connect(`${server.wsUrl}?token=nope`).catch((err: Error) => err)
  t.ok(unknown instanceof Error && /401/.test(unknown.message), 'authorize still refuses')
})

t.test('a secret resumes only under its own account', async (t) => {
  const { server } = await harness(t, byQueryToken)
  const alice = await TestClient.connect(`${server.wsUrl}?token=tok-alice`)
  const welcome = await alice.register({ room: 'hall' })
  alice.close()
  await alice.whenClosed()

  const thief = await TestClient.connect(`${server.wsUrl}?token=tok-bob`)
  t.teardown(() => { thief.close() })
  thief.send({ type: 'reconnect', secret: welcome.secret })
  t.match(await thief.next('error'), { code: 'invalid_secret', ref: 'reconnect' }, 'another account replays the secret')

  const back = await TestClient.connect(`${server.wsUrl}?token=tok-alice`)
  t.teardown(() => { back.close() })
  const resumed = await back.reconnect(welcome.secret)
  t.equal(resumed.id, welcome.id)
  t.equal(resumed.you.userId, 'alice')
  t.equal(resumed.resumed, true)
})

t.test('authenticate decides from the auth field', async (t) => {
  const seen: unknown[] = []
  const { connect } = await harness(t, {
    authenticate: (auth) => {
      seen.push(auth)
      const token = (auth as { token?: string } | undefined)?.token
      if (token === 'banned') throw new ShoalError('forbidden', 'this account is banned')
      if (token === 'boom') throw new Error('the auth service is down')
      return token === undefined ? false : ACCOUNTS[token] ?? false
    }
  })

  const carol = await connect()
  const welcome = await carol.register({ auth: { token: 'tok-carol' }, room: 'hall' })
  t.equal(welcome.you.userId, 'carol')
  t.equal(welcome.you.name.startsWith('guest-'), true, 'no name from the host: a guest name')
  carol.close()
  await carol.whenClosed()

  const back = await connect()
  back.send({ type: 'reconnect', secret: welcome.secret, auth: { token: 'tok-bob' } })
  t.match(await back.next('error'), { code: 'invalid_secret' }, 'a secret under another account\'s token')
  back.send({ type: 'reconnect', secret: welcome.secret, auth: { token: 'tok-carol' } })
  const resumed = await back.next('welcome')
  t.equal(resumed.id, welcome.id)
  t.equal(resumed.you.userId, 'carol')

  const refusals: Array<[unknown, string, number]> = [
    [{ token: 'wrong' }, 'unauthorized', 4401],
    [undefined, 'unauthorized', 4401],
    [{ token: 'banned' }, 'forbidden', 4403],
    [{ token: 'boom' }, 'server_error', 1011]
  ]
  for (const [auth, code, close] of refusals) {
    const client = await connect()
    client.send({ type: 'register', room: 'hall', ...(auth !== undefined && { auth }) })
    t.match(await client.next('error'), { code, ref: 'register' }, `auth ${JSON.stringify(auth)}: ${code}`)
    t.equal((await client.whenClosed()).code, close, `then close ${close}`)
  }
  const banned = await connect()
  banned.send({ type: 'register', auth: { token: 'banned' } })
  t.equal((await banned.next('error')).message, 'this account is banned', 'a ShoalError says its message')

  const calls = seen.length
  const big = await connect()
  big.send({ type: 'register', auth: { token: 'x'.repeat(5000) } })
  const tooBig = await big.next('error')
  t.match(tooBig, { code: 'invalid_message', ref: 'register' })
  t.match(tooBig.message, /^auth: larger than 4096 bytes/)
  t.equal(seen.length, calls, 'authenticate never saw it')
  t.equal((await big.register({ auth: { token: 'tok-bob' } })).you.userId, 'bob', 'and the connection stays open')
})

t.test('canJoin decides register and join', async (t) => {
  const rooms: Record<string, string[]> = { alice: ['red', 'lobby'], bob: ['blue', 'lobby'] }
  const { server, settle, tick } = await harness(t, {
    ...byQueryToken,
    // Anonymous users (the harness's tick watchers) go anywhere; accounts only to their rooms.
    canJoin: async (identity, room) => identity === null || rooms[identity.userId]?.includes(room) === true
  })
  const alice = await TestClient.connect(`${server.wsUrl}?token=tok-alice`)
  const bob = await TestClient.connect(`${server.wsUrl}?token=tok-bob`)
  t.teardown(() => { alice.close(); bob.close() })

  alice.send({ type: 'register', room: 'blue' })
  const refused = await alice.next('error')
  t.match(refused, { code: 'forbidden', ref: 'register' })
  t.match(refused.message, /"blue"/, 'the refusal names the room')
  const welcome = await alice.register({ room: 'red' })
  t.equal(welcome.room, 'red', 'the same connection may then register where it may go')

  const bobWelcome = await bob.register({ room: 'blue' })
  await settle({ client: alice, welcome }, { client: bob, welcome: bobWelcome })
  alice.send({ type: 'join', room: 'blue' })
  t.match(await alice.next('error'), { code: 'forbidden', ref: 'join' })
  alice.send({ type: 'sync' })
  t.equal((await alice.next('snapshot')).room, 'red', 'the user stays where it was')
  await tick()
  t.same(await bob.drainType('presence'), [], 'and the room it asked for saw nothing, a whole tick later')

  alice.send({ type: 'join', room: 'lobby' })
  t.equal((await alice.next('snapshot')).room, 'lobby', 'a room it may enter')
})

t.test('canUpdate makes members read-only', async (t) => {
  const { server, settle } = await harness(t, {
    ...byQueryToken,
    canUpdate: (identity, room) => room !== 'stage' || identity?.info?.role === 'admin'
  })
  const viewer = await TestClient.connect(`${server.wsUrl}?token=tok-bob`)
  t.teardown(() => { viewer.close() })
  const viewerWelcome = await viewer.register({ room: 'stage' })
  const admin = await TestClient.connect(`${server.wsUrl}?token=tok-alice`)
  t.teardown(() => { admin.close() })
  const adminWelcome = await admin.register({ room: 'stage' })
  await settle({ client: viewer, welcome: viewerWelcome }, { client: admin, welcome: adminWelcome })

  for (const message of [
    { type: 'update', position: { x: 1, y: 2 } },
    { type: 'data', payload: 'hi' },
    { type: 'updatelisteningto', listeningTo: [adminWelcome.id] }
  ]) {
    viewer.send(message)
    t.match(await viewer.next('error'), { code: 'forbidden', ref: message.type }, `${message.type} is refused`)
  }
  admin.send({ type: 'update', state: { live: true } })
  t.ok(await viewer.next('presence', (m) => (m.updated ?? []).some((u) => u.id === adminWelcome.id)), 'the viewer still watches')
  await settle({ client: viewer, welcome: viewerWelcome }, { client: admin, welcome: adminWelcome })
  t.same((await admin.drainType('positions')).filter((m) => m.p.some(([id]) => id === viewerWelcome.id)), [], 'nobody saw the viewer move')

  viewer.send({ type: 'join', room: 'lobby' })
  await viewer.next('snapshot')
  viewer.send({ type: 'update', state: { here: true } })
  t.same(await viewer.drainType('error'), [], 'in another room it may update')
})

t.test('the server acts on users: setState, setInfo, moveToRoom', async (t) => {
  const { server, join, settle } = await harness(t)
  const api = server.app.shoal
  const a = await join({ name: 'a', room: 'one' })
  const b = await join({ name: 'b', room: 'one' })
  const c = await join({ name: 'c', room: 'two' })
  await settle(a, b, c)

  t.equal(api.setState(a.welcome.id, { score: 3, mood: 'ok' }), true)
  let update = await b.client.next('presence', (m) => (m.updated ?? []).length > 0)
  t.same(update.updated, [{ id: a.welcome.id, state: { score: 3, mood: 'ok' } }], 'the room sees the state')
  t.same((await a.client.next('presence')).updated, [{ id: a.welcome.id, state: { score: 3, mood: 'ok' } }], 'the user itself too')
  t.equal(api.setState(a.welcome.id, { mood: null }), true)
  update = await b.client.next('presence', (m) => (m.updated ?? []).length > 0)
  t.same(update.updated, [{ id: a.welcome.id, state: { score: 3 } }], 'null removes a key')

  t.equal(api.setInfo(a.welcome.id, { badge: 'gold' }), true)
  update = await b.client.next('presence', (m) => (m.updated ?? []).length > 0)
  t.same(update.updated, [{ id: a.welcome.id, info: { badge: 'gold' } }], 'the room sees the info')
  t.same(api.user(a.welcome.id)?.info, { badge: 'gold' })
  t.equal(api.setInfo(a.welcome.id, { badge: 'gold' }), true)
  await settle(a, b)
  t.same(await b.client.drainType('presence'), [], 'the same info again changes nothing')

  t.throws(() => api.setState(a.welcome.id, { 'bad key': 1 }), TypeError, 'a key no client could send')
  t.throws(() => api.setState(a.welcome.id, { long: 'x'.repeat(300) }), TypeError)
  t.throws(() => api.setInfo(a.welcome.id, [] as unknown as Record<string, unknown>), /info: expected a JSON object/)
  t.throws(() => api.setInfo(a.welcome.id, { big: 'x'.repeat(5000) }), /larger than 4096 bytes/)
  t.equal(api.setState('00000000-0000-4000-8000-000000000000', { a: 1 }), false, 'an unknown user')
  t.equal(api.setInfo('nobody', {}), false)

  t.equal(await api.moveToRoom(a.welcome.id, 'two'), true)
  const snapshot = await a.client.next('snapshot')
  t.equal(snapshot.room, 'two', 'the moved user gets its new room')
  t.same(snapshot.users.map((user) => user.name), ['c'])
  t.same((await b.client.next('presence', (m) => (m.left ?? []).length > 0)).left, [a.welcome.id], 'the old room sees it leave')
  const arrived = await c.client.next('presence', (m) => (m.joined ?? []).length > 0)
  t.match(arrived.joined?.[0], { id: a.welcome.id, state: { score: 3 }, info: { badge: 'gold' } }, 'the new one sees it join, as it was')
  t.equal(api.user(a.welcome.id)?.room, 'two')
  await t.rejects(api.moveToRoom(a.welcome.id, 'not a room'), TypeError)
  t.equal(await api.moveToRoom('nobody', 'two'), false)
})

t.test('an authorize answer that is not an identity is named in the log and refused with 500', async (t) => {
  const lines: string[] = []
  const { server } = await harness(t, { authorize: () => ({ username: 'ann' }) as never }, { write: (line) => { lines.push(line) } })
  const refused = await TestClient.connect(server.wsUrl).catch((err: Error) => err)
  t.ok(refused instanceof Error && /500/.test(refused.message))
  t.ok(lines.some((line) => line.includes('authorize returned an invalid identity') && line.includes('username')), 'the log names the field')
})

t.test('the client library sees what the server sets on its own user', async (t) => {
  const { server } = await harness(t)
  const client = new ShoalClient({ url: server.wsUrl, WebSocket: WebSocket as never, pingIntervalMs: 0, register: { room: 'one' } })
  t.teardown(() => { client.close() })
  await within('the client\'s welcome', new Promise((resolve) => client.once('welcome', resolve)))
  const updates: unknown[] = []
  const told = new Promise<void>((resolve) => {
    client.on('update', (user) => {
      updates.push(user)
      if (client.me?.info?.badge === 'gold' && client.me.state.score === 7) resolve()
    })
  })
  // At once after the welcome: the room still announces the user whole, to everyone but the user itself.
  server.app.shoal.setInfo(client.id ?? '', { badge: 'gold' })
  server.app.shoal.setState(client.id ?? '', { score: 7 })
  await within('updates of our own user with badge gold and score 7', told)
  t.ok(updates.every((user) => user === client.me), 'told as updates of our own user')
  const snapshot = new Promise((resolve) => client.once('snapshot', resolve))
  await server.app.shoal.moveToRoom(client.id ?? '', 'two')
  await within('the snapshot of the room the server moved us to', snapshot)
  t.equal(client.room, 'two')
  t.equal(client.me?.room, 'two', 'and where the server moved it')
})

t.test('without hooks a user is what the contract says, field for field', async (t) => {
  const { join, settle } = await harness(t)
  const a = await join({ name: 'a', room: 'plain', auth: { ignored: true } })
  const b = await join({ name: 'b', room: 'plain' })
  await settle(a, b)
  const fields = ['id', 'name', 'room', 'position', 'state', 'listeningTo', 'connected']
  t.same(Object.keys(a.welcome.you), fields, 'welcome.you')
  t.same(Object.keys(b.welcome.users[0] ?? {}), fields, 'welcome.users')
  a.client.send({ type: 'sync' })
  t.same(Object.keys((await a.client.next('snapshot')).users[0] ?? {}), fields, 'snapshot.users')
})
