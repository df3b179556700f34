/**
 * The operator's page of a cluster on a real Redis: two standalone nodes with
 * ADMIN_TOKEN. Each node's feed lists both nodes and the bus, shows a shared
 * room with the node of each user, and disconnects only its own users.
 */
import t from 'tap'
import type { AdminOverviewT, AdminRoomT } from '../../schemas/admin.js'
import { TestClient } from '../helpers.js'
import { openStream, statusOf } from '../http.js'
import { freePort, QUIET_ENV, startProcess, waitReady } from '../process.js'
import { redisForTests, uniquePrefix } from '../redis.js'
import { within } from '../wait.js'

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

/**
 * Opens the feed and reads its events until one of `kind` passes `match` (within 10 s,
 * or the test fails naming `what` and the last such event); the feed is cancelled then.
 */
async function feedUntil<T> (t: Tap, base: string, kind: 'overview' | 'room', query: string, what: string, match: (data: T) => boolean): Promise<T> {
  const response = await openStream(t, `${base}/admin/feed${query}`, { headers: AUTH })
  if (response.body === null) throw new Error('no feed body')
  const reader = response.body.getReader()
  let last: T | undefined
  const read = async (): Promise<T> => {
    const decoder = new TextDecoder()
    let buffered = ''
    for (;;) {
      const { done, value } = await reader.read()
      if (done) throw new Error(`the feed ended (HTTP ${response.status})`)
      buffered += decoder.decode(value, { stream: true })
      for (let end = buffered.indexOf('\n\n'); end !== -1; end = buffered.indexOf('\n\n')) {
        const block = buffered.slice(0, end)
        buffered = buffered.slice(end + 2)
        if (!block.startsWith(`event: ${kind}\n`)) continue
        last = JSON.parse(block.slice(block.indexOf('data: ') + 6)) as T
        if (match(last)) return last
      }
    }
  }
  try {
    return await within(`${what} (a ${kind} event of ${base}/admin/feed${query})`, read())
  } catch (err) {
    throw new Error(`${(err as Error).message}; last ${kind} event: ${JSON.stringify(last)?.slice(0, 1000)}`)
  } finally {
    await reader.cancel().catch(() => {})
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

    const overview = await feedUntil<AdminOverviewT>(t, a, 'overview', '', 'both nodes alive and Ann and Bob in the hall', (o) => o.cluster?.nodes.length === 2 && o.rooms.listed.some((room) => room.name === 'hall' && room.members === 2))
    t.match(overview.node, /^admin-a:/)
    t.equal(overview.cluster?.bus, 'ok')
    t.match(overview.cluster?.nodes, [/^admin-a:/, /^admin-b:/], 'this node first, then the others alive')
    t.equal(overview.cluster?.servedRooms, 1)
    t.equal(overview.cluster?.replicas, 1, 'Bob is held here as a replica')

    const room = await feedUntil<AdminRoomT>(t, a, 'room', '?room=hall', 'two users in the hall', (r) => r.total === 2)
    t.same(room.users.map((user) => [user.name, user.node.split(':')[0]]), [['Ann', 'admin-a'], ['Bob', 'admin-b']])

    const disconnect = { method: 'POST', headers: { ...AUTH, 'content-type': 'application/json' }, body: '{}' }
    t.equal(await statusOf(`${a}/admin/users/${bobWelcome.id}/disconnect`, disconnect), 404, 'node A cannot end a session node B has')
    t.equal(await statusOf(`${b}/admin/users/${bobWelcome.id}/disconnect`, disconnect), 200)
    t.equal((await within('Bob\'s socket to close', bob.closed)).code, 1000)
    const after = await feedUntil<AdminRoomT>(t, a, 'room', '?room=hall', 'Bob gone from the hall', (r) => r.total === 1)
    t.same(after.users.map((user) => user.id), [annWelcome.id], 'node A\'s page sees Bob gone')
  })
}
