import t from 'tap'
import { joinedClient, startServer } from '../helpers.js'

t.test('two users see each other join, move and leave', async (t) => {
  const server = await startServer()
  t.teardown(server.close)
  const a = await joinedClient(server, { name: 'Ann', room: 'r1' })
  const b = await joinedClient(server, { name: 'Bob', room: 'r1' })
  t.same(b.welcome.users.map((u) => u.name), ['Ann'])
  const joined = await a.client.next('presence', (m) => (m.joined ?? []).some((u) => u.id === b.welcome.id))
  t.equal(joined.room, 'r1')
  b.client.send({ type: 'update', position: { x: 3, y: 4 } })
  const positions = await a.client.next('positions', (m) => m.p.some(([id]) => id === b.welcome.id))
  t.same(positions.p.find(([id]) => id === b.welcome.id), [b.welcome.id, 3, 4, 0])
  b.client.send({ type: 'leave' })
  t.equal((await b.client.whenClosed()).code, 1000)
  await a.client.next('presence', (m) => (m.left ?? []).includes(b.welcome.id))
  a.client.close()
})
