/**
 * Limits and abuse rules of the wire contract over real sockets: maxPayload, the
 * per-connection token bucket, the per-address register/reconnect budget, slow
 * readers and the heartbeat. Rate limits run on an injected ManualClock.
 */
import t from 'tap'
import type WebSocket from 'ws'
import type { PresenceMessageT } from '../../schemas/protocol.js'
import { ManualClock } from '../../src/core/clock.js'
import { MemorySessionStore } from '../../src/core/sessions/session-store.js'
import { harness as setup, metric, type TestClient } from '../helpers.js'

/** A ping frame of exactly `bytes` bytes (padded with JSON whitespace). */
function pingOfSize (bytes: number, t = 1): string {
  const head = `{"type":"ping","t":${t}`
  return `${head}${' '.repeat(bytes - head.length - 1)}}`
}

/** Sends `count` pings tagged `from`, `from + 1`, ...; returns their tags. */
function pings (client: TestClient, from: number, count: number): number[] {
  const tags = Array.from({ length: count }, (_, i) => from + i)
  for (const tag of tags) client.send({ type: 'ping', t: tag })
  return tags
}

/** Waits for `count` WebSocket ping frames from the server on a client socket. */
async function heartbeats (socket: WebSocket, count: number, timeoutMs = 3000): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    let seen = 0
    const timer = setTimeout(() => { cleanup(); reject(new Error(`only ${seen} of ${count} pings within ${timeoutMs} ms`)) }, timeoutMs)
    const onPing = (): void => { if (++seen === count) { cleanup(); resolve() } }
    const onClose = (): void => { cleanup(); reject(new Error(`closed after ${seen} pings`)) }
    const cleanup = (): void => { clearTimeout(timer); socket.off('ping', onPing); socket.off('close', onClose) }
    socket.on('ping', onPing)
    socket.on('close', onClose)
  })
}

const isUpdate = (id: string, connected: boolean) => (m: PresenceMessageT) =>
  (m.updated ?? []).some((u) => u.id === id && u.connected === connected)

t.test('maxPayload: a frame over the default 16 KiB closes the connection with 1009; one at the limit is served', async (t) => {
  const { connect } = await setup(t)
  const client = await connect()
  client.send(pingOfSize(16_384, 7))
  t.equal((await client.next('pong')).t, 7, 'exactly 16 KiB is accepted')
  client.send(pingOfSize(16_385))
  t.equal((await client.whenClosed()).code, 1009)
})

t.test('maxPayload option: 1024 bytes', async (t) => {
  const { connect, join, server } = await setup(t, { maxPayload: 1024 })
  const observer = await join({ room: 'r' })
  const a = await join({ room: 'r' })
  await observer.client.next('presence', (m) => (m.joined ?? []).some((u) => u.id === a.welcome.id))
  a.client.send(pingOfSize(1024, 3))
  t.equal((await a.client.next('pong')).t, 3, '1024 bytes accepted')
  a.client.send(pingOfSize(1025))
  t.equal((await a.client.whenClosed()).code, 1009)
  const down = await observer.client.next('presence', isUpdate(a.welcome.id, false))
  t.match(down.updated?.find((u) => u.id === a.welcome.id), { connected: false }, 'the user goes into grace like any dropped socket')
  const guest = await connect()
  guest.send({ type: 'data', payload: 'x'.repeat(2000) })
  t.equal((await guest.whenClosed()).code, 1009, 'checked before anything else (even before register)')
  t.equal(server.app.shoal.stats.users, 2)
})

