/**
 * The cluster core on the in-memory bus with a manual clock: a node serves only
 * the rooms its users are in (their batches, their replicas, their records),
 * `data` follows listeners whatever room they are in, nothing echoes, invalid
 * messages and records change nothing, node death and orphans, and the claim
 * handshake on the owner's own topic.
 */
import t from 'tap'
import type { ClusterMessageT } from '../../schemas/cluster.js'
import { Broadcaster, type BroadcastMeter } from '../../src/core/presence/broadcaster.js'
import { ManualClock } from '../../src/core/clock.js'
import { MemoryClusterHub } from '../../src/core/cluster/bus.js'
import { ClusterSync } from '../../src/core/cluster/cluster.js'
import { MemorySessionStore } from '../../src/core/sessions/session-store.js'
import { hashSecret } from '../../src/core/sessions/secrets.js'
import { SessionManager } from '../../src/core/sessions/sessions.js'
import { emptyState } from '../../src/core/presence/state.js'
import { UserStore } from '../../src/core/presence/user-store.js'
import { MAX_SPEAKER_CHANGES_PER_TICK } from '../../src/core/cluster/speakers.js'
import { FakePeer } from './fakes.js'

const GRACE = 1000
const BEAT = 100

const meter: BroadcastMeter = { sent () {}, skipped () {}, closedSlow () {} }
const settle = async (): Promise<void> => { for (let i = 0; i < 10; i++) await Promise.resolve() }

function node (hub: MemoryClusterHub, clock: ManualClock, id: string, store: MemorySessionStore) {
  const users = new UserStore()
  const broadcaster = new Broadcaster(users, clock, { slowReaderSkipBytes: 1e6, slowReaderCloseBytes: 1e7 }, meter)
  const bus = hub.bus(id)
  const published: Array<{ topic: string, message: ClusterMessageT }> = []
  const publish = bus.publish.bind(bus)
  bus.publish = async (topic, message) => { published.push({ topic, message }); return await publish(topic, message) }
  const invalid: string[] = []
  const sync = new ClusterSync(users, broadcaster, bus, clock, { graceMs: GRACE, heartbeatMs: BEAT, claimTimeoutMs: 50 })
  sync.on('invalid', (reason) => invalid.push(reason))
  const sessions = new SessionManager(users, store, clock, { graceMs: GRACE, sessionTtlMs: 60_000 }, sync)
  const register = (name: string, room = 'r') => {
    const peer = new FakePeer()
    const { user, secret } = sessions.register(peer, { name, room, position: { x: 0, y: 0, z: 0 }, state: emptyState() })
    return { user, peer, secret }
  }
  /** One tick: local clients get their frames, the cluster gets this node's batches. */
  const tick = (): void => {
    broadcaster.flush()
    sync.publishTick()
  }
  /** Hands `message` to this node as if it had come over the bus on `topic`. */
  const deliver = (topic: string, message: unknown): void => { (bus as unknown as { receive: (topic: string, json: string) => void }).receive(topic, JSON.stringify(message)) }
  return { id, users, sessions, sync, bus, published, invalid, register, tick, deliver }
}

type TestNode = ReturnType<typeof node>

/** Ticks until nothing is left to say: a node that starts serving a room has the others announce their users there again. */
async function converge (...all: TestNode[]): Promise<void> {
  for (let round = 0; round < 3; round++) {
    for (const each of all) each.tick()
    await settle()
  }
}

async function nodes (count: number) {
  const clock = new ManualClock()
  const hub = new MemoryClusterHub(clock)
  const store = new MemorySessionStore()
  const all = ['a', 'b', 'c'].slice(0, count).map((id) => node(hub, clock, id, store))
  for (const each of all) await each.sync.start()
  return { clock, hub, store, all }
}

async function twoNodes () {
  const { all: [a, b], ...rest } = await nodes(2)
  if (a === undefined || b === undefined) throw new Error('fixture')
  return { a, b, ...rest }
}

/** Ann on a and Bob on b, both in room `r`: each holds the other as a replica. */
async function sharedRoom () {
  const fixture = await twoNodes()
  const ann = fixture.a.register('Ann')
  const bob = fixture.b.register('Bob')
  await converge(fixture.a, fixture.b)
  return { ...fixture, ann, bob }
}

const kinds = (published: Array<{ topic: string, message: ClusterMessageT }>): string[] => published.map(({ topic, message }) => `${message.kind}@${topic}`)

