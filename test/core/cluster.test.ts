/**
 * The cluster core on the in-memory bus with a manual clock: what a node
 * publishes per tick, how replicas follow, that nothing echoes, that invalid
 * messages change nothing, node death and orphans, and the claim handshake.
 */
import t from 'tap'
import { Broadcaster, type BroadcastMeter } from '../../src/core/presence/broadcaster.js'
import { ManualClock } from '../../src/core/clock.js'
import { MemoryClusterHub } from '../../src/core/cluster/bus.js'
import { ClusterSync } from '../../src/core/cluster/cluster.js'
import { MemorySessionStore } from '../../src/core/sessions/session-store.js'
import { hashSecret } from '../../src/core/sessions/secrets.js'
import { SessionManager } from '../../src/core/sessions/sessions.js'
import { emptyState } from '../../src/core/presence/state.js'
import { UserStore } from '../../src/core/presence/user-store.js'
import { FakePeer } from './fakes.js'

const GRACE = 1000
const BEAT = 100

const meter: BroadcastMeter = { sent () {}, skipped () {}, closedSlow () {} }
const settle = async (): Promise<void> => { for (let i = 0; i < 5; i++) await Promise.resolve() }

function node (hub: MemoryClusterHub, clock: ManualClock, id: string, store: MemorySessionStore) {
  const users = new UserStore()
  const broadcaster = new Broadcaster(users, clock, { slowReaderSkipBytes: 1e6, slowReaderCloseBytes: 1e7 }, meter)
  const bus = hub.bus(id)
  const published: unknown[] = []
  const publish = bus.publish.bind(bus)
  bus.publish = (message) => { published.push(message); publish(message) }
  const invalid: string[] = []
  const sync = new ClusterSync(users, broadcaster, bus, clock, { graceMs: GRACE, heartbeatMs: BEAT, claimTimeoutMs: 50 })
  sync.on('invalid', (reason) => invalid.push(reason))
  const sessions = new SessionManager(users, store, clock, { graceMs: GRACE, sessionTtlMs: 60_000 }, sync)
  const register = (name: string, room = 'r') => {
    const peer = new FakePeer()
    const { user, secret } = sessions.register(peer, { name, room, position: { x: 0, y: 0, z: 0 }, state: emptyState() })
    return { user, peer, secret }
  }
  /** One tick: local clients get their frames, the cluster gets this node's batch. */
  const tick = (): void => {
    broadcaster.flush()
    sync.publishTick()
  }
  return { id, users, sessions, sync, bus, published, invalid, register, tick }
}

async function twoNodes () {
  const clock = new ManualClock()
  const hub = new MemoryClusterHub(clock)
  const store = new MemorySessionStore()
  const a = node(hub, clock, 'a', store)
  const b = node(hub, clock, 'b', store)
  await a.sync.start()
  await b.sync.start()
  return { clock, hub, store, a, b }
}

/** Two nodes with Ann on a and Bob on b, each a replica on the other, and Bob listening to Ann. */
async function listeningPair () {
  const nodes = await twoNodes()
  const { a, b } = nodes
  const ann = a.register('Ann')
  const bob = b.register('Bob')
  a.tick()
  b.tick()
  await settle()
  b.users.setListening(bob.user, [ann.user.id])
  return { ...nodes, ann, bob }
}

/** Hands `message` to node `to` as if it had come over the bus. */
const deliverTo = (to: ReturnType<typeof node>) => (message: unknown): void => { (to.bus as unknown as { receive: (m: unknown) => void }).receive(message) }

