import t from 'tap'
import type { UserT } from '../../schemas/protocol.js'
import { Room } from '../../src/core/presence/room.js'
import type { LiveUser } from '../../src/core/presence/user.js'
import { attach, connectedUser, positionsOf, serializationsDuring, stateOf, textOf } from './fakes.js'

/** The room as `exceptId` is sent it in welcome and snapshot. */
const others = (room: Room, exceptId: string): UserT[] => JSON.parse(textOf(room.others(exceptId))) as UserT[]

/** A room with `count` connected members, their joins already published (as after one tick). */
function roomWith (count: number): { room: Room, users: LiveUser[] } {
  const room = new Room('r')
  const users: LiveUser[] = []
  for (let i = 0; i < count; i++) {
    const { user } = connectedUser({ name: `u${i}`, room: 'r' })
    room.add(user)
    users.push(user)
  }
  room.takePresence()
  positionsOf(room.takeMoved())
  return { room, users }
}

function rename (room: Room, user: LiveUser, name: string): void {
  user.name = name
  room.touch(user)
}

t.test('a new member is announced once in joined, whole', async (t) => {
  const room = new Room('r')
  const { user } = connectedUser({ name: 'Ann', room: 'r', position: { x: 1, y: 2, z: 3 }, state: { color: 'red' } })
  room.add(user)
  t.ok(room.hasPendingPresence)
  const diff = room.takePresence()
  t.strictSame(diff, { joined: [user.toWire()], left: [], updated: [] })
  t.equal(diff?.joined[0]?.connected, true)
  t.equal(room.takePresence(), null, 'nothing more to say')
  t.notOk(room.hasPendingPresence)
})

t.test('many moves within a tick make one positions entry with the latest value', async (t) => {
  const { room, users: [a, b] } = roomWith(2)
  if (a === undefined || b === undefined) throw new Error('fixture')
  for (let i = 1; i <= 10; i++) {
    a.position = { x: i, y: i * 2, z: i * 3 }
    room.move(a)
  }
  t.ok(room.hasPendingPositions)
  t.strictSame(positionsOf(room.takeMoved()), [[a.id, 10, 20, 30]])
  t.strictSame(positionsOf(room.takeMoved()), [], 'positions are taken once')
  t.notOk(room.hasPendingPositions)
  t.equal(room.takePresence(), null, 'moving is not a presence change')
})

t.test('each mover gets its own entry, and members who did not move get none', async (t) => {
  const { room, users: [a, b, c] } = roomWith(3)
  if (a === undefined || b === undefined || c === undefined) throw new Error('fixture')
  a.position = { x: 1, y: 1, z: 0 }
  room.move(a)
  c.position = { x: 3, y: 3, z: 3 }
  room.move(c)
  const entries = positionsOf(room.takeMoved())
  t.strictSame(entries.sort(), [[a.id, 1, 1, 0], [c.id, 3, 3, 3]].sort())
})

t.test('a member who moved and then left is not in the positions', async (t) => {
  const { room, users: [a] } = roomWith(2)
  if (a === undefined) throw new Error('fixture')
  a.position = { x: 5, y: 5, z: 5 }
  room.move(a)
  room.remove(a)
  t.strictSame(positionsOf(room.takeMoved()), [])
})

t.test('join then update within a tick: one joined entry with the latest values, no updated entry', async (t) => {
  const { room } = roomWith(1)
  const { user } = connectedUser({ name: 'first', room: 'r', state: { a: 1 } })
  room.add(user)
  rename(room, user, 'second')
  user.state = stateOf({ a: 2 })
  room.touch(user)
  user.listeningTo = ['x']
  room.touch(user)
  const diff = room.takePresence()
  t.equal(diff?.joined.length, 1)
  t.equal(diff?.joined[0]?.name, 'second')
  t.strictSame({ ...diff?.joined[0]?.state }, { a: 2 })
  t.strictSame(diff?.joined[0]?.listeningTo, ['x'])
  t.strictSame(diff?.updated, [])
  t.strictSame(diff?.left, [])
})

t.test('a change that changes nothing yields no entry', async (t) => {
  const { room, users: [a] } = roomWith(2)
  if (a === undefined) throw new Error('fixture')
  rename(room, a, a.name)
  a.state = stateOf({ ...a.state })
  room.touch(a)
  a.listeningTo = [...a.listeningTo]
  room.touch(a)
  t.equal(room.takePresence(), null)
})