t.test('a node publishes its users\' changes once per tick, per room, on the room\'s topic; nodes serving the room keep replicas', async (t) => {
  const { a, b, ann } = await sharedRoom()
  const ann2 = a.register('Ann2')
  a.users.setPosition(ann.user, { x: 1, y: 2, z: 3 })
  a.users.setPosition(ann.user, { x: 4, y: 5, z: 6 })
  a.users.setProfile(ann2.user, 'Ann Two', ann2.user.state)
  a.published.length = 0
  a.tick()
  t.strictSame(kinds(a.published), ['room@room:r'], 'one message for the room, for the whole tick')
  await settle()

  const replica = b.users.get(ann.user.id)
  t.equal(replica?.owner, 'a', 'b has a replica, owned by a')
  t.strictSame(replica?.position, { x: 4, y: 5, z: 6 }, 'at the latest position of the tick')
  t.equal(b.users.get(ann2.user.id)?.name, 'Ann Two')
  t.equal(b.users.bySecretHash(ann.user.secretHash), undefined, 'a replica holds no secret')

  b.published.length = 0
  b.tick()
  t.strictSame(b.published, [], 'applying a batch publishes nothing back')

  a.users.setProfile(ann.user, 'Ann', Object.assign(emptyState(), { mood: 'up' }))
  a.users.setPosition(ann.user, { x: 7, y: 7, z: 7 })
  a.tick()
  t.match(a.published[1]?.message, { kind: 'room', batch: { room: 'r', joined: [], positions: [[ann.user.id, 7, 7, 7]], updated: [{ id: ann.user.id, state: { mood: 'up' } }] } }, 'later ticks carry only what changed')
  await settle()
  t.same({ ...b.users.get(ann.user.id)?.state }, { mood: 'up' })

  a.tick()
  t.equal(a.published.length, 2, 'a quiet tick publishes nothing')

  await a.sessions.leave(ann.user)
  a.tick()
  await settle()
  t.equal(b.users.get(ann.user.id), undefined, 'a leave removes the replica')
})

t.test('a node serves only the rooms its users are in: nothing of the others reaches it, and it holds none of their users', async (t) => {
  const { a, b } = await twoNodes()
  const ann = a.register('Ann', 'r1')
  const cid = a.register('Cid', 'r2')
  b.register('Bob', 'r1')
  await converge(a, b)
  const received = b.bus.traffic.receivedMessages
  for (let i = 1; i <= 20; i++) {
    a.users.setPosition(cid.user, { x: i, y: 0, z: 0 })
    a.tick()
  }
  await settle()
  t.equal(b.bus.traffic.receivedMessages, received, 'twenty batches of r2: none reached b')
  t.equal(b.users.get(cid.user.id), undefined, 'b holds no replica of r2')
  t.ok(b.users.get(ann.user.id), 'but it holds r1\'s')
  t.equal(b.sync.roomCount, 1, 'b serves one room')
  t.equal(b.sync.replicaCount(), 1, 'with one replica')
  t.equal(a.sync.roomCount, 2)

  a.users.setPosition(ann.user, { x: 5, y: 5, z: 5 })
  a.tick()
  await settle()
  t.equal(b.bus.traffic.receivedMessages, received + 1, 'a batch of r1 did')
})

t.test('the first user of a node in a room loads who is there; a beat after the last one leaves, they are dropped', async (t) => {
  const { a, b, clock } = await twoNodes()
  const ann = a.register('Ann', 'hall')
  a.users.setProfile(ann.user, 'Ann', Object.assign(emptyState(), { hat: true }))
  a.tick()
  a.users.setPosition(ann.user, { x: 3, y: 4, z: 0 })
  a.tick()
  await a.sync.beat()
  await settle()
  t.equal(b.users.get(ann.user.id), undefined, 'b serves no room yet')

  const bob = b.register('Bob', 'hall')
  await settle()
  const replica = b.users.get(ann.user.id)
  t.match(replica?.toWire(), { name: 'Ann', state: { hat: true }, position: { x: 3, y: 4, z: 0 } }, 'her record, with the position the last beat recorded')
  t.equal(replica?.owner, 'a')

  b.users.moveToRoom(bob.user, 'garden')
  await settle()
  t.ok(b.users.get(ann.user.id), 'Bob left the hall: b keeps it for a beat, in case he comes back')
  clock.advance(BEAT)
  await b.sync.beat()
  t.equal(b.users.get(ann.user.id), undefined, 'a beat later it no longer holds Ann')
  t.equal(b.sync.roomCount, 1, 'it serves the garden only')
  const received = b.bus.traffic.receivedMessages
  a.users.setPosition(ann.user, { x: 9, y: 9, z: 9 })
  a.tick()
  await settle()
  t.equal(b.bus.traffic.receivedMessages, received, 'and hears nothing more of the hall')
})

