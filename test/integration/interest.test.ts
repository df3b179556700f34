/**
 * Interest management over real sockets: with an interest radius, a client's
 * `positions` carry only the users within it (plus those it listens to); presence
 * stays room-wide.
 */
import t from 'tap'
import type { PositionsMessageT, UserT } from '../../schemas/protocol.js'
import { harness, type Joined } from '../helpers.js'
import type { TapTest } from '../core/fakes.js'
import type { ShoalOptions } from '../../index.js'

type Entry = PositionsMessageT['p'][number]

const hasJoined = (id: string) => (m: { joined?: UserT[] }) => (m.joined ?? []).some((u) => u.id === id)

/** The harness, with a `settle` that also forgets positions frames. */
async function interestHarness (t: TapTest, options: ShoalOptions) {
  const h = await harness(t, options)
  const { tick } = h
  /** Lets what the clients sent take effect and be broadcast, then forgets their positions and presence frames. */
  const settle = async (...joined: Joined[]): Promise<void> => {
    for (const { client } of joined) await client.drainType('pong')
    await tick()
    for (const { client } of joined) {
      await client.drainType('presence')
      await client.drainType('positions')
    }
  }
  return { ...h, tick, settle }
}

/** Every positions entry a client got since the last drain, after a whole tick. */
async function entries (...joined: Joined[]): Promise<Entry[][]> {
  const all: Entry[][] = []
  for (const { client } of joined) all.push((await client.drainType('positions')).flatMap((m) => m.p))
  return all
}

const sortEntries = (list: Entry[]): Entry[] => list.slice().sort((a, b) => a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)

t.test('with interestRadius 100, a mover\'s positions reach only the clients within 100 of it', async (t) => {
  const { join, tick, settle } = await interestHarness(t, { interestRadius: 100 })
  const a = await join({ name: 'a', room: 'r', position: { x: 0, y: 0 } })
  const b = await join({ name: 'b', room: 'r', position: { x: 50, y: 0 } })
  const above = await join({ name: 'above', room: 'r', position: { x: 0, y: 0, z: 150 } })
  const far = await join({ name: 'far', room: 'r', position: { x: 500, y: 0 } })
  const edge = await join({ name: 'edge', room: 'r', position: { x: 0, y: -100 } })
  await settle(a, b, above, far, edge)

  b.client.send({ type: 'update', position: { x: 60, y: 0, z: 5 } })
  await b.client.drainType('pong')
  await tick()
  const [toA, toAbove, toFar, toEdge] = await entries(a, above, far, edge)
  t.same(toA, [[b.welcome.id, 60, 0, 5]], 'a, 60 away, gets b\'s move')
  t.same(toEdge, [], 'edge, 116.7 away (and never in view), does not')
  t.same(toAbove, [], 'above, 150 up (3D distance), does not')
  t.same(toFar, [], 'far, 440 away, does not')

  far.client.send({ type: 'update', position: { x: 490, y: 0 } })
  await far.client.drainType('pong')
  await tick()
  const [a2, b2, above2, edge2] = await entries(a, b, above, edge)
  t.same([a2, b2, above2, edge2], [[], [], [], []], 'a far mover reaches nobody')

  edge.client.send({ type: 'update', position: { x: 0, y: -100 } })
  await edge.client.drainType('pong')
  await tick()
  const [a3, b3] = await entries(a, b)
  t.same(a3, [[edge.welcome.id, 0, -100, 0]], 'exactly 100 away is within the radius')
  t.same(b3, [], 'b, 116.7 away, does not get edge')
})

