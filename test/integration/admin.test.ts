/**
 * `/admin` over real sockets: off without the option, 401 without credentials,
 * the feed as server-sent events, the two actions, the rate limit, and nothing
 * of it on the public WebSocket.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http'
import t from 'tap'
import WebSocket from 'ws'
import type { AdminOverviewT, AdminRoomT } from '../../schemas/admin.js'
import { adminToken, MemoryClusterHub, type ShoalOptions } from '../../index.js'
import { AdminFeed } from '../../src/core/admin/feed.js'
import { ManualClock, systemClock } from '../../src/core/clock.js'
import { adminFromEnv } from '../../src/server/env.js'
import { harness, startServer, TestClient } from '../helpers.js'
import { request, requestJson, statusOf, type Reply } from '../http.js'
import { until, WAIT_MS, within } from '../wait.js'

type Tap = Parameters<Parameters<typeof t.test>[0]>[0]

const TOKEN = 's3cret-token'
const BEARER = { authorization: `Bearer ${TOKEN}` }
const ADMIN: ShoalOptions = { admin: adminToken(TOKEN, { intervalMs: 250 }), demo: false }

/** A feed's events as they come, over a real socket. */
class FeedReader {
  private readonly events: Array<{ event: string, data: unknown }> = []
  private buffer = ''
  private wake: (() => void) | null = null

  private constructor (readonly response: IncomingMessage, private readonly close: () => void) {
    response.setEncoding('utf8')
    response.on('data', (chunk: string) => {
      this.buffer += chunk
      for (let end = this.buffer.indexOf('\n\n'); end !== -1; end = this.buffer.indexOf('\n\n')) {
        const block = this.buffer.slice(0, end)
        this.buffer = this.buffer.slice(end + 2)
        const event = /^event: (.*)$/m.exec(block)?.[1] ?? 'message'
        const data = /^data: (.*)$/m.exec(block)?.[1] ?? 'null'
        this.events.push({ event, data: JSON.parse(data) as unknown })
      }
      this.wake?.()
    })
  }

  static async open (t: Tap, url: string, headers: Record<string, string> = BEARER): Promise<FeedReader> {
    return await within(`the admin feed at ${url} to answer`, new Promise((resolve, reject) => {
      const request = httpRequest(url, { headers }, (response) => {
        const reader = new FeedReader(response, () => request.destroy())
        t.teardown(() => request.destroy())
        resolve(reader)
      })
      request.on('error', reject)
      request.end()
    }))
  }

  get status (): number { return this.response.statusCode ?? 0 }

  /** The next event of a kind that passes `match`, within a few seconds. */
  async next<T> (kind: 'overview' | 'room', match: (data: T) => boolean = () => true): Promise<T> {
    const deadline = Date.now() + WAIT_MS
    for (;;) {
      const index = this.events.findIndex((e) => e.event === kind && match(e.data as T))
      if (index !== -1) return this.events.splice(0, index + 1).at(-1)?.data as T
      this.events.length = 0
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`waited ${WAIT_MS} ms for a ${kind} event where ${match.toString()}`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.wake = () => { clearTimeout(timer); resolve() }
      })
    }
  }

  end (): void { this.close() }
}

const postInit = (body: unknown, headers: Record<string, string>): RequestInit =>
  ({ method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) })
const post = async (url: string, body: unknown, headers: Record<string, string> = BEARER): Promise<Reply> =>
  await request(url, postInit(body, headers))
const postJson = async <T>(url: string, body: unknown, headers: Record<string, string> = BEARER): Promise<Reply & { json: T }> =>
  await requestJson<T>(url, postInit(body, headers))

t.test('without the admin option there is no /admin, no feed and no action', async (t) => {
  const { server } = await harness(t, { demo: false })
  for (const path of ['/admin', '/admin/feed', '/admin/assets/admin.js']) t.equal(await statusOf(`${server.url}${path}`, { headers: BEARER }), 404, path)
  t.equal((await post(`${server.url}/admin/rooms/lobby/messages`, { payload: 1 })).status, 404)
})

