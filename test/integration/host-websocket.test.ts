/**
 * A host app with WebSocket routes of its own (@fastify/websocket) beside
 * Shoal: whichever registers first, each side keeps its own limits and socket
 * options, neither crashes the other, and shutting down needs no advice.
 */
import { Writable } from 'node:stream'
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import websocket from '@fastify/websocket'
import WebSocket from 'ws'
import shoal, { type ShoalOptions } from '../../index.js'
import { SharedFrameSocket } from '../../src/adapters/shared-frame-socket.js'
import { FAST, joinedClient, listen, TestClient, testApp, view } from '../helpers.js'
import { requestJson } from '../http.js'
import { within } from '../wait.js'

/** Host sockets allow 64 KiB, Shoal's 4 KiB: each limit must hold on its own side only. */
const HOST_MAX_PAYLOAD = 65_536
const SHOAL_MAX_PAYLOAD = 4_096

type Layout = 'host first' | 'Shoal first' | 'host in a scope of its own'

/** What the host's own socket route reports of each socket it gets. */
interface HostSocketReport { shared: boolean, tracked: number }

/** Registers the host's @fastify/websocket with a route that answers each message with its length. */
async function registerHostSockets (scope: FastifyInstance): Promise<void> {
  await scope.register(websocket, { options: { maxPayload: HOST_MAX_PAYLOAD } })
  scope.get('/host-socket', { websocket: true }, (socket) => {
    const report: HostSocketReport = { shared: socket instanceof SharedFrameSocket, tracked: scope.websocketServer.clients.size }
    socket.send(JSON.stringify(report))
    socket.on('message', (data: Buffer) => socket.send(String(data.length)))
  })
}

async function hostApp (layout: Layout, shoalOptions: ShoalOptions = {}, logLines?: string[]): Promise<{ app: FastifyInstance, base: string }> {
  const stream = new Writable({ write (chunk, _encoding, done) { logLines?.push(String(chunk)); done() } })
  const app = testApp({ logger: { level: 'warn', stream } })
  const options = { ...FAST, maxPayload: SHOAL_MAX_PAYLOAD, prefix: '/rt', ...shoalOptions }
  if (layout === 'host first') await registerHostSockets(app)
  await app.register(shoal, options)
  if (layout === 'Shoal first') await registerHostSockets(app)
  if (layout === 'host in a scope of its own') await app.register(registerHostSockets)
  return { app, base: await listen(app) }
}

/** A connection to the host's route, with its first message (the report) and a way to ask for a message's length. */
async function hostSocket (base: string): Promise<{ report: HostSocketReport, lengthOf: (size: number) => Promise<string>, socket: WebSocket }> {
  const socket = new WebSocket(`${base.replace(/^http/, 'ws')}/host-socket`)
  const messages: string[] = []
  const waiting: Array<(message: string) => void> = []
  socket.on('message', (data) => {
    const next = waiting.shift()
    if (next === undefined) messages.push(String(data))
    else next(String(data))
  })
  const nextMessage = async (): Promise<string> => messages.shift() ?? await new Promise((resolve) => waiting.push(resolve))
  await within('the host\'s socket to open', new Promise((resolve, reject) => { socket.once('open', resolve); socket.once('error', reject) }))
  const report = JSON.parse(await within('the report on the host\'s socket', nextMessage())) as HostSocketReport
  return {
    report,
    socket,
    lengthOf: async (size) => {
      socket.send('x'.repeat(size))
      return await within('an answer or a close on the host\'s socket', Promise.race([nextMessage(), new Promise<string>((resolve) => socket.once('close', (code) => resolve(`closed ${code}`)))]))
    }
  }
}