t.test('a node publishes its users\' changes once per tick; the other keeps replicas; nothing echoes', async (t) => {
  const { a, b } = await twoNodes()
  const ann = a.register('Ann')
  const ann2 = a.register('Ann2')
  a.users.setPosition(ann.user, { x: 1, y: 2, z: 3 })
  a.users.setPosition(ann.user, { x: 4, y: 5, z: 6 })
  a.users.setProfile(ann2.user, 'Ann Two', ann2.user.state)
  a.tick()
  t.equal(a.published.length, 1, 'one message for the whole tick')
  await settle()

  const replica = b.users.get(ann.user.id)
  t.equal(replica?.owner, 'a', 'the other node has a replica, owned by a')
  t.strictSame(replica?.position, { x: 4, y: 5, z: 6 }, 'at the latest position of the tick')
  t.equal(b.users.get(ann2.user.id)?.name, 'Ann Two')
  t.equal(replica?.connected, true)
  t.equal(b.users.bySecretHash(ann.user.secretHash), undefined, 'a replica holds no secret')

  b.tick()
  t.equal(b.published.length, 0, 'applying a batch publishes nothing back')

  a.users.setPosition(ann.user, { x: 7, y: 7, z: 7 })
  a.users.setProfile(ann.user, 'Ann', Object.assign(emptyState(), { mood: 'up' }))
  a.tick()
  t.match(a.published[1], { kind: 'tick', rooms: [{ room: 'r', joined: [], positions: [[ann.user.id, 7, 7, 7]], updated: [{ id: ann.user.id, state: { mood: 'up' } }] }] }, 'later ticks carry only what changed')
  await settle()
  t.same({ ...b.users.get(ann.user.id)?.state }, { mood: 'up' })

  a.tick()
  t.equal(a.published.length, 2, 'a quiet tick publishes nothing')

  a.users.moveToRoom(ann.user, 'elsewhere')
  a.tick()
  t.match(a.published[2], { rooms: [{ room: 'r', left: [ann.user.id] }, { room: 'elsewhere', joined: [{ id: ann.user.id }] }] }, 'a room change is a leave and a join')
  await settle()
  t.equal(b.users.get(ann.user.id)?.room, 'elsewhere')

  await a.sessions.leave(ann.user)
  a.tick()
  await settle()
  t.equal(b.users.get(ann.user.id), undefined, 'a leave removes the replica')
})

t.test('data crosses once per tick to the listeners on the other node', async (t) => {
  const { a, ann, bob } = await listeningPair()
  a.users.sendData(ann.user, '{"n":1}')
  a.users.sendData(ann.user, '{"n":2}')
  a.tick()
  await settle()
  t.strictSame(bob.peer.ofType('data').map((m) => m.payload), [{ n: 1 }, { n: 2 }], 'both, in order')
  t.equal(a.published.length, 2, 'in the tick\'s one message')
})

t.test('a user moving rooms moves on the other node too, whichever room\'s batch comes first', async (t) => {
  const { a, b } = await twoNodes()
  const ann = a.register('Ann', 'r1')
  const cid = a.register('Cid', 'r2')
  a.tick()
  await settle()
  // Cid's change makes r2's batch first in the tick; Ann's move then adds her left to r1's batch after it.
  a.users.setProfile(cid.user, 'Cid 2', cid.user.state)
  a.users.moveToRoom(ann.user, 'r2')
  a.tick()
  await settle()
  t.equal(b.users.get(ann.user.id)?.room, 'r2', 'the replica is in the new room')
  t.strictSame([...b.users.room('r2')?.members.keys() ?? []].sort(), [ann.user.id, cid.user.id].sort())
  t.equal(b.users.room('r1')?.members.size ?? 0, 0, 'and gone from the old one')
})

t.test('after a resync every live session is written again (the shared store may have restarted empty)', async (t) => {
  const { a, store } = await twoNodes()
  const ann = a.register('Ann')
  await a.sessions.persist()
  await store.delete(hashSecret(ann.secret))
  a.sync.resync()
  await settle()
  await a.sessions.persist()
  t.match(await store.load(hashSecret(ann.secret)), { id: ann.user.id, name: 'Ann' })
})

t.test('a message that is not a valid cluster message is reported and changes nothing', async (t) => {
  const { a, b } = await twoNodes()
  a.register('Ann')
  a.tick()
  await settle()
  const before = b.users.userCount
  const deliver = deliverTo(b)
  deliver({ kind: 'tick', from: 'x', rooms: [{ room: 'r', joined: [{ id: 'no-fields' }], left: [], updated: [], positions: [] }], data: [] })
  deliver({ kind: 'nonsense' })
  deliver('just a string')
  t.equal(b.invalid.length, 3, 'each one reported')
  t.equal(b.users.userCount, before, 'no user added or removed')
})

