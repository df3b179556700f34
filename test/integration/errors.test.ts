/**
 * Every error code of the wire contract, the order of the checks, and that a
 * refused message gets exactly one error and changes nothing.
 */
import t from 'tap'
import type { SessionStore, ShoalOptions } from '../../index.js'
import { ManualClock } from '../../src/core/clock.js'
import type { ServerMessageT } from '../../schemas/protocol.js'
import { harness, type LogStream, type TestClient } from '../helpers.js'

type ErrorMessage = Extract<ServerMessageT, { type: 'error' }>
/** The `t` a test function gets. */
type Assert = Parameters<Parameters<typeof t.test>[0]>[0]

/** Generous message budgets: these tests send many messages and must never meet a rate limit. */
const NO_LIMITS: ShoalOptions = { messagesPerSecond: 100_000, messageBurst: 100_000, registerLimit: 10_000 }

const setup = async (t: Assert, options: ShoalOptions = {}, logStream?: LogStream) => await harness(t, { ...NO_LIMITS, ...options }, logStream)

/**
 * Sends `frame` and returns the one error it got, after checking that a ping round
 * trip brings no second error and that the connection is still open.
 */
async function onlyError (t: Assert, client: TestClient, frame: unknown): Promise<ErrorMessage> {
  client.send(frame)
  const error = await client.next('error')
  t.same(await client.drainType('error'), [], 'no second error')
  t.equal(client.socket.readyState, client.socket.OPEN, 'the connection stays open')
  return error
}

interface Case {
  /** A message object, or a raw text frame. */
  frame: unknown
  code: string
  /** Expected `ref`; undefined means no `ref`. */
  ref?: string
  /** Text the error message must contain (the dotted path of the field). */
  says?: string
}

const raw = (text: string): string => text
const UUID_A = '0f0e0d0c-0b0a-4908-8706-050403020100'
const fields = (count: number, prefix = 'k'): Record<string, number> =>
  Object.fromEntries(Array.from({ length: count }, (_, i) => [`${prefix}${i}`, i]))

/** Messages every connection state refuses with the same error, whatever it is. */
const envelopeCases: Case[] = [
  { frame: raw('nope'), code: 'bad_json' },
  { frame: raw('{"type":"ping"'), code: 'bad_json' },
  { frame: raw(''), code: 'bad_json' },
  { frame: raw('[]'), code: 'invalid_message' },
  { frame: raw('[{"type":"ping"}]'), code: 'invalid_message' },
  { frame: raw('42'), code: 'invalid_message' },
  { frame: raw('null'), code: 'invalid_message' },
  { frame: raw('"ping"'), code: 'invalid_message' },
  { frame: raw('true'), code: 'invalid_message' },
  { frame: {}, code: 'invalid_message', says: 'type' },
  { frame: { t: 1 }, code: 'invalid_message', says: 'type' },
  { frame: { type: 5 }, code: 'invalid_message', says: 'type' },
  { frame: { type: null }, code: 'invalid_message', says: 'type' },
  { frame: { type: ['ping'] }, code: 'invalid_message', says: 'type' },
  { frame: { type: 'nope' }, code: 'unknown_type', ref: 'nope' },
  { frame: { type: 'PING' }, code: 'unknown_type', ref: 'PING' },
  { frame: { type: 'toString' }, code: 'unknown_type', ref: 'toString' },
  { frame: { type: '__proto__' }, code: 'unknown_type', ref: '__proto__' },
  { frame: { type: 'constructor' }, code: 'unknown_type', ref: 'constructor' },
  { frame: { type: 'welcome' }, code: 'unknown_type', ref: 'welcome' }
]

