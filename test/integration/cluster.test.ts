/**
 * Two and three Shoal instances joined by the in-memory bus and sharing one
 * session store, each with its own port and real sockets: users on different
 * nodes see each other join, move, change, send data and leave; a reconnect works
 * on any node and takes the user over from the node that had it (4001 there);
 * the users of a node that dies leave after grace.
 */
import t from 'tap'
import { MemoryClusterHub, MemorySessionStore, type ShoalOptions } from '../../index.js'
import { systemClock } from '../../src/core/clock.js'
import { FAST, startServer, TestClient, type TestServer } from '../helpers.js'
import { until, within } from '../wait.js'

const NODE: ShoalOptions = { ...FAST, drainTimeoutMs: 100, graceMs: 300, nodeHeartbeatMs: 50, claimTimeoutMs: 300, demo: false }

type Tap = Parameters<Parameters<typeof t.test>[0]>[0]

async function cluster (t: Tap, count: number): Promise<{ hub: MemoryClusterHub, nodes: TestServer[], store: MemorySessionStore }> {
  const hub = new MemoryClusterHub(systemClock)
  const store = new MemorySessionStore()
  const nodes: TestServer[] = []
  for (let i = 0; i < count; i++) nodes.push(await startServer({ ...NODE, bus: hub.bus(`node-${i}`), sessionStore: store }))
  t.teardown(async () => { for (const node of nodes) await node.close().catch(() => {}) })
  return { hub, nodes, store }
}

async function join (t: Tap, node: TestServer, fields: Record<string, unknown>): Promise<{ client: TestClient, welcome: Awaited<ReturnType<TestClient['register']>> }> {
  const client = await TestClient.connect(node.wsUrl)
  t.teardown(() => client.close())
  return { client, welcome: await client.register(fields) }
}

t.test('presence, positions, state and data cross nodes', async (t) => {
  const { nodes: [a, b] } = await cluster(t, 2)
  if (a === undefined || b === undefined) throw new Error('fixture')
  const ann = await join(t, a, { name: 'Ann', room: 'hall', position: { x: 1, y: 1 } })
  const bob = await join(t, b, { name: 'Bob', room: 'hall' })

  const seen = await ann.client.next('presence', (m) => m.joined?.some((u) => u.id === bob.welcome.id) === true)
  t.match(seen.joined?.find((u) => u.id === bob.welcome.id), { name: 'Bob', room: 'hall', connected: true }, 'Ann (node A) sees Bob (node B) join')
  // Bob knows Ann from his welcome, or from the join that follows it.
  const annForBob = bob.welcome.users.find((u) => u.id === ann.welcome.id) ??
    (await bob.client.next('presence', (m) => m.joined?.some((u) => u.id === ann.welcome.id) === true)).joined?.find((u) => u.id === ann.welcome.id)
  t.match(annForBob, { name: 'Ann', room: 'hall' }, 'and Bob knows Ann')

  bob.client.send({ type: 'update', position: { x: 5, y: 6, z: 7 }, state: { mood: 'up' } })
  const moved = await ann.client.next('positions', (m) => m.p.some(([id]) => id === bob.welcome.id))
  t.strictSame(moved.p.find(([id]) => id === bob.welcome.id), [bob.welcome.id, 5, 6, 7], 'Bob\'s move reaches Ann')
  const changed = await ann.client.next('presence', (m) => m.updated?.some((u) => u.id === bob.welcome.id) === true)
  t.strictSame(changed.updated?.find((u) => u.id === bob.welcome.id), { id: bob.welcome.id, state: { mood: 'up' } }, 'and his state change, as a diff')

  ann.client.send({ type: 'updatelisteningto', listeningTo: [bob.welcome.id] })
  await ann.client.drainType('pong')
  await bob.client.next('presence', (m) => m.updated?.some((u) => u.id === ann.welcome.id && u.listeningTo !== undefined) === true)
  bob.client.send({ type: 'data', payload: { hello: 'Ann' } })
  const data = await ann.client.next('data')
  t.strictSame(data, { type: 'data', from: bob.welcome.id, payload: { hello: 'Ann' } }, 'data from Bob reaches his listener on the other node')

  const users = a.app.shoal.users('hall').map((u) => u.name).sort()
  t.strictSame(users, ['Ann', 'Bob'], 'the server API sees the whole room on either node')

  bob.client.send({ type: 'leave' })
  const left = await ann.client.next('presence', (m) => m.left?.includes(bob.welcome.id) === true)
  t.ok(left.left?.includes(bob.welcome.id), 'Bob\'s leave reaches Ann')
})

