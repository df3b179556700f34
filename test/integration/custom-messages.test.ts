/**
 * Message types of the host's own (`app.shoal.handle`) over real sockets: checked
 * by their TypeBox schema like the protocol's, answered with `reply` or `error`
 * carrying the client's id; and the client library's `request` for them.
 */
import { createServer } from 'node:net'
import { Writable } from 'node:stream'
import t from 'tap'
import { Type } from '@sinclair/typebox'
import WebSocket from 'ws'
import { ShoalError } from '../../index.js'
import { ShoalClient, ShoalClientError } from '../../src/client/index.js'
import { harness, type LogStream } from '../helpers.js'
import { within } from '../wait.js'

const Chat = Type.Object({ text: Type.String({ minLength: 1, maxLength: 200 }), to: Type.Optional(Type.String()) })

/** Log lines of a test's server, parsed. */
function logLines (): { stream: LogStream, lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({
    write (chunk: Buffer, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>)
      done()
    }
  })
  return { stream: { write: (line) => stream.write(line) }, lines }
}

t.test('a registered type: valid, invalid, unknown, thrown, async, ids', async (t) => {
  const log = logLines()
  const { server, join, connect } = await harness(t, {}, log.stream)
  const api = server.app.shoal
  const handled: Array<{ text: string, from: string, identity: unknown }> = []
  let release: (() => void) | undefined
  api.handle('chat', Chat, (message, { user, identity }) => {
    handled.push({ text: message.text, from: user.id, identity })
    if (message.text === 'forbidden') throw new ShoalError('not_allowed', 'you may not say that')
    if (message.text === 'crash') throw new Error('database password is hunter2')
    if (message.text === 'later') return new Promise((resolve) => { release = () => resolve({ late: true }) })
    return { echoed: message.text, at: 5 }
  })
  api.handle('roll', Type.Object({}), async () => await Promise.resolve(4))

  const a = await join({ name: 'a' })
  a.client.send({ type: 'chat', id: 1, text: 'hello' })
  t.same(await a.client.next('reply'), { type: 'reply', ref: 'chat', id: 1, result: { echoed: 'hello', at: 5 } })
  t.same(handled[0], { text: 'hello', from: a.welcome.id, identity: null }, 'the handler gets the fields and the user')

  a.client.send({ type: 'roll', id: 'r-1' })
  t.same(await a.client.next('reply'), { type: 'reply', ref: 'roll', id: 'r-1', result: 4 }, 'an async handler, a string id')

  a.client.send({ type: 'chat', text: 'no id' })
  await a.client.drainType('pong')
  t.equal(handled.length, 2, 'a message without id is handled')
  t.same(await a.client.drainType('reply'), [], 'and gets no reply')

  a.client.send({ type: 'chat', id: 2, text: '' })
  const invalid = await a.client.next('error')
  t.match(invalid, { code: 'invalid_message', ref: 'chat', id: 2 }, 'a field that fails the schema')
  t.match(invalid.message, /^text: /, 'names the field')
  a.client.send({ type: 'chat', id: 3, text: 'hi', colour: 'red' })
  t.match(await a.client.next('error'), { code: 'invalid_message', ref: 'chat', id: 3, message: 'colour: unexpected field' })
  a.client.send({ type: 'chat', id: { no: 1 }, text: 'hi' })
  const badId = await a.client.next('error')
  t.match(badId, { code: 'invalid_message', message: /^id: / })
  t.equal(badId.id, undefined, 'an id that is not one is not echoed')
  a.client.send({ type: 'shout', id: 4 })
  t.match(await a.client.next('error'), { code: 'unknown_type', ref: 'shout', id: 4 }, 'an unregistered type')
  t.equal(handled.length, 2, 'no invalid message reached the handler')

  a.client.send({ type: 'chat', id: 5, text: 'forbidden' })
  t.same(await a.client.next('error'), { type: 'error', code: 'not_allowed', message: 'you may not say that', ref: 'chat', id: 5 }, 'a ShoalError')
  a.client.send({ type: 'chat', id: 6, text: 'crash' })
  const crashed = await a.client.next('error')
  t.match(crashed, { code: 'server_error', ref: 'chat', id: 6 })
  t.notMatch(crashed.message, /hunter2/, 'the details stay on the server')
  t.ok(log.lines.some((line) => line.msg === 'a handler of app.shoal.handle failed' && JSON.stringify(line.err).includes('hunter2')), 'and go to its log')

  a.client.send({ type: 'chat', id: 7, text: 'later' })
  a.client.send({ type: 'chat', id: 8, text: 'meanwhile' })
  t.same((await a.client.next('reply')).id, 8, 'a slow handler holds up no later message')
  release?.()
  t.same(await a.client.next('reply'), { type: 'reply', ref: 'chat', id: 7, result: { late: true } })

  const guest = await connect()
  guest.send({ type: 'chat', id: 9, text: 'hi' })
  t.match(await guest.next('error'), { code: 'not_registered', ref: 'chat', id: 9 }, 'host types need a user')

  const ping = Math.random()
  a.client.send({ type: 'ping', t: ping })
  t.equal((await a.client.next('pong')).t, ping, 'the connection is fine after all of it')
})

