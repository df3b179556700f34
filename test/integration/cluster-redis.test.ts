/**
 * The cluster as operators run it: standalone server processes on different
 * ports, against a real Redis (REDIS_URL) and a real three-master Redis Cluster
 * (REDIS_CLUSTER_NODES, sharded pub/sub), a key prefix per test. Presence,
 * positions, state and data across nodes; routing by room (a node hears nothing
 * of rooms it does not serve, yet its listeners get `data` from them); reconnect
 * and takeover on another node; a node killed with SIGKILL; bad records; and, on
 * one Redis, Redis itself going away and coming back.
 */
import { Cluster, Redis } from 'ioredis'
import t from 'tap'
import type { ServerMessageT } from '../../schemas/protocol.js'
import { TestClient } from '../helpers.js'
import { request, requestJson } from '../http.js'
import { freePort, QUIET_ENV, startProcess, waitReady, type ServerProcess } from '../process.js'
import { OwnRedis, redisForTests, uniquePrefix } from '../redis.js'
import { redisClusterForTests } from '../redis-cluster.js'
import { valueOf, valueWhere, within } from '../wait.js'

type Tap = Parameters<Parameters<typeof t.test>[0]>[0]

// Eighteen node processes and a three-master Redis Cluster: about 50 s alone, more beside the rest of the suite.
t.setTimeout(180_000)

const redis = await redisForTests()
const redisCluster = await redisClusterForTests()

/** Where the nodes' Redis is, as their environment says it, and a client of the same for the test's own writes. */
interface Backend { name: string, env: Record<string, string>, client: () => Redis | Cluster }

interface Node { proc: ServerProcess, url: string, wsUrl: string }

async function startNode (t: Tap, redisEnv: Record<string, string>, prefix: string, name: string): Promise<Node> {
  const port = await freePort()
  const proc = startProcess({
    ...QUIET_ENV,
    PORT: String(port),
    TICK_HZ: '50',
    GRACE_MS: '600',
    NODE_HEARTBEAT_MS: '100',
    CLAIM_TIMEOUT_MS: '500',
    DRAIN_TIMEOUT_MS: '200',
    ...redisEnv,
    REDIS_PREFIX: prefix,
    NODE_ID: name
  })
  const url = `http://127.0.0.1:${port}`
  await waitReady(t, proc, url)
  return { proc, url, wsUrl: `ws://127.0.0.1:${port}/ws` }
}

async function client (t: Tap, node: Node, fields: Record<string, unknown>): Promise<{ client: TestClient, welcome: Awaited<ReturnType<TestClient['register']>> }> {
  const created = await TestClient.connect(node.wsUrl)
  t.teardown(() => created.close())
  return { client: created, welcome: await created.register(fields) }
}

async function healthOf (node: Node): Promise<{ status: number, body: { status: string } }> {
  const { status, json } = await requestJson<{ status: string }>(`${node.url}/health`)
  return { status, body: json }
}

/** Stops the nodes' processes with SIGTERM and waits until they are gone. */
async function stopAll (...nodes: Node[]): Promise<void> {
  for (const node of nodes) node.proc.kill('SIGTERM')
  await within('the nodes to exit after SIGTERM', Promise.all(nodes.map(async (node) => await node.proc.exited)), { timeoutMs: 20_000 })
}

/** The client's next welcome or error, the answer to a reconnect (undefined if none comes within a second). */
async function answerOf (client: TestClient): Promise<ServerMessageT | undefined> {
  const index = await valueOf('an answer (welcome or error) to the reconnect', () => {
    const found = client.received.findIndex((m) => m.type === 'welcome' || m.type === 'error')
    return found === -1 ? undefined : found
  }, { timeoutMs: 1000 }).catch(() => undefined)
  return index === undefined ? undefined : client.received.splice(index, 1)[0]
}

/** How many session keys there are under `prefix`, on every master of a Redis Cluster. */
async function sessionKeys (store: Redis | Cluster, prefix: string): Promise<number> {
  const nodes = store instanceof Cluster ? store.nodes('master') : [store]
  const counts = await Promise.all(nodes.map(async (node) => (await node.keys(`${prefix}session:*`)).length))
  return counts.reduce((sum, count) => sum + count, 0)
}

const joinedBy = (id: string) => (m: { joined?: Array<{ id: string }> }) => m.joined?.some((u) => u.id === id) === true

