/** RoomMirror: the client's copy of its room, as pure data handling. */
import t from 'tap'
import { RoomMirror } from '../../src/client/mirror.js'
import type { PresenceMessageT, UserT } from '../../schemas/protocol.js'
import { wireUser } from './support.js'

const ME = 'me'

function mirrorWith (users: UserT[], room = 'lobby'): RoomMirror {
  const mirror = new RoomMirror()
  mirror.selfId = ME
  mirror.reset(room, users)
  return mirror
}

function presence (fields: Omit<PresenceMessageT, 'type' | 'room'> & { room?: string }): PresenceMessageT {
  return { type: 'presence', room: 'lobby', ...fields }
}

t.test('reset replaces everything and skips self', async (t) => {
  const mirror = mirrorWith([wireUser('a'), wireUser('b')])
  mirror.reset('garden', [wireUser(ME, { room: 'garden' }), wireUser('c', { room: 'garden' })])
  t.equal(mirror.room, 'garden')
  t.same([...mirror.users.keys()], ['c'], 'previous users gone, self skipped')
})

t.test('reset keeps copies, not the given objects', async (t) => {
  const user = wireUser('a', { state: { color: 'red' }, listeningTo: ['b'] })
  const mirror = mirrorWith([user])
  user.position.x = 99
  user.state.color = 'blue'
  user.listeningTo.push('c')
  t.same(mirror.users.get('a'), wireUser('a', { state: { color: 'red' }, listeningTo: ['b'] }))
})

t.test('presence applies left, then joined, then updated', async (t) => {
  const mirror = mirrorWith([wireUser('a'), wireUser('b')])
  // a leaves and comes back within one frame; b is updated; c joins and is updated in the same frame.
  const changes = mirror.applyPresence(presence({
    left: ['a'],
    joined: [wireUser('a', { name: 'Ann again' }), wireUser('c')],
    updated: [{ id: 'b', name: 'Bob' }, { id: 'c', connected: false }]
  }))
  t.same(changes.left.map((u) => u.id), ['a'])
  t.same(changes.joined.map((u) => u.id), ['a', 'c'])
  t.same(changes.updated.map((u) => [u.user.id, u.changes]), [['b', { id: 'b', name: 'Bob' }], ['c', { id: 'c', connected: false }]])
  t.equal(changes.gap, false)
  t.same([...mirror.users.keys()].sort(), ['a', 'b', 'c'], 'the user that left and joined again is present')
  t.equal(mirror.users.get('a')?.name, 'Ann again')
  t.equal(mirror.users.get('b')?.name, 'Bob')
  t.equal(mirror.users.get('c')?.connected, false, 'an update after a join in the same frame applies to the newcomer')
})

t.test('updated overwrites only the fields present; state replaces the whole state', async (t) => {
  const mirror = mirrorWith([wireUser('a', { name: 'Ann', state: { color: 'red', typing: true }, listeningTo: ['x'] })])
  const changes = mirror.applyPresence(presence({ updated: [{ id: 'a', state: { color: 'blue' } }] }))
  t.same(mirror.users.get('a'), wireUser('a', { name: 'Ann', state: { color: 'blue' }, listeningTo: ['x'] }))
  t.equal(changes.updated[0]?.user, mirror.users.get('a'), 'the event carries the mirrored user')
})

t.test('joined is an upsert', async (t) => {
  const mirror = mirrorWith([wireUser('a', { name: 'Ann', state: { color: 'red' } })])
  mirror.applyPresence(presence({ joined: [wireUser('a', { name: 'Ann', state: { color: 'green' }, position: { x: 1, y: 2, z: 3 } })] }))
  t.equal(mirror.users.size, 1)
  t.same(mirror.users.get('a'), wireUser('a', { name: 'Ann', state: { color: 'green' }, position: { x: 1, y: 2, z: 3 } }), 'replaced whole')
})

t.test('self in joined or updated is ignored', async (t) => {
  const mirror = mirrorWith([])
  const changes = mirror.applyPresence(presence({ joined: [wireUser(ME)], updated: [{ id: ME, name: 'me again' }] }))
  t.equal(mirror.users.size, 0)
  t.same(changes, { joined: [], left: [], updated: [], gap: false }, 'no change and no gap')
})

t.test('left for an unknown id is ignored without a gap', async (t) => {
  const mirror = mirrorWith([wireUser('a')])
  const changes = mirror.applyPresence(presence({ left: ['ghost'] }))
  t.same(changes, { joined: [], left: [], updated: [], gap: false })
  t.equal(mirror.users.size, 1)
})

t.test('updated for an unknown id sets gap and changes nothing', async (t) => {
  const mirror = mirrorWith([wireUser('a')])
  const changes = mirror.applyPresence(presence({ updated: [{ id: 'ghost', name: 'Boo' }, { id: 'a', name: 'Ann' }] }))
  t.equal(changes.gap, true)
  t.equal(mirror.users.has('ghost'), false, 'no half user is made up')
  t.same(changes.updated.map((u) => u.user.id), ['a'], 'known ids of the same frame still apply')
  t.equal(mirror.users.get('a')?.name, 'Ann')
})

t.test('a presence frame for another room is ignored', async (t) => {
  const mirror = mirrorWith([wireUser('a')])
  const changes = mirror.applyPresence(presence({ room: 'elsewhere', left: ['a'], joined: [wireUser('b')], updated: [{ id: 'ghost', name: 'x' }] }))
  t.same(changes, { joined: [], left: [], updated: [], gap: false })
  t.same([...mirror.users.keys()], ['a'])
})

t.test('positions move known users', async (t) => {
  const mirror = mirrorWith([wireUser('a'), wireUser('b')])
  const gap = mirror.applyPositions({ type: 'positions', t: 5, p: [['a', 1, 2, 3]] })
  t.equal(gap, false)
  t.same(mirror.users.get('a')?.position, { x: 1, y: 2, z: 3 })
  t.same(mirror.users.get('b')?.position, { x: 0, y: 0, z: 0 }, 'a user missing from the frame did not move')
})

t.test('positions for an unknown id return gap', async (t) => {
  const mirror = mirrorWith([wireUser('a')])
  const gap = mirror.applyPositions({ type: 'positions', t: 5, p: [['ghost', 1, 1, 1], ['a', 4, 5, 6]] })
  t.equal(gap, true)
  t.equal(mirror.users.has('ghost'), false)
  t.same(mirror.users.get('a')?.position, { x: 4, y: 5, z: 6 }, 'known entries of the same frame still apply')
})

t.test('positions ignore self', async (t) => {
  const mirror = mirrorWith([wireUser('a')])
  const gap = mirror.applyPositions({ type: 'positions', t: 5, p: [[ME, 7, 7, 7]] })
  t.equal(gap, false, 'own entry is not a gap')
  t.equal(mirror.users.has(ME), false)
})
