/**
 * The host's hooks and message types in the engine, on a manual clock and fake
 * sockets: what happens when a hook is slow, fails, or answers after the socket
 * or the room changed; and the checks on what the host hands in.
 */
import t from 'tap'
import { Type } from '@sinclair/typebox'
import { createApi } from '../../src/core/api.js'
import { MAX_PENDING_REQUESTS, type EngineLog } from '../../src/core/engine.js'
import { checkedIdentity, infoProblem, ShoalError } from '../../src/core/identity.js'
import { CustomMessages } from '../../src/core/custom-messages.js'
import { until } from '../wait.js'
import { errorOf, settle, setup } from './engine-harness.js'

/** A log that keeps what it was told. */
function recordingLog (): EngineLog & { errors: string[] } {
  const errors: string[] = []
  return { errors, debug () {}, warn () {}, error (_fields, message) { errors.push(message) } }
}

/** A hook answer the test releases by hand. */
function deferred<T> (): { promise: Promise<T>, resolve: (value: T) => void } {
  let settle: (value: T) => void = () => {}
  const promise = new Promise<T>((resolve) => { settle = resolve })
  return { promise, resolve: settle }
}

t.test('a register whose socket closes while canJoin answers creates nobody', async (t) => {
  const answer = deferred<boolean>()
  const s = setup({ access: { canJoin: async () => await answer.promise } })
  const client = s.connect()
  client.send({ type: 'register', name: 'Ann', room: 'r1' })
  s.engine.closed(client.connection)
  client.socket.readyState = 3
  answer.resolve(true)
  await settle()
  t.equal(s.users.userCount, 0)
  t.same(client.socket.frames, [])
})

t.test('a room that fills while canJoin answers is full', async (t) => {
  const answer = deferred<boolean>()
  let first = true
  const s = setup({ maxRoomSize: 1, access: { canJoin: async () => { if (!first) return true; first = false; return await answer.promise } } })
  const slow = s.connect()
  slow.send({ type: 'register', name: 'Slow', room: 'r1' })
  const fast = s.connect()
  fast.send({ type: 'register', name: 'Fast', room: 'r1' })
  await settle()
  t.equal(fast.socket.ofType('welcome').length, 1)
  answer.resolve(true)
  await settle()
  t.same(errorOf(slow.socket), { code: 'room_full', ref: 'register' })
  t.equal(s.users.userCount, 1)
})

t.test('hooks that fail', async (t) => {
  const log = recordingLog()
  const s = setup({
    log,
    access: {
      authenticate: (auth) => (auth as string) === 'odd' ? { userId: '', extra: 1 } as never : { userId: 'u' },
      canJoin: (_identity, room) => { if (room === 'broken') throw new Error('acl down'); return true },
      canUpdate: (_identity, room) => { if (room === 'shaky') throw new Error('acl down'); return true }
    }
  })
  const odd = s.connect()
  odd.send({ type: 'register', auth: 'odd' })
  await settle()
  t.same(errorOf(odd.socket), { code: 'server_error', ref: 'register' }, 'an identity that is not one')
  t.equal(odd.socket.closes[0]?.code, 1011)
  t.match(log.errors, ['authenticate failed'])

  const broken = s.connect()
  broken.send({ type: 'register', auth: 'x', room: 'broken' })
  await settle()
  t.same(errorOf(broken.socket), { code: 'server_error', ref: 'register' }, 'canJoin threw')
  t.same(broken.socket.closes, [], 'the connection stays')
  broken.socket.clear()
  broken.send({ type: 'register', auth: 'x', room: 'shaky' })
  await settle()
  t.equal(broken.socket.ofType('welcome').length, 1)
  broken.send({ type: 'update', state: { a: 1 } })
  await settle()
  t.same(errorOf(broken.socket), { code: 'forbidden', ref: 'update' }, 'a canUpdate that threw makes the user read-only')
  t.match(log.errors, ['authenticate failed', 'canJoin failed', 'canUpdate failed; the user is read-only in this room'])
})

t.test('a resume takes the identity the host gives now', async (t) => {
  let info: Record<string, unknown> = { level: 1 }
  const s = setup({ access: { authenticate: () => ({ userId: 'u1', name: 'Ann', info }) } })
  const ann = s.connect()
  ann.send({ type: 'register', room: 'r1' })
  await settle()
  const welcome = ann.socket.only('welcome')
  t.same(welcome.you.info, { level: 1 })
  const bob = s.connect()
  bob.send({ type: 'register', name: 'Bob', room: 'r1' })
  await settle()
  s.engine.closed(ann.connection)
  s.broadcaster.flush()
  bob.socket.clear()
  info = { level: 2 }
  const back = s.connect()
  back.send({ type: 'reconnect', secret: welcome.secret })
  await settle()
  t.same(back.socket.only('welcome').you.info, { level: 2 })
  s.broadcaster.flush()
  t.match(bob.socket.only('presence').updated, [{ id: welcome.id, connected: true, info: { level: 2 } }], 'the room sees the new info')
})

