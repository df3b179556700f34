/**
 * Baseline 2 of the fan-out benchmark: Socket.IO 4 (websocket transport only, no
 * HTTP long-polling), listening on 127.0.0.1:$PORT (default path /socket.io/, plus
 * GET /health), written the way a typical Socket.IO app does it:
 * - `register` event `{ name?, room?, position? }` → `welcome` event to the sender
 *   with `{ id, users }` (the others), and `presence` `{ joined: [user] }` to the others.
 * - `update` event `{ position?, name?, state? }` → for a position, at once,
 *   `socket.broadcast.emit('positions', { t, p: [[id, x, y, z]] })`: every other socket,
 *   no ticks, no coalescing (Socket.IO's adapter encodes the packet once and writes
 *   it to each socket). Name or state: `presence` `{ updated: [...] }` to the others.
 * - disconnect → `presence` `{ left: [id] }` to the others.
 * A client that registers with a `room` joins that Socket.IO room and its traffic
 * goes to `socket.broadcast.to(room)` instead (the idle and churn scenarios use many
 * rooms); without one (room and crowd scenarios) everything is namespace-wide.
 */
import { randomUUID } from 'node:crypto'
import { createServer } from 'node:http'
import { Server, type Socket } from 'socket.io'

interface Position { x: number, y: number, z: number }
interface User { id: string, name: string, room: string | null, position: Position, state: Record<string, unknown> }
interface UpdateMessage { position?: { x?: unknown, y?: unknown, z?: unknown }, name?: unknown, state?: unknown }
interface RegisterMessage extends UpdateMessage { room?: unknown }

const port = Number(process.env.PORT ?? 3000)
const host = process.env.HOST ?? '127.0.0.1'
const users = new Map<string, User>()
const roomMembers = new Map<string | null, Set<User>>()

const http = createServer((request, response) => {
  if (request.url === '/health') {
    response.writeHead(200, { 'content-type': 'application/json' })
    response.end(JSON.stringify({ status: 'ok', connections: io.engine.clientsCount, users: users.size }))
    return
  }
  if (request.url?.startsWith('/socket.io') !== true) {
    response.writeHead(404)
    response.end()
  }
})
const io = new Server(http, { transports: ['websocket'], serveClient: false, maxHttpBufferSize: 16 * 1024 })

const num = (value: unknown, fallback: number): number => typeof value === 'number' && Number.isFinite(value) ? value : fallback

/** The others, as a broadcast operator: namespace-wide or the user's room. */
function others (socket: Socket, user: User) {
  return user.room === null ? socket.broadcast : socket.broadcast.to(user.room)
}

io.on('connection', (socket) => {
  let user: User | null = null

  socket.on('register', (message: RegisterMessage) => {
    if (user !== null || typeof message !== 'object' || message === null) return
    const p = message.position ?? {}
    const room = typeof message.room === 'string' ? message.room : null
    const created: User = {
      id: randomUUID(),
      name: typeof message.name === 'string' ? message.name : 'guest',
      room,
      position: { x: num(p.x, 0), y: num(p.y, 0), z: num(p.z, 0) },
      state: typeof message.state === 'object' && message.state !== null ? message.state as Record<string, unknown> : {}
    }
    user = created
    users.set(created.id, created)
    let members = roomMembers.get(room)
    if (members === undefined) roomMembers.set(room, members = new Set())
    // The in-memory adapter joins synchronously (join returns a promise only for cluster adapters).
    if (room !== null) socket.join(room) as unknown
    socket.emit('welcome', { id: created.id, users: [...members] })
    members.add(created)
    others(socket, created).emit('presence', { joined: [created] })
  })

  socket.on('update', (message: UpdateMessage) => {
    if (user === null || typeof message !== 'object' || message === null) return
    const p = message.position
    if (p !== undefined) {
      user.position = { x: num(p.x, 0), y: num(p.y, 0), z: num(p.z, 0) }
      const positions = { t: Date.now(), p: [[user.id, user.position.x, user.position.y, user.position.z]] }
      if (user.room === null) socket.broadcast.emit('positions', positions)
      else socket.broadcast.to(user.room).emit('positions', positions)
    }
    if (typeof message.name === 'string' || (typeof message.state === 'object' && message.state !== null)) {
      if (typeof message.name === 'string') user.name = message.name
      if (typeof message.state === 'object' && message.state !== null) Object.assign(user.state, message.state)
      others(socket, user).emit('presence', { updated: [{ id: user.id, name: user.name, state: user.state }] })
    }
  })

  socket.on('disconnect', () => {
    if (user === null) return
    users.delete(user.id)
    const members = roomMembers.get(user.room)
    members?.delete(user)
    if (members?.size === 0) roomMembers.delete(user.room)
    others(socket, user).emit('presence', { left: [user.id] })
  })
})

const shutdown = (): void => {
  io.disconnectSockets(true)
  http.close(() => process.exit(0))
  setTimeout(() => process.exit(0), 1000).unref()
}
process.on('SIGTERM', shutdown)
process.on('SIGINT', shutdown)

http.listen(port, host, () => process.stderr.write(`socket.io baseline listening on ${host}:${port}\n`))