/** Schema failures: refused with invalid_message before any state check. */
const schemaCases: Case[] = [
  { frame: { type: 'ping', foo: 1 }, code: 'invalid_message', ref: 'ping', says: 'foo' },
  { frame: { type: 'ping', t: '1' }, code: 'invalid_message', ref: 'ping', says: 't' },
  { frame: raw('{"type":"ping","t":1e999}'), code: 'invalid_message', ref: 'ping', says: 't' },
  { frame: raw('{"type":"update","state":{"n":-1e999}}'), code: 'invalid_message', ref: 'update', says: 'state.n' },
  { frame: { type: 'register', color: 'red' }, code: 'invalid_message', ref: 'register', says: 'color' },
  { frame: { type: 'register', name: '   ' }, code: 'invalid_message', ref: 'register', says: 'name' },
  { frame: { type: 'register', room: 'has space' }, code: 'invalid_message', ref: 'register', says: 'room' },
  { frame: { type: 'register', room: 'r'.repeat(65) }, code: 'invalid_message', ref: 'register', says: 'room' },
  { frame: { type: 'register', position: { x: 1, y: 2, w: 3 } }, code: 'invalid_message', ref: 'register', says: 'position.w' },
  { frame: { type: 'register', state: { color: { r: 1 } } }, code: 'invalid_message', ref: 'register', says: 'state.color' },
  { frame: { type: 'reconnect' }, code: 'invalid_message', ref: 'reconnect', says: 'secret' },
  { frame: { type: 'reconnect', secret: 5 }, code: 'invalid_message', ref: 'reconnect', says: 'secret' },
  { frame: { type: 'reconnect', secret: 'x', id: UUID_A }, code: 'invalid_message', ref: 'reconnect', says: 'id' },
  { frame: { type: 'update' }, code: 'invalid_message', ref: 'update' },
  { frame: { type: 'update', color: 'red' }, code: 'invalid_message', ref: 'update', says: 'color' },
  { frame: { type: 'update', position: { x: 1, y: 2, w: 3 } }, code: 'invalid_message', ref: 'update', says: 'position.w' },
  { frame: { type: 'update', position: { x: 'a', y: 2 } }, code: 'invalid_message', ref: 'update', says: 'position.x' },
  { frame: { type: 'update', position: { x: 1e9 + 1, y: 2 } }, code: 'invalid_message', ref: 'update', says: 'position.x' },
  { frame: raw('{"type":"update","position":{"x":1e999,"y":2}}'), code: 'invalid_message', ref: 'update', says: 'position.x' },
  { frame: { type: 'update', position: { x: 1 } }, code: 'invalid_message', ref: 'update', says: 'position.y' },
  { frame: { type: 'update', position: { x: 1, y: 2, z: null } }, code: 'invalid_message', ref: 'update', says: 'position.z' },
  { frame: { type: 'update', state: { color: { r: 1 } } }, code: 'invalid_message', ref: 'update', says: 'state.color' },
  { frame: { type: 'update', state: { color: ['red'] } }, code: 'invalid_message', ref: 'update', says: 'state.color' },
  { frame: { type: 'update', state: { color: 'x'.repeat(257) } }, code: 'invalid_message', ref: 'update', says: 'state.color' },
  { frame: { type: 'update', state: { 'bad-key': 1 } }, code: 'invalid_message', ref: 'update', says: 'state' },
  { frame: { type: 'update', state: { ['k'.repeat(33)]: 1 } }, code: 'invalid_message', ref: 'update', says: 'state' },
  { frame: { type: 'update', state: 'red' }, code: 'invalid_message', ref: 'update', says: 'state' },
  { frame: { type: 'update', name: '' }, code: 'invalid_message', ref: 'update', says: 'name' },
  { frame: { type: 'update', name: ' \t\n ' }, code: 'invalid_message', ref: 'update', says: 'name' },
  { frame: { type: 'update', name: '😀'.repeat(65) }, code: 'invalid_message', ref: 'update', says: 'name' },
  { frame: { type: 'update', name: 7 }, code: 'invalid_message', ref: 'update', says: 'name' },
  { frame: { type: 'updatelisteningto' }, code: 'invalid_message', ref: 'updatelisteningto', says: 'listeningTo' },
  { frame: { type: 'updatelisteningto', listeningTo: [UUID_A, UUID_A, UUID_A, 'not-a-uuid'] }, code: 'invalid_message', ref: 'updatelisteningto', says: 'listeningTo[3]' },
  { frame: { type: 'updatelisteningto', listeningTo: Array.from({ length: 257 }, () => UUID_A) }, code: 'invalid_message', ref: 'updatelisteningto', says: 'listeningTo' },
  { frame: { type: 'updatelisteningto', listeningTo: UUID_A }, code: 'invalid_message', ref: 'updatelisteningto', says: 'listeningTo' },
  { frame: { type: 'data' }, code: 'invalid_message', ref: 'data', says: 'payload' },
  { frame: { type: 'data', payload: 1, to: UUID_A }, code: 'invalid_message', ref: 'data', says: 'to' },
  { frame: { type: 'join' }, code: 'invalid_message', ref: 'join', says: 'room' },
  { frame: { type: 'join', room: '' }, code: 'invalid_message', ref: 'join', says: 'room' },
  { frame: { type: 'join', room: 'a/b' }, code: 'invalid_message', ref: 'join', says: 'room' },
  { frame: { type: 'join', room: 'r', extra: true }, code: 'invalid_message', ref: 'join', says: 'extra' },
  { frame: { type: 'sync', room: 'r' }, code: 'invalid_message', ref: 'sync', says: 'room' },
  { frame: { type: 'leave', now: true }, code: 'invalid_message', ref: 'leave', says: 'now' }
]