t.test('reconnect on another node: resumed there, the old socket gets 4001, the room sees nothing', async (t) => {
  const { nodes: [a, b, c] } = await cluster(t, 3)
  if (a === undefined || b === undefined || c === undefined) throw new Error('fixture')
  const ann = await join(t, a, { name: 'Ann', room: 'r', state: { k: 1 } })
  const watcher = await join(t, c, { name: 'Cleo', room: 'r' })
  // Cleo knows Ann from her welcome, or from the join that follows it.
  if (!watcher.welcome.users.some((u) => u.id === ann.welcome.id)) {
    await watcher.client.next('presence', (m) => m.joined?.some((u) => u.id === ann.welcome.id) === true)
  }
  ann.client.send({ type: 'update', position: { x: 3, y: 4 }, name: 'Ann 2' })
  await watcher.client.next('positions', (m) => m.p.some(([id, x]) => id === ann.welcome.id && x === 3))
  await watcher.client.drainType('presence')

  const moved = await TestClient.connect(b.wsUrl)
  t.teardown(() => moved.close())
  const resumed = await moved.reconnect(ann.welcome.secret)
  t.equal(resumed.resumed, true, 'resumed on node B')
  t.match(resumed.you, { id: ann.welcome.id, name: 'Ann 2', position: { x: 3, y: 4, z: 0 }, state: { k: 1 } }, 'with what node A last had')
  t.equal((await within('Ann\'s socket on node A to close', ann.client.closed)).code, 4001, 'the socket on node A was replaced')
  t.ok(resumed.users.some((u) => u.id === watcher.welcome.id), 'and B shows the room with Cleo of node C')

  moved.send({ type: 'update', position: { x: 9, y: 9 } })
  await watcher.client.next('positions', (m) => m.p.some(([id, x]) => id === ann.welcome.id && x === 9))
  const presence = await watcher.client.drainType('presence')
  t.strictSame(presence.filter((m) => m.left?.includes(ann.welcome.id) === true || m.joined?.some((u) => u.id === ann.welcome.id) === true), [], 'Cleo saw no leave and no join')
  // A node keeps a room it no longer has users in for one beat (50 ms here).
  await until('node A to drop its copy of Ann a beat after its last user in the room left', () => a.app.shoal.user(ann.welcome.id) === undefined, {
    timeoutMs: 2000,
    describe: () => a.app.shoal.user(ann.welcome.id)
  })
  t.equal(a.app.shoal.user(ann.welcome.id), undefined, 'node A, with nobody left in the room, holds no copy of her a beat later')
  t.equal(c.app.shoal.user(ann.welcome.id)?.connected, true, 'node C, serving the room with Cleo, holds her as a connected user of node B')
})

t.test('the users of a node that dies go disconnected, then leave after grace', async (t) => {
  const { hub, nodes: [a, b] } = await cluster(t, 2)
  if (a === undefined || b === undefined) throw new Error('fixture')
  const ann = await join(t, a, { name: 'Ann', room: 'r' })
  const bob = await join(t, b, { name: 'Bob', room: 'r' })
  await ann.client.next('presence', (m) => m.joined?.some((u) => u.id === bob.welcome.id) === true)

  // The node goes without a word: nothing more arrives from it, its heartbeats stop.
  hub.kill('node-1')
  const disconnected = await ann.client.next('presence', (m) => m.updated?.some((u) => u.id === bob.welcome.id && u.connected === false) === true, 3000)
  t.match(disconnected.updated?.find((u) => u.id === bob.welcome.id), { connected: false }, 'Bob shows connected: false')
  const left = await ann.client.next('presence', (m) => m.left?.includes(bob.welcome.id) === true, 3000)
  t.ok(left.left?.includes(bob.welcome.id), 'and leaves once grace is over')

  const back = await TestClient.connect(a.wsUrl)
  t.teardown(() => back.close())
  const resumed = await back.reconnect(bob.welcome.secret)
  t.equal(resumed.resumed, true, 'Bob comes back on node A with his session')
  t.equal(resumed.you.name, 'Bob')
  const rejoined = await ann.client.next('presence', (m) => m.joined?.some((u) => u.id === bob.welcome.id) === true)
  t.match(rejoined.joined?.find((u) => u.id === bob.welcome.id), { name: 'Bob', connected: true }, 'and the room sees him join again')
})

t.test('a user of a dead node who reconnects within grace is taken over without leaving', async (t) => {
  const { hub, nodes: [a, b] } = await cluster(t, 2)
  if (a === undefined || b === undefined) throw new Error('fixture')
  const ann = await join(t, a, { name: 'Ann', room: 'r' })
  const bob = await join(t, b, { name: 'Bob', room: 'r', state: { kept: true } })
  await ann.client.next('presence', (m) => m.joined?.some((u) => u.id === bob.welcome.id) === true)
  // Cid, of the same node, does not come back: his leave marks the end of the dead node's grace.
  const cid = await join(t, b, { name: 'Cid', room: 'r' })
  await ann.client.next('presence', (m) => m.joined?.some((u) => u.id === cid.welcome.id) === true)
  hub.kill('node-1')
  const back = await TestClient.connect(a.wsUrl)
  t.teardown(() => back.close())
  const resumed = await back.reconnect(bob.welcome.secret)
  t.match(resumed.you, { id: bob.welcome.id, name: 'Bob', state: { kept: true }, connected: true }, 'resumed from the shared store after the claim timed out')
  const earlier = await ann.client.drainType('presence')
  // Node A found Bob's node dead at the beat that found Cid's (Bob first: he was held here first), so the
  // dead node's grace, had it removed Bob, would have ended for him no later than for Cid: his leave
  // would have come before Cid's, or with it. (Cid gone already: that grace ended before the takeover.)
  const cidLeft = (m: { left?: string[] }): boolean => m.left?.includes(cid.welcome.id) === true
  const later = earlier.some(cidLeft) ? [] : [await ann.client.next('presence', cidLeft)]
  later.push(...await ann.client.drainType('presence'))
  t.notOk([...earlier, ...later].some((m) => m.left?.includes(bob.welcome.id) === true), 'Bob never left: grace of the dead node does not remove a user taken over here')
  t.equal(a.app.shoal.user(bob.welcome.id)?.connected, true)
})
