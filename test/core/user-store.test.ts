import t from 'tap'
import type { Room } from '../../src/core/presence/room.js'
import { UserStore } from '../../src/core/presence/user-store.js'
import type { LiveUser } from '../../src/core/presence/user.js'
import { connectedUser, makeUser, positionsOf, stateOf } from './fakes.js'

/** One tick: every changed room's presence and positions, by room name. */
function flush (store: UserStore): Map<string, { room: Room, presence: ReturnType<Room['takePresence']>, positions: Array<[string, number, number, number]> }> {
  const out = new Map<string, { room: Room, presence: ReturnType<Room['takePresence']>, positions: Array<[string, number, number, number]> }>()
  for (const room of store.takeChangedRooms()) {
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
  for (const room of store.takeChangedRooms()) t.equal(room.name, 'r1')
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

t.test('othersInRoom is the room without the user', async (t) => {
  const store = new UserStore()
  const a = added(store, { room: 'r1' })
  const b = added(store, { room: 'r1' })
  added(store, { room: 'r2' })
  t.strictSame(store.othersInRoom(a).map((u) => u.id), [b.id])
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
