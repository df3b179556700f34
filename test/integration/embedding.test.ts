/**
 * Shoal embedded in a host app: prefixes and paths, several instances in one
 * process, the `app.shoal` API, `authorize`, and option checks at register time.
 */
import { Writable } from 'node:stream'
import t from 'tap'
import WebSocket from 'ws'
import shoal, { SettingsError, type ShoalApi, type ShoalOptions, type UserT } from '../../index.js'
import { FAST, joinedClient, listen, startServer, TestClient, testApp, view, type TestServer } from '../helpers.js'
import { request, statusOf } from '../http.js'
import { until } from '../wait.js'

interface Health { status: string, connections?: number, users?: number, rooms?: number }

async function health (url: string): Promise<Health> {
  const res = await request(`${url}/health`)
  if (res.status !== 200) throw new Error(`${url}/health answered ${res.status}`)
  return JSON.parse(res.body) as Health
}

/** The subtest type (the last overload of t.test takes only the callback). */
type Test = Parameters<Parameters<typeof t.test>[0]>[0]

const origin = (server: TestServer): string => new URL(server.url).origin

/** Attempts a WebSocket upgrade and reports how it ended: the HTTP status of a refusal (and its body), or 101. */
async function upgrade (url: string, options: WebSocket.ClientOptions = {}): Promise<{ status: number, body: string }> {
  const socket = new WebSocket(url, options)
  return await new Promise((resolve, reject) => {
    socket.once('open', () => { socket.close(); resolve({ status: 101, body: '' }) })
    socket.once('unexpected-response', (_req, res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { body += chunk })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
      res.on('error', reject)
    })
    socket.once('error', reject)
  })
}

/**
 * Whether a URL serves Shoal: connects, and if the upgrade succeeds, sends a
 * ping and waits for a pong or a close. A refused upgrade or a socket closed
 * without an answer is not Shoal.
 */
async function probe (url: string): Promise<{ shoal: boolean, detail: string }> {
  let client: TestClient
  try {
    client = await TestClient.connect(url)
  } catch (err) {
    return { shoal: false, detail: (err as Error).message }
  }
  client.send({ type: 'ping', t: 1 })
  const answer = await Promise.race([
    client.next('pong', () => true, 2000).then(() => 'pong', () => 'silence'),
    client.closed.then(({ code }) => `closed ${code}`)
  ])
  client.close()
  return { shoal: answer === 'pong', detail: answer }
}

/** Waits for a `reconnect` with `secret` to be answered on a fresh connection; returns the error code or 'welcome'. */
async function tryReconnect (wsUrl: string, secret: string): Promise<string> {
  const client = await TestClient.connect(wsUrl)
  try {
    client.send({ type: 'reconnect', secret })
    const t0 = Math.random()
    client.send({ type: 'ping', t: t0 })
    await client.next('pong', (m) => m.t === t0)
    const answer = client.received.find((m) => m.type === 'welcome' || m.type === 'error')
    if (answer === undefined) return 'nothing'
    return answer.type === 'error' ? answer.code : 'welcome'
  } finally {
    client.close()
  }
}

t.test('registered under a prefix', async (t) => {
  const server = await startServer({ prefix: '/rt' })
  t.teardown(server.close)
  t.equal(server.url.endsWith('/rt'), true)
  t.equal(server.wsUrl.endsWith('/rt/ws'), true)

  const { client, welcome } = await joinedClient(server, { name: 'Ann' })
  t.teardown(() => client.close())
  t.equal(welcome.protocol, 1)
  t.match(await health(server.url), { status: 'ok', connections: 1, users: 1, rooms: 1 })
  t.equal(await statusOf(`${server.url}/metrics`), 200)
  const page = await request(`${server.url}/`)
  t.equal(page.status, 200, 'the demo is at the prefix root')
  t.match(page.headers.get('content-type'), /^text\/html/)
  const src = /<script\b[^>]*\bsrc=["']([^"']+)["']/i.exec(page.body)?.[1] ?? 'app.js'
  t.equal(await statusOf(new URL(src, `${server.url}/`)), 200, `the page's script ${src} is under the prefix`)

  const root = origin(server)
  t.equal((await upgrade(`${root.replace(/^http/, 'ws')}/ws`)).status, 404, '/ws is not served outside the prefix')
  await t.rejects(TestClient.connect(`${root.replace(/^http/, 'ws')}/ws`), { message: 'HTTP 404' })
  t.equal(await statusOf(`${root}/health`), 404)
  t.equal(await statusOf(`${root}/metrics`), 404)
  t.equal(await statusOf(`${root}/`), 404)
})