t.test('token bucket: burst 10 at 5 per second; the 11th message gets rate_limited and is dropped', async (t) => {
  const clock = new ManualClock()
  const { connect, join } = await setup(t, { clock, messagesPerSecond: 5, messageBurst: 10 })
  const guest = await connect()
  pings(guest, 1, 11)
  for (let tag = 1; tag <= 10; tag++) t.equal((await guest.next('pong')).t, tag, `ping ${tag} answered`)
  const error = await guest.next('error')
  t.equal(error.code, 'rate_limited')
  t.same(guest.received.filter((m) => m.type === 'pong'), [], 'the 11th ping was dropped')

  // One second later: 5 tokens.
  clock.advance(1000)
  pings(guest, 100, 6)
  for (let tag = 100; tag < 105; tag++) t.equal((await guest.next('pong')).t, tag)
  t.equal((await guest.next('error')).code, 'rate_limited', 'the 6th in the new second is refused')
  t.same(guest.received.filter((m) => m.type === 'pong'), [])

  // A dropped message changes nothing: a registered user's 11th message is an update.
  const observer = await join({ room: 'r' })
  const user = await connect()
  const welcome = await user.register({ room: 'r', name: 'Before' })
  pings(user, 1, 9)
  for (let tag = 1; tag <= 9; tag++) await user.next('pong', (m) => m.t === tag)
  user.send({ type: 'update', name: 'After', position: { x: 5, y: 5 } })
  t.equal((await user.next('error')).code, 'rate_limited')
  clock.advance(1000)
  user.send({ type: 'sync' })
  await user.next('snapshot')
  observer.client.send({ type: 'sync' })
  const seen = (await observer.client.next('snapshot')).users.find((u) => u.id === welcome.id)
  t.equal(seen?.name, 'Before', 'the dropped update was not applied')
  t.same(seen?.position, { x: 0, y: 0, z: 0 })
})

t.test('token bucket: messages dropped in each of 10 consecutive seconds close the connection with 1008', async (t) => {
  const clock = new ManualClock()
  const { connect } = await setup(t, { clock, messagesPerSecond: 5, messageBurst: 10 })
  const client = await connect()
  pings(client, 0, 11)
  t.equal((await client.next('error')).code, 'rate_limited', 'second 1: a drop')
  for (let second = 2; second <= 9; second++) {
    clock.advance(1000)
    pings(client, second * 100, 6)
    t.equal((await client.next('error')).code, 'rate_limited', `second ${second}: a drop`)
    t.equal(client.socket.readyState, client.socket.OPEN, `still open after ${second} seconds with drops`)
  }
  clock.advance(1000)
  pings(client, 1000, 6)
  t.equal((await client.whenClosed()).code, 1008, 'closed in the 10th second')
})

t.test('token bucket: a second without drops resets the count', async (t) => {
  const clock = new ManualClock()
  const { connect } = await setup(t, { clock, messagesPerSecond: 5, messageBurst: 10 })
  const client = await connect()
  pings(client, 0, 11)
  await client.next('error')
  for (let second = 2; second <= 9; second++) {
    clock.advance(1000)
    pings(client, second * 100, 6)
    await client.next('error')
  }
  // Second 10 passes without a drop, then drops resume for 9 more seconds.
  clock.advance(2000)
  pings(client, 5000, 11)
  t.equal((await client.next('error')).code, 'rate_limited')
  for (let second = 2; second <= 9; second++) {
    clock.advance(1000)
    pings(client, 10_000 + second * 100, 6)
    t.equal((await client.next('error')).code, 'rate_limited')
  }
  t.equal(client.socket.readyState, client.socket.OPEN, 'not closed: the drops were not in 10 consecutive seconds')
  clock.advance(1000)
  client.send({ type: 'ping', t: -2 })
  t.equal((await client.next('pong', (m) => m.t === -2)).t, -2, 'and still served')
})

