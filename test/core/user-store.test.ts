import t from 'tap'
import type { Room } from '../../src/core/presence/room.js'
import { LISTING_KEPT_UNUSED_MS } from '../../src/core/presence/listing.js'
import { USER_CHANGES, UserStore } from '../../src/core/presence/user-store.js'
import type { LiveUser } from '../../src/core/presence/user.js'
import { connectedUser, FakePeer, makeUser, positionsOf, serializationsDuring, stateOf, textOf } from './fakes.js'

/** One tick: every changed room's presence and positions, by room name. */
function flush (store: UserStore, now = 0): Map<string, { room: Room, presence: ReturnType<Room['takePresence']>, positions: Array<[string, number, number, number]> }> {
  const out = new Map<string, { room: Room, presence: ReturnType<Room['takePresence']>, positions: Array<[string, number, number, number]> }>()
  for (const room of store.takeChangedRooms(now)) {
    out.set(room.name, { room, presence: room.takePresence(), positions: positionsOf(room.takeMoved()) })
  }
  return out
}

function added (store: UserStore, fields: Parameters<typeof connectedUser>[0] = {}): LiveUser {
  const { user } = connectedUser(fields)
  store.add(user)
  return user
}

const ids = (users: Iterable<LiveUser>): string[] => [...users].map((u) => u.id).sort()

t.test('add puts the user in its room and marks the room changed', async (t) => {
  const store = new UserStore()
  const user = added(store, { room: 'r1', secretHash: 'h1' })
  t.equal(store.get(user.id), user)
  t.equal(store.bySecretHash('h1'), user)
  t.equal(store.userCount, 1)
  t.ok(store.room('r1')?.members.has(user.id))
  const tick = flush(store)
  t.strictSame([...tick.keys()], ['r1'])
  t.strictSame(tick.get('r1')?.presence?.joined.map((u) => u.id), [user.id])
  t.equal(flush(store).size, 0, 'nothing changed since')
})

t.test('remove takes the user out and marks its room; removing twice is harmless', async (t) => {
  const store = new UserStore()
  const a = added(store, { room: 'r1' })
  const b = added(store, { room: 'r1' })
  flush(store)
  store.remove(a)
  t.equal(store.get(a.id), undefined)
  t.equal(store.bySecretHash(a.secretHash), undefined)
  t.equal(store.userCount, 1)
  t.strictSame(flush(store).get('r1')?.presence?.left, [a.id])
  store.remove(a)
  t.equal(flush(store).size, 0)
  t.equal(store.get(b.id), b)
})

t.test('remove of a stale object does not remove the live user with the same id', async (t) => {
  const store = new UserStore()
  const live = added(store, { room: 'r1' })
  const stale = makeUser({ id: live.id, room: 'r1', secretHash: live.secretHash })
  store.remove(stale)
  t.equal(store.get(live.id), live)
  t.ok(store.room('r1')?.members.has(live.id))
})

t.test('moveToRoom marks both rooms: the old one sees left, the new one joined', async (t) => {
  const store = new UserStore()
  const a = added(store, { room: 'r1', position: { x: 1, y: 2, z: 3 }, state: { k: 'v' } })
  added(store, { room: 'r1' })
  added(store, { room: 'r2' })
  flush(store)
  store.moveToRoom(a, 'r2')
  t.equal(a.room, 'r2')
  const tick = flush(store)
  t.strictSame([...tick.keys()].sort(), ['r1', 'r2'])
  t.strictSame(tick.get('r1')?.presence, { joined: [], left: [a.id], updated: [] })
  const joined = tick.get('r2')?.presence?.joined
  t.strictSame(joined?.map((u) => u.id), [a.id])
  t.strictSame(joined?.[0]?.position, { x: 1, y: 2, z: 3 }, 'position kept')
  t.strictSame({ ...joined?.[0]?.state }, { k: 'v' }, 'state kept')
  t.notOk(store.room('r1')?.members.has(a.id))
  t.ok(store.room('r2')?.members.has(a.id))
})

