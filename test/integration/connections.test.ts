/**
 * Limits on connections themselves, over real sockets: the register timeout, the
 * per-address cap on open connections, and the Origin check at the upgrade.
 */
import t from 'tap'
import shoal, { type ShoalOptions } from '../../index.js'
import { ManualClock } from '../../src/core/clock.js'
import { metricsAuthorizeFromEnv, trustProxyFromEnv } from '../../src/server/env.js'
import { FAST, harness as setup, TestClient, testApp } from '../helpers.js'
import { request, requestJson, statusOf } from '../http.js'

/** The HTTP status an upgrade was refused with ('open' when it was not refused). */
async function upgradeStatus (url: string, headers: Record<string, string> = {}): Promise<string> {
  try {
    const client = await TestClient.connect(url, { headers })
    client.close()
    return 'open'
  } catch (err) {
    return (err as Error).message
  }
}

t.test('a socket that neither registers nor reconnects within registerTimeoutMs is closed with 1008', async (t) => {
  const clock = new ManualClock()
  const { connect, join, tick } = await setup(t, { clock, registerTimeoutMs: 1000 })
  const idle = await connect()
  const user = await join({ name: 'stays' })
  clock.advance(500)
  const late = await connect()
  clock.advance(499)
  await tick()
  t.equal(idle.socket.readyState, idle.socket.OPEN, 'not before the timeout')
  clock.advance(1)
  t.strictSame(await idle.whenClosed(), { code: 1008, reason: 'no register or reconnect in time' })
  late.send({ type: 'register', name: 'just in time' })
  t.equal((await late.next('welcome')).you.name, 'just in time', 'a socket registers until its own timeout')
  clock.advance(10_000)
  await tick()
  t.equal(user.client.socket.readyState, user.client.socket.OPEN, 'a registered socket is never timed out')
  t.equal(late.socket.readyState, late.socket.OPEN)
})

t.test('maxConnectionsPerAddress: one more upgrade from the address is refused with 429 until one closes', async (t) => {
  const { server, connect } = await setup(t, { maxConnectionsPerAddress: 2 })
  const first = await connect()
  await connect()
  t.equal(await upgradeStatus(server.wsUrl), 'HTTP 429')
  first.close()
  await first.whenClosed()
  t.equal(await upgradeStatus(server.wsUrl), 'open', 'room again once one closed')
  const health = (await requestJson<{ connections: number }>(`${server.url}/health`)).json
  t.ok(health.connections <= 2, 'the refused upgrades never became connections')
})

t.test('allowedOrigins: a browser from another origin is refused with 403; no Origin (not a browser) is not', async (t) => {
  const { server } = await setup(t, { allowedOrigins: ['https://app.example'] })
  t.equal(await upgradeStatus(server.wsUrl, { Origin: 'https://app.example' }), 'open')
  t.equal(await upgradeStatus(server.wsUrl, { Origin: 'https://evil.example' }), 'HTTP 403')
  t.equal(await upgradeStatus(server.wsUrl, { Origin: 'https://app.example.evil.example' }), 'HTTP 403', 'exact match only')
  t.equal(await upgradeStatus(server.wsUrl), 'open')
})

t.test('allowedOrigins as a function decides each Origin', async (t) => {
  const asked: string[] = []
  const { server } = await setup(t, {
    allowedOrigins: async (origin) => {
      asked.push(origin)
      return origin.endsWith('.example.com')
    }
  })
  t.equal(await upgradeStatus(server.wsUrl, { Origin: 'https://a.example.com' }), 'open')
  t.equal(await upgradeStatus(server.wsUrl, { Origin: 'https://b.example.org' }), 'HTTP 403')
  t.strictSame(asked, ['https://a.example.com', 'https://b.example.org'])
})

t.test('a bad allowedOrigins or authorize fails registration with an error naming it', async (t) => {
  for (const [options, expected] of [
    [{ allowedOrigins: 'https://app.example' }, /option allowedOrigins: expected a list of origins/],
    [{ allowedOrigins: [1, 2] }, /option allowedOrigins/],
    [{ authorize: true }, /option authorize: expected a function, got boolean/]
  ] as const) {
    const app = testApp()
    // @ts-expect-error deliberately wrong options
    await t.rejects(app.register(shoal, { demo: false, ...options }).ready(), expected)
    await app.close()
  }
})

/** A Shoal app behind a trusted proxy on 127.0.0.1, as TRUST_PROXY would configure it. */
async function behindProxy (t: { teardown: (fn: () => unknown) => void }, trustProxy: string, options: ShoalOptions = {}): Promise<string> {
  const app = testApp({ trustProxy: trustProxyFromEnv({ TRUST_PROXY: trustProxy }) })
  await app.register(shoal, { ...FAST, demo: false, ...options })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('no port')
  return `ws://127.0.0.1:${address.port}/ws`
}

/** Registers through a proxy that appended the client's address to what the client sent. */
async function registerVia (t: { teardown: (fn: () => unknown) => void }, url: string, forwardedFor: string): Promise<string> {
  const client = await TestClient.connect(url, { headers: { 'X-Forwarded-For': forwardedFor } })
  t.teardown(() => client.close())
  client.send({ type: 'register' })
  // The pong behind the register comes after its answer.
  const [error] = await client.drainType('error')
  return error?.code ?? (await client.next('welcome')).type
}

