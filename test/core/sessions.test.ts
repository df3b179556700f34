import t from 'tap'
import type { SessionRecordT } from '../../schemas/session.js'
import { ManualClock } from '../../src/core/clock.js'
import { hashSecret } from '../../src/core/sessions/secrets.js'
import { MemorySessionStore, type SessionStore } from '../../src/core/sessions/session-store.js'
import { MOVES_SAVED_EVERY_MS, SessionManager, type NewUser } from '../../src/core/sessions/sessions.js'
import { mergeState } from '../../src/core/presence/state.js'
import { UserStore } from '../../src/core/presence/user-store.js'
import type { LiveUser } from '../../src/core/presence/user.js'
import { FakePeer, stateOf, textOf } from './fakes.js'

const GRACE = 30_000
const TTL = 86_400_000

/** A memory store that counts its calls and keeps the batches it was given. */
class CountingStore implements SessionStore {
  readonly inner = new MemorySessionStore()
  readonly batches: SessionRecordT[][] = []
  deletes = 0
  /** When set, `save` waits for this before storing. */
  gate: Promise<void> | null = null

  get saves (): number { return this.batches.length }
  load (hash: string): Promise<SessionRecordT | undefined> { return this.inner.load(hash) }
  async save (records: readonly SessionRecordT[]): Promise<void> {
    this.batches.push(records.map((r) => structuredClone({ ...r, state: { ...r.state } })))
    if (this.gate !== null) await this.gate
    await this.inner.save(records)
  }

  delete (hash: string): Promise<void> { this.deletes++; return this.inner.delete(hash) }
  sweep (cutoff: number): Promise<number> { return this.inner.sweep(cutoff) }
  close (): Promise<void> { return this.inner.close() }
}

function setup (timing = { graceMs: GRACE, sessionTtlMs: TTL }) {
  const clock = new ManualClock()
  const store = new CountingStore()
  const users = new UserStore()
  const sessions = new SessionManager(users, store, clock, timing)
  return { clock, store, users, sessions, timing }
}

type Setup = ReturnType<typeof setup>

function fields (overrides: Partial<NewUser> = {}): NewUser {
  return { name: 'Ann', room: 'r1', position: { x: 1, y: 2, z: 3 }, state: stateOf({ color: 'red' }), ...overrides }
}

/** The room's presence changes since the last call (a tick's worth). */
function presence (users: UserStore, room = 'r1') {
  return users.room(room)?.takePresence() ?? null
}

/** Registers a user on a fresh peer and publishes the join, as one tick would. */
function registered (s: Setup, overrides: Partial<NewUser> = {}): { user: LiveUser, secret: string, peer: FakePeer } {
  const peer = new FakePeer()
  const { user, secret } = s.sessions.register(peer, fields(overrides))
  presence(s.users, user.room)
  return { user, secret, peer }
}

async function reconnected (s: Setup, secret: string, peer = new FakePeer()) {
  const result = await s.sessions.reconnect(peer, secret)
  if (result === null) throw new Error('reconnect refused')
  return { ...result, peer }
}

/** `user`'s socket drops and its grace runs out; its session is written to the store, where it now lives only. */
async function pastGrace (s: Setup, user: LiveUser): Promise<void> {
  s.sessions.disconnect(user)
  s.clock.advance(GRACE)
  s.sessions.expireGrace()
  await s.sessions.persist()
}

t.test('register', async (t) => {
  t.test('issues a 43-char base64url secret and attaches user and peer', async (t) => {
    const s = setup()
    const peer = new FakePeer()
    const { user, secret } = s.sessions.register(peer, fields())
    t.match(secret, /^[A-Za-z0-9_-]{43}$/)
    t.equal(Buffer.from(secret, 'base64url').length, 32)
    t.equal(peer.user, user)
    t.equal(user.peer, peer)
    t.ok(user.connected)
    t.equal(s.users.get(user.id), user)
    t.match(user.id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/)
    t.equal(user.name, 'Ann')
    t.equal(user.room, 'r1')
    t.strictSame(user.listeningTo, [])
    t.strictSame(presence(s.users)?.joined.map((u) => u.id), [user.id], 'the room sees the join')
  })

  t.test('every registration gets its own id and secret', async (t) => {
    const s = setup()
    const a = registered(s)
    const b = registered(s)
    t.not(a.user.id, b.user.id)
    t.not(a.secret, b.secret)
  })

  t.test('the stored record holds only the hash of the secret', async (t) => {
    const s = setup()
    const { user, secret } = registered(s)
    await s.sessions.persist()
    const record = await s.store.load(hashSecret(secret))
    if (record === undefined) throw new Error('not stored')
    t.equal(record.secretHash, hashSecret(secret))
    t.equal(record.id, user.id)
    const json = JSON.stringify(record)
    t.notOk(json.includes(secret), 'the plain secret appears nowhere in the record')
    t.notOk(JSON.stringify(s.store.batches).includes(secret), 'nor in anything handed to the store')
  })
})