t.test('messages of host types: pending cap, unserializable results', async (t) => {
  const log = recordingLog()
  const s = setup({ log, messagesPerSecond: 1000, messageBurst: 1000 })
  const api = createApi(s.engine)
  api.handle('wait', Type.Object({}), async () => await new Promise(() => {}))
  api.handle('big', Type.Object({}), () => 10n)
  const ann = s.registered('Ann')
  for (let id = 0; id <= MAX_PENDING_REQUESTS; id++) ann.send({ type: 'wait', id })
  await settle()
  t.same(ann.socket.frames, [{ type: 'error', code: 'rate_limited', message: `at most ${MAX_PENDING_REQUESTS} messages may await their reply`, ref: 'wait', id: MAX_PENDING_REQUESTS }], 'one over the cap is refused')
  const bob = s.registered('Bob')
  bob.send({ type: 'big', id: 'b' })
  await settle()
  t.match(bob.socket.only('error'), { code: 'server_error', ref: 'big', id: 'b' }, 'a result JSON cannot express')
  t.match(log.errors, ['a handler of app.shoal.handle failed'])
})

t.test('a listener of app.shoal.on hears the host set info', async (t) => {
  const s = setup()
  const api = createApi(s.engine)
  const ann = s.registered('Ann')
  const heard: unknown[] = []
  api.on('update', ({ user }) => { heard.push(user.info) })
  api.setInfo(ann.id, { badge: 'gold' })
  t.same(heard, [{ badge: 'gold' }])
})

t.test('a reconnect refused by authenticate counts toward the address budget; over it, the hook is not asked', async (t) => {
  let asked = 0
  const s = setup({ registerLimit: 2, access: { authenticate: () => { asked++; return false } } })
  for (let i = 0; i < 2; i++) {
    const client = s.connect()
    client.send({ type: 'reconnect', secret: 'guess', auth: { token: `guess-${i}` } })
    await settle()
    t.same(errorOf(client.socket), { code: 'unauthorized', ref: 'reconnect' })
    t.equal(client.socket.closes[0]?.code, 4401)
  }
  const third = s.connect()
  third.send({ type: 'reconnect', secret: 'guess', auth: { token: 'guess-2' } })
  await settle()
  t.same(errorOf(third.socket), { code: 'rate_limited', ref: 'reconnect' }, 'the budget is spent')
  t.equal(asked, 2, 'and authenticate was not asked a third time')
})

t.test('canUpdate is asked again when the user resumes and when the server moves it', async (t) => {
  const asked: string[] = []
  let watchOnly = false
  const s = setup({ access: { canUpdate: (_identity, room) => { asked.push(room); return !watchOnly } } })
  const api = createApi(s.engine)
  const ann = s.connect()
  ann.send({ type: 'register', name: 'Ann', room: 'r1' })
  await settle()
  const welcome = ann.socket.only('welcome')
  s.engine.closed(ann.connection)
  watchOnly = true
  const back = s.connect()
  back.send({ type: 'reconnect', secret: welcome.secret })
  await settle()
  back.send({ type: 'update', state: { a: 1 } })
  await settle()
  t.same(errorOf(back.socket), { code: 'forbidden', ref: 'update' }, 'read-only after the resume')
  watchOnly = false
  t.equal(await api.moveToRoom(welcome.id, 'r2'), true)
  back.socket.clear()
  back.send({ type: 'update', state: { a: 1 } })
  await settle()
  t.same(back.socket.ofType('error'), [], 'may update in the room it was moved to')
  t.same(asked, ['r1', 'r1', 'r2'])
})

t.test('a join whose hooks answer after the socket closed, or after the server moved the user there', async (t) => {
  const answers: Array<(value: boolean) => void> = []
  const s = setup({ access: { canJoin: async (_identity, room) => room === 'r1' || await new Promise<boolean>((resolve) => { answers.push(resolve) }) } })
  const api = createApi(s.engine)
  const ann = s.connect()
  ann.send({ type: 'register', name: 'Ann', room: 'r1' })
  await settle()
  const id = ann.socket.only('welcome').id
  ann.socket.clear()
  ann.send({ type: 'join', room: 'r2' })
  await settle()
  await api.moveToRoom(id, 'r2')
  ann.socket.clear()
  answers[0]?.(true)
  await settle()
  t.same(ann.socket.ofType('snapshot').map((m) => m.room), ['r2'], 'answered as a join into its own room')
  t.equal(s.users.get(id)?.room, 'r2')

  ann.send({ type: 'join', room: 'r3' })
  await settle()
  s.engine.closed(ann.connection)
  ann.socket.readyState = 3
  ann.socket.clear()
  answers[1]?.(true)
  await settle()
  t.equal(s.users.get(id)?.room, 'r2', 'a socket gone meanwhile moves nobody')
  t.same(ann.socket.sent, [])
})

