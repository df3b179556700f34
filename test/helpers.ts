/** Test helpers: a Shoal server on a real port, and a WebSocket client that queues what it receives. */
import Fastify, { type FastifyHttpOptions, type FastifyInstance } from 'fastify'
import type { Server } from 'node:http'
import WebSocket from 'ws'
import shoal, { type ShoalOptions } from '../index.js'
import type { ServerMessageT, WelcomeMessageT } from '../schemas/protocol.js'
import { request } from './http.js'
import { WAIT_MS, within, type WaitOptions } from './wait.js'

export interface TestServer {
  app: FastifyInstance
  /** http://127.0.0.1:PORT (plus prefix) */
  url: string
  /** ws://127.0.0.1:PORT/ws (plus prefix) */
  wsUrl: string
  close: () => Promise<void>
}

/**
 * Short intervals so that tests never wait on the contract's defaults. Presence is
 * not paced (every tick's changes go at once, as most tests freeze a manual clock);
 * the pacing has tests of its own.
 */
export const FAST: ShoalOptions = {
  tickHz: 50,
  heartbeatMs: 60_000,
  drainTimeoutMs: 200,
  // Tests that advance a manual clock far keep their sockets unregistered for long.
  registerTimeoutMs: 3_600_000,
  presenceBytesPerSecond: 1e12,
  presenceWritesPerSecond: 1e12,
  presenceUserIntervalMs: 0
}

/** Where a test's server writes its pino lines (one JSON object per line), to read them back. */
export interface LogStream { write: (line: string) => void }

/**
 * A Fastify instance for a test. Its close() ends every HTTP connection at once
 * (`forceCloseConnections: true`; the default ends only idle ones), so a teardown never
 * waits on a client, the test's own HTTP client included. Lint keeps `Fastify()` out
 * of the other test files.
 */
export function testApp (options: FastifyHttpOptions<Server> = {}): FastifyInstance {
  return Fastify({ logger: false, return503OnClosing: false, ...options, forceCloseConnections: true })
}

/** Listens on a random local port; returns the base URL. */
export async function listen (app: FastifyInstance): Promise<string> {
  await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('no port')
  return `http://127.0.0.1:${address.port}`
}

/** A TestServer view of one instance of an app (under its prefix and path), so joinedClient works with it. */
export function view (app: FastifyInstance, base: string, prefix: string, path = '/ws'): TestServer {
  const url = `${base}${prefix}`
  return { app, url, wsUrl: `${url.replace(/^http/, 'ws')}${path}`, close: () => app.close() }
}

export async function startServer (options: ShoalOptions = {}, logStream?: LogStream): Promise<TestServer> {
  const app = testApp({ logger: logStream === undefined ? false : { level: 'info', stream: logStream } })
  await app.register(shoal, { ...FAST, ...options })
  return view(app, await listen(app), options.prefix ?? '', options.path)
}

export interface Closed { code: number, reason: string }

export class TestClient {
  readonly received: ServerMessageT[] = []
  /** Binary messages (compact `positions`), in order. */
  readonly binary: Buffer[] = []
  readonly closed: Promise<Closed>
  private waiters: Array<() => void> = []

  private constructor (readonly socket: WebSocket) {
    socket.on('message', (data, isBinary) => {
      if (isBinary) this.binary.push(data as Buffer)
      else this.received.push(JSON.parse(String(data)) as ServerMessageT)
      this.wake()
    })
    this.closed = new Promise((resolve) => {
      socket.on('close', (code, reason) => { resolve({ code, reason: String(reason) }); this.wake() })
    })
    socket.on('error', () => {})
  }

