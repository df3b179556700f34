/**
 * The compact encoding over real sockets: negotiated at register and reconnect,
 * binary `positions` with short ids for the clients that asked, JSON unchanged
 * for the others in the same room, and the client library using it end to end.
 */
import t from 'tap'
import WebSocket from 'ws'
import { decodeCompactPositions } from '../../src/protocol/compact.js'
import { ShoalClient } from '../../src/client/client.js'
import { FAST, harness, type TestClient } from '../helpers.js'
import { MemoryStorage, once, until } from '../client/support.js'
import { valueOf } from '../wait.js'

/** Waits for the next binary frame of `client` and decodes it. */
async function nextCompact (client: TestClient): Promise<NonNullable<ReturnType<typeof decodeCompactPositions>>> {
  const frame = await valueOf('a binary frame (compact positions)', () => client.binary.shift())
  const decoded = decodeCompactPositions(frame)
  if (decoded === null) throw new Error('a binary frame that is not compact positions')
  return decoded
}

t.test('register with encoding compact: welcome says so, users carry short ids, positions are binary', async (t) => {
  const h = await harness(t, FAST)
  const json = await h.join({ name: 'json', room: 'mixed' })
  const compact = await h.join({ name: 'compact', room: 'mixed', encoding: 'compact' })
  t.equal(compact.welcome.encoding, 'compact', 'the welcome confirms the encoding')
  t.type(compact.welcome.you.sid, 'number', 'our own short id')
  const [jsonUser] = compact.welcome.users
  t.equal(jsonUser?.id, json.welcome.id)
  t.type(jsonUser?.sid, 'number', 'every user listed with its short id')
  t.equal(json.welcome.encoding, undefined, 'a JSON client\'s welcome has no encoding field')
  t.equal(json.welcome.you.sid, undefined, 'nor short ids')
  const [joined] = (await json.client.next('presence', (m) => m.joined !== undefined)).joined ?? []
  t.equal(joined?.id, compact.welcome.id)
  t.equal(joined?.sid, undefined, 'a JSON client\'s presence has no short ids')

  json.client.send({ type: 'update', position: { x: 1.25, y: -2, z: 0.1 } })
  const frame = await nextCompact(compact.client)
  t.strictSame(frame.entries, [[jsonUser?.sid, 1.25, -2, Math.fround(0.1)]], 'the mover by short id, with f32 coordinates')
  t.ok(Math.abs(frame.t - Date.now()) < 5000, 't is server time')

  compact.client.send({ type: 'update', position: { x: 3, y: 4 } })
  const seen = await json.client.next('positions', (m) => m.p.some(([id]) => id === compact.welcome.id))
  t.strictSame(seen.p.find(([id]) => id === compact.welcome.id), [compact.welcome.id, 3, 4, 0], 'JSON clients still get JSON with full ids')
  const others = await compact.client.drainType('positions')
  t.strictSame(others, [], 'a compact client gets no JSON positions at all')
})

t.test('a compact client learns the short ids of newcomers from presence, and of everyone from snapshot', async (t) => {
  const h = await harness(t, FAST)
  const compact = await h.join({ name: 'compact', room: 'r', encoding: 'compact' })
  const later = await h.join({ name: 'later', room: 'r' })
  const presence = await compact.client.next('presence', (m) => m.joined !== undefined)
  const sid = presence.joined?.[0]?.sid
  t.type(sid, 'number')
  later.client.send({ type: 'update', position: { x: 9, y: 9 } })
  t.equal((await nextCompact(compact.client)).entries[0]?.[0], sid, 'positions use the short id presence announced')

  compact.client.send({ type: 'join', room: 'other' })
  t.strictSame((await compact.client.next('snapshot')).users, [], 'an empty room')
  compact.client.send({ type: 'join', room: 'r' })
  const snapshot = await compact.client.next('snapshot')
  t.strictSame(snapshot.users.map((u) => [u.id, u.sid]), [[later.welcome.id, sid]], 'snapshot users carry their short ids, unchanged across rooms')
})

t.test('reconnect negotiates afresh: the encoding belongs to the connection', async (t) => {
  const h = await harness(t, FAST)
  const first = await h.join({ name: 'a', room: 'r' })
  const other = await h.join({ name: 'b', room: 'r' })
  first.client.close()
  const compactSocket = await h.connect()
  compactSocket.send({ type: 'reconnect', secret: first.welcome.secret, encoding: 'compact' })
  const resumed = await compactSocket.next('welcome')
  t.equal(resumed.encoding, 'compact')
  t.equal(resumed.id, first.welcome.id, 'the same user')
  t.type(resumed.you.sid, 'number', 'now with its short id')
  other.client.send({ type: 'update', position: { x: 5, y: 6 } })
  t.strictSame((await nextCompact(compactSocket)).entries.map(([, x, y]) => [x, y]), [[5, 6]])

  compactSocket.close()
  const jsonAgain = await h.resume(first.welcome.secret)
  t.equal(jsonAgain.welcome.encoding, undefined, 'a reconnect without encoding is JSON again')
  other.client.send({ type: 'update', position: { x: 7, y: 8 } })
  await jsonAgain.client.next('positions', (m) => m.p.some(([, x]) => x === 7))
  t.equal(jsonAgain.client.binary.length, 0)
})

t.test('an unknown encoding is an invalid message that changes nothing', async (t) => {
  const h = await harness(t, FAST)
  const client = await h.connect()
  client.send({ type: 'register', name: 'x', encoding: 'msgpack' })
  const error = await client.next('error')
  t.equal(error.code, 'invalid_message')
  t.match(error.message, /encoding/, 'the message names the field')
  t.equal(h.server.app.shoal.stats.users, 0, 'nobody registered')
  const welcome = await client.register({ name: 'x' })
  t.equal(welcome.you.name, 'x', 'the connection still works')
})

t.test('ShoalClient with encoding compact: the same events and room copy as a JSON client', async (t) => {
  const h = await harness(t, FAST)
  const make = (name: string, encoding: 'json' | 'compact'): ShoalClient => {
    const client = new ShoalClient({
      url: h.server.wsUrl,
      WebSocket,
      storage: new MemoryStorage(),
      pingIntervalMs: 0,
      encoding,
      register: { name, room: 'same' }
    })
    t.teardown(() => client.close())
    return client
  }
  const compact = make('compact', 'compact')
  const [welcome] = await once(compact, 'welcome')
  t.equal(welcome.encoding, 'compact')
  const json = make('json', 'json')
  await once(json, 'welcome')
  await until(compact, () => compact.users.size === 1)
  await until(json, () => json.users.size === 1)

  const moved = once(compact, 'positions', (list) => list.some(({ user }) => user.id === json.id))
  json.move({ x: 12.5, y: -7, z: 2 })
  const [list, serverTime] = await moved
  t.strictSame(list.map(({ user, position }) => [user.name, position]), [['json', { x: 12.5, y: -7, z: 2 }]], 'decoded into the usual event')
  t.type(serverTime, 'number')
  t.strictSame(compact.users.get(json.id as string)?.position, { x: 12.5, y: -7, z: 2 }, 'the room copy moved')

  const back = once(json, 'positions', (l) => l.some(({ user }) => user.id === compact.id))
  compact.move({ x: 1, y: 2 })
  await back
  t.strictSame(json.users.get(compact.id as string)?.position, { x: 1, y: 2, z: 0 }, 'and the JSON client sees the compact one as always')
})
