/**
 * app.shoal.on without Fastify: each thing a client does reaches the host as one
 * event with the user as the room sees it; listeners that throw or reject are
 * logged and change nothing for anyone.
 */
import t from 'tap'
import { createApi } from '../../src/core/api.js'
import type { ShoalEventName, ShoalEvents } from '../../src/core/host-events.js'
import { HostEvents } from '../../src/core/host-events.js'
import { UserStore } from '../../src/core/presence/user-store.js'
import { settle, setup } from './engine-harness.js'
import { connectedUser, makeUser } from './fakes.js'

const NAMES: ShoalEventName[] = ['join', 'leave', 'update', 'listening', 'data', 'connect', 'disconnect']

/** Every event the host hears, in order, as [name, user name, detail]. */
function record (api: ReturnType<typeof createApi>): Array<[ShoalEventName, string, unknown]> {
  const heard: Array<[ShoalEventName, string, unknown]> = []
  for (const name of NAMES) {
    api.on(name, (event: ShoalEvents[typeof name]) => {
      const detail = 'room' in event ? event.room : 'payload' in event ? event.payload : name === 'update' ? event.user.state : name === 'listening' ? event.user.listeningTo.length : null
      heard.push([name, event.user.name, detail])
    })
  }
  return heard
}

t.test('each thing a client does is one event, with the user as the room sees it', async (t) => {
  const s = setup()
  const api = createApi(s.engine)
  const heard = record(api)
  const ann = s.registered('Ann')
  const bob = s.registered('Bob')
  ann.send({ type: 'update', state: { mood: 'ok' } })
  ann.send({ type: 'update', position: { x: 1, y: 2, z: 3 } })
  ann.send({ type: 'updatelisteningto', listeningTo: [bob.id] })
  bob.send({ type: 'data', payload: { hello: [1, 2] } })
  s.engine.closed(bob.connection)
  const tab = s.connect()
  tab.send({ type: 'reconnect', secret: bob.welcome.secret })
  await settle()
  ann.send({ type: 'join', room: 'r2' })
  ann.send({ type: 'leave' })
  t.strictSame(heard, [
    ['join', 'Ann', 'r1'], ['connect', 'Ann', null],
    ['join', 'Bob', 'r1'], ['connect', 'Bob', null],
    ['update', 'Ann', { mood: 'ok' }],
    ['listening', 'Ann', 1],
    ['data', 'Bob', { hello: [1, 2] }],
    ['disconnect', 'Bob', null],
    ['connect', 'Bob', null],
    ['leave', 'Ann', 'r1'], ['join', 'Ann', 'r2'],
    ['disconnect', 'Ann', null], ['leave', 'Ann', 'r2']
  ], 'a move is no event; a resume is a connect; a connected user that leaves disconnects first')
})

t.test('a listener that throws or rejects is logged; the engine and the other listeners go on', async (t) => {
  const errors: Array<{ fields: object, message: string }> = []
  const s = setup({ log: { debug () {}, warn () {}, error (fields, message) { errors.push({ fields, message }) } } })
  const api = createApi(s.engine)
  api.on('join', () => { throw new Error('host bug') })
  api.on('join', async () => { throw new Error('host bug, later') })
  // A thenable that is not a native promise (another realm, a library's own).
  api.on('join', () => ({ then: (_resolve: () => void, reject: (err: Error) => void) => { reject(new Error('host bug, thenable')) } }) as unknown as Promise<void>)
  const joined: string[] = []
  api.on('join', ({ user }) => { joined.push(user.name) })
  const ann = s.registered('Ann')
  await settle()
  t.match(ann.welcome, { you: { name: 'Ann' } }, 'the client got its welcome')
  t.strictSame(joined, ['Ann'])
  t.match(errors, [
    { fields: { event: 'join', err: { message: 'host bug' } }, message: 'an app.shoal.on listener failed' },
    { fields: { event: 'join', err: { message: 'host bug, later' } } },
    { fields: { event: 'join', err: { message: 'host bug, thenable' } } }
  ])
})

t.test('off stops a listener', async (t) => {
  const s = setup()
  const api = createApi(s.engine)
  const heard: string[] = []
  const listener = ({ user }: ShoalEvents['join']): void => { heard.push(user.name) }
  api.on('join', listener)
  s.registered('Ann')
  api.off('join', listener)
  s.registered('Bob')
  t.strictSame(heard, ['Ann'])
})

t.test('users of other nodes are theirs to tell; a user taken over here connects here, one handed over disconnects', async (t) => {
  const users = new UserStore()
  const events = new HostEvents(users, { debug () {}, warn () {}, error () {} })
  const heard: string[] = []
  for (const name of NAMES) events.on(name, ({ user }) => { heard.push(`${name} ${user.name}`) })
  const replica = makeUser({ name: 'Remote' })
  replica.owner = 'node-b'
  users.add(replica)
  users.setProfile(replica, 'Remote 2', replica.state)
  users.sendData(replica, '1')
  t.strictSame(heard, [], 'a replica\'s join, update and data: not told here')

  const { peer } = connectedUser()
  users.adopt(replica, 'hash-taken')
  users.attach(replica, peer)
  const { user: ann, peer: annPeer } = connectedUser({ name: 'Ann' })
  users.add(ann, annPeer)
  users.release(ann, 'node-b')
  t.strictSame(heard, ['connect Remote 2', 'join Ann', 'connect Ann', 'disconnect Ann'])
})