function checkError (t: Assert, error: ErrorMessage, c: Case, label: string): void {
  t.equal(error.code, c.code, `${label}: code`)
  t.equal(error.ref, c.ref, `${label}: ref`)
  t.equal(typeof error.message, 'string', `${label}: has a message`)
  if (c.says !== undefined) t.ok(error.message.includes(c.says), `${label}: message "${error.message}" names ${c.says}`)
}

const label = (c: Case): string => (typeof c.frame === 'string' ? c.frame : JSON.stringify(c.frame)).slice(0, 80)

t.test('envelope and schema errors before register: one error each, and the connection may still register', async (t) => {
  const { connect, server } = await setup(t)
  const client = await connect()
  for (const c of [...envelopeCases, ...schemaCases]) {
    checkError(t, await onlyError(t, client, c.frame), c, `guest ${label(c)}`)
  }
  t.equal(server.app.shoal.stats.users, 0, 'no user was created')
  const welcome = await client.register({ name: 'after all that' })
  t.equal(welcome.you.name, 'after all that')
})

t.test('envelope and schema errors after register: one error each, nothing changes, nobody hears of it', async (t) => {
  const { server, join, tick } = await setup(t)
  const sender = await join({ name: 'S', room: 'r', state: { keep: 'me' }, position: { x: 1, y: 2, z: 3 } })
  const observer = await join({ name: 'O', room: 'r' })
  // The observer listens to the sender, so a `data` that got through would reach it.
  observer.client.send({ type: 'updatelisteningto', listeningTo: [sender.welcome.id] })
  await observer.client.drainType('error')
  await tick()
  await observer.client.drainType('presence')
  await sender.client.drainType('presence')
  const before = server.app.shoal.user(sender.welcome.id)
  for (const c of [...envelopeCases, ...schemaCases]) {
    checkError(t, await onlyError(t, sender.client, c.frame), c, `user ${label(c)}`)
    await tick()
    t.same(server.app.shoal.user(sender.welcome.id), before, `${label(c)}: the user is unchanged`)
    for (const type of ['presence', 'positions', 'data'] as const) {
      t.same(await observer.client.drainType(type), [], `${label(c)}: the observer got no ${type}`)
    }
  }
})

t.test('a binary frame gets unsupported_frame and the connection stays open', async (t) => {
  const { connect, join } = await setup(t)
  const guest = await connect()
  guest.socket.send(Buffer.from(JSON.stringify({ type: 'ping', t: 1 })))
  const error = await guest.next('error')
  t.equal(error.code, 'unsupported_frame')
  t.equal(error.ref, undefined)
  guest.send({ type: 'ping', t: 2 })
  t.equal((await guest.next('pong')).t, 2, 'a ping afterwards gets a pong')
  t.same(guest.received.filter((m) => m.type === 'pong'), [], 'the binary ping was not answered')

  const { client } = await join()
  client.socket.send(Buffer.from([0, 1, 2, 255]))
  t.equal((await client.next('error')).code, 'unsupported_frame')
  t.same(await client.drainType('error'), [], 'exactly one error')
  client.send({ type: 'sync' })
  await client.next('snapshot')
})