t.test('a room that one node serves alone costs the bus nothing after its first batch; a node arriving gets its users at once, as they are', async (t) => {
  const { a, b } = await twoNodes()
  const ann = a.register('Ann', 'hall')
  await converge(a)
  a.users.setPosition(ann.user, { x: 1, y: 0, z: 0 })
  a.tick()
  await settle()
  a.published.length = 0
  for (let x = 2; x <= 5; x++) {
    a.users.setPosition(ann.user, { x, y: 0, z: 0 })
    a.tick()
    await settle()
  }
  t.strictSame(kinds(a.published), [], 'its last batch reached a alone: four more moves, no message')

  b.register('Bob', 'hall')
  await converge(a, b)
  t.strictSame(b.users.get(ann.user.id)?.position, { x: 5, y: 0, z: 0 }, 'b sees Ann where she is, not where the last beat recorded her')
  a.published.length = 0
  a.users.setPosition(ann.user, { x: 6, y: 0, z: 0 })
  a.tick()
  await settle()
  t.strictSame(kinds(a.published), ['room@room:hall'], 'a publishes the hall again')
  t.strictSame(b.users.get(ann.user.id)?.position, { x: 6, y: 0, z: 0 })
})

t.test('an "only you" answer older than the last node heard does not silence a room', async (t) => {
  const { a, b } = await twoNodes()
  const ann = a.register('Ann', 'hall')
  await converge(a)
  a.users.setPosition(ann.user, { x: 1, y: 0, z: 0 })
  // a's next batch reaches a alone, but the answer comes back only after b has said it serves the hall.
  const publish = a.bus.publish
  let answer = (): void => {}
  a.bus.publish = async (topic, message) => {
    const receivers = await publish(topic, message)
    await new Promise<void>((resolve) => { answer = resolve })
    return receivers
  }
  const sent = a.published.length
  a.tick()
  await settle()
  t.equal(a.published.length, sent + 1, 'the batch went out')
  a.bus.publish = publish
  b.register('Bob', 'hall')
  await settle()
  answer()
  await converge(a, b)
  a.users.setPosition(ann.user, { x: 2, y: 0, z: 0 })
  a.tick()
  await settle()
  t.strictSame(b.users.get(ann.user.id)?.position, { x: 2, y: 0, z: 0 }, 'a still publishes the hall, and b follows')
})

t.test('batches that arrive while a room\'s records load are applied after them, in order', async (t) => {
  const { a, b } = await twoNodes()
  const ann = a.register('Ann', 'hall')
  a.tick()
  await settle()
  // The records are read first; a's next batch arrives before they are in.
  let release = (): void => {}
  const members = b.bus.members.bind(b.bus)
  b.bus.members = async (room) => {
    const records = await members(room)
    await new Promise<void>((resolve) => { release = resolve })
    return records
  }
  b.register('Bob', 'hall')
  await settle()
  a.users.setPosition(ann.user, { x: 8, y: 8, z: 8 })
  a.tick()
  await settle()
  t.equal(b.users.get(ann.user.id), undefined, 'the batch waits for the records')
  release()
  await settle()
  t.strictSame(b.users.get(ann.user.id)?.position, { x: 8, y: 8, z: 8 }, 'the record, then the batch: her latest position')
})

t.test('data reaches a listener on another node even when that node does not serve the sender\'s room', async (t) => {
  const { a, b, clock } = await twoNodes()
  const ann = a.register('Ann', 'stage')
  const bob = b.register('Bob', 'foyer')
  a.tick()
  b.tick()
  await settle()
  t.equal(b.users.get(ann.user.id), undefined, 'b holds no replica of Ann')
  b.users.setListening(bob.user, [ann.user.id])
  b.tick()
  await settle()
  a.published.length = 0
  a.users.sendData(ann.user, '{"n":1}')
  a.users.sendData(ann.user, '{"n":2}')
  a.tick()
  await settle()
  t.strictSame(bob.peer.ofType('data').map((m) => m.payload), [{ n: 1 }, { n: 2 }], 'both, in order')
  t.strictSame(kinds(a.published), [`data@user:${ann.user.id}`], 'in one message of the tick, on her topic')

  b.users.setListening(bob.user, [])
  b.tick()
  await settle()
  a.users.sendData(ann.user, '{"n":3}')
  a.tick()
  await settle()
  t.equal(bob.peer.ofType('data').length, 2, 'b keeps her topic for a beat (Bob may come back to her), but he gets nothing')
  clock.advance(BEAT)
  b.tick()
  await settle()
  const received = b.bus.traffic.receivedMessages
  a.users.sendData(ann.user, '{"n":3}')
  a.tick()
  await settle()
  t.equal(b.bus.traffic.receivedMessages, received, 'a beat after nobody on b listens to her, her data no longer reaches b')
})