for (const layout of ['host first', 'Shoal first', 'host in a scope of its own'] as const) {
  t.test(`${layout}: each side keeps its own limits and socket options`, async (t) => {
    const logLines: string[] = []
    const { app, base } = await hostApp(layout, {}, logLines)
    t.teardown(() => app.close())
    const shoalView = view(app, base, '/rt')

    const host = await hostSocket(base)
    t.equal(host.report.shared, false, 'the host\'s sockets are ws\'s own class, as the host asked')
    t.equal(host.report.tracked, 1, 'the host\'s ws server tracks its own clients')
    t.equal(await host.lengthOf(32_768), '32768', 'Shoal\'s 4 KiB limit does not reach the host\'s route')

    const ann = await joinedClient(shoalView, { name: 'Ann', room: 'r' })
    const bob = await joinedClient(shoalView, { name: 'Bob', room: 'r' })
    await ann.client.next('presence', (message) => message.joined?.some((user) => user.name === 'Bob') === true)
    const second = await hostSocket(base)
    t.equal(second.report.tracked, 2, 'Shoal\'s two sockets are not among the host\'s clients')
    second.socket.close()

    // Shoal's sockets frame a room's bytes once for all of them, whatever the host's options.
    const shared: Uint8Array[] = []
    const sendShared = SharedFrameSocket.prototype.sendShared
    SharedFrameSocket.prototype.sendShared = function (bytes: Uint8Array, binary: boolean) { shared.push(bytes); sendShared.call(this, bytes, binary) }
    t.teardown(() => { SharedFrameSocket.prototype.sendShared = sendShared })
    bob.client.send({ type: 'update', position: { x: 3, y: 4, z: 0 } })
    await ann.client.next('positions', (message) => message.p.some(([id]) => id === bob.welcome.you.id))
    t.ok(shared.length >= 1, 'the room\'s positions went out as a shared frame')

    ann.client.send({ type: 'updatelisteningto', listeningTo: [bob.welcome.you.id] })
    await ann.client.drainType('pong')
    bob.client.send({ type: 'data', payload: 'y'.repeat(2_000) })
    t.match(await ann.client.next('data'), { from: bob.welcome.you.id }, 'a message within Shoal\'s limit is served')
    bob.client.send({ type: 'data', payload: 'y'.repeat(SHOAL_MAX_PAYLOAD) })
    t.equal((await bob.client.whenClosed()).code, 1009, 'the host\'s 64 KiB limit does not reach Shoal\'s endpoint')

    ann.client.close()
    t.same(logLines, [], 'nothing logged at warn or above')
    t.equal(await host.lengthOf(HOST_MAX_PAYLOAD + 1), 'closed 1009', 'the host\'s own limit holds on its route')
  })
}

t.test('app.close() with host sockets and Shoal clients open: Shoal\'s get 1012, the host\'s are closed by its own plugin, close resolves', { timeout: 30_000 }, async (t) => {
  // A drain that waited on the host's sockets would take this long, past the test's timeout.
  const { app, base } = await hostApp('host first', { drainTimeoutMs: 120_000 })
  const host = await hostSocket(base)
  const hostClosed = new Promise<number>((resolve) => host.socket.once('close', resolve))
  const { client } = await joinedClient(view(app, base, '/rt'))
  await app.close()
  t.equal((await client.whenClosed()).code, 1012, 'Shoal\'s client is told the server restarts')
  t.equal(await within('the host\'s socket to close', hostClosed), 1005, 'the host\'s socket was closed by @fastify/websocket\'s own preClose')
})

t.test('without a WebSocket plugin of the host\'s, an upgrade to another path is answered as the HTTP request it is', async (t) => {
  const app = testApp()
  app.get('/plain', async () => ({ plain: true }))
  await app.register(shoal, { ...FAST })
  const base = await listen(app)
  t.teardown(() => app.close())
  const ws = base.replace(/^http/, 'ws')
  await t.rejects(TestClient.connect(`${ws}/plain`), { message: 'HTTP 200' }, 'the host\'s route answers it')
  await t.rejects(TestClient.connect(`${ws}/nowhere`), { message: 'HTTP 404' })
  const { client } = await joinedClient(view(app, base, ''))
  client.close()
})

t.test('GET of the endpoint without an upgrade: 426 Upgrade Required', async (t) => {
  const { app, base } = await hostApp('host first')
  t.teardown(() => app.close())
  const res = await requestJson(`${base}/rt/ws`)
  t.equal(res.status, 426)
  t.equal(res.headers.get('upgrade'), 'websocket')
  t.match(res.json, { error: /WebSocket/ })
})

t.test('the endpoint path is a plain path: route parameters or wildcards are refused at register', async (t) => {
  for (const path of ['/ws/:room', '/ws/*', '/ws?x=1']) {
    const app = testApp()
    await t.rejects(async () => { await app.register(shoal, { path }); await app.ready() }, { message: /path/ }, path)
    await app.close()
  }
})