t.test('another node\'s records are held to the client limits: what no client could send is skipped and reported', async (t) => {
  const { b, ann, bob } = await listeningPair()
  const deliver = deliverTo(b)
  const someone = (fields: Record<string, unknown>) => ({
    id: '00000000-0000-4000-8000-00000000000a', name: 'Eve', room: 'r', position: { x: 0, y: 0, z: 0 }, state: {}, listeningTo: [], connected: true, ...fields
  })
  const tick = (batch: Record<string, unknown>, data: unknown[] = []) =>
    ({ kind: 'tick', from: 'a', rooms: [{ room: 'r', joined: [], left: [], updated: [], positions: [], ...batch }], data })
  const cases: Array<[string, unknown]> = [
    ['a 200,000-character name', tick({ joined: [someone({ name: 'x'.repeat(200_000) })] })],
    ['a forbidden state key', tick({ joined: [someone({ state: { 'bad key': 1 } })] })],
    ['a state over 2 KiB', tick({ joined: [someone({ state: Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`k${i}`, 'v'.repeat(250)])) })] })],
    ['a coordinate of 1e300', tick({ positions: [[ann.user.id, 1e300, 0, 0]] })],
    ['a room name no client may use', tick({ room: 'no spaces allowed' })],
    ['an update renaming to nothing', tick({ updated: [{ id: ann.user.id, name: '   ' }] })],
    ['data that is not JSON', tick({}, [{ from: ann.user.id, payload: '{"pasted": ' }])],
    ['data over the payload limit', tick({}, [{ from: ann.user.id, payload: JSON.stringify('x'.repeat(9000)) }])]
  ]
  for (const [what, message] of cases) {
    const reported = b.invalid.length
    deliver(message)
    t.equal(b.invalid.length, reported + 1, `${what}: reported`)
  }
  b.tick()
  t.equal(b.users.get('00000000-0000-4000-8000-00000000000a'), undefined, 'nobody was added')
  t.strictSame(b.users.get(ann.user.id)?.position, { x: 0, y: 0, z: 0 }, 'nobody moved')
  t.equal(b.users.get(ann.user.id)?.name, 'Ann')
  t.strictSame(bob.peer.ofType('data'), [], 'no data reached a listener')

  deliver(tick({}, [{ from: ann.user.id, payload: '{ "spaced" : [1, 2] }' }]))
  t.strictSame(bob.peer.raw.filter((frame) => frame.includes('"data"')), [`{"type":"data","from":"${ann.user.id}","payload":{"spaced":[1,2]}}`],
    'a good payload is parsed and serialized again, never pasted')
})

t.test('a node starts, and keeps its heartbeat, over member records that are not users', async (t) => {
  const clock = new ManualClock()
  const hub = new MemoryClusterHub(clock)
  const store = new MemorySessionStore()
  const a = node(hub, clock, 'a', store)
  await a.sync.start()
  a.register('Ann')
  a.tick()
  await a.bus.heartbeat(1000)
  // Records as a broken writer (or a hand edit) might leave them.
  await a.bus.saveMembers([{ id: 'not-a-uuid', name: '', room: 'r' } as never, { ...structuredClone(a.users.values().next().value?.toWire() ?? {}), name: 'x'.repeat(100) } as never], [])
  const b = node(hub, clock, 'b', store)
  await t.resolves(b.sync.start(), 'the new node starts')
  t.equal(b.invalid.length, 2, 'each bad record reported')
  await t.resolves(b.sync.beat(), 'and its heartbeat keeps working')
})

t.test('a dead node\'s users go disconnected at once and leave after grace', async (t) => {
  const { clock, hub, a, b } = await twoNodes()
  const bob = b.register('Bob')
  b.tick()
  await settle()
  await a.sync.beat()
  await b.sync.beat()
  clock.advance(BEAT)
  await a.sync.beat()
  t.equal(a.users.get(bob.user.id)?.connected, true, 'alive while b beats')

  hub.kill('b')
  clock.advance(BEAT * 2 + 1)
  await a.sync.beat()
  const replica = a.users.get(bob.user.id)
  t.equal(replica?.connected, false, 'two missed beats: disconnected')
  a.sync.expireOrphans()
  t.ok(a.users.get(bob.user.id), 'still in the room during grace')
  clock.advance(GRACE)
  a.sync.expireOrphans()
  t.equal(a.users.get(bob.user.id), undefined, 'gone when grace ends')
})