t.test('a user moving rooms moves on the other node too, whichever room\'s batch comes first', async (t) => {
  const { a, b } = await twoNodes()
  const ann = a.register('Ann', 'r1')
  const cid = a.register('Cid', 'r2')
  b.register('Bea', 'r1')
  b.register('Ben', 'r2')
  a.tick()
  b.tick()
  await settle()
  // Cid's change makes r2's batch first in the tick; Ann's move then adds her left to r1's batch after it.
  a.users.setProfile(cid.user, 'Cid 2', cid.user.state)
  a.users.moveToRoom(ann.user, 'r2')
  a.tick()
  await settle()
  t.equal(b.users.get(ann.user.id)?.room, 'r2', 'the replica is in the new room')
  t.equal(b.users.room('r1')?.members.size, 1, 'and gone from the old one, where Bea is alone')
})

t.test('a room\'s records follow its members: moves within a beat, leaves at once, a takeover keeps the new owner\'s', async (t) => {
  const { hub, a, b } = await twoNodes()
  const ann = a.register('Ann', 'hall')
  const cid = a.register('Cid', 'hall')
  a.tick()
  const owners = async (room: string): Promise<Array<[string, string, number]>> =>
    (await hub.bus('probe').members(room) as Array<{ owner: string, user: { id: string, position: { x: number } } }>).map(({ owner, user }) => [user.id, owner, user.position.x])
  t.strictSame((await owners('hall')).sort(), [[ann.user.id, 'a', 0], [cid.user.id, 'a', 0]].sort(), 'both recorded')
  a.users.setPosition(ann.user, { x: 5, y: 0, z: 0 })
  a.tick()
  t.strictSame((await owners('hall')).find(([id]) => id === ann.user.id), [ann.user.id, 'a', 0], 'a move alone is not written at the tick')
  await a.sync.beat()
  t.strictSame((await owners('hall')).find(([id]) => id === ann.user.id), [ann.user.id, 'a', 5], 'but at the next beat')

  a.users.moveToRoom(cid.user, 'garden')
  a.tick()
  t.strictSame((await owners('hall')).map(([id]) => id), [ann.user.id], 'a user who moved on is no longer recorded in the hall')
  t.strictSame((await owners('garden')).map(([id]) => id), [cid.user.id], 'but in the garden')

  await a.sessions.persist()
  const resumed = await b.sessions.reconnect(new FakePeer(), ann.secret)
  t.equal(resumed?.user.id, ann.user.id, 'b takes Ann over')
  b.tick()
  a.tick()
  t.strictSame((await owners('hall')).find(([id]) => id === ann.user.id)?.[1], 'b', 'the record names the new owner, whatever the old one removes')
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

t.test('after an outage, a served room is loaded again: users who left meanwhile are dropped', async (t) => {
  const { hub, a, b, ann } = await sharedRoom()
  const cid = a.register('Cid')
  a.tick()
  await settle()
  t.ok(b.users.get(cid.user.id))
  hub.setDown(true)
  await a.sessions.leave(cid.user)
  a.tick()
  await settle()
  t.ok(b.users.get(cid.user.id), 'the leave was lost in the outage')
  hub.setDown(false)
  await settle()
  a.tick()
  await settle()
  t.equal(b.users.get(cid.user.id), undefined, 'the reload dropped Cid')
  t.ok(b.users.get(ann.user.id), 'and kept Ann')
})

t.test('a message that is not a valid cluster message is reported and changes nothing', async (t) => {
  const { b } = await sharedRoom()
  const before = b.users.userCount
  b.deliver('room:r', { kind: 'room', from: 'x', batch: { room: 'r', joined: [{ id: 'no-fields' }], left: [], updated: [], positions: [] } })
  b.deliver('room:r', { kind: 'nonsense' })
  b.deliver('room:r', 'just a string')
  t.equal(b.invalid.length, 3, 'each one reported')
  t.equal(b.users.userCount, before, 'no user added or removed')
  b.deliver('room:elsewhere', { kind: 'room', from: 'x', batch: { room: 'elsewhere', joined: [{ id: '00000000-0000-4000-8000-00000000000b', name: 'Eve', room: 'elsewhere', position: { x: 0, y: 0, z: 0 }, state: {}, listeningTo: [], connected: true }], left: [], updated: [], positions: [] } })
  t.equal(b.users.userCount, before, 'a batch of a room b does not serve adds nobody')
})

t.test('another node\'s records are held to the client limits: what no client could send is skipped and reported', async (t) => {
  const { b, ann, bob } = await sharedRoom()
  b.users.setListening(bob.user, [ann.user.id])
  b.tick()
  await settle()
  const someone = (fields: Record<string, unknown>) => ({
    id: '00000000-0000-4000-8000-00000000000a', name: 'Eve', room: 'r', position: { x: 0, y: 0, z: 0 }, state: {}, listeningTo: [], connected: true, ...fields
  })
  const room = (batch: Record<string, unknown>) => ['room:r', { kind: 'room', from: 'a', batch: { room: 'r', joined: [], left: [], updated: [], positions: [], ...batch } }] as const
  const data = (payload: string) => [`user:${ann.user.id}`, { kind: 'data', from: 'a', user: ann.user.id, payloads: [payload] }] as const
  const cases: Array<[string, readonly [string, unknown]]> = [
    ['a 200,000-character name', room({ joined: [someone({ name: 'x'.repeat(200_000) })] })],
    ['a forbidden state key', room({ joined: [someone({ state: { 'bad key': 1 } })] })],
    ['a state over 2 KiB', room({ joined: [someone({ state: Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`k${i}`, 'v'.repeat(250)])) })] })],
    ['a coordinate of 1e300', room({ positions: [[ann.user.id, 1e300, 0, 0]] })],
    ['a room name no client may use', ['room:r', { kind: 'room', from: 'a', batch: { room: 'no spaces allowed', joined: [], left: [], updated: [], positions: [] } }]],
    ['an update renaming to nothing', room({ updated: [{ id: ann.user.id, name: '   ' }] })],
    ['data that is not JSON', data('{"pasted": ')],
    ['data over the payload limit', data(JSON.stringify('x'.repeat(9000)))]
  ]
  for (const [what, [topic, message]] of cases) {
    const reported = b.invalid.length
    b.deliver(topic, message)
    t.equal(b.invalid.length, reported + 1, `${what}: reported`)
  }
  b.tick()
  t.equal(b.users.get('00000000-0000-4000-8000-00000000000a'), undefined, 'nobody was added')
  t.strictSame(b.users.get(ann.user.id)?.position, { x: 0, y: 0, z: 0 }, 'nobody moved')
  t.equal(b.users.get(ann.user.id)?.name, 'Ann')
  t.strictSame(bob.peer.ofType('data'), [], 'no data reached a listener')

  b.deliver(...data('{ "spaced" : [1, 2] }'))
  t.strictSame(bob.peer.raw.filter((frame) => frame.includes('"data"')), [`{"type":"data","from":"${ann.user.id}","payload":{"spaced":[1,2]}}`],
    'a good payload is parsed and serialized again, never pasted')
})