t.test('same state content in a new object is no change; different content is', async (t) => {
  const { room, users: [a] } = roomWith(1)
  if (a === undefined) throw new Error('fixture')
  a.state = stateOf({ k: 1, j: 'x' })
  room.touch(a)
  room.takePresence()
  a.state = stateOf({ j: 'x', k: 1 })
  room.touch(a)
  t.equal(room.takePresence(), null)
  a.state = stateOf({ j: 'x', k: 2 })
  room.touch(a)
  t.strictSame(room.takePresence()?.updated.map((u) => ({ ...u, state: { ...u.state } })), [{ id: a.id, state: { j: 'x', k: 2 } }])
})

t.test('A → B → A name changes within a tick yield nothing', async (t) => {
  const { room, users: [a] } = roomWith(2)
  if (a === undefined) throw new Error('fixture')
  rename(room, a, 'B')
  rename(room, a, 'u0')
  t.equal(room.takePresence(), null)
})

t.test('several changes of one member within a tick make one updated entry with the latest values', async (t) => {
  const { room, users: [a] } = roomWith(2)
  if (a === undefined) throw new Error('fixture')
  rename(room, a, 'x')
  rename(room, a, 'y')
  rename(room, a, 'z')
  const diff = room.takePresence()
  t.strictSame(diff?.updated, [{ id: a.id, name: 'z' }])
})

t.test('join and leave within one tick: left names the user, joined does not', async (t) => {
  const { room } = roomWith(1)
  const { user } = connectedUser({ room: 'r' })
  room.add(user)
  room.remove(user)
  const diff = room.takePresence()
  t.strictSame(diff, { joined: [], left: [user.id], updated: [] })
  t.equal(room.takePresence(), null)
})

t.test('left then re-entered within one tick is announced in joined', async (t) => {
  const { room, users: [a] } = roomWith(2)
  if (a === undefined) throw new Error('fixture')
  room.remove(a)
  a.name = 'back'
  room.add(a)
  const diff = room.takePresence()
  t.strictSame(diff?.joined.map((u) => u.id), [a.id])
  t.equal(diff?.joined[0]?.name, 'back')
  t.strictSame(diff?.left, [])
  t.strictSame(diff?.updated, [])
})

t.test('a member that left is announced in left, and only once', async (t) => {
  const { room, users: [a, b] } = roomWith(2)
  if (a === undefined || b === undefined) throw new Error('fixture')
  room.remove(a)
  t.strictSame(room.takePresence(), { joined: [], left: [a.id], updated: [] })
  t.equal(room.takePresence(), null)
  t.strictSame(others(room, b.id), [])
})

t.test('updated entries carry only the changed fields, each with its full new value', async (t) => {
  const { room, users: [a, b, c, d] } = roomWith(4)
  if (a === undefined || b === undefined || c === undefined || d === undefined) throw new Error('fixture')
  a.state = stateOf({ color: 'red', size: 2 })
  room.touch(a)
  room.takePresence()

  rename(room, a, 'Ann')
  a.state = stateOf({ color: 'blue', size: 2 })
  room.touch(a)
  b.listeningTo = [c.id, d.id]
  room.touch(b)
  c.peer = null
  room.touch(c)
  room.touch(d)
  const diff = room.takePresence()
  const updated = diff?.updated.map((u) => u.state === undefined ? u : { ...u, state: { ...u.state } })
  t.strictSame(updated, [
    { id: a.id, name: 'Ann', state: { color: 'blue', size: 2 } },
    { id: b.id, listeningTo: [c.id, d.id] },
    { id: c.id, connected: false }
  ])
  t.strictSame(diff?.joined, [])
  t.strictSame(diff?.left, [])
})

t.test('a listening set with the same members in another order is no change', async (t) => {
  const { room, users: [a] } = roomWith(1)
  if (a === undefined) throw new Error('fixture')
  a.listeningTo = ['x', 'y']
  room.touch(a)
  room.takePresence()
  a.listeningTo = ['y', 'x']
  room.touch(a)
  t.equal(room.takePresence(), null)
})

t.test('disconnected then connected again within one tick yields nothing', async (t) => {
  const { room, users: [a] } = roomWith(2)
  if (a === undefined) throw new Error('fixture')
  const peer = a.peer
  a.peer = null
  room.touch(a)
  if (peer !== null) a.peer = peer
  room.touch(a)
  t.equal(room.takePresence(), null)
})