t.test('reconnect', async (t) => {
  t.test('a wrong, empty or garbage secret is refused and changes nothing', async (t) => {
    const s = setup()
    const { secret } = registered(s)
    await s.sessions.persist()
    for (const wrong of ['', 'garbage', secret.slice(1), `${secret}x`, secret.toUpperCase(), 'x'.repeat(100_000), hashSecret(secret)]) {
      const peer = new FakePeer()
      t.equal(await s.sessions.reconnect(peer, wrong), null, `${wrong.slice(0, 20)}…`)
      t.equal(peer.user, null)
    }
    t.equal(s.users.userCount, 1)
    t.equal(presence(s.users), null)
  })

  t.test('restores id, name, room, position, state and listening set from the store', async (t) => {
    const s = setup()
    const other = registered(s)
    const { user, secret } = registered(s)
    s.users.setPosition(user, { x: 7, y: 8, z: 9 })
    const merged = mergeState(user.state, { size: 2, color: null })
    if ('error' in merged) throw new Error(merged.error)
    s.users.setProfile(user, 'Renamed', merged.state)
    s.users.moveToRoom(user, 'r2')
    s.users.setListening(user, [other.user.id])
    await s.sessions.persist()

    // A fresh instance (a restart) over the same store.
    const users = new UserStore()
    const sessions = new SessionManager(users, s.store, s.clock, s.timing)
    const peer = new FakePeer()
    const result = await sessions.reconnect(peer, secret)
    if (result === null) throw new Error('refused')
    const back = result.user
    t.equal(result.replaced, null)
    t.equal(result.rejoined, true)
    t.equal(back.id, user.id)
    t.equal(back.name, 'Renamed')
    t.equal(back.room, 'r2')
    t.strictSame(back.position, { x: 7, y: 8, z: 9 })
    t.strictSame({ ...back.state }, { size: 2 })
    t.strictSame(back.listeningTo, [other.user.id])
    t.equal(peer.user, back)
    t.ok(back.connected)
    t.equal(users.get(user.id), back)
    t.strictSame([...users.connectedListenersOf(other.user.id)].map((u) => u.id), [user.id], 'listening edges restored')
    t.strictSame(users.room('r2')?.takePresence()?.joined.map((u) => u.id), [user.id], 'its room sees it join')
  })

  t.test('a restored state is a prototype-free copy', async (t) => {
    const s = setup()
    const state = mergeState(stateOf({}), JSON.parse('{"__proto__":"p","toString":"x"}') as Record<string, string>)
    if ('error' in state) throw new Error(state.error)
    const { secret } = registered(s, { state: state.state })
    await s.sessions.persist()
    const sessions = new SessionManager(new UserStore(), s.store, s.clock, s.timing)
    const { user } = await reconnected({ ...s, sessions }, secret)
    t.strictSame(Object.keys(user.state).sort(), ['__proto__', 'toString'])
    t.equal(Object.getPrototypeOf(user.state), null)
    t.equal(({} as Record<string, unknown>).p, undefined)
  })

  t.test('takeover: the old peer is returned detached and the room sees nothing', async (t) => {
    const s = setup()
    registered(s)
    const { user, secret, peer: oldPeer } = registered(s)
    const { user: same, replaced, rejoined, peer: newPeer } = await reconnected(s, secret)
    t.equal(same, user, 'the same live user')
    t.equal(replaced, oldPeer)
    t.equal(oldPeer.user, null, 'the old peer no longer speaks for the user')
    t.equal(newPeer.user, user)
    t.equal(user.peer, newPeer)
    t.equal(rejoined, false)
    t.ok(user.connected)
    t.equal(presence(s.users), null, 'no leave, join or update')
    t.equal(s.users.userCount, 2)
  })

  t.test('two concurrent reconnects with one secret make one user, the later one taking over', async (t) => {
    const s = setup()
    const { user, secret } = registered(s)
    await s.sessions.persist()
    const sessions = new SessionManager(new UserStore(), s.store, s.clock, s.timing)
    const users = (sessions as unknown as { users: UserStore }).users
    const p1 = new FakePeer()
    const p2 = new FakePeer()
    const [r1, r2] = await Promise.all([sessions.reconnect(p1, secret), sessions.reconnect(p2, secret)])
    t.equal(users.userCount, 1)
    t.equal(r1?.user, r2?.user)
    t.equal(r1?.user.id, user.id)
    t.equal(r2?.replaced, p1)
    t.equal(p1.user, null)
    t.equal(p2.user, r2?.user)
  })
})