t.test('a disconnect before the reply', async (t) => {
  const log = logLines()
  const { server, join } = await harness(t, {}, log.stream)
  const answers: Array<(value: unknown) => void> = []
  let started: () => void = () => {}
  server.app.shoal.handle('slow', Type.Object({}), async () => await new Promise((resolve) => {
    answers.push(resolve)
    started()
  }))
  const a = await join()
  const b = await join()
  await within('the handler to start for a', new Promise<void>((resolve) => { started = resolve; a.client.send({ type: 'slow', id: 1 }) }))
  await within('the handler to start for b', new Promise<void>((resolve) => { started = resolve; b.client.send({ type: 'slow', id: 2 }) }))
  a.client.close()
  await a.client.whenClosed()
  answers[0]?.({ for: 'a' })
  answers[1]?.({ for: 'b' })
  t.same(await b.client.next('reply'), { type: 'reply', ref: 'slow', id: 2, result: { for: 'b' } }, 'the other client gets its reply')
  t.same(log.lines.filter((line) => (line.level as number) >= 50), [], 'the late result of a closed socket is dropped without an error')
})

t.test('registration refuses clashes and bad schemas', async (t) => {
  const { server } = await harness(t)
  const api = server.app.shoal
  api.handle('chat', Chat, () => null)
  t.throws(() => api.handle('chat', Chat, () => null), /registered already/)
  for (const type of ['register', 'update', 'data', 'reply', 'welcome', 'error']) {
    t.throws(() => api.handle(type, Chat, () => null), /message type of the protocol/, `${type} is the protocol's`)
  }
  t.throws(() => api.handle('has space', Chat, () => null), /must match/)
  t.throws(() => api.handle('plain', { type: 'object' } as unknown as typeof Chat, () => null), /TypeBox Type.Object/)
  t.throws(() => api.handle('withid', Type.Object({ id: Type.String() }), () => null), /envelope/)
})

t.test('the client library: request, push messages, auth', async (t) => {
  const { server } = await harness(t, {
    authenticate: (auth) => (auth as { token?: string } | undefined)?.token === 'good' ? { userId: 'u1', name: 'Una' } : false
  })
  const api = server.app.shoal
  api.handle('chat', Chat, (message) => ({ length: message.text.length }))
  api.handle('fail', Type.Object({}), () => { throw new ShoalError('nope', 'refused') })
  api.handle('never', Type.Object({}), async () => await new Promise(() => {}))

  type Messages = {
    chat: { request: { text: string }, result: { length: number } }
    fail: { request: Record<string, never>, result: never }
    never: { request: Record<string, never>, result: never }
    missing: { request: Record<string, never>, result: never }
  }
  let tokens = 0
  const client = new ShoalClient<Messages, { hello: string }>({
    url: server.wsUrl,
    WebSocket: WebSocket as never,
    pingIntervalMs: 0,
    auth: () => { tokens++; return { token: 'good' } }
  })
  t.teardown(() => { client.close() })
  await within('the client\'s welcome', new Promise((resolve) => client.once('welcome', resolve)))
  t.equal(client.me?.userId, 'u1', 'auth went with register')
  t.equal(client.me?.name, 'Una')
  t.equal(tokens, 1, 'the auth function was called for the attempt')

  const result = await client.request('chat', { text: 'hello' })
  t.same(result, { length: 5 })
  const failed = await client.request('fail', {}).catch((err: unknown) => err)
  t.ok(failed instanceof ShoalClientError)
  t.match(failed, { code: 'nope', message: 'refused', ref: 'fail' })
  t.match(await client.request('missing', {}).catch((err: unknown) => err), { code: 'unknown_type' })
  t.match(await client.request('never', {}, { timeoutMs: 50 }).catch((err: unknown) => err), { code: 'timeout' })

  const pushed = new Promise((resolve) => client.once('message', resolve))
  t.equal(api.sendToUser(client.id ?? '', { hello: 'there' }), true)
  t.same(await within('the pushed message', pushed), { hello: 'there' }, 'a push from the server')

  const pending = client.request('never', {})
  api.disconnect(client.id ?? '')
  t.match(await pending.catch((err: unknown) => err), { code: 'connection' }, 'a dropped connection rejects what waits')
  t.match(await client.request('chat', { text: 'x' }).catch((err: unknown) => err), { code: 'connection', message: 'not connected' })
})