t.test('a node serves a room over records that are not users, and keeps its heartbeat', async (t) => {
  const { hub, a, b } = await twoNodes()
  const ann = a.register('Ann')
  a.tick()
  await a.sync.beat()
  // Records as a broken writer (or a hand edit) might leave them.
  hub.putRecord('r', 'x', { owner: 'a', user: { id: 'not-a-uuid', name: '', room: 'r' } })
  hub.putRecord('r', 'y', { owner: 'a', user: { ...ann.user.toWire(), id: '00000000-0000-4000-8000-00000000000c', name: 'x'.repeat(100) } })
  hub.putRecord('r', 'z', { owner: 'a', user: { ...ann.user.toWire(), id: '00000000-0000-4000-8000-00000000000d', room: 'other' } })
  hub.putRecord('r', 'w', 'not even an object')
  b.register('Bob')
  await settle()
  t.equal(b.invalid.length, 4, 'each bad record reported')
  t.ok(b.users.get(ann.user.id), 'the good one loaded')
  t.equal(b.users.userCount, 2, 'and nothing else')
  await t.resolves(b.sync.beat(), 'its heartbeat keeps working')
})

t.test('records of a node that is not alive are not loaded, and are removed', async (t) => {
  const { hub, a, b, clock } = await twoNodes()
  const ann = a.register('Ann')
  a.tick()
  await a.sync.beat()
  await b.sync.beat()
  hub.kill('a')
  clock.advance(BEAT * 2 + 1)
  await b.sync.beat()
  b.register('Bob')
  await settle()
  t.equal(b.users.get(ann.user.id), undefined, 'a dead node\'s user is not loaded')
  t.strictSame(await hub.bus('probe').members('r'), [], 'and its record is gone')
})

t.test('a dead node\'s users go disconnected at once and leave after grace, with their records', async (t) => {
  const { clock, hub, a, b, bob } = await sharedRoom()
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
  await settle()
  t.equal(a.users.get(bob.user.id), undefined, 'gone when grace ends')
  const records = await hub.bus('probe').members('r') as Array<{ user: { id: string } }>
  t.notOk(records.some(({ user }) => user.id === bob.user.id), 'and so is his record')
})