t.test('disconnect and grace', async (t) => {
  t.test('a dropped socket shows connected false at once; the user stays in the room', async (t) => {
    const s = setup()
    const { user: other } = registered(s)
    const { user } = registered(s)
    s.sessions.disconnect(user)
    t.notOk(user.connected)
    t.strictSame(presence(s.users), { joined: [], left: [], updated: [{ id: user.id, connected: false }] })
    t.equal(s.users.get(user.id), user)
    t.equal((JSON.parse(textOf(s.users.others(other))) as Array<{ id: string, connected: boolean }>).find((u) => u.id === user.id)?.connected, false)
  })

  t.test('reconnect within grace in a later tick shows connected true and nothing else', async (t) => {
    const s = setup()
    const { user, secret } = registered(s)
    s.sessions.disconnect(user)
    presence(s.users)
    s.clock.advance(GRACE - 1)
    const result = await reconnected(s, secret)
    t.equal(result.user, user)
    t.equal(result.replaced, null)
    t.equal(result.rejoined, false)
    t.ok(user.connected)
    t.strictSame(presence(s.users), { joined: [], left: [], updated: [{ id: user.id, connected: true }] })
    t.equal(s.sessions.expireGrace(), 0, 'no longer in grace')
    s.clock.advance(GRACE * 2)
    t.equal(s.sessions.expireGrace(), 0)
    t.equal(s.users.get(user.id), user)
  })

  t.test('reconnect within grace in the same tick shows nothing', async (t) => {
    const s = setup()
    const { user, secret } = registered(s)
    s.sessions.disconnect(user)
    await reconnected(s, secret)
    t.equal(presence(s.users), null)
  })

  t.test('grace ends after graceMs, not before; the room sees the user leave', async (t) => {
    const s = setup()
    registered(s)
    const { user } = registered(s)
    s.sessions.disconnect(user)
    presence(s.users)
    s.clock.advance(GRACE - 1)
    t.equal(s.sessions.expireGrace(), 0)
    t.equal(s.users.get(user.id), user)
    t.equal(presence(s.users), null)
    s.clock.advance(1)
    t.equal(s.sessions.expireGrace(), 1)
    t.equal(s.users.get(user.id), undefined)
    t.strictSame(presence(s.users), { joined: [], left: [user.id], updated: [] })
    t.equal(s.sessions.expireGrace(), 0, 'only once')
  })

  t.test('graces end one by one, each graceMs after its own disconnect', async (t) => {
    const s = setup()
    const a = registered(s)
    const b = registered(s)
    const c = registered(s)
    s.sessions.disconnect(a.user)
    s.clock.advance(1000)
    s.sessions.disconnect(b.user)
    s.clock.advance(1000)
    s.sessions.disconnect(c.user)
    s.sessions.disconnect(a.user) // a's socket drop is reported again: its grace restarts
    s.clock.advance(GRACE - 1000)
    t.equal(s.sessions.expireGrace(), 1)
    t.equal(s.users.get(b.user.id), undefined)
    t.ok(s.users.get(a.user.id))
    s.clock.advance(999)
    t.equal(s.sessions.expireGrace(), 0)
    s.clock.advance(1)
    t.equal(s.sessions.expireGrace(), 2)
    t.equal(s.users.userCount, 0)
  })

  t.test('after grace the session is still resumable: the user comes back and the room sees it join', async (t) => {
    const s = setup()
    registered(s)
    const { user, secret } = registered(s)
    s.users.setListening(user, ['00000000-0000-4000-8000-000000000001'])
    await pastGrace(s, user)
    presence(s.users)
    s.clock.advance(60_000)
    const result = await reconnected(s, secret)
    t.equal(result.rejoined, true)
    t.equal(result.replaced, null)
    t.equal(result.user.id, user.id)
    t.equal(result.user.name, user.name)
    t.strictSame(result.user.position, user.position)
    t.strictSame(result.user.listeningTo, user.listeningTo)
    t.ok(result.user.connected)
    t.equal(s.users.get(user.id), result.user)
    const diff = presence(s.users)
    t.strictSame(diff?.joined.map((u) => u.id), [user.id])
    t.equal(diff?.joined[0]?.connected, true)
    t.strictSame(diff?.left, [])
  })
})