t.test('setPosition marks the room moved; setProfile and setListening mark it changed', async (t) => {
  const store = new UserStore()
  const a = added(store, { room: 'r1' })
  const b = added(store, { room: 'r1' })
  flush(store)
  store.setPosition(a, { x: 4, y: 5, z: 6 })
  let tick = flush(store)
  t.strictSame(tick.get('r1')?.positions, [[a.id, 4, 5, 6]])
  t.equal(tick.get('r1')?.presence, null)

  store.setProfile(a, 'Ann', stateOf({ x: 1 }))
  tick = flush(store)
  const updated = tick.get('r1')?.presence?.updated[0]
  t.equal(updated?.name, 'Ann')
  t.strictSame({ ...updated?.state }, { x: 1 })

  store.setListening(a, [b.id])
  tick = flush(store)
  t.strictSame(tick.get('r1')?.presence?.updated, [{ id: a.id, listeningTo: [b.id] }])
})

t.test('takeChangedRooms drops a room that became empty, once its leave was flushed', async (t) => {
  const store = new UserStore()
  const a = added(store, { room: 'r1' })
  const b = added(store, { room: 'r3' })
  flush(store)

  store.moveToRoom(a, 'r2')
  t.ok(store.room('r1'), 'kept until its leave is sent')
  const tick = flush(store)
  t.strictSame(tick.get('r1')?.presence?.left, [a.id])
  t.equal(store.room('r1'), undefined, 'dropped after the flush')
  t.ok(store.room('r2'), 'rooms with members are kept')

  store.remove(b)
  t.strictSame(flush(store).get('r3')?.presence?.left, [b.id])
  t.equal(store.room('r3'), undefined)
  t.ok(store.room('r2'))
})

t.test('a room whose leave is taken but not yet flushed is kept', async (t) => {
  const store = new UserStore()
  const a = added(store, { room: 'r1' })
  flush(store)
  store.remove(a)
  // Consumer stops before taking r1's presence: the room must survive so the leave is not lost.
  for (const room of store.takeChangedRooms(0)) t.equal(room.name, 'r1')
  t.ok(store.room('r1'))
  t.strictSame(store.room('r1')?.takePresence()?.left, [a.id])
})

t.test('a dropped room comes back when someone enters it', async (t) => {
  const store = new UserStore()
  const a = added(store, { room: 'r1' })
  flush(store)
  store.remove(a)
  flush(store)
  t.equal(store.room('r1'), undefined)
  const b = added(store, { room: 'r1' })
  t.strictSame(flush(store).get('r1')?.presence?.joined.map((u) => u.id), [b.id])
})

t.test('roomNames and roomCount count only rooms with users', async (t) => {
  const store = new UserStore()
  t.equal(store.roomCount, 0)
  const a = added(store, { room: 'r1' })
  const b = added(store, { room: 'r1' })
  added(store, { room: 'r2' })
  t.strictSame(store.roomNames().sort(), ['r1', 'r2'])
  t.equal(store.roomCount, 2)
  store.moveToRoom(a, 'r3')
  t.strictSame(store.roomNames().sort(), ['r1', 'r2', 'r3'])
  store.remove(b)
  // r1 is empty but not flushed yet (it still exists): it does not count.
  t.ok(store.room('r1'))
  t.strictSame(store.roomNames().sort(), ['r2', 'r3'])
  t.equal(store.roomCount, 2)
})

t.test('__proto__ is an ordinary room name', async (t) => {
  const store = new UserStore()
  const a = added(store, { room: '__proto__' })
  t.strictSame(store.roomNames(), ['__proto__'])
  t.strictSame(flush(store).get('__proto__')?.presence?.joined.map((u) => u.id), [a.id])
  t.equal(({} as Record<string, unknown>).members, undefined)
})