t.test('unauthorized requests get 401 (with a Basic challenge for adminToken) and change nothing', async (t) => {
  const { server, join } = await harness(t, ADMIN)
  const ann = await join({ name: 'Ann', room: 'lobby' })
  const basic = (password: string): Record<string, string> => ({ authorization: `Basic ${Buffer.from(`ops:${password}`).toString('base64')}` })
  for (const headers of [{}, { authorization: 'Bearer wrong' }, basic('wrong'), { authorization: 'Token s3cret-token' }]) {
    const page = await request(`${server.url}/admin`, { headers })
    t.equal(page.status, 401, JSON.stringify(headers))
    t.match(page.headers.get('www-authenticate'), /^Basic realm="Shoal admin"/)
    t.equal(await statusOf(`${server.url}/admin/feed`, { headers }), 401)
    t.equal((await post(`${server.url}/admin/users/${ann.welcome.id}/disconnect`, {}, headers)).status, 401)
  }
  t.ok(server.app.shoal.user(ann.welcome.id)?.connected, 'the user is still there')
  for (const [path, headers] of [['/admin', BEARER], ['/admin/', basic(TOKEN)]] as const) {
    const page = await request(`${server.url}${path}`, { headers })
    t.equal(page.status, 200)
    const html = page.body
    t.match(html, 'src="/admin/assets/admin.js"', 'the page loads its bundle from under /admin')
    t.notMatch(html, '%ADMIN_BASE%')
  }
  const bundle = await request(`${server.url}/admin/assets/admin.js`, { headers: BEARER })
  t.equal(bundle.status, 200)
  t.match(bundle.headers.get('content-type'), 'text/javascript')
  t.equal(await statusOf(`${server.url}/admin/assets/admin.css`, { headers: BEARER }), 200)
  t.equal(await statusOf(`${server.url}/admin/assets/..%2Fadmin.html`, { headers: BEARER }), 404, 'only the two assets')
})

t.test('under a prefix and beside the demo: the page, its bundle and its feed are under <prefix>/admin', async (t) => {
  const { server } = await harness(t, { ...ADMIN, demo: true, prefix: '/rt' })
  const html = (await request(`${server.url}/admin`, { headers: BEARER })).body
  t.match(html, 'src="/rt/admin/assets/admin.js"')
  t.match(html, 'data-base="/rt/admin"')
  t.equal(await statusOf(`${server.url}/admin/assets/admin.js`, { headers: BEARER }), 200)
  t.equal(await statusOf(`${server.url}/admin`), 401, 'the demo\'s static files do not answer for it')
  const feed = await FeedReader.open(t, `${server.url}/admin/feed`)
  t.equal((await feed.next<AdminOverviewT>('overview')).node, 'single')
  t.equal(await statusOf(`${server.url}/`), 200, 'the demo is still there')
})

t.test('a host authorize decides, and its refusal status is kept (403 without a challenge)', async (t) => {
  const { server } = await harness(t, { demo: false, admin: { authorize: (request) => request.headers['x-role'] === 'ops' || { statusCode: 403, message: 'ops only' } } })
  const refused = await requestJson(`${server.url}/admin/feed`, { headers: { 'x-role': 'guest' } })
  t.equal(refused.status, 403)
  t.same(refused.json, { error: 'ops only' })
  t.equal(refused.headers.get('www-authenticate'), null)
  t.equal(await statusOf(`${server.url}/admin`, { headers: { 'x-role': 'ops' } }), 200)
})