t.test('a custom path option', async (t) => {
  t.test('without a prefix', async (t) => {
    const server = await startServer({ path: '/realtime' })
    t.teardown(server.close)
    t.match(server.wsUrl, /\/realtime$/)
    const { client, welcome } = await joinedClient(server)
    t.equal(welcome.protocol, 1)
    client.close()
    await t.resolveMatch(probe(`${origin(server).replace(/^http/, 'ws')}/ws`), { shoal: false }, '/ws is not the endpoint')
    t.equal(await statusOf(`${server.url}/health`), 200, 'health stays at /health')
  })

  t.test('without the demo, other paths are plain 404s', async (t) => {
    const server = await startServer({ path: '/realtime', demo: false })
    t.teardown(server.close)
    const ws = origin(server).replace(/^http/, 'ws')
    t.equal((await upgrade(`${ws}/ws`)).status, 404)
    t.equal((await upgrade(`${ws}/realtime`)).status, 101)
  })

  t.test('with a prefix', async (t) => {
    const server = await startServer({ prefix: '/p', path: '/sock/v1' })
    t.teardown(server.close)
    t.match(server.wsUrl, /\/p\/sock\/v1$/)
    const { client } = await joinedClient(server)
    client.close()
    const ws = origin(server).replace(/^http/, 'ws')
    await t.resolveMatch(probe(`${ws}/p/ws`), { shoal: false }, '/p/ws is not the endpoint')
    t.equal((await upgrade(`${ws}/sock/v1`)).status, 404, 'the path is under the prefix')
    t.equal((await upgrade(`${ws}/ws`)).status, 404)
  })
})

/** The isolation checks shared by both multi-instance layouts. */
async function checkIsolated (t: Test, one: TestServer, two: TestServer, apiOne: ShoalApi, apiTwo: ShoalApi): Promise<void> {
  const a = await joinedClient(one, { name: 'Ann', room: 'shared' })
  t.teardown(() => a.client.close())
  t.match(await health(one.url), { users: 1, rooms: 1, connections: 1 })
  t.match(await health(two.url), { users: 0, rooms: 0, connections: 0 })

  const b = await joinedClient(two, { name: 'Bob', room: 'shared' })
  t.teardown(() => b.client.close())
  t.same(b.welcome.users, [], 'the other instance does not see Ann in its room of the same name')
  t.match(await health(one.url), { users: 1, rooms: 1, connections: 1 })
  t.match(await health(two.url), { users: 1, rooms: 1, connections: 1 })

  t.same(apiOne.users('shared').map((u) => u.name), ['Ann'])
  t.same(apiTwo.users('shared').map((u) => u.name), ['Bob'])
  t.equal(apiTwo.user(a.welcome.id), undefined)
  t.equal(apiOne.user(b.welcome.id), undefined)
  t.equal(apiOne.sendToUser(b.welcome.id, 'x'), false)

  // A secret of one instance means nothing to the other, and still works on its own.
  t.equal(await tryReconnect(two.wsUrl, a.welcome.secret), 'invalid_secret')
  t.equal(await tryReconnect(one.wsUrl, b.welcome.secret), 'invalid_secret')

  // Traffic on one instance reaches nobody on the other.
  b.client.send({ type: 'updatelisteningto', listeningTo: [a.welcome.id] })
  a.client.send({ type: 'data', payload: 'hello' })
  a.client.send({ type: 'update', state: { mood: 'fine' }, position: { x: 1, y: 2 } })
  t.equal(apiOne.sendToRoom('shared', 'from one'), 1)
  t.same(await b.client.drainType('data'), [])
  const presence = await b.client.drainType('presence')
  const about = (id: string): boolean => presence.some((m) =>
    (m.joined ?? []).some((u) => u.id === id) || (m.left ?? []).includes(id) || (m.updated ?? []).some((u) => u.id === id))
  t.notOk(about(a.welcome.id), 'no presence about Ann on the other instance')

  // Metrics are per instance.
  const metricsTwo = (await request(`${two.url}/metrics`)).body
  t.match(metricsTwo, /^shoal_messages_in_total\{type="register"\} 1$/m)
  t.notMatch(metricsTwo, /type="data"/)
}

