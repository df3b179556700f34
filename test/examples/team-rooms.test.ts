/**
 * The team-rooms example as its users meet it, over real sockets: log in, get a
 * cookie, connect as that person; the team rooms, the viewer role and the
 * `chat` message; the same client library the page uses.
 */
import t from 'tap'
import WebSocket from 'ws'
import { buildApp, type ChatLine, type TeamMessages } from '../../examples/team-rooms/app.js'
import { ShoalClient } from '../../src/client/index.js'
import { request, statusOf } from '../http.js'
import { within } from '../wait.js'

/** The subtest type (the last overload of t.test takes only the callback). */
type Test = Parameters<Parameters<typeof t.test>[0]>[0]

async function start (t: Test) {
  // As testApp() does: close() ends the keep-alive connections too.
  const app = await buildApp({ forceCloseConnections: true })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('no port')
  const base = `127.0.0.1:${address.port}`
  /** Logs in and returns a connected client library of that person (its cookie on the upgrade). */
  const person = async (name: string, team: 'red' | 'blue', role: 'player' | 'viewer' = 'player') => {
    const res = await request(`http://${base}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name, team, role }) })
    t.equal(res.status, 200, `${name} logs in`)
    const cookie = (res.headers.get('set-cookie') ?? '').split(';')[0] ?? ''
    const WithCookie = class extends WebSocket { constructor (url: string) { super(url, { headers: { cookie } }) } }
    const client = new ShoalClient<TeamMessages, ChatLine>({ url: `ws://${base}/rt/ws`, WebSocket: WithCookie as never, pingIntervalMs: 0, register: { room: 'hall', name: 'ignored' } })
    t.teardown(() => { client.close() })
    await within(`${name}'s welcome`, new Promise((resolve) => client.once('welcome', resolve)))
    return { client, cookie }
  }
  return { app, base, person }
}

t.test('log in, meet the hall, keep to your team, chat', async (t) => {
  const { base, person } = await start(t)
  t.match((await request(`http://${base}/`)).body, /Team rooms/, 'the page')
  t.equal(await statusOf(`http://${base}/lib/shoal-client.js`), 200, 'and the client library it imports')
  t.equal(await statusOf(`http://${base}/me`), 401, 'nobody is logged in without the cookie')

  const ann = await person('Ann', 'red')
  t.equal(ann.client.me?.name, 'Ann', 'the name is the account\'s')
  t.match(ann.client.me, { info: { team: 'red', role: 'player' }, userId: /^user-/ })
  const bob = await person('Bob', 'blue')
  t.match(bob.client.users.get(ann.client.id ?? ''), { name: 'Ann', info: { team: 'red' } }, 'others see the team')

  const errors: string[] = []
  bob.client.on('error', (error) => errors.push(`${error.code} ${error.ref ?? ''}`))
  bob.client.join('team-red')
  await within('Bob\'s error for joining team-red', new Promise<void>((resolve) => { bob.client.once('error', () => resolve()) }))
  t.same(errors, ['forbidden join'], 'another team\'s room is closed')
  t.equal(bob.client.room, 'hall')

  const heard = new Promise<ChatLine>((resolve) => bob.client.once('message', resolve))
  const { at } = await ann.client.request('chat', { text: 'hello hall' })
  t.type(at, 'number')
  t.match(await within('Ann\'s chat line on Bob\'s client', heard), { kind: 'chat', from: 'Ann', team: 'red', text: 'hello hall' }, 'the room hears it')
  t.match(await ann.client.request('chat', { text: 'again' }).catch((err: unknown) => err), { code: 'too_fast' }, 'one line per 500 ms')
  t.match(await ann.client.request('chat', { text: '' }).catch((err: unknown) => err), { code: 'invalid_message', message: /^text: / })

  ann.client.join('team-red')
  await within('Ann\'s snapshot of team-red', new Promise((resolve) => ann.client.once('snapshot', resolve)))
  t.equal(ann.client.room, 'team-red', 'one\'s own team\'s room is open')
})

t.test('a viewer watches only; nobody connects without logging in', async (t) => {
  const { base, person } = await start(t)
  const viewer = await person('Vic', 'blue', 'viewer')
  const refused = new Promise<string>((resolve) => viewer.client.once('error', (error) => resolve(error.code)))
  viewer.client.setState({ waving: true })
  t.equal(await within('Vic\'s error for setState', refused), 'forbidden')
  t.match(await viewer.client.request('chat', { text: 'hi' }).catch((err: unknown) => err), { code: 'forbidden', message: 'viewers watch only' }, 'nor chat: the app\'s handler says so')

  const anonymous = new WebSocket(`ws://${base}/rt/ws`)
  anonymous.on('error', () => {})
  const status = await within('the answer to an upgrade without the cookie', new Promise<number>((resolve) => {
    anonymous.once('unexpected-response', (_req, res) => { res.resume(); resolve(res.statusCode ?? 0) })
    anonymous.once('open', () => { anonymous.close(); resolve(101) })
  }))
  t.equal(status, 401)
})