t.test('the feed: rooms and counts, the users of a watched room, traffic by type', async (t) => {
  const { server, join } = await harness(t, ADMIN)
  const feed = await FeedReader.open(t, `${server.url}/admin/feed?room=lobby`)
  t.equal(feed.status, 200)
  t.match(feed.response.headers['content-type'], 'text/event-stream')
  t.equal(feed.response.headers['x-accel-buffering'], 'no', 'a proxy is told not to buffer it')
  const empty = await feed.next<AdminOverviewT>('overview')
  t.equal(empty.rooms.listed.find((room) => room.name === 'lobby'), undefined)
  const ann = await join({ name: 'Ann', room: 'lobby', position: { x: 3, y: 4 }, state: { role: 'host' } })
  const bob = await join({ name: 'Bob', room: 'lobby' })
  bob.client.send({ type: 'updatelisteningto', listeningTo: [ann.welcome.id] })
  await bob.client.drainType('pong')
  const overview = await feed.next<AdminOverviewT>('overview', (o) => o.rooms.listed.some((room) => room.name === 'lobby' && room.members === 2))
  t.same(overview.users, { connected: 2, inGrace: 0 })
  t.equal(overview.connections, 2)
  t.ok((overview.messagesIn.total.register ?? 0) >= 2, 'messages in are counted by type')
  t.ok((overview.messagesOut.total.welcome ?? 0) >= 2, 'messages out too')
  t.ok(overview.tick.perSecond > 0, 'ticks run')
  t.equal(overview.tick.budgetMs, 20, '1000 / tickHz (50 in these tests)')
  const room = await feed.next<AdminRoomT>('room', (r) => r.users.some((user) => user.name === 'Bob' && user.listeningTo.length === 1))
  t.same(room.users.map((user) => [user.name, user.connection]), [['Ann', 'connected'], ['Bob', 'connected']])
  t.match(room.users[0], { id: ann.welcome.id, position: { x: 3, y: 4, z: 0 }, state: { role: 'host' }, node: 'single' })
  t.same(room.users[1]?.listeningTo, [ann.welcome.id])

  bob.client.close()
  const grace = await feed.next<AdminOverviewT>('overview', (o) => o.users.inGrace === 1)
  t.same(grace.rooms.listed.find((r) => r.name === 'lobby'), { name: 'lobby', members: 2, connected: 1 })
  const bobInGrace = await feed.next<AdminRoomT>('room', (r) => r.users.some((user) => user.name === 'Bob' && user.connection === 'grace'))
  t.same(bobInGrace.users.map((user) => [user.name, user.connection]), [['Ann', 'connected'], ['Bob', 'grace']], 'Bob in grace, Ann still connected')
})