t.test('two instances in one process keep separate state', async (t) => {
  t.test('two separate Fastify apps', async (t) => {
    const one = await startServer()
    const two = await startServer()
    t.teardown(one.close)
    t.teardown(two.close)
    await checkIsolated(t, one, two, one.app.shoal, two.app.shoal)
  })

  t.test('one app, two encapsulated scopes under different prefixes', async (t) => {
    const app = testApp()
    const apis: Record<string, ShoalApi> = {}
    for (const prefix of ['/one', '/two']) {
      await app.register(async (scope) => {
        await scope.register(shoal, { ...FAST })
        apis[prefix] = scope.shoal
      }, { prefix })
    }
    const base = await listen(app)
    t.teardown(() => app.close())
    t.notOk(app.hasDecorator('shoal'), 'the root app gets no decorator from its scopes')
    const apiOne = apis['/one']
    const apiTwo = apis['/two']
    if (apiOne === undefined || apiTwo === undefined) throw new Error('scopes did not load')
    t.not(apiOne, apiTwo)
    await checkIsolated(t, view(app, base, '/one'), view(app, base, '/two'), apiOne, apiTwo)
  })

  t.test('scoped instances upgrade sockets without errors (one upgrade listener per server)', async (t) => {
    const lines: string[] = []
    const stream = new Writable({ write (chunk, _encoding, done) { lines.push(String(chunk)); done() } })
    const app = testApp({ logger: { level: 'warn', stream } })
    for (const prefix of ['/one', '/two']) {
      await app.register(async (scope) => { await scope.register(shoal, { ...FAST }) }, { prefix })
    }
    const base = await listen(app)
    t.teardown(() => app.close())
    const one = await joinedClient(view(app, base, '/one'))
    const two = await joinedClient(view(app, base, '/two'))
    one.client.close()
    two.client.close()
    t.equal(app.server.listenerCount('upgrade'), 1, 'one upgrade listener on the shared http server')
    t.same(lines.map((line) => (JSON.parse(line) as { msg?: string }).msg), [], 'no warnings or errors logged for normal upgrades')
  })
})

t.test('app.shoal.on: the host hears of each user\'s join, update, data, disconnect and leave over real sockets, typed', async (t) => {
  const server = await startServer({ graceMs: 60_000 })
  t.teardown(server.close)
  const heard: string[] = []
  const api: ShoalApi = server.app.shoal
  api.on('join', ({ user, room }) => { heard.push(`join ${user.name} ${room}`) })
  api.on('connect', ({ user }) => { heard.push(`connect ${user.name}`) })
  api.on('update', ({ user }) => { heard.push(`update ${user.name} ${JSON.stringify(user.state)}`) })
  api.on('data', async ({ user, payload }) => { heard.push(`data ${user.name} ${JSON.stringify(payload)}`) })
  api.on('disconnect', ({ user }) => { heard.push(`disconnect ${user.name}`) })
  api.on('leave', ({ user, room }) => { heard.push(`leave ${user.name} ${room}`) })
  // Never called: only its type error matters (`tsc -p tsconfig.json`, part of npm test).
  // @ts-expect-error -- there is no such event
  const misuse = (): void => { api.on('move', () => {}) }
  t.type(misuse, 'function')
  const heardAll = async (count: number): Promise<void> => await until(`the host to hear ${count} events`, () => heard.length >= count, { describe: () => heard })

  const ann = await joinedClient(server, { name: 'Ann', room: 'hall' })
  const bob = await joinedClient(server, { name: 'Bob', room: 'hall' })
  ann.client.send({ type: 'update', state: { mood: 'ok' } })
  ann.client.send({ type: 'data', payload: { hi: 1 } })
  await heardAll(6)
  bob.client.close()
  await heardAll(7)
  ann.client.send({ type: 'leave' })
  await heardAll(9)
  t.strictSame(heard, [
    'join Ann hall', 'connect Ann', 'join Bob hall', 'connect Bob',
    'update Ann {"mood":"ok"}', 'data Ann {"hi":1}', 'disconnect Bob', 'disconnect Ann', 'leave Ann hall'
  ])
})