t.test('claim: on the owner\'s topic, it closes its socket with 4001 and hands over the latest values; no answer means null', async (t) => {
  const { hub, a, b, clock } = await twoNodes()
  const ann = a.register('Ann')
  const cid = a.register('Cid')
  b.register('Bob')
  a.users.setPosition(ann.user, { x: 9, y: 8, z: 7 })
  await converge(a, b)
  a.published.length = 0
  const latest = await b.sync.claim('a', ann.user.id)
  t.match(latest, { id: ann.user.id, position: { x: 9, y: 8, z: 7 } }, 'the owner\'s latest values')
  t.strictSame(ann.peer.closes, [{ code: 4001, reason: 'replaced by a newer connection' }], 'its socket there was replaced')
  t.equal(a.users.get(ann.user.id)?.owner, 'b', 'a still serves the room (Cid): it keeps a replica owned by the claimant')
  t.equal(a.users.bySecretHash(ann.user.secretHash), undefined, 'without the secret')
  a.tick()
  t.strictSame(kinds(a.published), ['handover@node:b', 'room@room:r'], 'the answer goes to the claimant only')
  t.match(a.published[1]?.message, { batch: { left: [], handed: [[ann.user.id, 'b']] } }, 'and the room hears she is b\'s now, not that she left')

  await a.sessions.leave(cid.user)
  a.tick()
  clock.advance(BEAT)
  await a.sync.beat()
  t.equal(a.users.get(ann.user.id), undefined, 'a beat after a has nobody there, it holds no replica')
  t.equal(await b.sync.claim('a', 'someone-else'), null, 'a user the node does not have: null')
  hub.kill('a')
  t.equal(await b.sync.claim('a', cid.user.id), null, 'a node that does not answer: null after the timeout')
})

t.test('a reconnect on a node serving the room takes the replica over in place', async (t) => {
  const { a, b } = await twoNodes()
  const ann = a.register('Ann', 'hall')
  b.register('Bob', 'hall')
  a.users.setProfile(ann.user, 'Ann', Object.assign(emptyState(), { kept: 1 }))
  a.tick()
  await a.sessions.persist()
  await settle()
  const replica = b.users.get(ann.user.id)
  const hash = ann.user.secretHash
  const resumed = await b.sessions.reconnect(new FakePeer(), ann.secret)
  t.equal(resumed?.user, replica, 'the same object: rooms keep their member')
  t.equal(resumed?.user.owner, null, 'now b\'s own user')
  t.equal(b.users.bySecretHash(hash), replica, 'found by its secret on b')
  t.equal(a.users.bySecretHash(hash), undefined, 'and no longer on a')
  t.strictSame(ann.peer.closes.map((c) => c.code), [4001], 'whose socket was replaced')
  t.same({ ...resumed?.user.state }, { kept: 1 })
  t.equal(resumed?.rejoined, false, 'not a rejoin: the room sees no join')
})

t.test('a reconnect on a node that does not serve the room finds the owner from the room\'s records and takes the user over', async (t) => {
  const { all: [a, b, c] } = await nodes(3)
  if (a === undefined || b === undefined || c === undefined) throw new Error('fixture')
  const ann = a.register('Ann', 'hall')
  const cleo = c.register('Cleo', 'hall')
  a.users.setPosition(ann.user, { x: 2, y: 2, z: 2 })
  a.tick()
  c.tick()
  await a.sessions.persist()
  await settle()
  for (const each of [a, b, c]) await each.sync.beat()

  t.equal(b.sync.roomCount, 0, 'b serves nothing')
  const resumed = await b.sessions.reconnect(new FakePeer(), ann.secret)
  t.match(resumed?.user.toWire(), { id: ann.user.id, room: 'hall', position: { x: 2, y: 2, z: 2 } }, 'resumed on b with a\'s latest values')
  t.equal(resumed?.rejoined, false, 'a takeover, not a rejoin')
  t.strictSame(ann.peer.closes.map((c) => c.code), [4001], 'a closed its socket')
  await settle()
  t.equal(b.sync.roomCount, 1, 'b now serves the hall')
  t.same(b.invalid, [])
  t.ok(b.users.get(cleo.user.id), 'and holds Cleo of node c')
  b.tick()
  await settle()
  t.equal(c.users.get(ann.user.id)?.owner, 'b', 'c sees Ann as b\'s')
})