t.test('register and reconnect per address: every register and every reconnect that resumes nobody counts; over the limit, rate_limited', async (t) => {
  const clock = new ManualClock()
  const { connect } = await setup(t, { clock, registerLimit: 3, registerWindowMs: 60_000 })
  const first = await connect()
  first.send({ type: 'reconnect', secret: 'not a secret' })
  t.equal((await first.next('error')).code, 'invalid_secret', '1: a refused reconnect')
  const welcome = await first.register({ name: 'one' })
  t.equal(welcome.resumed, false, '2: a register')
  first.send({ type: 'register' })
  t.equal((await first.next('error')).code, 'already_registered', '3: a refused register')

  const second = await connect()
  second.send({ type: 'register' })
  const limited = await second.next('error')
  t.equal(limited.code, 'rate_limited', '4: over the limit, on another socket')
  t.equal(limited.ref, 'register')
  second.send({ type: 'reconnect', secret: 'still not a secret' })
  const limitedGuess = await second.next('error')
  t.equal(limitedGuess.code, 'rate_limited', 'a reconnect that resumes nobody shares the budget')
  t.equal(limitedGuess.ref, 'reconnect')
  second.send({ type: 'ping', t: 1 })
  t.equal((await second.next('pong')).t, 1, 'other messages are not affected')

  // Revision 1.1: a reconnect that resumes a user is free, however spent the budget.
  second.send({ type: 'reconnect', secret: welcome.secret })
  const resumed = await second.next('welcome')
  t.equal(resumed.resumed, true, 'over the limit, a live secret still resumes')
  t.equal((await first.whenClosed()).code, 4001, 'and takes the user over')

  // The window slides: once the attempts are older than registerWindowMs, the budget is back.
  const third = await connect()
  clock.advance(59_999)
  third.send({ type: 'register' })
  t.equal((await third.next('error')).code, 'rate_limited', 'still inside the window')
  clock.advance(60_001)
  const later = await third.register({ name: 'two' })
  t.equal(later.resumed, false, 'allowed again once the window has passed')
})

t.test('after a restart, everyone behind one address resumes at once (revision 1.1)', async (t) => {
  const store = new MemorySessionStore()
  const first = await setup(t, { sessionStore: store, registerLimit: 5 })
  const secrets: string[] = []
  for (let i = 0; i < 5; i++) {
    const client = await first.connect()
    secrets.push((await client.register({ name: `user ${i}` })).secret)
  }
  await first.server.close()
  const second = await setup(t, { sessionStore: store, registerLimit: 5 })
  let resumes = 0
  for (let round = 0; round < 4; round++) {
    for (const secret of secrets) {
      const client = await second.connect()
      client.send({ type: 'reconnect', secret })
      const welcome = await client.next('welcome')
      t.equal(welcome.resumed, true)
      if (welcome.resumed) resumes++
      client.socket.close()
      await client.whenClosed()
    }
  }
  t.equal(resumes, 20, '20 resumes from one address with a budget of 5')
})

t.test('slow reader: skipped for positions over slowReaderSkipBytes, closed with 1013 over slowReaderCloseBytes', async (t) => {
  const { server, join } = await setup(t, {
    messagesPerSecond: 1_000_000,
    messageBurst: 1_000_000,
    slowReaderSkipBytes: 65_536,
    slowReaderCloseBytes: 262_144
  })
  const reader = await join({ room: 'r' })
  const sender = await join({ room: 'r' })
  const observer = await join({ room: 'r' })
  reader.client.send({ type: 'updatelisteningto', listeningTo: [sender.welcome.id] })
  await reader.client.drainType('pong')
  t.equal(await metric(server, 'shoal_slow_readers_closed_total'), 0)
  t.equal(await metric(server, 'shoal_frames_skipped_total'), 0)

  ;(reader.client.socket as any)._socket.pause() // any: ws keeps its net.Socket in an untyped private field; pausing it stops reading, so the server's output backs up
  const payload = 'x'.repeat(7 * 1024)
  // Rounds of 16 data frames (~115 KiB) and a move. The skip threshold is checked at
  // each tick and a round adds less than close - skip bytes, so a skip must be seen
  // before the close.
  let skippedFirst = 0
  let closed = 0
  for (let round = 1; round <= 2000 && closed === 0; round++) {
    for (let i = 0; i < 16; i++) sender.client.send({ type: 'data', payload })
    sender.client.send({ type: 'update', position: { x: round, y: 0 } })
    await sender.client.next('positions', (m) => m.p.some(([id, x]) => id === sender.welcome.id && x === round))
    closed = await metric(server, 'shoal_slow_readers_closed_total')
    if (skippedFirst === 0 && closed === 0) skippedFirst = await metric(server, 'shoal_frames_skipped_total')
  }
  t.ok(skippedFirst > 0, 'positions frames were skipped before the reader was closed')
  t.ok(closed >= 1, 'the slow reader was closed')
  // More traffic for the closing reader must not count it again.
  for (let i = 0; i < 5; i++) sender.client.send({ type: 'data', payload })
  sender.client.send({ type: 'update', position: { x: -1, y: 0 } })
  await sender.client.next('positions', (m) => m.p.some(([id, x]) => id === sender.welcome.id && x === -1))
  t.equal(await metric(server, 'shoal_slow_readers_closed_total'), 1, 'one slow reader closed, counted once')

  ;(reader.client.socket as any)._socket.resume() // any: the same untyped private net.Socket, reading again
  t.equal((await reader.client.whenClosed()).code, 1013, 'closed with 1013 (seen once reading resumes)')
  await observer.client.next('presence', isUpdate(reader.welcome.id, false))
  t.equal(sender.client.socket.readyState, sender.client.socket.OPEN, 'the sender is unaffected')
})