t.test('the app.shoal API', async (t) => {
  const server = await startServer({ graceMs: 60_000 })
  t.teardown(server.close)
  const api: ShoalApi = server.app.shoal

  // Typed at compile time: these lines are checked by `tsc -p tsconfig.json`.
  const rooms: string[] = api.rooms()
  const nobody: UserT[] = api.users('nowhere')
  const missing: UserT | undefined = api.user('00000000-0000-0000-0000-000000000000')
  const stats: { connections: number, users: number, rooms: number, draining: boolean } = api.stats
  // Never called: only its type errors matter.
  const misuse = (): void => {
    // @ts-expect-error -- user ids are strings
    api.user(42)
    // @ts-expect-error -- stats is read-only
    api.stats = stats
    // @ts-expect-error -- disconnect needs an id
    api.disconnect()
    // @ts-expect-error -- there is no such method
    api.kick('id')
  }
  t.type(misuse, 'function')
  t.same(rooms, [])
  t.same(nobody, [])
  t.equal(missing, undefined)
  t.same(stats, { connections: 0, users: 0, rooms: 0, draining: false })
  t.equal(api.stats.draining, false, 'drain was never started by the type checks')

  const ann = await joinedClient(server, { name: 'Ann', room: 'alpha', state: { hat: 'red' }, position: { x: 1, y: 2, z: 3 } })
  const bob = await joinedClient(server, { name: 'Bob', room: 'alpha' })
  const cid = await joinedClient(server, { name: 'Cid', room: 'beta' })
  t.teardown(() => { ann.client.close(); bob.client.close(); cid.client.close() })
  await ann.client.next('presence', (m) => (m.joined ?? []).some((u) => u.id === bob.welcome.id))

  t.test('rooms, users, user, stats', async (t) => {
    t.same(api.rooms().sort(), ['alpha', 'beta'])
    t.same(api.users('alpha').map((u) => u.name).sort(), ['Ann', 'Bob'])
    t.same(api.users('beta').map((u) => u.id), [cid.welcome.id])
    t.same(api.users('gamma'), [])
    t.same(api.user(ann.welcome.id), {
      id: ann.welcome.id,
      name: 'Ann',
      room: 'alpha',
      position: { x: 1, y: 2, z: 3 },
      state: { hat: 'red' },
      listeningTo: [],
      connected: true
    })
    t.same(api.user(ann.welcome.id), ann.welcome.you, 'the API shows users as clients see them')
    t.equal(api.user('nope'), undefined)
    t.notOk(JSON.stringify(api.users('alpha')).includes(ann.welcome.secret), 'no secret in the API view')
    t.same(api.stats, { connections: 3, users: 3, rooms: 2, draining: false })
  })

  t.test('sendToRoom', async (t) => {
    const payload = { notice: 'maintenance', at: [1, 2, { deep: null }] }
    t.equal(api.sendToRoom('alpha', payload), 2)
    for (const client of [ann.client, bob.client]) {
      const data = await client.next('data')
      t.same(data, { type: 'data', from: 'server', payload })
    }
    t.same(await cid.client.drainType('data'), [], 'other rooms get nothing')
    t.equal(api.sendToRoom('nowhere', 'x'), 0)
  })

  t.test('sendToUser', async (t) => {
    t.equal(api.sendToUser(cid.welcome.id, 'just you'), true)
    t.same(await cid.client.next('data'), { type: 'data', from: 'server', payload: 'just you' })
    t.same(await ann.client.drainType('data'), [])
    t.same(await bob.client.drainType('data'), [])
    t.equal(api.sendToUser('00000000-0000-0000-0000-000000000000', 'x'), false)
  })

  t.test('a user in grace: listed as disconnected, not sent to', async (t) => {
    const dee = await joinedClient(server, { name: 'Dee', room: 'alpha' })
    dee.client.close()
    await dee.client.whenClosed()
    // Ann sees Dee disconnected: as an update, or (joined and dropped within one tick) as a join with connected false.
    await ann.client.next('presence', (m) =>
      (m.updated ?? []).some((u) => u.id === dee.welcome.id && u.connected === false) ||
      (m.joined ?? []).some((u) => u.id === dee.welcome.id && !u.connected))
    t.equal(api.user(dee.welcome.id)?.connected, false)
    t.ok(api.users('alpha').some((u) => u.id === dee.welcome.id && !u.connected))
    t.equal(api.sendToUser(dee.welcome.id, 'x'), false)
    t.equal(api.sendToRoom('alpha', 'count'), 2, 'only connected users are counted')
    await ann.client.next('data')
    await bob.client.next('data')
    t.match(api.stats, { users: 4, connections: 3 })

    // disconnect ends a session in grace too: the room sees it leave, the secret dies.
    t.equal(api.disconnect(dee.welcome.id), true)
    await ann.client.next('presence', (m) => (m.left ?? []).includes(dee.welcome.id))
    t.equal(api.user(dee.welcome.id), undefined)
    t.equal(await tryReconnect(server.wsUrl, dee.welcome.secret), 'invalid_secret')
  })

  t.test('disconnect', async (t) => {
    t.equal(api.disconnect(bob.welcome.id), true)
    const closed = await bob.client.whenClosed()
    t.equal(closed.code, 1000)
    await ann.client.next('presence', (m) => (m.left ?? []).includes(bob.welcome.id))
    t.equal(api.user(bob.welcome.id), undefined)
    t.same(api.users('alpha').map((u) => u.id), [ann.welcome.id])
    t.equal(await tryReconnect(server.wsUrl, bob.welcome.secret), 'invalid_secret', 'the secret no longer works')
    t.equal(api.disconnect(bob.welcome.id), false, 'a second disconnect finds nobody')
    t.equal(api.disconnect('nope'), false)
    t.match(api.stats, { users: 2, rooms: 2 })

    // Cid's room empties.
    t.equal(api.disconnect(cid.welcome.id), true)
    t.equal((await cid.client.whenClosed()).code, 1000)
    t.same(api.rooms(), ['alpha'])
    t.same(api.users('beta'), [])
  })
})

