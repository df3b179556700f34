/**
 * Helpers shared by the client tests: waiting for client events, an in-memory
 * secret storage, a hand-driven timer queue, a scriptable fake WebSocket, a
 * Shoal server on a chosen port, and access to the client's current socket.
 */
import net from 'node:net'
import WebSocket from 'ws'
import shoal, { type ShoalOptions } from '../../index.js'
import { FAST, testApp, type TestServer } from '../helpers.js'
import { request } from '../http.js'
import { WAIT_MS } from '../wait.js'
import type { ShoalClient } from '../../src/client/client.js'
import type {
  SecretStorage, ShoalClientEvents, ShoalClientOptions, Timers, WebSocketConstructor, WebSocketLike
} from '../../src/client/index.js'
import type { ServerMessageT, UserT, WelcomeMessageT } from '../../schemas/protocol.js'

export type EventName = keyof ShoalClientEvents
export type EventArgs<K extends EventName> = ShoalClientEvents[K]

/**
 * Resolves with the arguments of the next `event` of `client` for which
 * `predicate` holds; rejects after `timeoutMs`.
 */
export function once<K extends EventName> (
  client: ShoalClient,
  event: K,
  predicate?: (...args: EventArgs<K>) => boolean,
  timeoutMs = WAIT_MS
): Promise<EventArgs<K>> {
  return new Promise((resolve, reject) => {
    const listener = (...args: EventArgs<K>): void => {
      if (predicate !== undefined && !predicate(...args)) return
      clearTimeout(timer)
      client.off(event, listener as never)
      resolve(args)
    }
    const timer = setTimeout(() => {
      client.off(event, listener as never)
      reject(new Error(`waited ${timeoutMs} ms for a ${String(event)} event${predicate === undefined ? '' : ` where ${predicate.toString()}`}`))
    }, timeoutMs)
    client.on(event, listener as never)
  })
}

/** Events that may change a client's copy of its room. */
const ROOM_EVENTS: EventName[] = ['welcome', 'snapshot', 'join', 'leave', 'update', 'positions']

/**
 * Resolves once `check()` holds, checking now and after every room event of `client`;
 * rejects after `timeoutMs` with the check's own source, which says what was waited for.
 */
export function until (client: ShoalClient, check: () => boolean, timeoutMs = WAIT_MS): Promise<void> {
  if (check()) return Promise.resolve()
  return new Promise((resolve, reject) => {
    const listener = (): void => {
      if (!check()) return
      done()
      resolve()
    }
    const done = (): void => {
      clearTimeout(timer)
      for (const event of ROOM_EVENTS) client.off(event, listener)
    }
    const timer = setTimeout(() => {
      done()
      reject(new Error(`waited ${timeoutMs} ms for ${check.toString()}`))
    }, timeoutMs)
    for (const event of ROOM_EVENTS) client.on(event, listener)
  })
}

/** Records every event of a client, in order, with its arguments. */
export function recordEvents (client: ShoalClient): Array<{ event: EventName, args: unknown[] }> {
  const log: Array<{ event: EventName, args: unknown[] }> = []
  const events: EventName[] = ['open', 'welcome', 'snapshot', 'join', 'leave', 'update', 'positions', 'data', 'error', 'state', 'rtt']
  for (const event of events) client.on(event, (...args: unknown[]) => { log.push({ event, args }) })
  return log
}

export class MemoryStorage implements SecretStorage {
  readonly values = new Map<string, string>()
  getItem (key: string): string | null { return this.values.get(key) ?? null }
  setItem (key: string, value: string): void { this.values.set(key, value) }
  removeItem (key: string): void { this.values.delete(key) }
}

interface FakeTimer { id: number, at: number, ms: number, callback: () => void }

/**
 * A hand-driven timer queue: nothing fires until the test says so. `requests`
 * keeps every delay the client asked for, in order.
 */
export class FakeTimers implements Timers {
  time = 1000
  readonly requests: number[] = []
  readonly pending = new Map<number, FakeTimer>()
  private nextId = 1
  private waiters: Array<() => void> = []