t.test('expiry', async (t) => {
  t.test('sessionTtlMs after the user was last connected the secret stops working and the record is deleted', async (t) => {
    const s = setup()
    const { user, secret } = registered(s)
    s.clock.advance(5_000)
    s.sessions.disconnect(user)
    const lastConnected = s.clock.now()
    s.clock.advance(GRACE)
    s.sessions.expireGrace()
    s.clock.advance(1_000)
    await s.sessions.persist()
    t.equal((await s.store.load(hashSecret(secret)))?.lastSeen, lastConnected, 'last seen is when the socket dropped, not when it was saved')

    s.clock.advance(lastConnected + TTL - s.clock.now())
    t.equal(await s.sessions.reconnect(new FakePeer(), secret), null)
    t.equal(await s.store.load(hashSecret(secret)), undefined, 'the expired record is deleted')
    t.equal(s.users.get(user.id), undefined)
  })

  t.test('one millisecond before expiry the secret still works', async (t) => {
    const s = setup()
    const { user, secret } = registered(s)
    await pastGrace(s, user)
    s.clock.advance(TTL - GRACE - 1)
    const result = await reconnected(s, secret)
    t.equal(result.user.id, user.id)
  })

  t.test('expiry slides: reconnecting refreshes it', async (t) => {
    const s = setup()
    const { user, secret } = registered(s)
    await pastGrace(s, user)

    s.clock.advance(TTL - GRACE - 1)
    const first = await reconnected(s, secret)
    await s.sessions.persist()
    s.clock.advance(1000)
    s.sessions.disconnect(first.user)
    const lastConnected = s.clock.now()
    s.clock.advance(GRACE)
    s.sessions.expireGrace()
    await s.sessions.persist()

    s.clock.advance(lastConnected + TTL - 1 - s.clock.now())
    const second = await reconnected(s, secret)
    t.equal(second.user.id, user.id, 'well past the first expiry, still valid')
  })

  t.test('a user in grace whose session expired cannot be resumed', async (t) => {
    // Grace longer than the TTL: the live user is still in its room when its secret expires.
    const s = setup({ graceMs: 10_000, sessionTtlMs: 5_000 })
    const { user, secret } = registered(s)
    s.sessions.disconnect(user)
    s.clock.advance(5_000)
    t.equal(await s.sessions.reconnect(new FakePeer(), secret), null)
    t.notOk(user.connected)
  })

  t.test('sweep deletes expired records but never a connected user\'s', async (t) => {
    const s = setup()
    const stayer = registered(s)
    const goner = registered(s)
    const recent = registered(s)
    await pastGrace(s, goner.user)

    s.clock.advance(TTL)
    s.sessions.disconnect(recent.user)
    s.clock.advance(1)
    const removed = await s.sessions.sweep()
    t.equal(removed, 1)
    t.equal(await s.store.load(hashSecret(goner.secret)), undefined)
    t.equal((await s.store.load(hashSecret(stayer.secret)))?.lastSeen, s.clock.now(), 'connected longer than the TTL: counted as seen now')
    t.ok(await s.store.load(hashSecret(recent.secret)), 'disconnected recently: kept')
    t.equal(await s.sessions.reconnect(new FakePeer(), goner.secret), null)

    // The long-connected user survives and can be taken over.
    const takeover = await reconnected(s, stayer.secret)
    t.equal(takeover.user, stayer.user)
  })
})

t.test('leave', async (t) => {
  t.test('removes the user and the secret stops working at once', async (t) => {
    const s = setup()
    registered(s)
    const { user, secret, peer } = registered(s)
    await s.sessions.persist()
    s.sessions.leave(user)
    t.equal(peer.user, null)
    t.notOk(user.connected)
    t.equal(s.users.get(user.id), undefined)
    t.strictSame(presence(s.users), { joined: [], left: [user.id], updated: [] })
    t.equal(await s.sessions.reconnect(new FakePeer(), secret), null)
    t.equal(await s.store.load(hashSecret(secret)), undefined)
  })

  t.test('a session that left before it was ever saved is never saved', async (t) => {
    const s = setup()
    const { user, secret } = registered(s)
    s.users.setPosition(user, { x: 1, y: 1, z: 1 })
    s.sessions.leave(user)
    await s.sessions.persist()
    t.equal(await s.store.load(hashSecret(secret)), undefined)
    t.equal(await s.sessions.reconnect(new FakePeer(), secret), null)
  })

  t.test('a user that left is not expired from grace later', async (t) => {
    const s = setup()
    const { user, secret } = registered(s)
    s.sessions.disconnect(user)
    const other = registered(s)
    s.sessions.leave(user)
    presence(s.users)
    s.clock.advance(GRACE)
    t.equal(s.sessions.expireGrace(), 0)
    t.equal(s.users.get(other.user.id), other.user)
    t.equal(await s.sessions.reconnect(new FakePeer(), secret), null)
  })
})