t.test('authorize', async (t) => {
  t.test('false refuses the upgrade with 403', async (t) => {
    let calls = 0
    const server = await startServer({ authorize: () => { calls++; return false } })
    t.teardown(server.close)
    const refused = await upgrade(server.wsUrl)
    t.equal(refused.status, 403)
    t.match(JSON.parse(refused.body), { error: 'forbidden' })
    await t.rejects(TestClient.connect(server.wsUrl), { message: 'HTTP 403' })
    t.equal(calls, 2)
    t.equal(await statusOf(`${server.url}/health`), 200, 'authorize guards only the socket')
    t.equal(server.app.shoal.stats.connections, 0)
  })

  t.test('{ statusCode: 401, message } refuses with 401 and the message', async (t) => {
    const server = await startServer({ authorize: () => ({ statusCode: 401, message: 'token required' }) })
    t.teardown(server.close)
    const refused = await upgrade(server.wsUrl)
    t.equal(refused.status, 401)
    t.match(JSON.parse(refused.body), { error: 'token required' })
    await t.rejects(TestClient.connect(server.wsUrl), { message: 'HTTP 401' })
  })

  t.test('{ statusCode: 403 } without a message', async (t) => {
    const server = await startServer({ authorize: async () => ({ statusCode: 403 }) })
    t.teardown(server.close)
    const refused = await upgrade(server.wsUrl)
    t.equal(refused.status, 403)
    t.match(JSON.parse(refused.body), { error: 'forbidden' })
  })

  t.test('async authorize reading a query token', async (t) => {
    const seen: string[] = []
    const server = await startServer({
      async authorize (request) {
        await new Promise((resolve) => setImmediate(resolve))
        const { token } = request.query as { token?: string }
        seen.push(token ?? '')
        return token === 's3cret' ? true : { statusCode: 401, message: 'bad token' }
      }
    })
    t.teardown(server.close)
    await t.rejects(TestClient.connect(server.wsUrl), { message: 'HTTP 401' })
    await t.rejects(TestClient.connect(`${server.wsUrl}?token=wrong`), { message: 'HTTP 401' })
    const client = await TestClient.connect(`${server.wsUrl}?token=s3cret`)
    const welcome = await client.register({ name: 'Ann' })
    t.equal(welcome.protocol, 1)
    client.close()
    t.same(seen, ['', 'wrong', 's3cret'])
  })

  t.test('async authorize reading a header', async (t) => {
    const server = await startServer({
      authorize: async (request) => request.headers['x-shoal-token'] === 'letmein'
    })
    t.teardown(server.close)
    await t.rejects(TestClient.connect(server.wsUrl), { message: 'HTTP 403' })
    await t.rejects(TestClient.connect(server.wsUrl, { headers: { 'x-shoal-token': 'nope' } }), { message: 'HTTP 403' })
    const client = await TestClient.connect(server.wsUrl, { headers: { 'x-shoal-token': 'letmein' } })
    const welcome = await client.register()
    t.equal(welcome.protocol, 1)
    t.equal(server.app.shoal.stats.connections, 1)
    client.close()
  })

  t.test('an authorize that throws refuses the upgrade and the server keeps serving', async (t) => {
    const server = await startServer({ authorize: () => { throw new Error('auth backend down') } })
    t.teardown(server.close)
    const refused = await upgrade(server.wsUrl)
    t.ok(refused.status >= 400, `refused with ${refused.status}`)
    t.equal(server.app.shoal.stats.connections, 0)
    t.equal(await statusOf(`${server.url}/health`), 200)
  })
})