  setTimeout (callback: () => void, ms: number): unknown {
    const id = this.nextId++
    this.pending.set(id, { id, at: this.time + ms, ms, callback })
    this.requests.push(ms)
    const waiters = this.waiters
    this.waiters = []
    for (const wake of waiters) wake()
    return id
  }

  clearTimeout (handle: unknown): void {
    if (typeof handle === 'number') this.pending.delete(handle)
  }

  now (): number { return this.time }

  /** Moves the clock by `ms`, firing due timers in order of their due time. */
  advance (ms: number): void {
    const end = this.time + ms
    for (;;) {
      const due = [...this.pending.values()].filter((timer) => timer.at <= end).sort((a, b) => a.at - b.at || a.id - b.id)[0]
      if (due === undefined) break
      this.pending.delete(due.id)
      this.time = Math.max(this.time, due.at)
      due.callback()
    }
    this.time = end
  }

  /** Fires every pending timer now, whatever its due time (the clock jumps to the latest). */
  fireAll (): void {
    const timers = [...this.pending.values()].sort((a, b) => a.at - b.at || a.id - b.id)
    for (const timer of timers) {
      if (!this.pending.delete(timer.id)) continue
      this.time = Math.max(this.time, timer.at)
      timer.callback()
    }
  }

  /** Resolves once at least `count` timers have been requested in all; rejects after `timeoutMs` of real time. */
  async waitForRequests (count: number, timeoutMs = WAIT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (this.requests.length < count) {
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`waited ${timeoutMs} ms for ${count} timer requests; only ${this.requests.length} came`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.waiters.push(() => { clearTimeout(timer); resolve() })
      })
    }
  }
}