t.test('an identified user\'s account and info reach the other node, and its secret moves only under that account', async (t) => {
  const { a, b } = await twoNodes()
  const peer = new FakePeer()
  const { user, secret } = a.sessions.register(peer, {
    name: 'Ann', room: 'hall', position: { x: 0, y: 0, z: 0 }, state: emptyState(), identity: { userId: 'acct-1', info: { role: 'host' } }
  })
  b.register('Bob', 'hall')
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

/** A few beats and ticks on every node, as time passes: records, deaths, orphans and lingering rooms settle. */
async function beats (clock: ManualClock, count: number, ...all: TestNode[]): Promise<void> {
  for (let i = 0; i < count; i++) {
    clock.advance(BEAT)
    for (const each of all) await each.sync.beat()
    await converge(...all)
    for (const each of all) each.sync.expireOrphans()
  }
}

t.test('a user who leaves or changes room during an outage leaves the other nodes too, even as its node\'s last user there', async (t) => {
  for (const change of ['leave', 'move'] as const) {
    const { hub, a, b, ann } = await sharedRoom()
    hub.setDown(true)
    if (change === 'leave') await a.sessions.leave(ann.user)
    else a.users.moveToRoom(ann.user, 'r2')
    a.tick()
    await settle()
    hub.setDown(false)
    await settle()
    await converge(a, b)
    for (const each of [a, b]) await each.sync.beat()
    await converge(a, b)
    t.notOk(b.users.get(ann.user.id)?.room === 'r', `${change}: b no longer shows Ann in r`)
  }
})

t.test('a user who leaves while its node serves the room alone, as another node starts serving it, leaves there too', async (t) => {
  const { clock, a, b } = await twoNodes()
  const ann = a.register('Ann', 'hall')
  const cid = a.register('Cid', 'hall')
  await converge(a)
  a.users.setPosition(ann.user, { x: 1, y: 0, z: 0 })
  await converge(a)
  // b's "serving" is slow to reach a; b reads the records first, then Cid leaves on a, which still thinks itself alone.
  let sendServing = (): void => {}
  const publish = b.bus.publish
  b.bus.publish = async (topic, message) => {
    if (message.kind === 'serving') await new Promise<void>((resolve) => { sendServing = resolve })
    return await publish(topic, message)
  }
  b.register('Bob', 'hall')
  await settle()
  t.ok(b.users.get(cid.user.id), 'b loaded Cid from the records')
  await a.sessions.leave(cid.user)
  a.tick()
  await settle()
  b.bus.publish = publish
  sendServing()
  await beats(clock, 2, a, b)
  t.equal(b.users.get(cid.user.id), undefined, 'the roster that answers "serving" drops him')
  t.ok(b.users.get(ann.user.id), 'and keeps Ann')
})

t.test('a reconnect whose claim is lost takes the user over for good: the old owner announcing the room anew does not take it back', async (t) => {
  const { a, b } = await twoNodes()
  const ann = a.register('Ann', 'hall')
  a.register('Dan', 'hall')
  b.register('Bob', 'foyer')
  await converge(a, b)
  await a.sessions.persist()
  for (const each of [a, b]) await each.sync.beat()
  const publish = b.bus.publish
  b.bus.publish = async (topic, message) => message.kind === 'claim' ? null : await publish(topic, message)
  const peer = new FakePeer()
  const resumed = await b.sessions.reconnect(peer, ann.secret)
  b.bus.publish = publish
  t.equal(resumed?.user.owner, null, 'b took Ann over from the store when a did not answer')
  await converge(a, b)
  await converge(a, b)
  t.equal(b.users.get(ann.user.id)?.isLocal, true, 'she stays b\'s')
  t.strictSame(peer.closes, [], 'her new socket stays open')
  t.equal(a.users.get(ann.user.id)?.owner, 'b', 'a let her go')
  t.strictSame(ann.peer.closes.map((c) => c.code), [4001], 'closing her old socket')
})

t.test('two reconnects of one secret at once: the one that looked her up in the records does not undo the other', async (t) => {
  const { a, b } = await twoNodes()
  const ann = a.register('Ann', 'hall')
  b.register('Bob', 'foyer')
  await converge(a, b)
  await a.sessions.persist()
  for (const each of [a, b]) await each.sync.beat()
  const members = b.bus.members.bind(b.bus)
  let answer = (): void => {}
  b.bus.members = async (room) => {
    const records = await members(room)
    await new Promise<void>((resolve) => { answer = resolve })
    return records
  }
  const slow = b.sessions.reconnect(new FakePeer(), ann.secret)
  await settle()
  b.bus.members = members
  const fast = new FakePeer()
  const first = await b.sessions.reconnect(fast, ann.secret)
  t.equal(first?.user.isLocal, true, 'the second reconnect took her over')
  answer()
  await slow
  await settle()
  t.equal(b.users.get(ann.user.id)?.isLocal, true, 'she is still b\'s')
  t.notOk(fast.closes.some((c) => c.code === 4001), 'and no stale record closed her socket')
})

t.test('a user taken over just after moving, or leaving just after a takeover, leaves the room the others show it in', async (t) => {
  for (const change of ['moved before', 'left after'] as const) {
    const { all: [a, b, c], clock } = await nodes(3)
    if (a === undefined || b === undefined || c === undefined) throw new Error('fixture')
    const ann = a.register('Ann', 'hall')
    b.register('Bob', 'hall')
    c.register('Cid', 'hall')
    a.register('Dan', 'hall')
    await converge(a, b, c)
    await a.sessions.persist()
    if (change === 'moved before') a.users.moveToRoom(ann.user, 'foyer')
    const resumed = await b.sessions.reconnect(new FakePeer(), ann.secret)
    if (change === 'left after' && resumed !== null) await b.sessions.leave(resumed.user)
    await beats(clock, 3, a, b, c)
    t.notOk(c.users.get(ann.user.id)?.room === 'hall', `${change}: c no longer shows Ann in the hall`)
    const records = await c.bus.members('hall') as Array<{ user: { id: string } }>
    t.notOk(records.some(({ user }) => user.id === ann.user.id), `${change}: nor does the hall's record`)
  }
})

t.test('a takeover seen by a third node: the old owner\'s roster does not make the user leave there, nor does the room see a join', async (t) => {
  const { all: [a, b, c] } = await nodes(3)
  if (a === undefined || b === undefined || c === undefined) throw new Error('fixture')
  const ann = a.register('Ann', 'r')
  const cleo = c.register('Cleo', 'r')
  b.register('Bob', 'elsewhere')
  await converge(a, b, c)
  await a.sessions.persist()
  for (const each of [a, b, c]) await each.sync.beat()
  cleo.peer.clear()
  const resumed = await b.sessions.reconnect(new FakePeer(), ann.secret)
  t.equal(resumed?.user.isLocal, true, 'b took Ann over; b did not serve the room')
  await settle()
  // a, which had Ann alone in the room, answers b's "serving" with an empty roster before b announces her.
  a.tick()
  await settle()
  await converge(a, b, c)
  t.equal(c.users.get(ann.user.id)?.owner, 'b', 'c holds Ann as b\'s')
  const presence = cleo.peer.ofType('presence')
  t.notOk(presence.some((m) => m.left?.includes(ann.user.id) === true || m.joined?.some((u) => u.id === ann.user.id) === true), 'Cleo saw no leave and no join')
})

t.test('a node that lost a replica gets it back: a batch naming a user it does not hold makes it ask for the room anew', async (t) => {
  const { a, b, ann } = await sharedRoom()
  const replica = b.users.get(ann.user.id)
  if (replica === undefined) throw new Error('fixture')
  b.users.remove(replica)
  a.users.setPosition(ann.user, { x: 4, y: 4, z: 0 })
  await converge(a, b)
  t.strictSame(b.users.get(ann.user.id)?.position, { x: 4, y: 4, z: 0 }, 'Ann is back on b, where she is')
})

t.test('a node that was only slow, not dead, gets its users shown connected again when it beats again', async (t) => {
  const { clock, a, b, bob } = await sharedRoom()
  for (const each of [a, b]) await each.sync.beat()
  clock.advance(BEAT * 2 + 1)
  await a.sync.beat()
  t.equal(a.users.get(bob.user.id)?.connected, false, 'b missed two beats: Bob shows disconnected on a')
  await b.sync.beat()
  await a.sync.beat()
  await converge(a, b)
  t.equal(a.users.get(bob.user.id)?.connected, true, 'b beats again: Bob is connected again on a')
  clock.advance(GRACE)
  a.sync.expireOrphans()
  t.ok(a.users.get(bob.user.id), 'and is not removed when the grace would have ended')
})

t.test('whatever a client does with whom it listens to, its node changes at most a bounded number of subscriptions per tick', async (t) => {
  const { clock, a, b } = await twoNodes()
  const bob = b.register('Bob', 'foyer')
  a.register('Ann', 'stage')
  await converge(a, b)
  let changes = 0
  const { subscribe, unsubscribe } = b.bus
  b.bus.subscribe = async (topic) => { changes++; await subscribe.call(b.bus, topic) }
  b.bus.unsubscribe = async (topic) => { changes++; await unsubscribe.call(b.bus, topic) }
  const ids = (n: number): string[] => Array.from({ length: 256 }, (_, i) => `00000000-0000-4000-8000-${String(n * 1000 + i).padStart(12, '0')}`)
  const perTick: number[] = []
  for (let round = 0; round < 20; round++) {
    changes = 0
    // Three whole new listening sets per tick, of fresh ids, and back to an old one.
    for (const set of [ids(round * 3), ids(round * 3 + 1), ids(round * 3 + 2), ids(0)]) b.users.setListening(bob.user, set)
    clock.advance(BEAT / 4)
    b.tick()
    perTick.push(changes)
  }
  t.ok(Math.max(...perTick) <= MAX_SPEAKER_CHANGES_PER_TICK, `at most ${MAX_SPEAKER_CHANGES_PER_TICK} per tick (${Math.max(...perTick)})`)
  b.users.setListening(bob.user, ids(0))
  for (let i = 0; i < 200; i++) { clock.advance(BEAT / 4); b.tick() }
  await settle()
  changes = 0
  for (let round = 0; round < 10; round++) {
    b.users.setListening(bob.user, ids(1))
    b.users.setListening(bob.user, ids(0))
    clock.advance(BEAT / 4)
    b.tick()
  }
  t.equal(changes, 0, 'switching back and forth within a tick costs nothing')
})