/** A sample of a node's /metrics. */
async function metric (node: Node, name: string): Promise<number> {
  const text = (await request(`${node.url}/metrics`)).body
  const value = new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]
  if (value === undefined) throw new Error(`no ${name} in /metrics`)
  return Number(value)
}

const backends: Backend[] = []
if (redis.url === null) {
  t.test('the cluster over one Redis', { skip: `needs Redis: ${redis.reason}` }, async () => {})
} else {
  const url = redis.url
  t.teardown(redis.release)
  backends.push({ name: 'one Redis', env: { REDIS_URL: url }, client: () => new Redis(url) })
}
if (redisCluster.seeds === null) {
  t.test('the cluster over a Redis Cluster', { skip: `needs redis-server: ${redisCluster.reason}` }, async () => {})
} else {
  const { seeds, nodes } = redisCluster
  t.teardown(redisCluster.release)
  backends.push({ name: 'a Redis Cluster', env: { REDIS_CLUSTER_NODES: seeds }, client: () => new Cluster(nodes) })
}

for (const backend of backends) {
  const redisEnv = backend.env
  t.test(`${backend.name}: two nodes are one service: presence, moves, state, data, leave; reconnect elsewhere takes the user over`, async (t) => {
    const prefix = uniquePrefix()
    const a = await startNode(t, redisEnv, prefix, 'node-a')
    const b = await startNode(t, redisEnv, prefix, 'node-b')
    t.match((await healthOf(a)).body, { status: 'ok', node: /^node-a:[0-9a-f]{6}$/ }, 'health names the node, with a suffix of this start')

    const ann = await client(t, a, { name: 'Ann', room: 'hall' })
    const bob = await client(t, b, { name: 'Bob', room: 'hall', state: { hat: true } })
    const joined = await ann.client.next('presence', joinedBy(bob.welcome.id), 5000)
    t.match(joined.joined?.find((u) => u.id === bob.welcome.id), { name: 'Bob', state: { hat: true }, connected: true }, 'Ann on A sees Bob on B join')

    bob.client.send({ type: 'update', position: { x: 4, y: 2, z: 1 }, name: 'Robert' })
    const moved = await ann.client.next('positions', (m) => m.p.some(([id]) => id === bob.welcome.id), 5000)
    t.strictSame(moved.p.find(([id]) => id === bob.welcome.id), [bob.welcome.id, 4, 2, 1], 'his move')
    const renamed = await ann.client.next('presence', (m) => m.updated?.some((u) => u.id === bob.welcome.id && u.name === 'Robert') === true, 5000)
    t.match(renamed.updated?.find((u) => u.id === bob.welcome.id), { name: 'Robert' }, 'his new name')

    bob.client.send({ type: 'updatelisteningto', listeningTo: [ann.welcome.id] })
    await ann.client.next('presence', (m) => m.updated?.some((u) => u.id === bob.welcome.id && u.listeningTo !== undefined) === true, 5000)
    ann.client.send({ type: 'data', payload: ['to', 'Bob'] })
    t.strictSame(await bob.client.next('data', () => true, 5000), { type: 'data', from: ann.welcome.id, payload: ['to', 'Bob'] }, 'data reaches a listener on the other node')

    // Ann's connection moves to node B (a balancer would do this after a drop).
    const annOnB = await TestClient.connect(b.wsUrl)
    t.teardown(() => annOnB.close())
    const resumed = await annOnB.reconnect(ann.welcome.secret)
    t.equal(resumed.resumed, true, 'reconnect works on the other node')
    t.equal(resumed.id, ann.welcome.id)
    t.equal((await within('Ann\'s socket on node A to close', ann.client.closed)).code, 4001, 'the old socket on node A got 4001')
    annOnB.send({ type: 'update', position: { x: 7, y: 7 } })
    await bob.client.next('positions', (m) => m.p.some(([id, x]) => id === ann.welcome.id && x === 7), 5000)
    const bobPresence = await bob.client.drainType('presence')
    t.notOk(bobPresence.some((m) => m.left?.includes(ann.welcome.id) === true), 'Bob saw no leave for Ann: a takeover shows the room nothing')

    bob.client.send({ type: 'leave' })
    const left = await annOnB.next('presence', (m) => m.left?.includes(bob.welcome.id) === true, 5000)
    t.ok(left.left?.includes(bob.welcome.id), 'a leave reaches the other node')
    await stopAll(a, b)
  })

  t.test(`${backend.name}: three nodes; one killed with SIGKILL: its users go disconnected, then leave; they can come back elsewhere`, async (t) => {
    const prefix = uniquePrefix()
    const a = await startNode(t, redisEnv, prefix, 'node-a')
    const b = await startNode(t, redisEnv, prefix, 'node-b')
    const c = await startNode(t, redisEnv, prefix, 'node-c')
    const ann = await client(t, a, { name: 'Ann', room: 'r' })
    const cleo = await client(t, c, { name: 'Cleo', room: 'r' })
    const bob = await client(t, b, { name: 'Bob', room: 'r' })
    await ann.client.next('presence', joinedBy(bob.welcome.id), 5000)
    await cleo.client.next('presence', joinedBy(bob.welcome.id), 5000)
    // Sessions are written at the tick, like the batch the others just got: kill B only once Bob's is written.
    const store = backend.client()
    t.teardown(() => store.disconnect())
    t.equal(await valueWhere('the three sessions in Redis', async () => await sessionKeys(store, prefix), (keys) => keys === 3), 3, 'the three sessions are in Redis')

    b.proc.kill('SIGKILL')
    await within('node B to die of SIGKILL', b.proc.exited)
    for (const watcher of [ann, cleo]) {
      const where = `on node ${watcher === ann ? 'A' : 'C'}`
      const disconnected = await watcher.client.next('presence', (m) => m.updated?.some((u) => u.id === bob.welcome.id && u.connected === false) === true, 5000)
      t.match(disconnected.updated?.find((u) => u.id === bob.welcome.id), { connected: false }, `${where}, Bob went connected: false`)
      const left = await watcher.client.next('presence', (m) => m.left?.includes(bob.welcome.id) === true, 5000)
      t.ok(left.left?.includes(bob.welcome.id), `${where}, then left`)
    }

    const back = await TestClient.connect(c.wsUrl)
    t.teardown(() => back.close())
    const resumed = await back.reconnect(bob.welcome.secret)
    t.equal(resumed.resumed, true, 'his session is in Redis: he comes back on node C')
    const rejoined = await ann.client.next('presence', joinedBy(bob.welcome.id), 5000)
    t.match(rejoined.joined?.find((u) => u.id === bob.welcome.id), { name: 'Bob', connected: true }, 'and Ann on node A sees him join again')
    await stopAll(a, c)
  })

  // An outage is staged on one Redis of the test's own; a whole Redis Cluster going away is not staged here.
  if (backend.env.REDIS_URL !== undefined) {
    t.test('one Redis of its own: Redis goes away: nodes serve their own users and report degraded; when it returns they resync', async (t) => {
      const own = await OwnRedis.start()
      t.teardown(() => own.stop())
      const prefix = uniquePrefix()
      const a = await startNode(t, { REDIS_URL: own.url }, prefix, 'node-a')
      const b = await startNode(t, { REDIS_URL: own.url }, prefix, 'node-b')
      const ann = await client(t, a, { name: 'Ann', room: 'r' })
      const bob = await client(t, b, { name: 'Bob', room: 'r' })
      await ann.client.next('presence', joinedBy(bob.welcome.id), 5000)

      await own.stop()
      for (const node of [a, b]) {
        const health = await valueWhere(`${node.url} to report the bus degraded`, async () => await healthOf(node), (h) => h.body.status === 'degraded')
        t.equal(health.body.status, 'degraded', `${node.url}: health says degraded`)
        t.equal((await healthOf(node)).status, 200, 'with 200, so the balancer keeps the node')
        t.match((await request(`${node.url}/metrics`)).body, /^shoal_cluster_bus_up 0$/m, 'and /metrics shows the bus down')
      }
      const carl = await client(t, a, { name: 'Carl', room: 'r' })
      const carlJoined = await ann.client.next('presence', joinedBy(carl.welcome.id), 5000)
      t.match(carlJoined.joined?.find((u) => u.id === carl.welcome.id), { name: 'Carl', connected: true }, 'node A still serves: a new local user joins and Ann sees him')
      ann.client.send({ type: 'ping', t: 1 })
      t.equal((await ann.client.next('pong')).t, 1)
      const meanwhile = await TestClient.connect(a.wsUrl)
      t.teardown(() => meanwhile.close())
      meanwhile.send({ type: 'reconnect', secret: bob.welcome.secret })
      t.match(await meanwhile.next('error', () => true, 5000), { code: 'rate_limited', ref: 'reconnect' }, 'a reconnect is told to try again (the client keeps its secret), not that the secret is bad')

      await own.start()
      for (const node of [a, b]) {
        const health = await valueWhere(`${node.url} to report the bus ok again`, async () => await healthOf(node), (h) => h.body.status === 'ok')
        t.equal(health.body.status, 'ok', `${node.url}: back to ok`)
      }
      const dan = await client(t, b, { name: 'Dan', room: 'r' })
      const danJoined = await ann.client.next('presence', joinedBy(dan.welcome.id), 5000)
      t.match(danJoined.joined?.find((u) => u.id === dan.welcome.id), { name: 'Dan', connected: true }, 'after the outage, a user joining on B is seen on A again')
      const whole = (users: Array<{ name: string, connected: boolean }>): boolean => ['Bob', 'Carl', 'Dan'].every((name) => users.some((u) => u.name === name && u.connected))
      const users = await valueWhere('Ann\'s room to be whole again (a snapshot with Bob, Carl and Dan connected)', async () => {
        ann.client.send({ type: 'sync' })
        return (await ann.client.next('snapshot')).users
      }, whole)
      t.ok(whole(users), 'Ann\'s room is whole again: Bob (node B, from before), Carl and Dan')

      // Redis restarted empty; the live nodes wrote their sessions again.
      const bobElsewhere = await TestClient.connect(a.wsUrl)
      t.teardown(() => bobElsewhere.close())
      const answer = await valueWhere('Bob to reconnect on node A (a welcome, not an error)', async () => {
        bobElsewhere.send({ type: 'reconnect', secret: bob.welcome.secret })
        return await answerOf(bobElsewhere)
      }, (m) => m?.type === 'welcome')
      t.match(answer, { type: 'welcome', id: bob.welcome.id }, 'Bob can reconnect on node A: his session was rebuilt in the restarted Redis')
      await stopAll(a, b)
    })
  }

  t.test(`${backend.name}: malformed member records under the prefix: a node still starts, beats and serves; each is counted`, async (t) => {
    const prefix = uniquePrefix()
    const writer = backend.client()
    t.teardown(() => writer.disconnect())
    // A node that looks alive, with a record that is not JSON, one over the client limits, and a room key of the wrong type.
    await writer.zadd(`${prefix}nodes`, Date.now() + 60_000, 'broken-a')
    const huge = { id: '00000000-0000-4000-8000-000000000001', name: 'x'.repeat(200_000), room: 'r', position: { x: 1e300, y: 0, z: 0 }, state: {}, listeningTo: [], connected: true }
    await writer.hset(`${prefix}{room:r}:members`, 'x', '{not json', 'y', JSON.stringify({ owner: 'broken-a', user: huge }))
    await writer.set(`${prefix}{room:q}:members`, 'a string, not a hash')
    const a = await startNode(t, redisEnv, prefix, 'node-a')
    t.equal((await healthOf(a)).body.status, 'ok', 'the node started')
    const ann = await client(t, a, { name: 'Ann', room: 'r' })
    const amy = await client(t, a, { name: 'Amy', room: 'q' })
    const invalid = await valueWhere('node A to count the three bad records', async () => await metric(a, 'shoal_cluster_invalid_total'), (count) => count >= 3)
    t.ok(invalid >= 3, `each bad record counted in shoal_cluster_invalid_total (${invalid})`)
    for (const member of [ann, amy]) {
      member.client.send({ type: 'sync' })
      t.strictSame((await member.client.next('snapshot')).users.filter((u) => u.id !== member.welcome.id), [], `no bad record became a user (${member.welcome.you.name})`)
    }
    const b = await startNode(t, redisEnv, prefix, 'node-b')
    const bob = await client(t, b, { name: 'Bob', room: 'r' })
    const bobJoined = await ann.client.next('presence', joinedBy(bob.welcome.id), 5000)
    t.match(bobJoined.joined?.find((u) => u.id === bob.welcome.id), { name: 'Bob', connected: true }, 'heartbeats and ticks go on: a second node joins and the first sees its user')
    await stopAll(a, b)
  })

  t.test(`${backend.name}: routed by room: a node hears nothing of a room it does not serve, and holds none of its users, yet its listeners get data from there`, async (t) => {
    const prefix = uniquePrefix()
    const a = await startNode(t, redisEnv, prefix, 'node-a')
    const b = await startNode(t, redisEnv, prefix, 'node-b')
    const ann = await client(t, a, { name: 'Ann', room: 'stage' })
    const cid = await client(t, a, { name: 'Cid', room: 'stage' })
    const bob = await client(t, b, { name: 'Bob', room: 'foyer' })
    const rooms = await valueWhere('each node to serve one room', async () => [await metric(a, 'shoal_cluster_rooms'), await metric(b, 'shoal_cluster_rooms')], (served) => served.every((count) => count === 1))
    t.strictSame(rooms, [1, 1], 'each node serves one room')

    // What node B hears of its own room (Redis echoes a publisher's messages to it) has come back once a
    // marker the test publishes on that room's channel has: Redis delivers a channel's messages in the
    // order it took them. Node B counts the marker as invalid; it published nothing meanwhile.
    const probe = backend.client()
    t.teardown(() => probe.disconnect())
    const foyer = `${prefix}{room:foyer}`
    let markers = 0
    const published = await valueWhere('node B to publish nothing while a marker crosses its room\'s channel', async () => {
      const atSend = await metric(b, 'shoal_cluster_bus_published_messages_total')
      await (probe instanceof Cluster ? probe.spublish(foyer, 'marker') : probe.publish(foyer, 'marker'))
      const sent = ++markers
      await valueWhere(`marker ${sent} to reach node B`, async () => await metric(b, 'shoal_cluster_invalid_total'), (count) => count >= sent)
      return { atSend, atMarker: await metric(b, 'shoal_cluster_bus_published_messages_total') }
    }, ({ atSend, atMarker }) => atSend === atMarker)
    t.equal(published.atMarker, published.atSend, 'node B is quiet: it published nothing while the last marker crossed')
    const before = await metric(b, 'shoal_cluster_bus_received_bytes_total')
    for (let i = 1; i <= 10; i++) {
      ann.client.send({ type: 'update', position: { x: i, y: 0 } })
      cid.client.send({ type: 'update', position: { x: 0, y: i }, state: { step: i } })
      await cid.client.next('positions', (m) => m.p.some(([id, x]) => id === ann.welcome.id && x === i), 5000)
    }
    t.equal(await metric(b, 'shoal_cluster_bus_received_bytes_total'), before, 'ten rounds of moves and changes on the stage: not a byte of it reached node B')
    t.equal(await metric(b, 'shoal_cluster_replicas'), 0, 'node B holds no user of node A')
    t.ok(await metric(a, 'shoal_cluster_bus_published_bytes_total') > 0, 'node A published them')
    t.ok(await metric(a, 'shoal_cluster_bus_published_messages_total') > 0, 'and counts its messages')
    const writer = backend.client()
    t.teardown(() => writer.disconnect())
    const ttl = await writer.pttl(`${prefix}{room:stage}:members`)
    t.ok(ttl > 0 && ttl <= 200, `the stage's records expire two heartbeats (2 × 100 ms) after the last beat of a node serving it (${ttl} ms left)`)

    bob.client.send({ type: 'updatelisteningto', listeningTo: [ann.welcome.id] })
    // Node B subscribes to her topic as it applies the change; data sent before that is not for Bob.
    const data = await valueWhere('Bob in the foyer to get Ann\'s data from the stage (sent again every half second)', async () => {
      ann.client.send({ type: 'data', payload: { to: 'listeners' } })
      return await bob.client.next('data', () => true, 500).catch(() => undefined)
    }, (received) => received !== undefined)
    t.ok(data !== undefined, 'Bob in the foyer gets Ann\'s data from the stage')
    t.strictSame(data, { type: 'data', from: ann.welcome.id, payload: { to: 'listeners' } })
    t.ok(await metric(b, 'shoal_cluster_bus_received_messages_total') >= 1, 'over the bus, on her topic')

    bob.client.send({ type: 'join', room: 'stage' })
    const snapshot = await bob.client.next('snapshot', () => true, 5000)
    const hasBoth = (users: Array<{ name: string }>): boolean => ['Ann', 'Cid'].every((name) => users.some((u) => u.name === name))
    // The snapshot goes out at once; who is there arrives with the room's records a moment later.
    const users = hasBoth(snapshot.users)
      ? snapshot.users
      : await valueWhere('node B to load who is in the stage (a snapshot with Ann and Cid)', async () => {
        bob.client.send({ type: 'sync' })
        return (await bob.client.next('snapshot')).users
      }, hasBoth)
    t.ok(hasBoth(users), 'joining the stage, node B loads who is there')
    t.equal(await valueWhere('node B to hold Ann and Cid', async () => await metric(b, 'shoal_cluster_replicas'), (replicas) => replicas === 2), 2, 'and holds them now')
    await stopAll(a, b)
  })
}
