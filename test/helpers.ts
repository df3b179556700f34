/** Test helpers: a Shoal server on a real port, and a WebSocket client that queues what it receives. */
import Fastify, { type FastifyInstance } from 'fastify'
import WebSocket from 'ws'
import shoal, { type ShoalOptions } from '../index.js'
import type { ServerMessageT, WelcomeMessageT } from '../schemas/protocol.js'

export interface TestServer {
  app: FastifyInstance
  /** http://127.0.0.1:PORT (plus prefix) */
  url: string
  /** ws://127.0.0.1:PORT/ws (plus prefix) */
  wsUrl: string
  close: () => Promise<void>
}

/** Short intervals so that tests never wait on the contract's defaults. */
export const FAST: ShoalOptions = { tickHz: 50, heartbeatMs: 60_000, drainTimeoutMs: 200 }

export async function startServer (options: ShoalOptions = {}): Promise<TestServer> {
  const app = Fastify({ logger: false, return503OnClosing: false })
  await app.register(shoal, { ...FAST, ...options })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('no port')
  const base = `127.0.0.1:${address.port}${options.prefix ?? ''}`
  return { app, url: `http://${base}`, wsUrl: `ws://${base}${options.path ?? '/ws'}`, close: () => app.close() }
}

export interface Closed { code: number, reason: string }

export class TestClient {
  readonly received: ServerMessageT[] = []
  readonly closed: Promise<Closed>
  private waiters: Array<() => void> = []

  private constructor (readonly socket: WebSocket) {
    socket.on('message', (data, isBinary) => {
      if (!isBinary) this.received.push(JSON.parse(String(data)) as ServerMessageT)
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
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve())
      socket.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode ?? 0}`)))
      socket.once('error', reject)
    })
    return client
  }

  send (message: unknown): void {
    this.socket.send(typeof message === 'string' ? message : JSON.stringify(message))
  }

  /**
   * Removes and returns the first received message matching `match` (waiting for
   * it); messages that do not match stay queued.
   */
  async next<T extends ServerMessageT['type']> (type: T, match: (message: Extract<ServerMessageT, { type: T }>) => boolean = () => true, timeoutMs = 3000): Promise<Extract<ServerMessageT, { type: T }>> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const index = this.received.findIndex((m) => m.type === type && match(m as Extract<ServerMessageT, { type: T }>))
      if (index >= 0) return this.received.splice(index, 1)[0] as Extract<ServerMessageT, { type: T }>
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`no ${type} message within ${timeoutMs} ms; queued: ${JSON.stringify(this.received).slice(0, 500)}`)
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