/** A deterministic pseudo-random generator (mulberry32). */
export function seeded (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = a
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

/** `ws`'s WebSocket class fits the client's constructor type as it is. */
export const NodeWebSocket: WebSocketConstructor = WebSocket

/** The client's current socket (a private field): tests reach it to simulate network failures. */
export function socketOf (client: ShoalClient): WebSocket | null {
  return (client as unknown as { socket: WebSocket | null }).socket
}

/** Cuts the client's TCP connection without a close frame, like a network loss (the client sees 1006). */
export function dropConnection (client: ShoalClient): void {
  const socket = socketOf(client)
  if (socket === null) throw new Error('client has no socket')
  socket.terminate()
}

/** Resolves when the client's current underlying socket has closed (after the client handled it). */
export function socketClosed (client: ShoalClient): Promise<number> {
  const socket = socketOf(client)
  if (socket === null) return Promise.resolve(0)
  if (socket.readyState === WebSocket.CLOSED) return Promise.resolve(0)
  return new Promise((resolve) => { socket.once('close', (code: number) => resolve(code)) })
}

/** Server settings for client tests: fast ticks, short grace, no register budget in the way. */
export const CLIENT_TEST_SERVER: ShoalOptions = { tickHz: 50, graceMs: 200, registerLimit: 10_000, demo: false }

/**
 * A Shoal server listening on `port` (0: any free port), like test/helpers.ts
 * startServer. `close` is `app.close()`, whose drain closes open sockets with 1012.
 */
export async function startServerOn (port: number, options: ShoalOptions = {}): Promise<TestServer> {
  const app = testApp()
  await app.register(shoal, { ...FAST, ...CLIENT_TEST_SERVER, ...options })
  await app.listen({ port, host: '127.0.0.1' })
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('no port')
  const base = `127.0.0.1:${address.port}${options.prefix ?? ''}`
  return { app, url: `http://${base}`, wsUrl: `ws://${base}${options.path ?? '/ws'}`, close: () => app.close() }
}

/** A TCP port on which nothing listens (it was free a moment ago). */
export async function freePort (): Promise<number> {
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  await new Promise<void>((resolve) => server.close(() => resolve()))
  if (address === null || typeof address === 'string') throw new Error('no port')
  return address.port
}

/** The value of a Prometheus counter sample (0 when absent). */
export async function metric (server: TestServer, sample: string): Promise<number> {
  const text = (await request(`${server.url}/metrics`)).body
  for (const line of text.split('\n')) {
    if (line.startsWith(sample + ' ')) return Number(line.slice(sample.length + 1))
  }
  return 0
}

/** A comparable view of users: sorted by id, plain JSON (no prototypes), listening sets sorted. */
export function normalize (users: Iterable<UserT>): UserT[] {
  return [...users]
    .map((user) => JSON.parse(JSON.stringify(user)) as UserT)
    .map((user) => ({ ...user, listeningTo: [...user.listeningTo].sort() }))
    .sort((a, b) => a.id.localeCompare(b.id))
}

/** The server's view of `room` without `selfId`, comparable with a client's `users`. */
export function serverTruth (server: TestServer, room: string, selfId: string | null): UserT[] {
  return normalize(server.app.shoal.users(room).filter((user) => user.id !== selfId))
}

/** What the client holds, comparable with `serverTruth`. */
export function mirrorOf (client: ShoalClient): UserT[] {
  return normalize(client.users.values())
}

// ---- a scriptable WebSocket for schedule tests ---------------------------------

export class FakeSocket implements WebSocketLike {
  readyState = 0
  binaryType = 'blob'
  readonly sent: Array<Record<string, unknown>> = []
  readonly closeCalls: number[] = []
  onopen: ((event: unknown) => void) | null = null
  onclose: ((event: { code: number, reason: string }) => void) | null = null
  onmessage: ((event: { data: unknown }) => void) | null = null
  onerror: ((event: unknown) => void) | null = null

  constructor (readonly url: string) {}

  send (data: string): void {
    if (this.readyState !== 1) throw new Error('send on a socket that is not open')
    this.sent.push(JSON.parse(data) as Record<string, unknown>)
  }

  /** The client closed the socket: the close completes at once. */
  close (code = 1005): void {
    this.closeCalls.push(code)
    this.serverClose(code)
  }

  // -- driven by the test --
  open (): void {
    this.readyState = 1
    this.onopen?.({})
  }

  receive (message: ServerMessageT | Record<string, unknown>): void {
    this.onmessage?.({ data: JSON.stringify(message) })
  }

  /** A binary frame, as the browser delivers it with binaryType 'arraybuffer'. */
  receiveBinary (bytes: Uint8Array): void {
    this.onmessage?.({ data: bytes.slice().buffer })
  }

  serverClose (code: number): void {
    if (this.readyState === 3) return
    this.readyState = 3
    this.onclose?.({ code, reason: '' })
  }

  /** Sent messages of a type. */
  ofType (type: string): Array<Record<string, unknown>> {
    return this.sent.filter((message) => message.type === type)
  }
}

/** A WebSocket class whose instances the test drives; `sockets` lists them in creation order. */
export function fakeSocketClass (): { Socket: WebSocketConstructor, sockets: FakeSocket[] } {
  const sockets: FakeSocket[] = []
  const Socket = class extends FakeSocket {
    constructor (url: string) {
      super(url)
      sockets.push(this)
    }
  }
  return { Socket, sockets }
}

export function wireUser (id: string, fields: Partial<UserT> = {}): UserT {
  return { id, name: `user-${id}`, room: 'lobby', position: { x: 0, y: 0, z: 0 }, state: {}, listeningTo: [], connected: true, ...fields }
}

export function welcomeFor (id: string, fields: Partial<WelcomeMessageT> = {}): WelcomeMessageT {
  const room = fields.room ?? 'lobby'
  return {
    type: 'welcome',
    protocol: 1,
    id,
    secret: `secret-of-${id}`,
    room,
    resumed: false,
    you: wireUser(id, { room }),
    users: [],
    heartbeatMs: 10_000,
    serverTime: 0,
    tickHz: 20,
    ...fields
  }
}

/** Options for a client on fake sockets and fake timers. */
export function fakeClientOptions (Socket: WebSocketConstructor, timers: FakeTimers, extra: Partial<ShoalClientOptions> = {}): ShoalClientOptions {
  return { url: 'ws://fake/ws', WebSocket: Socket, timers, random: () => 0, pingIntervalMs: 0, storage: new MemoryStorage(), ...extra }
}