t.test('others is the room without the user', async (t) => {
  const store = new UserStore()
  const a = added(store, { room: 'r1' })
  const b = added(store, { room: 'r1' })
  added(store, { room: 'r2' })
  t.strictSame((JSON.parse(textOf(store.others(a))) as Array<{ id: string }>).map((u) => u.id), [b.id])
})

t.test('connectedListenersOf: connected listeners only, in any room', async (t) => {
  const store = new UserStore()
  const target = added(store, { room: 'r1' })
  const sameRoom = added(store, { room: 'r1' })
  const otherRoom = added(store, { room: 'r2' })
  const inGrace = added(store, { room: 'r1' })
  const notListening = added(store, { room: 'r1' })
  store.setListening(sameRoom, [target.id])
  store.setListening(otherRoom, [target.id, notListening.id])
  store.setListening(inGrace, [target.id])
  inGrace.peer = null
  t.strictSame(ids(store.connectedListenersOf(target.id)), ids([sameRoom, otherRoom]))
  t.strictSame(ids(store.connectedListenersOf(notListening.id)), [otherRoom.id])
  t.strictSame(ids(store.connectedListenersOf(sameRoom.id)), [])
})

t.test('setListening replaces the listening set', async (t) => {
  const store = new UserStore()
  const a = added(store)
  const b = added(store)
  const c = added(store)
  store.setListening(c, [a.id])
  store.setListening(c, [b.id])
  t.strictSame(ids(store.connectedListenersOf(a.id)), [])
  t.strictSame(ids(store.connectedListenersOf(b.id)), [c.id])
  t.strictSame(c.listeningTo, [b.id])
})

t.test('a user added with a listening set (a restored session) listens at once', async (t) => {
  const store = new UserStore()
  const a = added(store)
  const b = added(store, { listeningTo: [a.id] })
  t.strictSame(ids(store.connectedListenersOf(a.id)), [b.id])
})

t.test('removing a user removes its own edges but keeps others\' listeningTo entries to it', async (t) => {
  const store = new UserStore()
  const a = added(store)
  const b = added(store)
  store.setListening(a, [b.id])
  store.setListening(b, [a.id])

  store.remove(a)
  t.strictSame(ids(store.connectedListenersOf(b.id)), [], 'the removed user no longer listens')
  t.strictSame(b.listeningTo, [a.id], 'b still lists a')

  // When a comes back (same id), b hears it again without re-subscribing.
  const back = makeUser({ id: a.id, secretHash: a.secretHash, listeningTo: [] })
  back.peer = b.peer
  store.add(back)
  t.strictSame(ids(store.connectedListenersOf(a.id)), [b.id])
  t.strictSame(ids(store.connectedListenersOf(b.id)), [], 'the old edges of a did not survive its removal')
})

/** Every event the store emits, in order, as `event:name`. */
function recordEvents (store: UserStore): string[] {
  const seen: string[] = []
  for (const event of [...USER_CHANGES, 'data'] as const) {
    store.on(event, (user: LiveUser, extra?: string | null) => { seen.push(`${event}:${user.name}${extra == null ? '' : `:${extra}`}`) })
  }
  return seen
}

t.test('every change is told once, as it happens, with the user as it is after it', async (t) => {
  const store = new UserStore()
  const seen = recordEvents(store)
  const ann = makeUser({ name: 'ann', room: 'r1' })
  const peer = new FakePeer()
  store.add(ann, peer)
  t.equal(peer.user, ann, 'add links the peer both ways')
  store.setPosition(ann, { x: 1, y: 2, z: 3 })
  store.setProfile(ann, 'ann', stateOf({ mood: 'ok' }))
  store.setListening(ann, ['00000000-0000-4000-8000-000000000001'])
  store.moveToRoom(ann, 'r2')
  store.detach(ann, 5)
  t.equal(ann.disconnectedAt, 5)
  t.equal(peer.user, null, 'detach unlinks the peer')
  store.attach(ann, new FakePeer())
  store.sendData(ann, '{"hi":1}')
  store.remove(ann)
  t.strictSame(seen, [
    'join:ann', 'moved:ann', 'profile:ann', 'listening:ann', 'leave:ann:r1', 'join:ann',
    'connected:ann', 'connected:ann', 'data:ann:{"hi":1}', 'leave:ann:r2'
  ])
})