t.test('a far client that listens to a mover receives it', async (t) => {
  const { join, tick, settle } = await interestHarness(t, { interestRadius: 100 })
  const a = await join({ name: 'a', room: 'r', position: { x: 0, y: 0 } })
  const far = await join({ name: 'far', room: 'r', position: { x: 2000, y: -2000, z: 3 } })
  const outsider = await join({ name: 'outsider', room: 'other', position: { x: 0, y: 0 } })
  await settle(a, far, outsider)

  a.client.send({ type: 'updatelisteningto', listeningTo: [far.welcome.id, outsider.welcome.id] })
  await a.client.drainType('pong')
  await tick()
  const [listening] = await entries(a)
  t.same(listening, [[far.welcome.id, 2000, -2000, 3]], 'after the listening change, far\'s current position arrives without a move')

  far.client.send({ type: 'update', position: { x: 3000, y: 0 } })
  outsider.client.send({ type: 'update', position: { x: 1, y: 1 } })
  await far.client.drainType('pong')
  await outsider.client.drainType('pong')
  await tick()
  const [moved, farGot] = await entries(a, far)
  t.same(moved, [[far.welcome.id, 3000, 0, 0]], 'far\'s moves reach a; a listened user in another room does not')
  t.same(farGot, [], 'far does not get a, which it does not listen to')

  a.client.send({ type: 'updatelisteningto', listeningTo: [] })
  await a.client.drainType('pong')
  await tick()
  await a.client.drainType('positions')
  far.client.send({ type: 'update', position: { x: 3001, y: 0 } })
  await far.client.drainType('pong')
  await tick()
  t.same((await entries(a))[0], [], 'no longer listened to: not sent')
})

t.test('a client that moves into range receives the positions of those now near it', async (t) => {
  const { join, tick, settle } = await interestHarness(t, { interestRadius: 100 })
  const a = await join({ name: 'a', room: 'r', position: { x: 1000, y: 1000 } })
  const b = await join({ name: 'b', room: 'r', position: { x: 1040, y: 1000, z: -20 } })
  const c = await join({ name: 'c', room: 'r', position: { x: 1300, y: 1000 } })
  const walker = await join({ name: 'walker', room: 'r', position: { x: 0, y: 0 } })
  await settle(a, b, c, walker)

  walker.client.send({ type: 'update', position: { x: 1010, y: 1010 } })
  await walker.client.drainType('pong')
  await tick()
  const [got, toA, toB, toC] = await entries(walker, a, b, c)
  t.same(sortEntries(got ?? []), sortEntries([[a.welcome.id, 1000, 1000, 0], [b.welcome.id, 1040, 1000, -20]]),
    'the walker gets a and b, which did not move, at their positions; not c')
  t.same(toA, [[walker.welcome.id, 1010, 1010, 0]], 'a gets the walker')
  t.same(toB, [[walker.welcome.id, 1010, 1010, 0]], 'b gets the walker')
  t.same(toC, [], 'c, 290 away, does not')

  await tick()
  t.same((await entries(walker))[0], [], 'nothing again while nobody moves')
})

t.test('a new client gets the positions of everyone in range; the others get it', async (t) => {
  const { join, tick, settle } = await interestHarness(t, { interestRadius: 100 })
  const a = await join({ name: 'a', room: 'r', position: { x: 0, y: 0 } })
  const far = await join({ name: 'far', room: 'r', position: { x: 0, y: 900 } })
  await settle(a, far)
  const n = await join({ name: 'n', room: 'r', position: { x: 30, y: 40 } })
  t.same(n.welcome.users.map((u) => u.name).sort(), ['a', 'far'], 'welcome lists the whole room')
  await tick()
  const [toN, toA, toFar] = await entries(n, a, far)
  t.same(toN, [[a.welcome.id, 0, 0, 0]], 'n gets a, in range')
  t.same(toA, [[n.welcome.id, 30, 40, 0]], 'a gets n')
  t.same(toFar, [], 'far gets no position of n')
})