t.test('disconnected in one tick and connected in the next: connected false, then true', async (t) => {
  const { room, users: [a] } = roomWith(2)
  if (a === undefined) throw new Error('fixture')
  a.peer = null
  room.touch(a)
  t.strictSame(room.takePresence()?.updated, [{ id: a.id, connected: false }])
  attach(a)
  room.touch(a)
  t.strictSame(room.takePresence()?.updated, [{ id: a.id, connected: true }])
})

t.test('a newcomer that is disconnected is announced with connected false', async (t) => {
  const room = new Room('r')
  const { user } = connectedUser({ room: 'r' })
  user.peer = null
  room.add(user)
  t.equal(room.takePresence()?.joined[0]?.connected, false)
})

t.test('others is every member but the one asking, as they are now', async (t) => {
  const { room, users: [a, b, c] } = roomWith(3)
  if (a === undefined || b === undefined || c === undefined) throw new Error('fixture')
  rename(room, b, 'renamed, not yet published')
  const listed = others(room, a.id)
  t.strictSame(listed.map((u) => u.id).sort(), [b.id, c.id].sort())
  t.equal(listed.find((u) => u.id === b.id)?.name, 'renamed, not yet published')
  t.equal(others(room, 'someone-else').length, 3)
  t.strictSame(others(new Room('empty'), a.id), [])
})

t.test('others lists members in grace as connected false', async (t) => {
  const { room, users: [a, b] } = roomWith(2)
  if (a === undefined || b === undefined) throw new Error('fixture')
  b.peer = null
  t.equal(others(room, a.id)[0]?.connected, false)
})

t.test('takeMoved() is each member that moved, once, at its latest position', async (t) => {
  const { room, users: [a, b] } = roomWith(2)
  if (a === undefined || b === undefined) throw new Error('fixture')
  a.position = { x: 1, y: 2, z: 3 }
  room.move(a)
  a.position = { x: 4, y: 5, z: 6 }
  room.move(a)
  t.strictSame(positionsOf(room.takeMoved()), [[a.id, 4, 5, 6]])
  t.strictSame(room.takeMoved(), [], 'taken once')
  t.strictSame(positionsOf(room.usersInViewOf(a)).sort(), positionsOf([a, b]).sort(), 'without interest management everyone is in view')
})

t.test('isIdle: only once nobody is in the room and everything was said', async (t) => {
  const room = new Room('r')
  t.ok(room.isIdle, 'a new room is idle')
  const { user } = connectedUser({ room: 'r' })
  room.add(user)
  t.notOk(room.isIdle, 'a member')
  room.takePresence()
  t.notOk(room.isIdle, 'a published member')
  room.remove(user)
  t.notOk(room.isIdle, 'its leave is not sent yet')
  t.strictSame(room.takePresence()?.left, [user.id])
  t.ok(room.isIdle, 'empty and said')
})

t.test('others leaves out exactly the one asking, wherever it stands in the room', async (t) => {
  const { room, users } = roomWith(4)
  for (const user of users) {
    t.strictSame(others(room, user.id).map((u) => u.id), users.filter((u) => u !== user).map((u) => u.id))
  }
  const alone = roomWith(1)
  const [only] = alone.users
  if (only === undefined) throw new Error('fixture')
  t.equal(textOf(alone.room.others(only.id)), '[]')
})

t.test('the room is serialized once and shared until it changes; then only the changed member is serialized again', async (t) => {
  const { room, users } = roomWith(250)
  const [a, b] = users
  if (a === undefined || b === undefined) throw new Error('fixture')
  const shared = room.others(a.id)
  const first = textOf(shared)
  const again = room.others(b.id)
  t.equal(again[0]?.buffer, shared[0]?.buffer, 'unchanged: views of the same bytes, whoever asks')
  let renamed: string | undefined
  const serialized = serializationsDuring(() => {
    rename(room, b, 'renamed')
    renamed = others(room, a.id).find((u) => u.id === b.id)?.name
  })
  t.equal(renamed, 'renamed', 'a change is in the next list at once')
  t.equal(serialized, 1, 'in a big room only the changed member is serialized again')
  room.endTick(0)
  t.strictSame(others(room, a.id), JSON.parse(first).map((u: { id: string }) => u.id === b.id ? { ...u, name: 'renamed' } : u), 'after the tick, the same content')
})