t.test('actions: disconnect a user, send a server message to a room; bad input gets 400 or 404 and changes nothing', async (t) => {
  const logs: Array<Record<string, unknown>> = []
  const { server, join } = await harness(t, ADMIN, { write: (line) => { logs.push(JSON.parse(line) as Record<string, unknown>) } })
  const ann = await join({ name: 'Ann', room: 'lobby' })
  const bob = await join({ name: 'Bob', room: 'lobby' })

  const sent = await postJson(`${server.url}/admin/rooms/lobby/messages`, { payload: { notice: 'maintenance at 18:00' } })
  t.equal(sent.status, 200)
  t.same(sent.json, { room: 'lobby', recipients: 2 })
  const data = await ann.client.next('data', (m) => m.from === 'server')
  t.same(data.payload, { notice: 'maintenance at 18:00' })
  await bob.client.next('data', (m) => m.from === 'server')

  for (const [body, why] of [[{}, 'no payload'], [{ payload: 1, extra: true }, 'an unknown field'], [{ payload: 'x'.repeat(9000) }, 'a payload over 8 KiB']] as const) {
    const refused = await postJson<{ message?: string, error?: string }>(`${server.url}/admin/rooms/lobby/messages`, body)
    t.equal(refused.status, 400, why)
    t.ok(typeof refused.json.error === 'string', `${why}: a clear error`)
  }
  t.equal((await post(`${server.url}/admin/rooms/${encodeURIComponent('no room!')}/messages`, { payload: 1 })).status, 400, 'a malformed room name')
  const form = await request(`${server.url}/admin/rooms/lobby/messages`, { method: 'POST', headers: { ...BEARER, 'content-type': 'application/x-www-form-urlencoded' }, body: 'payload=1' })
  t.equal(form.status, 415, 'a form post (what another site could make a browser send) is refused')
  t.same(await ann.client.drainType('data'), [], 'none of these reached the room')

  const unknown = await post(`${server.url}/admin/users/00000000-0000-4000-8000-000000000000/disconnect`, {})
  t.equal(unknown.status, 404)
  const gone = await postJson(`${server.url}/admin/users/${bob.welcome.id}/disconnect`, {})
  t.equal(gone.status, 200)
  t.same(gone.json, { disconnected: bob.welcome.id })
  t.same(await bob.client.whenClosed(), { code: 1000, reason: 'disconnected by the server' })
  const left = await ann.client.next('presence', (m) => m.left?.includes(bob.welcome.id) === true)
  t.same(left.left, [bob.welcome.id], 'the room sees the user leave')
  t.equal(server.app.shoal.user(bob.welcome.id), undefined, 'its session ended')
  t.ok(logs.some((line) => line.msg === 'admin: disconnected a user' && line.user === bob.welcome.id), 'the action is logged')
  t.ok(logs.some((line) => line.msg === 'admin: sent a server message to a room' && line.room === 'lobby' && line.recipients === 2), 'so is the message')
})

t.test('the admin surface is rate limited, and so is the number of pages watching', async (t) => {
  const clock = new ManualClock()
  const { server } = await harness(t, { ...ADMIN, clock })
  const statuses: number[] = []
  for (let i = 0; i < 32; i++) statuses.push(await statusOf(`${server.url}/admin/assets/admin.css`, { headers: BEARER }))
  t.same(statuses.slice(0, 30), Array(30).fill(200), 'a burst of 30')
  t.same(statuses.slice(30), [429, 429])
  clock.advance(1000)
  t.equal(await statusOf(`${server.url}/admin/assets/admin.css`, { headers: BEARER }), 200, 'five more a second')

  // The instance's feed sits in Shoal's own scope (no decorator on the host app): the first page it watches shows it.
  const feeds = new Set<AdminFeed>()
  const watch = AdminFeed.prototype.watch
  AdminFeed.prototype.watch = function (this: AdminFeed, ...args: Parameters<AdminFeed['watch']>) { feeds.add(this); return watch.apply(this, args) }
  t.teardown(() => { AdminFeed.prototype.watch = watch })
  const { server: watched } = await harness(t, ADMIN)
  const pages: FeedReader[] = []
  for (let i = 0; i < 16; i++) pages.push(await FeedReader.open(t, `${watched.url}/admin/feed`))
  t.same(pages.map((page) => page.status), Array(16).fill(200))
  t.same(pages.map((page) => page.response.headers['content-type']), Array(16).fill('text/event-stream; charset=utf-8'), 'each an event stream, also those that came between two snapshots')
  for (const page of pages) await page.next('overview')
  const extra = await FeedReader.open(t, `${watched.url}/admin/feed`)
  t.equal(extra.status, 429, 'a 17th page is refused')
  t.equal(feeds.size, 1, 'one feed took the pages')
  const [feed] = feeds
  t.equal(feed?.watcherCount, 16)
  pages[0]?.end()
  await until('the closed page to stop counting as a watcher (15 left)', () => feed?.watcherCount === 15, { describe: () => feed?.watcherCount })
  t.equal(feed?.watcherCount, 15, 'the closed page no longer counts')
  t.equal((await FeedReader.open(t, `${watched.url}/admin/feed`)).status, 200, 'a page that closed makes room')
})