t.test('claim: the owner closes its socket with 4001 and hands over the latest values; no answer means null', async (t) => {
  const { hub, a, b } = await twoNodes()
  const ann = a.register('Ann')
  a.users.setPosition(ann.user, { x: 9, y: 8, z: 7 })
  a.tick()
  await settle()
  const latest = await b.sync.claim('a', ann.user.id)
  t.match(latest, { id: ann.user.id, position: { x: 9, y: 8, z: 7 } }, 'the owner\'s latest values')
  t.strictSame(ann.peer.closes, [{ code: 4001, reason: 'replaced by a newer connection' }], 'its socket there was replaced')
  t.equal(a.users.get(ann.user.id)?.owner, 'b', 'and it now keeps a replica owned by the claimant')
  t.equal(a.users.bySecretHash(ann.user.secretHash), undefined, 'without the secret')
  a.tick()
  t.strictSame(a.published.map((m) => (m as { kind: string }).kind), ['tick', 'handover'], 'handing over is not a departure: no tick message says she left')

  t.equal(await b.sync.claim('a', 'someone-else'), null, 'a user the node does not have: null')
  hub.kill('a')
  t.equal(await b.sync.claim('a', ann.user.id), null, 'a node that does not answer: null after the timeout')
})

t.test('a reconnect on the other node takes the replica over in place', async (t) => {
  const { a, b } = await twoNodes()
  const ann = a.register('Ann', 'hall')
  a.users.setProfile(ann.user, 'Ann', Object.assign(emptyState(), { kept: 1 }))
  a.tick()
  await a.sessions.persist()
  await settle()
  const replica = b.users.get(ann.user.id)
  const hash = ann.user.secretHash
  const peer = new FakePeer()
  const resumed = await b.sessions.reconnect(peer, ann.secret)
  t.equal(resumed?.user, replica, 'the same object: rooms keep their member')
  t.equal(resumed?.user.owner, null, 'now b\'s own user')
  t.equal(b.users.bySecretHash(hash), replica, 'found by its secret on b')
  t.equal(a.users.bySecretHash(hash), undefined, 'and no longer on a')
  t.strictSame(ann.peer.closes.map((c) => c.code), [4001], 'whose socket was replaced')
  t.same({ ...resumed?.user.state }, { kept: 1 })
  t.equal(resumed?.rejoined, false, 'not a rejoin: the room sees no join')
})

t.test('an identified user\'s account and info reach the other node, and its secret moves only under that account', async (t) => {
  const { a, b } = await twoNodes()
  const peer = new FakePeer()
  const { user, secret } = a.sessions.register(peer, {
    name: 'Ann', room: 'hall', position: { x: 0, y: 0, z: 0 }, state: emptyState(), identity: { userId: 'acct-1', info: { role: 'host' } }
  })
  a.tick()
  await a.sessions.persist()
  await settle()
  const replica = b.users.get(user.id)
  t.equal(replica?.toWire().userId, 'acct-1')
  t.same(replica?.toWire().info, { role: 'host' })

  a.users.setInfo(user, { role: 'guest' })
  a.tick()
  await settle()
  t.same(b.users.get(user.id)?.toWire().info, { role: 'guest' }, 'a change of info crosses as an update')
  t.same(b.invalid, [])

  t.equal(await b.sessions.reconnect(new FakePeer(), secret, 'acct-2'), null, 'another account cannot take it over')
  t.equal(b.users.get(user.id)?.owner, 'a', 'it stays a\'s')
  const resumed = await b.sessions.reconnect(new FakePeer(), secret, 'acct-1')
  t.equal(resumed?.user, replica, 'its own account takes it over')
  t.same(resumed?.user.toWire().info, { role: 'guest' })
})