t.test('invalid options are rejected at register time, naming the option', async (t) => {
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['tickHz: 0', { tickHz: 0 }, /option tickHz/],
    ['tickHz: 1000', { tickHz: 1000 }, /option tickHz/],
    ['graceMs: "x"', { graceMs: 'x' }, /option graceMs.*"x"/],
    ['heartbeatMs: 1.5', { heartbeatMs: 1.5 }, /option heartbeatMs/],
    ['path without a slash', { path: 'ws' }, /option path/],
    ['maxPayload: 1', { maxPayload: 1 }, /option maxPayload/],
    ['messagesPerSecond: 0', { messagesPerSecond: 0 }, /option messagesPerSecond/],
    ['demo: "yes"', { demo: 'yes' }, /option demo/],
    ['slowReaderCloseBytes under slowReaderSkipBytes', { slowReaderSkipBytes: 100, slowReaderCloseBytes: 50 }, /slowReaderCloseBytes/],
    ['a misspelt option', { tickhz: 30 }, /option tickhz: not an option of shoal \(did you mean tickHz\?\)/],
    ['an unknown option', { colour: 'red' }, /option colour: not an option of shoal$/],
    ['authorize: "yes"', { authorize: 'yes' }, /option authorize: expected a function/],
    ['canJoin: true', { canJoin: true }, /option canJoin: expected a function/],
    ['a sessionStore without save', { sessionStore: { load () {}, delete () {}, sweep () {}, close () {} } }, /option sessionStore: expected a SessionStore .* but save is not a function/],
    ['a bus that is a string', { bus: 'redis://x' }, /option bus: expected a ClusterBus/],
    ['a clock without now', { clock: {} }, /option clock: expected a clock/]
  ]
  for (const [label, options, expected] of cases) {
    const app = testApp()
    // Deliberately ill-typed options, as plain JavaScript callers could pass them.
    const error = await app.register(shoal, options as ShoalOptions).ready().then(() => null, (err: unknown) => err)
    t.ok(error instanceof SettingsError, `${label}: a SettingsError`)
    t.match((error as Error | null)?.message, expected, `${label}: names the option`)
    await app.close().catch(() => {})
  }

  // The options type rejects them at compile time too.
  const app = testApp()
  // @ts-expect-error -- graceMs is a number
  const typed: ShoalOptions = { graceMs: 'x' }
  await t.rejects(async () => { await app.register(shoal, typed).ready() }, /option graceMs/)
  await app.close().catch(() => {})

  // One at the root and one in a child scope: allowed (the child's is its own).
  const nested = testApp()
  await nested.register(shoal, { demo: false })
  await nested.register(async (scope) => { await scope.register(shoal, { demo: false, prefix: '/second' }) })
  await nested.ready()
  t.equal(nested.shoal.stats.draining, false, 'a root instance and a scoped one load side by side')
  await nested.close()

  // Twice in one scope: an error that says what to do instead.
  const twice = testApp()
  await twice.register(shoal, { demo: false })
  await t.rejects(async () => { await twice.register(shoal, { demo: false, prefix: '/second' }).ready() }, /registered in this scope already: register each further instance in a scope of its own/)
  await twice.close().catch(() => {})

  // Valid values are fine.
  const ok = testApp()
  await ok.register(shoal, { tickHz: 200, graceMs: 0, drainTimeoutMs: 0, demo: false, path: '/x' }).ready()
  t.equal(ok.shoal.stats.draining, false)
  await ok.close()
})