t.test('the admin feed is not reachable on the public path', async (t) => {
  const { server, join } = await harness(t, ADMIN)
  const watcher = await FeedReader.open(t, `${server.url}/admin/feed?room=lobby`)
  await watcher.next('overview')
  const ann = await join({ name: 'Ann', room: 'lobby' })
  for (const type of ['admin', 'overview', 'feed']) {
    ann.client.send({ type, id: 1 })
    const error = await ann.client.next('error')
    t.equal(error.code, 'unknown_type', `${type}: not a message of the public protocol`)
  }
  await watcher.next('room', (room: AdminRoomT) => room.total === 1)
  const seen = [...ann.client.received.map((m) => m.type)]
  t.notOk(seen.some((type) => (type as string) === 'overview' || (type as string) === 'room'), 'the public socket never carries the feed')
  const upgrade = new WebSocket(`${server.wsUrl.replace(/\/ws$/, '/admin/feed')}`, { headers: BEARER })
  const refusal = await within('the answer to a WebSocket upgrade at /admin/feed', new Promise<string>((resolve) => {
    upgrade.once('open', () => resolve('open'))
    upgrade.once('unexpected-response', (_request, response) => { resolve(`HTTP ${response.statusCode ?? 0}`); response.destroy() })
    upgrade.once('error', (err) => resolve(err.message))
  }))
  upgrade.terminate()
  t.not(refusal, 'open', 'no WebSocket at /admin/feed')
  const ws = await TestClient.connect(server.wsUrl, { headers: BEARER })
  t.teardown(() => ws.close())
  ws.send({ type: 'sync' })
  t.equal((await ws.next('error')).code, 'not_registered', 'admin credentials give nothing more on /ws')
})

t.test('in a cluster: the nodes alive and the bus state', async (t) => {
  const hub = new MemoryClusterHub(systemClock)
  const nodeOptions = { ...ADMIN, nodeHeartbeatMs: 50, graceMs: 300, claimTimeoutMs: 300 }
  const a = await startServer({ ...nodeOptions, bus: hub.bus('node-a') })
  const b = await startServer({ ...nodeOptions, bus: hub.bus('node-b') })
  t.teardown(async () => { await a.close(); await b.close() })
  const feed = await FeedReader.open(t, `${a.url}/admin/feed`)
  const overview = await feed.next<AdminOverviewT>('overview', (o) => o.cluster?.nodes.length === 2)
  t.same(overview.cluster?.nodes, ['node-a', 'node-b'])
  t.equal(overview.cluster?.bus, 'ok')
  t.equal(overview.node, 'node-a')
  hub.setDown(true)
  await feed.next<AdminOverviewT>('overview', (o) => o.cluster?.bus === 'degraded')
  t.equal((await requestJson<{ status: string }>(`${a.url}/health`)).json.status, 'degraded', 'the page says what /health says: the bus is down')
})

t.test('admin options are checked, and ADMIN_TOKEN turns the page on in the standalone server', async (t) => {
  const { resolveConfig } = await import('../../src/host/options.js')
  t.throws(() => resolveConfig({ admin: {} as never }), /option admin\.authorize: expected a function/)
  t.throws(() => resolveConfig({ admin: { authorize: () => true, intervalMs: 10 } }), /option admin\.intervalMs: expected a number from 250 to 60000, got 10/)
  t.throws(() => resolveConfig({ admin: { authorize: () => true, autorize: 1 } as never }), /option admin\.autorize: not an option of admin/)
  t.equal(adminFromEnv({}), undefined)
  t.equal(adminFromEnv({ ADMIN_TOKEN: '' }), undefined)
  const fromEnv = adminFromEnv({ ADMIN_TOKEN: 'abc' })
  t.equal(await fromEnv?.authorize({ headers: { authorization: 'Bearer abc' } } as never), true)
  t.match(await fromEnv?.authorize({ headers: { authorization: 'Bearer abd' } } as never), { statusCode: 401 })
  t.throws(() => adminToken(''), /non-empty/)
})