t.test('slow reader: skipped for positions, then gets every current position once it drains', async (t) => {
  const { server, join } = await setup(t, {
    messagesPerSecond: 1_000_000,
    messageBurst: 1_000_000,
    slowReaderSkipBytes: 65_536,
    slowReaderCloseBytes: 262_144
  })
  const reader = await join({ room: 'r', position: { x: 1, y: 1, z: 1 } })
  const sender = await join({ room: 'r' })
  reader.client.send({ type: 'updatelisteningto', listeningTo: [sender.welcome.id] })
  await reader.client.drainType('pong')

  ;(reader.client.socket as any)._socket.pause() // any: ws keeps its net.Socket in an untyped private field; pausing it stops reading
  const payload = 'x'.repeat(7 * 1024)
  let lastRound = 0
  for (let round = 1; round <= 2000; round++) {
    for (let i = 0; i < 16; i++) sender.client.send({ type: 'data', payload })
    sender.client.send({ type: 'update', position: { x: round, y: 0 } })
    await sender.client.next('positions', (m) => m.p.some(([id, x]) => id === sender.welcome.id && x === round))
    lastRound = round
    if (await metric(server, 'shoal_frames_skipped_total') > 0) break
  }
  t.ok(await metric(server, 'shoal_frames_skipped_total') > 0, 'a positions frame was skipped')
  t.equal(await metric(server, 'shoal_slow_readers_closed_total'), 0, 'not closed')

  // The last move was skipped for the reader and nobody moves again: only the catch-up can bring it.
  ;(reader.client.socket as any)._socket.resume() // any: the same untyped private net.Socket, reading again
  const frame = await reader.client.next('positions', (m) => m.p.some(([id, x]) => id === sender.welcome.id && x === lastRound), 10_000)
  t.same(frame.p.find(([id]) => id === reader.welcome.id), [reader.welcome.id, 1, 1, 1], 'the catch-up carries every member, moved or not')
  t.equal(reader.client.socket.readyState, reader.client.socket.OPEN, 'still connected')
  reader.client.send({ type: 'ping', t: 9 })
  t.equal((await reader.client.next('pong', (m) => m.t === 9)).t, 9)
})

t.test('heartbeat: an answering client stays connected; a silent one is terminated and the room sees connected:false', async (t) => {
  const { connect, join, tick } = await setup(t, { heartbeatMs: 100 })
  const observer = await join({ room: 'r' })
  const lively = await join({ room: 'r' })
  const silent = await connect({ autoPong: false })
  const silentWelcome = await silent.register({ room: 'r' })
  t.equal(silentWelcome.heartbeatMs, 100)

  await heartbeats(lively.client.socket, 3)
  t.equal(lively.client.socket.readyState, lively.client.socket.OPEN, 'open after 3 beats')

  t.equal((await silent.whenClosed()).code, 1006, 'terminated without a close frame')
  const down = await observer.client.next('presence', isUpdate(silentWelcome.id, false))
  t.same(down.updated?.find((u) => u.id === silentWelcome.id), { id: silentWelcome.id, connected: false })

  await heartbeats(lively.client.socket, 3)
  await tick()
  t.equal(lively.client.socket.readyState, lively.client.socket.OPEN, 'still open after 6 beats')
  lively.client.send({ type: 'ping', t: 5 })
  t.equal((await lively.client.next('pong', (m) => m.t === 5)).t, 5)
  t.same((await observer.client.drainType('presence')).filter(isUpdate(lively.welcome.id, false)), [], 'the lively user never showed as disconnected')
})
