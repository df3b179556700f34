/**
 * Baseline 1 of the fan-out benchmark: the naive design Shoal replaces, on plain
 * `ws` (no Fastify), listening on 127.0.0.1:$PORT (path /ws, plus GET /health).
 *
 * It speaks just enough of Shoal's protocol for the load generator:
 * - `register` → `welcome` with `id` and `users` = the full list of the room's
 *   other users; then the full user list of the room (as a `snapshot`) goes to
 *   everyone in it. The same full-list broadcast follows every leave (socket close)
 *   and every metadata change (`update` with `name` or `state`).
 * - `update` with a position → at once, one `JSON.stringify` of
 *   `{"type":"positions","t":..,"p":[[id,x,y,z]]}` sent to EVERY other client of the
 *   room. No ticks, no coalescing, no backpressure, no rate limits.
 * - `ping` → `pong`.
 * This is the design the issue calls N-squared: each update costs one send per
 * member, and each join costs one full list per member.
 */
import { randomUUID } from 'node:crypto'
import { createServer } from 'node:http'
import { WebSocketServer, type WebSocket } from 'ws'

interface Position { x: number, y: number, z: number }
interface User {
  id: string
  name: string
  room: string
  position: Position
  state: Record<string, unknown>
  listeningTo: string[]
  connected: boolean
}
interface Client { socket: WebSocket, user: User | null }

interface Inbound {
  type?: unknown
  name?: unknown
  room?: unknown
  state?: unknown
  position?: { x?: unknown, y?: unknown, z?: unknown }
  t?: unknown
}

const port = Number(process.env.PORT ?? 3000)
const host = process.env.HOST ?? '127.0.0.1'
const rooms = new Map<string, Set<Client>>()
let connections = 0

const http = createServer((request, response) => {
  if (request.url === '/health') {
    let users = 0
    for (const members of rooms.values()) users += members.size
    response.writeHead(200, { 'content-type': 'application/json' })
    response.end(JSON.stringify({ status: 'ok', connections, users, rooms: rooms.size }))
    return
  }
  response.writeHead(404)
  response.end()
})
const wss = new WebSocketServer({ server: http, path: '/ws', maxPayload: 16 * 1024 })

const num = (value: unknown, fallback: number): number => typeof value === 'number' && Number.isFinite(value) ? value : fallback

function usersOf (room: string, except?: Client): User[] {
  const list: User[] = []
  for (const member of rooms.get(room) ?? []) {
    if (member !== except && member.user !== null) list.push(member.user)
  }
  return list
}

/** The naive presence: the whole list, to everyone in the room, on every change. */
function broadcastList (room: string): void {
  const frame = JSON.stringify({ type: 'snapshot', room, users: usersOf(room) })
  for (const member of rooms.get(room) ?? []) member.socket.send(frame)
}

function reply (client: Client, message: object): void {
  client.socket.send(JSON.stringify(message))
}

function handle (client: Client, text: string): void {
  let message: Inbound
  try {
    message = JSON.parse(text) as Inbound
  } catch {
    reply(client, { type: 'error', code: 'bad_json', message: 'not JSON' })
    return
  }
  const user = client.user
  switch (message.type) {
    case 'register': {
      if (user !== null) return reply(client, { type: 'error', code: 'already_registered', message: 'already registered', ref: 'register' })
      const room = typeof message.room === 'string' ? message.room : 'lobby'
      const p = message.position ?? {}
      const created: User = {
        id: randomUUID(),
        name: typeof message.name === 'string' ? message.name : 'guest',
        room,
        position: { x: num(p.x, 0), y: num(p.y, 0), z: num(p.z, 0) },
        state: typeof message.state === 'object' && message.state !== null ? message.state as Record<string, unknown> : {},
        listeningTo: [],
        connected: true
      }
      client.user = created
      let members = rooms.get(room)
      if (members === undefined) rooms.set(room, members = new Set())
      reply(client, { type: 'welcome', protocol: 1, id: created.id, secret: randomUUID(), room, resumed: false, you: created, users: usersOf(room), heartbeatMs: 0, serverTime: Date.now() })
      members.add(client)
      broadcastList(room)
      return
    }
    case 'update': {
      if (user === null) return reply(client, { type: 'error', code: 'not_registered', message: 'register first', ref: 'update' })
      const p = message.position
      if (p !== undefined) {
        user.position = { x: num(p.x, 0), y: num(p.y, 0), z: num(p.z, 0) }
        const frame = JSON.stringify({ type: 'positions', t: Date.now(), p: [[user.id, user.position.x, user.position.y, user.position.z]] })
        for (const member of rooms.get(user.room) ?? []) {
          if (member !== client) member.socket.send(frame)
        }
      }
      if (typeof message.name === 'string' || (typeof message.state === 'object' && message.state !== null)) {
        if (typeof message.name === 'string') user.name = message.name
        if (typeof message.state === 'object' && message.state !== null) Object.assign(user.state, message.state)
        broadcastList(user.room)
      }
      return
    }
    case 'ping':
      return reply(client, { type: 'pong', t: message.t, serverTime: Date.now() })
    default:
      return reply(client, { type: 'error', code: 'unknown_type', message: 'unknown type' })
  }
}

wss.on('connection', (socket) => {
  connections++
  const client: Client = { socket, user: null }
  socket.on('message', (data) => handle(client, String(data)))
  socket.on('error', () => {})
  socket.on('close', () => {
    connections--
    const user = client.user
    if (user === null) return
    const members = rooms.get(user.room)
    members?.delete(client)
    if (members?.size === 0) rooms.delete(user.room)
    else broadcastList(user.room)
  })
})

const shutdown = (): void => {
  for (const client of wss.clients) client.terminate()
  http.close(() => process.exit(0))
  setTimeout(() => process.exit(0), 1000).unref()
}
process.on('SIGTERM', shutdown)
process.on('SIGINT', shutdown)

http.listen(port, host, () => process.stderr.write(`naive baseline listening on ${host}:${port}\n`))