t.test('persist', async (t) => {
  t.test('writes every change since the last persist in one store.save call', async (t) => {
    const s = setup()
    const a = registered(s)
    const b = registered(s)
    const c = registered(s)
    s.users.setPosition(a.user, { x: 1, y: 1, z: 1 })
    s.users.setPosition(a.user, { x: 2, y: 2, z: 2 })
    s.sessions.disconnect(b.user)
    await s.sessions.persist()
    t.equal(s.store.saves, 1)
    t.strictSame(s.store.batches[0]?.map((r) => r.id).sort(), [a.user.id, b.user.id, c.user.id].sort())

    await s.sessions.persist()
    t.equal(s.store.saves, 1, 'nothing changed: no write')

    s.clock.advance(MOVES_SAVED_EVERY_MS)
    s.users.setPosition(c.user, { x: 9, y: 9, z: 9 })
    s.users.setProfile(a.user, 'Ann again', a.user.state)
    await s.sessions.persist()
    t.equal(s.store.saves, 2)
    t.strictSame(s.store.batches[1]?.map((r) => r.id).sort(), [a.user.id, c.user.id].sort())
    t.strictSame(s.store.batches[1]?.find((r) => r.id === c.user.id)?.position, { x: 9, y: 9, z: 9 })
  })

  t.test('a user that only moves is written at most once a second; any other change, or a flush, writes it at once', async (t) => {
    const s = setup()
    const a = registered(s)
    const b = registered(s)
    await s.sessions.persist()
    const saves = s.store.saves
    for (let x = 1; x <= 5; x++) {
      s.clock.advance(MOVES_SAVED_EVERY_MS / 5 - 1)
      s.users.setPosition(a.user, { x, y: 0, z: 0 })
      await s.sessions.persist()
    }
    t.equal(s.store.saves, saves, 'five ticks of moves within a second: no write')
    s.clock.advance(5)
    await s.sessions.persist()
    t.equal(s.store.saves, saves + 1, 'a second after the last write of moves: one')
    t.strictSame(s.store.batches.at(-1)?.map((r) => [r.id, r.position.x]), [[a.user.id, 5]], 'with the latest position')

    s.users.setPosition(b.user, { x: 7, y: 0, z: 0 })
    s.users.setProfile(b.user, 'Bea', b.user.state)
    await s.sessions.persist()
    t.strictSame(s.store.batches.at(-1)?.map((r) => [r.id, r.name, r.position.x]), [[b.user.id, 'Bea', 7]], 'a move with a change of name is written at once, position and all')

    s.users.setPosition(a.user, { x: 8, y: 0, z: 0 })
    await s.sessions.flush()
    t.strictSame(s.store.batches.at(-1)?.map((r) => [r.id, r.position.x]), [[a.user.id, 8]], 'flush (shutdown) writes a pending move')
  })

  t.test('changes made while a batch is in flight go in the next batch; flush writes them', async (t) => {
    const s = setup()
    const a = registered(s)
    let open = (): void => {}
    s.store.gate = new Promise((resolve) => { open = resolve })
    const first = s.sessions.persist()
    const b = registered(s)
    await s.sessions.persist()
    t.equal(s.store.saves, 1, 'no overlapping batch')
    const flushed = s.sessions.flush()
    open()
    await first
    s.store.gate = null
    await flushed
    t.equal(s.store.saves, 2)
    t.strictSame(s.store.batches[0]?.map((r) => r.id), [a.user.id])
    t.strictSame(s.store.batches[1]?.map((r) => r.id), [b.user.id])
  })

  t.test('records carry what a reconnect needs and a connected user is seen now', async (t) => {
    const s = setup()
    const { user, secret } = registered(s)
    s.clock.advance(12_345)
    await s.sessions.persist()
    const record = await s.store.load(hashSecret(secret))
    t.strictSame(record && { ...record, state: { ...record.state } }, {
      secretHash: hashSecret(secret),
      id: user.id,
      name: 'Ann',
      room: 'r1',
      position: { x: 1, y: 2, z: 3 },
      state: { color: 'red' },
      listeningTo: [],
      lastSeen: s.clock.now()
    })
  })
})