  static async connect (url: string, options: WebSocket.ClientOptions = {}): Promise<TestClient> {
    const socket = new WebSocket(url, options)
    const client = new TestClient(socket)
    await within(`the WebSocket to ${url} to open`, new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve())
      socket.once('unexpected-response', (_req, res) => { res.resume(); reject(new Error(`HTTP ${res.statusCode ?? 0}`)) })
      socket.once('error', reject)
    })).catch((err: unknown) => { socket.terminate(); throw err })
    return client
  }

  /** The close, once it comes; a rejection naming `what` after the timeout. */
  async whenClosed (what = 'the socket to close', options: WaitOptions = {}): Promise<Closed> {
    return await within(what, this.closed, options)
  }

  send (message: unknown): void {
    this.socket.send(typeof message === 'string' ? message : JSON.stringify(message))
  }

  /**
   * Removes and returns the first received message matching `match` (waiting for
   * it); messages that do not match stay queued.
   */
  async next<T extends ServerMessageT['type']> (type: T, match?: (message: Extract<ServerMessageT, { type: T }>) => boolean, timeoutMs = WAIT_MS): Promise<Extract<ServerMessageT, { type: T }>> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const index = this.received.findIndex((m) => m.type === type && (match === undefined || match(m as Extract<ServerMessageT, { type: T }>)))
      if (index >= 0) return this.received.splice(index, 1)[0] as Extract<ServerMessageT, { type: T }>
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`waited ${timeoutMs} ms for a ${type} message${match === undefined ? '' : ` where ${match.toString()}`}; queued: ${JSON.stringify(this.received).slice(0, 500)}`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.waiters.push(() => { clearTimeout(timer); resolve() })
      })
    }
  }

  /** Queued and future messages of a type, after a round trip (ping/pong) proves the server has sent all it had. */
  async drainType<T extends ServerMessageT['type']> (type: T): Promise<Array<Extract<ServerMessageT, { type: T }>>> {
    const t = Math.random()
    this.send({ type: 'ping', t })
    await this.next('pong', (m) => m.t === t)
    const found = this.received.filter((m) => m.type === type) as Array<Extract<ServerMessageT, { type: T }>>
    this.received.splice(0, this.received.length, ...this.received.filter((m) => m.type !== type))
    return found
  }

  async register (fields: Record<string, unknown> = {}): Promise<WelcomeMessageT> {
    this.send({ type: 'register', ...fields })
    return await this.next('welcome')
  }

  async reconnect (secret: string): Promise<WelcomeMessageT> {
    this.send({ type: 'reconnect', secret })
    return await this.next('welcome')
  }

  close (): void {
    this.socket.close()
  }

  private wake (): void {
    const waiters = this.waiters
    this.waiters = []
    for (const wake of waiters) wake()
  }
}

/** Registers a client in `room` and returns it with its welcome. */
export async function joinedClient (server: TestServer, fields: Record<string, unknown> = {}): Promise<{ client: TestClient, welcome: WelcomeMessageT }> {
  const client = await TestClient.connect(server.wsUrl)
  const welcome = await client.register(fields)
  return { client, welcome }
}

export interface Joined { client: TestClient, welcome: WelcomeMessageT }

/** A server for one test and every client it makes, all closed when the test ends. */
export async function harness (t: { teardown: (fn: () => unknown) => void }, options: ShoalOptions = {}, logStream?: LogStream) {
  const server = await startServer(options, logStream)
  const clients: TestClient[] = []
  t.teardown(async () => {
    for (const client of clients) client.close()
    await server.close()
  })
  const connect = async (clientOptions: WebSocket.ClientOptions = {}): Promise<TestClient> => {
    const client = await TestClient.connect(server.wsUrl, clientOptions)
    clients.push(client)
    return client
  }
  const join = async (fields: Record<string, unknown> = {}): Promise<Joined> => {
    const joined = await joinedClient(server, fields)
    clients.push(joined.client)
    return joined
  }
  /** A new socket that resumes `secret`. */
  const resume = async (secret: string): Promise<Joined> => {
    const client = await connect()
    return { client, welcome: await client.reconnect(secret) }
  }
  let pair: { watcher: Joined, mover: Joined } | undefined
  let x = 0
  /**
   * Resolves after one whole broadcast tick has run after the call: in a room of
   * their own, a watcher listens to a mover (listened users are in view at any
   * distance, so this also works with interest management) and waits for the
   * mover's entry; by then every frame of that tick is on every socket, before any
   * later reply.
   */
  const tick = async (): Promise<void> => {
    if (pair === undefined) {
      const watcher = await join({ name: 'watcher', room: 'ticker-room', position: { x: -1e6, y: 0 } })
      const mover = await join({ name: 'mover', room: 'ticker-room', position: { x: 1e6, y: 0 } })
      watcher.client.send({ type: 'updatelisteningto', listeningTo: [mover.welcome.id] })
      await watcher.client.drainType('pong')
      pair = { watcher, mover }
    }
    const { watcher, mover } = pair
    const at = 1e6 + ++x
    mover.client.send({ type: 'update', position: { x: at, y: 0 } })
    await watcher.client.next('positions', (m) => m.p.some(([id, px]) => id === mover.welcome.id && px === at))
  }
  /** Lets what the clients sent take effect and be broadcast, then forgets their presence frames. */
  const settle = async (...joined: Joined[]): Promise<void> => {
    for (const { client } of joined) await client.drainType('pong')
    await tick()
    for (const { client } of joined) await client.drainType('presence')
  }
  return { server, clients, connect, join, resume, tick, settle }
}

/** A counter or gauge of the instance's /metrics (unlabelled), 0 when absent. */
export async function metric (server: TestServer, name: string): Promise<number> {
  const text = (await request(`${server.url}/metrics`)).body
  const line = text.split('\n').find((l) => l.startsWith(`${name} `))
  return line === undefined ? 0 : Number(line.slice(name.length + 1))
}