t.test('the client registers with its auth again after invalid_secret', async (t) => {
  const { server } = await harness(t, {
    authenticate: (auth) => (auth as { token?: string } | undefined)?.token === 'good' ? { userId: 'u2' } : false
  })
  const stored = new Map([['shoal:secret', 'a-secret-of-a-session-long-gone']])
  const storage = { getItem: (key: string) => stored.get(key) ?? null, setItem: (key: string, value: string) => { stored.set(key, value) }, removeItem: (key: string) => { stored.delete(key) } }
  const client = new ShoalClient({ url: server.wsUrl, WebSocket: WebSocket as never, pingIntervalMs: 0, storage, auth: async () => ({ token: 'good' }) })
  t.teardown(() => { client.close() })
  const errors: string[] = []
  client.on('error', (error) => { errors.push(error.code) })
  await within('the welcome of the register after invalid_secret', new Promise((resolve) => client.once('welcome', resolve)))
  t.same(errors, ['invalid_secret'], 'the stale secret was refused')
  t.equal(client.me?.userId, 'u2', 'and the register on that socket carried the auth')
  t.not(stored.get('shoal:secret'), 'a-secret-of-a-session-long-gone', 'the new secret is kept')
})

t.test('the client stops at a refusal of its credentials', async (t) => {
  const { server } = await harness(t, { authenticate: () => false })
  const errors: string[] = []
  const client = new ShoalClient({ url: server.wsUrl, WebSocket: WebSocket as never, pingIntervalMs: 0, auth: { token: 'bad' } })
  client.on('error', (error) => { errors.push(error.code) })
  t.teardown(() => { client.close() })
  await within('the client to stop (state closed)', new Promise<void>((resolve) => client.on('state', (state) => { if (state === 'closed') resolve() })))
  t.same(errors, ['unauthorized'], 'the refusal, told once')
  t.match(await client.ready.catch((err: unknown) => err), { code: 'unauthorized', message: 'credentials refused' }, 'ready rejects with the server\'s own words')
  t.equal(client.state, 'closed', 'no retry')
})

t.test('the client reports each failed attempt: a refused upgrade stops it, a closed port does not', async (t) => {
  const { server } = await harness(t, { authorize: () => ({ statusCode: 401, message: 'log in first' }) })
  const refused = new ShoalClient({ url: server.wsUrl, WebSocket: WebSocket as never, pingIntervalMs: 0 })
  const errors: string[] = []
  refused.on('error', (error) => { errors.push(`${error.code}: ${error.message}`) })
  const rejection = await refused.ready.catch((err: unknown) => err)
  t.match(rejection, { code: 'unauthorized' }, 'ready rejects with the refusal')
  t.same(errors, ['unauthorized: the server refused the connection (HTTP 401)'], 'one error, from the one attempt')
  t.equal(refused.state, 'closed', 'and no retry')

  // A port nobody listens on: every attempt fails and is reported, and the client keeps trying.
  const closedPort = await new Promise<number>((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const address = probe.address()
      probe.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0))
    })
  })
  const urls: string[] = []
  const retrying = new ShoalClient({
    url: () => { urls.push('asked'); return `ws://127.0.0.1:${closedPort}/ws` },
    WebSocket: WebSocket as never,
    pingIntervalMs: 0,
    backoff: { initialMs: 5, maxMs: 20 }
  })
  t.teardown(() => { retrying.close() })
  const failures: string[] = []
  await within('three failed attempts reported', new Promise<void>((resolve) => {
    retrying.on('error', (error) => {
      failures.push(error.message)
      if (failures.length === 3) resolve()
    })
  }))
  t.match(failures, [/^connection failed: .*ECONNREFUSED/, /ECONNREFUSED/, /ECONNREFUSED/], 'each attempt, with its reason')
  t.equal(retrying.state, 'reconnecting', 'still trying')
  t.ok(urls.length >= 3, 'the url function is asked before each attempt')
  retrying.close()
  t.match(await retrying.ready.catch((err: unknown) => err), { code: 'connection' }, 'ready rejects once the app gives up')
})
