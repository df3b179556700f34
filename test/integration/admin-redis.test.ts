/**
 * The operator's page of a cluster on a real Redis: two standalone nodes with
 * ADMIN_TOKEN. Each node's feed lists both nodes and the bus, shows a shared
 * room with the node of each user, and disconnects only its own users.
 */
import t from 'tap'
import type { AdminOverviewT, AdminRoomT } from '../../schemas/admin.js'
import { TestClient } from '../helpers.js'
import { freePort, QUIET_ENV, startProcess, waitReady } from '../process.js'
import { redisForTests, uniquePrefix } from '../redis.js'

type Tap = Parameters<Parameters<typeof t.test>[0]>[0]

const redis = await redisForTests()
const AUTH = { authorization: 'Bearer ops' }

async function startNode (t: Tap, url: string, prefix: string, name: string): Promise<string> {
  const port = await freePort()
  const proc = startProcess({ ...QUIET_ENV, PORT: String(port), DEMO: 'false', CSV_FEEDS: '', NODE_HEARTBEAT_MS: '100', GRACE_MS: '600', ADMIN_TOKEN: 'ops', REDIS_URL: url, REDIS_PREFIX: prefix, NODE_ID: name })
  const base = `http://127.0.0.1:${port}`
  await waitReady(t, proc, base)
  return base
}

/** Opens the feed and reads its events until one of `kind` passes `match` (within 10 s). */
async function feedUntil<T> (base: string, kind: 'overview' | 'room', query: string, match: (data: T) => boolean): Promise<T> {
  const deadline = Date.now() + 10_000
  const controller = new AbortController()
  try {
    const response = await fetch(`${base}/admin/feed${query}`, { headers: AUTH, signal: controller.signal })
    if (response.body === null) throw new Error('no feed body')
    const decoder = new TextDecoder()
    let buffered = ''
    for await (const chunk of response.body) {
      buffered += decoder.decode(chunk as Uint8Array, { stream: true })
      for (let end = buffered.indexOf('\n\n'); end !== -1; end = buffered.indexOf('\n\n')) {
        const block = buffered.slice(0, end)
        buffered = buffered.slice(end + 2)
        if (!block.startsWith(`event: ${kind}\n`)) continue
        const data = JSON.parse(block.slice(block.indexOf('data: ') + 6)) as T
        if (match(data)) return data
      }
      if (Date.now() > deadline) break
    }
    throw new Error(`no matching ${kind} event from ${base} within 10 s`)
  } finally {
    controller.abort()
  }
}

if (redis.url === null) {
  t.plan(0, redis.reason)
} else {
  const url = redis.url
  t.teardown(redis.release)

  t.test('each node\'s page: both nodes and the bus, a shared room with each user\'s node, its own users only to disconnect', async (t) => {
    const prefix = uniquePrefix()
    const a = await startNode(t, url, prefix, 'admin-a')
    const b = await startNode(t, url, prefix, 'admin-b')
    const ann = await TestClient.connect(`${a.replace('http', 'ws')}/ws`)
    const bob = await TestClient.connect(`${b.replace('http', 'ws')}/ws`)
    t.teardown(() => { ann.close(); bob.close() })
    const annWelcome = await ann.register({ name: 'Ann', room: 'hall' })
    const bobWelcome = await bob.register({ name: 'Bob', room: 'hall' })

    const overview = await feedUntil<AdminOverviewT>(a, 'overview', '', (o) => o.cluster?.nodes.length === 2 && o.rooms.listed.some((room) => room.name === 'hall' && room.members === 2))
    t.match(overview.node, /^admin-a:/)
    t.equal(overview.cluster?.bus, 'ok')
    t.match(overview.cluster?.nodes, [/^admin-a:/, /^admin-b:/], 'this node first, then the others alive')
    t.equal(overview.cluster?.servedRooms, 1)
    t.equal(overview.cluster?.replicas, 1, 'Bob is held here as a replica')

    const room = await feedUntil<AdminRoomT>(a, 'room', '?room=hall', (r) => r.total === 2)
    t.same(room.users.map((user) => [user.name, user.node.split(':')[0]]), [['Ann', 'admin-a'], ['Bob', 'admin-b']])

    const elsewhere = await fetch(`${a}/admin/users/${bobWelcome.id}/disconnect`, { method: 'POST', headers: { ...AUTH, 'content-type': 'application/json' }, body: '{}' })
    t.equal(elsewhere.status, 404, 'node A cannot end a session node B has')
    const own = await fetch(`${b}/admin/users/${bobWelcome.id}/disconnect`, { method: 'POST', headers: { ...AUTH, 'content-type': 'application/json' }, body: '{}' })
    t.equal(own.status, 200)
    t.equal((await bob.closed).code, 1000)
    const after = await feedUntil<AdminRoomT>(a, 'room', '?room=hall', (r) => r.total === 1)
    t.same(after.users.map((user) => user.id), [annWelcome.id], 'node A\'s page sees Bob gone')
  })
}