t.test('attach over a live peer is a takeover: no connection change, the old peer is detached and returned', async (t) => {
  const store = new UserStore()
  const first = new FakePeer()
  const ann = makeUser({ name: 'ann' })
  store.add(ann, first)
  const seen = recordEvents(store)
  const second = new FakePeer()
  t.equal(store.attach(ann, second), first)
  t.equal(first.user, null)
  t.equal(ann.peer, second)
  t.strictSame(seen, [], 'the room sees no change')
})

t.test('assign changes only what differs, each through its own event; a local user keeps its own connection state', async (t) => {
  const store = new UserStore()
  const ann = makeUser({ name: 'ann', room: 'r1', position: { x: 1, y: 1, z: 1 }, state: { a: 1 } })
  store.add(ann, new FakePeer())
  flush(store)
  const seen = recordEvents(store)
  store.assign(ann, { room: 'r1', name: 'ann', state: { a: 1 }, listeningTo: [], position: { x: 1, y: 1, z: 1 }, connected: false })
  t.strictSame(seen, [], 'nothing differs: nothing told')
  t.equal(ann.connected, true)
  store.assign(ann, { room: 'r2', state: { a: 2 }, position: { x: 2, y: 1, z: 1 } })
  t.strictSame(seen, ['leave:ann:r1', 'join:ann', 'profile:ann', 'moved:ann'])
  t.strictSame({ ...ann.state }, { a: 2 })
  t.equal(Object.getPrototypeOf(ann.state), null, 'the state is a copy of our own')

  const replica = makeUser({ name: 'bob' })
  replica.owner = 'node-b'
  store.add(replica)
  store.assign(replica, { connected: true })
  t.equal(replica.connected, true, 'a replica takes its connection state from its owner')
  t.equal(seen.at(-1), 'connected:bob')
})

t.test('adopt and release move a user between this node and another without the room seeing it', async (t) => {
  const store = new UserStore()
  const ann = makeUser({ name: 'ann', secretHash: 'h1' })
  const peer = new FakePeer()
  store.add(ann, peer)
  flush(store)
  const seen = recordEvents(store)
  t.equal(store.release(ann, 'node-b'), peer, 'release returns the detached peer')
  t.equal(ann.owner, 'node-b')
  t.equal(ann.connected, true, 'still connected, on its new owner')
  t.equal(store.bySecretHash('h1'), undefined, 'its secret is no longer this node\'s')
  store.adopt(ann, 'h2')
  t.equal(ann.isLocal, true)
  t.equal(store.bySecretHash('h2'), ann)
  t.strictSame(seen, ['owner:ann', 'owner:ann:node-b'], 'adopt names the node it was taken from')
  t.equal(flush(store).size, 0, 'no room changed')
})

t.test('a room\'s serialized listing is kept while it is used and let go of once unused for a while', async (t) => {
  const store = new UserStore()
  const users = Array.from({ length: 5 }, (_, i) => added(store, { room: 'r', name: `u${i}` }))
  const [asker] = users
  if (asker === undefined) throw new Error('fixture')
  t.equal(serializationsDuring(() => store.others(asker)), 5, 'built: every member serialized once')
  flush(store, 0)
  t.equal(serializationsDuring(() => store.others(asker)), 0, 'used in the tick before: kept')
  flush(store, 50)
  flush(store, 100)
  t.equal(serializationsDuring(() => store.others(asker)), 0, 'a tick without use: still kept')
  flush(store, 150)
  flush(store, 150 + LISTING_KEPT_UNUSED_MS)
  t.equal(serializationsDuring(() => store.others(asker)), 5, `unused for ${LISTING_KEPT_UNUSED_MS} ms: let go of, built again when needed`)
})