t.test('not_registered for every type that needs a user; ping works before register', async (t) => {
  const { connect, join, tick } = await setup(t)
  const observer = await join({ room: 'lobby' })
  const guest = await connect()
  const messages = [
    { type: 'update', position: { x: 1, y: 1 } },
    { type: 'update', state: { a: 1 } },
    { type: 'update', name: 'x' },
    { type: 'updatelisteningto', listeningTo: [observer.welcome.id] },
    { type: 'data', payload: { hello: 1 } },
    { type: 'join', room: 'lobby' },
    { type: 'sync' },
    { type: 'leave' }
  ]
  for (const message of messages) {
    const error = await onlyError(t, guest, message)
    t.equal(error.code, 'not_registered', `${message.type}: not_registered`)
    t.equal(error.ref, message.type, `${message.type}: ref`)
  }
  guest.send({ type: 'ping', t: 7 })
  t.equal((await guest.next('pong')).t, 7, 'ping before register')
  await tick()
  t.same(await observer.client.drainType('presence'), [], 'nobody saw anything')
  t.same(await observer.client.drainType('positions'), [])
  const welcome = await guest.register({ room: 'lobby' })
  t.equal(welcome.resumed, false, 'the connection may then register')
})

t.test('already_registered for register and reconnect on a connection that has a user', async (t) => {
  const { join, tick, server } = await setup(t)
  const a = await join({ name: 'A', room: 'r' })
  const b = await join({ name: 'B', room: 'r' })
  await tick()
  await a.client.drainType('presence')
  await b.client.drainType('presence')
  const messages = [
    { type: 'register' },
    { type: 'register', name: 'Other', room: 'elsewhere' },
    { type: 'reconnect', secret: a.welcome.secret },
    { type: 'reconnect', secret: b.welcome.secret },
    { type: 'reconnect', secret: 'garbage' }
  ]
  for (const message of messages) {
    const error = await onlyError(t, a.client, message)
    t.equal(error.code, 'already_registered', `${JSON.stringify(message)}`)
    t.equal(error.ref, message.type)
  }
  await tick()
  t.same(await b.client.drainType('presence'), [], 'the room saw nothing')
  t.equal(b.client.socket.readyState, b.client.socket.OPEN, 'B was not taken over')
  t.same(server.app.shoal.users('r').map((u) => u.name).sort(), ['A', 'B'])
  t.equal(server.app.shoal.stats.users, 4, 'no user was created (A, B and the two tick clients)')
})

t.test('invalid_secret for empty, garbage, huge and near-miss secrets; the connection stays open and may register', async (t) => {
  const { join, connect } = await setup(t)
  const owner = await join()
  const client = await connect()
  const flipped = owner.welcome.secret.slice(0, -1) + (owner.welcome.secret.endsWith('A') ? 'B' : 'A')
  const secrets = ['', 'garbage', 'x'.repeat(10_240), flipped, owner.welcome.secret + ' ', owner.welcome.id, '🙂'.repeat(100)]
  for (const secret of secrets) {
    const error = await onlyError(t, client, { type: 'reconnect', secret })
    t.equal(error.code, 'invalid_secret', `secret of length ${secret.length}`)
    t.equal(error.ref, 'reconnect')
    t.notOk(error.message.includes(secret.slice(0, 20)) && secret.length > 0, 'the error does not echo the secret')
  }
  t.equal(owner.client.socket.readyState, owner.client.socket.OPEN, 'the owner was not taken over')
  const welcome = await client.register({ name: 'fresh' })
  t.equal(welcome.resumed, false)
  t.not(welcome.id, owner.welcome.id)
})