t.test('a hook that does not answer in time has failed', async (t) => {
  const log = recordingLog()
  const s = setup({ log, hookTimeoutMs: 20, access: { canJoin: async () => await new Promise<boolean>(() => {}) } })
  const ann = s.connect()
  ann.send({ type: 'register', name: 'Ann' })
  await until('the register refused once canJoin has not answered in 20 ms', () => ann.socket.frames.some((frame) => frame.type === 'error'), { describe: () => ann.socket.frames })
  t.same(errorOf(ann.socket), { code: 'server_error', ref: 'register' })
  t.match(log.errors, ['canJoin failed'])
  ann.socket.clear()
  const ping = Math.random()
  ann.send({ type: 'ping', t: ping })
  await settle()
  t.equal(ann.socket.only('pong').t, ping, 'and the connection\'s messages flow again')
})

t.test('the late answer of a host type, after its socket closed, sends nothing', async (t) => {
  const s = setup()
  const api = createApi(s.engine)
  let answer: (value: unknown) => void = () => {}
  api.handle('slow', Type.Object({}), async () => await new Promise((resolve) => { answer = resolve }))
  const ann = s.registered('Ann')
  ann.send({ type: 'slow', id: 1 })
  await settle()
  s.engine.closed(ann.connection)
  ann.socket.readyState = 3
  ann.socket.clear()
  answer({ late: true })
  await settle()
  t.same(ann.socket.sent, [])
  t.equal(ann.connection.pendingRequests, 0)
})

t.test('a server change to a user that entered this tick reaches its own client too, once', async (t) => {
  const s = setup()
  const api = createApi(s.engine)
  const ann = s.registered('Ann')
  const bob = s.registered('Bob')
  api.setInfo(ann.id, { badge: 'gold' })
  t.same(ann.socket.frames, [{ type: 'presence', room: 'r1', updated: [{ id: ann.id, info: { badge: 'gold' } }] }], 'the room would announce Ann whole, to everyone but Ann')
  ann.socket.clear()
  s.broadcaster.flush()
  t.match(bob.socket.only('presence').joined, [{ id: ann.id, info: { badge: 'gold' } }], 'the others get it in her joined entry')
  t.same(ann.socket.ofType('presence').flatMap((m) => m.updated ?? []).filter((u) => u.id === ann.id), [], 'and Ann not twice')
  ann.socket.clear()
  api.setState(ann.id, { score: 1 })
  t.same(ann.socket.frames, [], 'once announced, the room\'s next frame tells her')
  s.broadcaster.flush()
  t.same(ann.socket.only('presence').updated, [{ id: ann.id, state: { score: 1 } }])
})

t.test('what the host hands in is checked', async (t) => {
  t.same(checkedIdentity({ userId: 'u', name: '  Ann ' }, 'authorize'), { userId: 'u', name: 'Ann' }, 'a name is trimmed')
  t.throws(() => checkedIdentity({ id: 'u' }, 'authorize'), /authorize: not an identity/)
  t.throws(() => checkedIdentity({ userId: '' }, 'authorize'), /userId/)
  t.throws(() => checkedIdentity({ userId: 'u', name: '' }, 'authorize'), /name/)
  t.throws(() => checkedIdentity({ userId: 'u', role: 'x' }, 'authorize'), /role/, 'an unknown field (a typo) is named')
  const info = { nested: { list: [1] } }
  const identity = checkedIdentity({ userId: 'u', info }, 'authorize')
  info.nested.list.push(2)
  t.same(identity.info, { nested: { list: [1] } }, 'the engine keeps its own copy')

  t.equal(infoProblem({}), null)
  t.equal(infoProblem([]), 'expected a JSON object')
  t.equal(infoProblem(null), 'expected a JSON object')
  const circular: Record<string, unknown> = {}
  circular.self = circular
  t.match(infoProblem(circular), /not serializable/)
  t.equal(infoProblem({ big: 'x'.repeat(4096) }), 'larger than 4096 bytes as JSON')

  t.throws(() => new ShoalError('Bad Code', 'x'), TypeError)
  t.equal(new ShoalError('not_allowed', 'x').code, 'not_allowed')
  t.throws(() => new ShoalError('invalid_secret', 'x'), /clients act on/, 'a code clients act on is not the host\'s to send')
  t.equal(new ShoalError('forbidden', 'x').code, 'forbidden')

  const messages = new CustomMessages()
  messages.register('chat', Type.Object({ text: Type.String() }), () => null)
  t.equal(messages.size, 1)
  t.throws(() => messages.register('pong', Type.Object({}), () => null), /protocol/)
  t.throws(() => messages.register('x', Type.Object({}), 'nope' as never), /handler must be a function/)
})