t.test('presence (joined, updated, left) is still room-wide', async (t) => {
  const { join, tick, settle } = await interestHarness(t, { interestRadius: 100 })
  const a = await join({ name: 'a', room: 'r', position: { x: 0, y: 0 } })
  const b = await join({ name: 'b', room: 'r', position: { x: 10, y: 0 } })
  await settle(a, b)

  const far = await join({ name: 'far', room: 'r', position: { x: 1e8, y: -1e8, z: 1e8 } })
  t.same(far.welcome.users.map((u) => u.name).sort(), ['a', 'b'], 'the far newcomer\'s welcome lists everyone')
  for (const m of [a, b]) {
    const joined = await m.client.next('presence', hasJoined(far.welcome.id))
    t.same(joined.joined, [far.welcome.you], `${m.welcome.you.name} sees far join`)
  }

  far.client.send({ type: 'update', name: 'Far Away', state: { mood: 'lonely' } })
  for (const m of [a, b]) {
    const frame = await m.client.next('presence', (p) => (p.updated ?? []).some((u) => u.id === far.welcome.id))
    t.same(frame.updated, [{ id: far.welcome.id, name: 'Far Away', state: { mood: 'lonely' } }], `${m.welcome.id === a.welcome.id ? 'a' : 'b'} sees far's update`)
  }
  a.client.send({ type: 'update', name: 'A' })
  const seenByFar = await far.client.next('presence', (p) => (p.updated ?? []).some((u) => u.id === a.welcome.id))
  t.same(seenByFar.updated, [{ id: a.welcome.id, name: 'A' }], 'far sees a\'s update')

  far.client.send({ type: 'leave' })
  await far.client.whenClosed()
  for (const m of [a, b]) {
    const frame = await m.client.next('presence', (p) => (p.left ?? []).includes(far.welcome.id))
    t.same(frame.left, [far.welcome.id], 'far\'s leave reaches everyone')
  }
  await tick()
  t.same((await entries(a, b)).flat(), [], 'and no positions came with any of it')
})

t.test('roomOptions: only the rooms it gives a radius filter positions', async (t) => {
  const { join, tick, settle } = await harness(t, { roomOptions: (room) => room === 'hall' ? { interestRadius: 100 } : {} })
  const hallA = await join({ name: 'hall a', room: 'hall', position: { x: 0, y: 0 } })
  const hallFar = await join({ name: 'hall far', room: 'hall', position: { x: 500, y: 0 } })
  const lobbyA = await join({ name: 'lobby a', room: 'lobby', position: { x: 0, y: 0 } })
  const lobbyFar = await join({ name: 'lobby far', room: 'lobby', position: { x: 500, y: 0 } })
  await settle(hallA, hallFar, lobbyA, lobbyFar)
  for (const m of [hallA, hallFar, lobbyA, lobbyFar]) await m.client.drainType('positions')

  hallA.client.send({ type: 'update', position: { x: 1, y: 0 } })
  lobbyA.client.send({ type: 'update', position: { x: 1, y: 0 } })
  await hallA.client.drainType('pong')
  await lobbyA.client.drainType('pong')
  await tick()
  const [toHallFar, toLobbyFar] = await entries(hallFar, lobbyFar)
  t.same(toHallFar, [], 'in the hall, a client 499 away gets no position')
  t.same(toLobbyFar, [[lobbyA.welcome.id, 1, 0, 0]], 'in the lobby (no radius), everyone gets every mover')

  const hallNear = await join({ name: 'hall near', room: 'hall', position: { x: 400, y: 0 } })
  await settle(hallA, hallFar, hallNear)
  await hallNear.client.drainType('positions')
  hallFar.client.send({ type: 'update', position: { x: 450, y: 0 } })
  await hallFar.client.drainType('pong')
  await tick()
  const [hallAGot, hallNearGot] = await entries(hallA, hallNear)
  t.same(hallAGot, [], 'hall a, 449 away, does not get hall far')
  t.same(hallNearGot, [[hallFar.welcome.id, 450, 0, 0]], 'hall near, 50 away, does')
})

t.test('roomOptions can turn interest management off for a room when the setting is on', async (t) => {
  const { join, tick, settle } = await interestHarness(t, {
    interestRadius: 100,
    roomOptions: (room) => room === 'open' ? { interestRadius: 0 } : {}
  })
  const a = await join({ name: 'a', room: 'open', position: { x: 0, y: 0 } })
  const far = await join({ name: 'far', room: 'open', position: { x: 5000, y: 0 } })
  const c = await join({ name: 'c', room: 'r', position: { x: 0, y: 0 } })
  const cFar = await join({ name: 'c far', room: 'r', position: { x: 5000, y: 0 } })
  await settle(a, far, c, cFar)
  a.client.send({ type: 'update', position: { x: 1, y: 0 } })
  c.client.send({ type: 'update', position: { x: 1, y: 0 } })
  await a.client.drainType('pong')
  await c.client.drainType('pong')
  await tick()
  const [toFar, toCFar] = await entries(far, cFar)
  t.same(toFar, [[a.welcome.id, 1, 0, 0]], 'the open room sends every mover to everyone')
  t.same(toCFar, [], 'the other rooms keep the setting\'s radius')
})