t.test('order of checks: schema before connection state, envelope before schema', async (t) => {
  const { connect, join } = await setup(t)
  const guest = await connect()
  const cases: Array<[unknown, string]> = [
    [{ type: 'update', position: { x: 'a', y: 1 } }, 'invalid_message'],
    [{ type: 'update' }, 'invalid_message'],
    [{ type: 'sync', extra: 1 }, 'invalid_message'],
    [{ type: 'leave', now: 1 }, 'invalid_message'],
    [{ type: 'data' }, 'invalid_message'],
    [{ type: 'join', room: '!' }, 'invalid_message'],
    [{ type: 'updatelisteningto', listeningTo: ['x'] }, 'invalid_message'],
    [{ type: 'nope', position: { x: 'a' } }, 'unknown_type']
  ]
  for (const [frame, code] of cases) {
    t.equal((await onlyError(t, guest, frame)).code, code, `guest: ${JSON.stringify(frame)}`)
  }
  const { client } = await join()
  const registered: Array<[unknown, string]> = [
    [{ type: 'register', name: '' }, 'invalid_message'],
    [{ type: 'register', extra: 1 }, 'invalid_message'],
    [{ type: 'reconnect' }, 'invalid_message'],
    [{ type: 'reconnect', secret: null }, 'invalid_message']
  ]
  for (const [frame, code] of registered) {
    t.equal((await onlyError(t, client, frame)).code, code, `user: ${JSON.stringify(frame)}`)
  }
})

t.test('state over 32 keys or over 2 KiB is refused whole, naming state; nulls in register do not count', async (t) => {
  const { join, connect, server, tick } = await setup(t)
  const guest = await connect()
  let error = await onlyError(t, guest, { type: 'register', state: fields(33) })
  t.equal(error.code, 'invalid_message')
  t.equal(error.ref, 'register')
  t.ok(error.message.includes('state'), `"${error.message}" names state`)
  const big = Object.fromEntries(Array.from({ length: 9 }, (_, i) => [`s${i}`, 'x'.repeat(240)]))
  error = await onlyError(t, guest, { type: 'register', state: big })
  t.equal(error.code, 'invalid_message')
  t.ok(error.message.includes('state'), `"${error.message}" names state`)
  t.equal(server.app.shoal.stats.users, 0, 'no user was created')

  const withNulls = { ...fields(32), ...Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`n${i}`, null])) }
  const full = await guest.register({ state: withNulls, room: 'r' })
  t.equal(Object.keys(full.you.state).length, 32, 'nulls dropped and not counted')

  // Merged limits: 30 keys, then an update adding 3 (with a position) is refused whole.
  const a = await join({ room: 'r', state: fields(30), position: { x: 1, y: 1 } })
  const observer = await join({ room: 'r' })
  await a.client.drainType('presence')
  await tick()
  await observer.client.drainType('presence')
  const before = server.app.shoal.user(a.welcome.id)
  error = await onlyError(t, a.client, { type: 'update', state: fields(3, 'new'), position: { x: 50, y: 50 }, name: 'Renamed' })
  t.equal(error.code, 'invalid_message')
  t.equal(error.ref, 'update')
  t.ok(error.message.includes('state'), `"${error.message}" names state`)
  await tick()
  t.same(server.app.shoal.user(a.welcome.id), before, 'neither state, name nor position changed')
  t.same(await observer.client.drainType('positions'), [], 'the user did not move')
  t.same(await observer.client.drainType('presence'), [], 'nobody heard of it')

  // Removing one key in the same update keeps the merged state at 32: accepted.
  a.client.send({ type: 'update', state: { ...fields(3, 'new'), k0: null } })
  const updated = await observer.client.next('presence', (m) => (m.updated ?? []).some((u) => u.id === a.welcome.id))
  t.equal(Object.keys(updated.updated?.[0]?.state ?? {}).length, 32)

  // Size: 8 values of 200 characters fit; 2 more of 240 would exceed 2 KiB merged.
  const b = await join({ room: 'r', state: Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`s${i}`, 'x'.repeat(200)])) })
  error = await onlyError(t, b.client, { type: 'update', state: { t0: 'y'.repeat(240), t1: 'y'.repeat(240) } })
  t.equal(error.code, 'invalid_message')
  t.ok(error.message.includes('state'), `"${error.message}" names state`)
})