t.test('TRUST_PROXY as the proxy\'s address: a forged left-most X-Forwarded-For gets no fresh budget', async (t) => {
  const url = await behindProxy(t, '127.0.0.1', { registerLimit: 2 })
  t.equal(await registerVia(t, url, '9.9.9.1, 10.1.1.1'), 'welcome')
  t.equal(await registerVia(t, url, '9.9.9.2, 10.1.1.1'), 'welcome')
  t.equal(await registerVia(t, url, '9.9.9.3, 10.1.1.1'), 'rate_limited', 'the third from 10.1.1.1, whatever it claims to be')
  t.equal(await registerVia(t, url, '10.2.2.2'), 'welcome', 'another client behind the proxy has its own budget')
})

t.test('TRUST_PROXY as a hop count trusts that many proxies', async (t) => {
  const url = await behindProxy(t, '1', { registerLimit: 1 })
  t.equal(await registerVia(t, url, '9.9.9.1, 10.1.1.1'), 'welcome')
  t.equal(await registerVia(t, url, '9.9.9.2, 10.1.1.1'), 'rate_limited', 'one hop trusted: the client is 10.1.1.1')
})

t.test('/metrics: off with metrics: false; metricsAuthorize (METRICS_TOKEN) guards it', async (t) => {
  const off = await setup(t, { metrics: false })
  t.equal(await statusOf(`${off.server.url}/metrics`), 404)
  const guarded = await setup(t, { metricsAuthorize: metricsAuthorizeFromEnv({ METRICS_TOKEN: 's3cret' }) })
  const url = `${guarded.server.url}/metrics`
  t.equal(await statusOf(url), 401)
  t.equal(await statusOf(url, { headers: { Authorization: 'Bearer wrong' } }), 403)
  const ok = await request(url, { headers: { Authorization: 'Bearer s3cret' } })
  t.equal(ok.status, 200)
  t.match(ok.body, /shoal_connections/)
})

t.test('maxRoomSize: a register or join into a full room gets room_full and changes nothing', async (t) => {
  const { join, connect } = await setup(t, { maxRoomSize: 2 })
  await join({ room: 'small' })
  await join({ room: 'small' })
  const late = await connect()
  late.send({ type: 'register', room: 'small' })
  t.match(await late.next('error'), { code: 'room_full', ref: 'register', message: 'room "small" is full' })
  const elsewhere = await join({ room: 'big' })
  elsewhere.client.send({ type: 'join', room: 'small' })
  t.match(await elsewhere.client.next('error'), { code: 'room_full', ref: 'join' })
  elsewhere.client.send({ type: 'sync' })
  t.equal((await elsewhere.client.next('snapshot')).room, 'big', 'still in its room')
})

t.test('join and sync: the burst, then snapshotsPerSecond; over it rate_limited and no snapshot', async (t) => {
  const clock = new ManualClock()
  const { join } = await setup(t, { clock, snapshotBurst: 2, snapshotsPerSecond: 1 })
  const { client } = await join({ room: 'a' })
  client.send({ type: 'sync' })
  client.send({ type: 'join', room: 'b' })
  client.send({ type: 'join', room: 'c' })
  t.equal((await client.next('snapshot')).room, 'a')
  t.equal((await client.next('snapshot')).room, 'b')
  t.match(await client.next('error'), { code: 'rate_limited', ref: 'join' })
  clock.advance(1000)
  client.send({ type: 'join', room: 'c' })
  t.equal((await client.next('snapshot')).room, 'c', 'a second later, one more')
  t.strictSame(await client.drainType('snapshot'), [])
})

t.test('presence pacing over real sockets: a client churning its listening set costs a bystander at most the budget', async (t) => {
  const clock = new ManualClock()
  const budget = 4096
  const { join, tick } = await setup(t, { clock, presenceBytesPerSecond: budget, presenceUserIntervalMs: 250, messagesPerSecond: 60, messageBurst: 120 })
  const bystander = await join({ room: 'r' })
  const churner = await join({ room: 'r' })
  await tick()
  clock.advance(2000)
  await tick()
  await bystander.client.drainType('presence')
  const sets = [0, 1].map((n) => Array.from({ length: 100 }, (_, i) => `00000000-0000-4000-8000-${String(n * 1000 + i).padStart(12, '0')}`))
  const seconds = 3
  for (let step = 0; step < seconds * 59; step++) {
    churner.client.send({ type: 'updatelisteningto', listeningTo: sets[step % 2] })
    clock.advance(1000 / 59)
    if (step % 3 === 2) await tick()
  }
  const received = (await bystander.client.drainType('presence')).reduce((sum, frame) => sum + JSON.stringify(frame).length, 0)
  t.ok(received <= budget * (seconds + 1), `${received} bytes of presence in ${seconds} s (budget ${budget} B/s)`)
  t.ok(received > 0, 'the changes still arrive')
})