t.test('a data payload over 8 KiB as re-serialized is refused naming payload, and not delivered', async (t) => {
  const { join, tick } = await setup(t)
  const sender = await join()
  const listener = await join()
  listener.client.send({ type: 'updatelisteningto', listeningTo: [sender.welcome.id] })
  await listener.client.drainType('error')
  const error = await onlyError(t, sender.client, { type: 'data', payload: 'x'.repeat(8191) })
  t.equal(error.code, 'invalid_message')
  t.equal(error.ref, 'data')
  t.ok(error.message.includes('payload'), `"${error.message}" names payload`)
  const nested = await onlyError(t, sender.client, { type: 'data', payload: { a: ['é'.repeat(4100)] } })
  t.equal(nested.code, 'invalid_message', 'bytes, not characters, are counted')
  await tick()
  t.same(await listener.client.drainType('data'), [], 'not delivered')
  sender.client.send({ type: 'data', payload: 'x'.repeat(8190) })
  t.equal((await listener.client.next('data')).payload, 'x'.repeat(8190), 'exactly 8 KiB is delivered')
})

t.test('a data payload nested too deeply to serialize gets its one error, is not delivered, and logs nothing', async (t) => {
  const lines: Array<{ level: number, msg: string }> = []
  const { join, tick } = await setup(t, {}, { write: (line: string) => { lines.push(JSON.parse(line) as { level: number, msg: string }) } })
  const sender = await join()
  const listener = await join()
  listener.client.send({ type: 'updatelisteningto', listeningTo: [sender.welcome.id] })
  await listener.client.drainType('error')
  for (let i = 0; i < 3; i++) {
    const error = await onlyError(t, sender.client, `{"type":"data","payload":${'['.repeat(8000)}${']'.repeat(8000)}}`)
    t.strictSame(error, { type: 'error', code: 'invalid_message', message: 'payload: nested too deeply to serialize', ref: 'data' })
  }
  await tick()
  t.same(await listener.client.drainType('data'), [], 'not delivered')
  t.strictSame(lines.filter((line) => line.level >= 40), [], 'no warning or error in the log')
})

t.test('a session store that keeps failing is logged once per 10 s with a count, not on every tick', async (t) => {
  const lines: Array<{ level: number, msg: string, repeated?: number }> = []
  const clock = new ManualClock()
  const failing: SessionStore = {
    load: async () => undefined,
    save: async () => { throw new Error('store down') },
    delete: async () => {},
    sweep: async () => 0,
    close: async () => {}
  }
  const { join, tick, server } = await setup(t, { clock, sessionStore: failing }, { write: (line: string) => { lines.push(JSON.parse(line) as { level: number, msg: string }) } })
  await join()
  for (let i = 0; i < 10; i++) await tick()
  const failures = (): Array<{ repeated?: number }> => lines.filter((line) => line.msg === 'saving sessions failed')
  t.equal(failures().length, 1, `ten ticks of failures, one line (of ${lines.length})`)
  clock.advance(10_000)
  await tick()
  await tick()
  t.equal(failures().length, 2, 'ten seconds later, the next one')
  t.ok((failures()[1]?.repeated ?? 0) >= 5, `with how many were held back (${failures()[1]?.repeated ?? 0})`)
  await t.resolves(server.close(), 'and the app still closes, saying what it could not save')
  t.ok(lines.some((line) => line.msg === 'saving sessions at shutdown failed'))
})

t.test('values at the limits are accepted', async (t) => {
  const { join } = await setup(t)
  const room = 'R'.repeat(64)
  const state = { ['k'.repeat(32)]: 's'.repeat(256) }
  const { client, welcome } = await join({ name: ` ${'😀'.repeat(64)} `, room, position: { x: -1e9, y: 1e9, z: 1e9 }, state })
  t.equal(welcome.you.name, '😀'.repeat(64), '64 code points (128 UTF-16 units)')
  t.equal(welcome.room, room)
  t.same(welcome.you.position, { x: -1e9, y: 1e9, z: 1e9 })
  t.same(welcome.you.state, state)
  const ids = Array.from({ length: 256 }, (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`)
  client.send({ type: 'updatelisteningto', listeningTo: ids })
  client.send({ type: 'sync' })
  await client.next('snapshot')
  t.same(await client.drainType('error'), [], '256 listened ids accepted')
})
