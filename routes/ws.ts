/**
 * The WebSocket endpoint. Each inbound frame goes through the contract's checks
 * in order (rate limit, envelope and schema, register budget, connection state)
 * and then to its handler in the dispatch table. Nothing a client sends can
 * throw out of here.
 */
import type { ServerResponse } from 'node:http'
import type { Socket as NetSocket } from 'node:net'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type {} from '@fastify/websocket'
import type { RawData, WebSocket } from 'ws'
import type { ErrorCodeT, ServerMessageT } from '../schemas/protocol.js'
import { Connection } from '../src/connection.js'
import { parseFrame, type ProtocolError } from '../src/validation.js'
import { handlers, type HandlerContext } from './handlers.js'

export const CLOSE_POLICY = 1008
export const CLOSE_TOO_BIG = 1009

const stateErrors: Record<'user' | 'guest', { code: ErrorCodeT, message: string }> = {
  user: { code: 'not_registered', message: 'send register or reconnect first' },
  guest: { code: 'already_registered', message: 'this connection already has a user' }
}

/** What the handlers get for one connection; methods rather than per-connection closures keep idle connections small. */
class SocketContext implements HandlerContext {
  constructor (readonly app: FastifyInstance, readonly connection: Connection) {}

  reply (message: ServerMessageT): void {
    this.app.shoalBroadcast.send(this.connection, JSON.stringify(message), message.type)
  }

  fail (error: ProtocolError): void {
    this.app.shoalMetrics.error(error.code)
    this.reply({ type: 'error', ...error })
  }
}

export default async function wsRoute (app: FastifyInstance): Promise<void> {
  const { shoalConfig: config, shoalConnections: connections, shoalMetrics: metrics } = app

  /** Runs before the upgrade, so a refusal is a plain HTTP answer. */
  async function admit (request: FastifyRequest, reply: FastifyReply): Promise<void> {
    if (connections.draining) {
      await reply.code(503).send({ error: 'draining' })
      return
    }
    if (config.authorize === undefined) return
    const verdict = await config.authorize(request)
    if (verdict === true) return
    const { statusCode, message } = verdict === false ? { statusCode: 403, message: undefined } : verdict
    await reply.code(statusCode).send({ error: message ?? (statusCode === 401 ? 'unauthorized' : 'forbidden') })
  }

  // Handlers must not capture `request`: a closure kept by the socket would keep the
  // request, its reply and headers alive for the connection's lifetime.
  const onTaskError = (err: unknown): void => { app.log.error({ err }, 'message handler failed') }
  /** A broken socket (a reset, a bad frame) ends that connection only; `this` is the socket. */
  function onSocketError (this: WebSocket, err: Error): void {
    app.log.debug({ err }, 'websocket error')
    this.terminate()
  }

  /** Each socket's context. Listeners are shared functions that find it here, so a connection carries no closures of its own. */
  const contexts = new WeakMap<WebSocket, SocketContext>()

  function onMessage (this: WebSocket, data: RawData, isBinary: boolean): void {
    const ctx = contexts.get(this)
    // Frames already in flight when the server began closing (leave, takeover, disconnect) are not handled.
    if (ctx === undefined || !ctx.connection.isOpen) return
    const { connection } = ctx
    const admission = connection.limiter.admit(config.clock.now())
    if (admission !== 'ok') {
      if (admission === 'drop-notify') ctx.fail({ code: 'rate_limited', message: 'too many messages; slow down' })
      if (admission === 'close') connection.close(CLOSE_POLICY, 'rate limit exceeded')
      return
    }
    const size = Array.isArray(data) ? data.reduce((sum, part) => sum + part.length, 0) : data.byteLength
    if (size > config.maxPayload) {
      // ws enforces maxPayload itself when Shoal registered it; a host's own registration may allow more.
      connection.close(CLOSE_TOO_BIG, 'message too big')
      return
    }
    if (isBinary) {
      metrics.received('invalid')
      ctx.fail({ code: 'unsupported_frame', message: 'binary frames are not supported; send JSON text' })
      return
    }
    connection.serially(() => dispatch(ctx, data.toString()))
  }

  function onPong (this: WebSocket): void {
    const ctx = contexts.get(this)
    if (ctx !== undefined) ctx.connection.alive = true
  }

  function onClose (this: WebSocket): void {
    const connection = contexts.get(this)?.connection
    if (connection === undefined) return
    connection.closed = true
    connections.delete(connection)
    const user = connection.user
    if (user !== null && user.peer === connection) app.shoalSessions.disconnect(user)
  }

  app.get(config.path, { websocket: true, preValidation: admit }, (socket: WebSocket, request: FastifyRequest) => {
    releaseUpgradeRequest(socket, request, onSocketError)
    const connection = new Connection(socket, request.ip, app.shoalLimits.forConnection(), onTaskError)
    connections.add(connection)
    contexts.set(socket, new SocketContext(app, connection))
    socket.on('message', onMessage)
    socket.on('pong', onPong)
    socket.on('close', onClose)
  })

  function dispatch (ctx: HandlerContext, text: string): void | Promise<void> {
    if (!ctx.connection.isOpen) return
    const parsed = parseFrame(text)
    if (!parsed.ok) {
      metrics.received(parsed.error.ref !== undefined && parsed.error.code === 'invalid_message' ? parsed.error.ref : 'invalid')
      return ctx.fail(parsed.error)
    }
    const { message } = parsed
    metrics.received(message.type)
    if ((message.type === 'register' || message.type === 'reconnect') &&
        !app.shoalLimits.registrations.admit(ctx.connection.address, config.clock.now())) {
      return ctx.fail({ code: 'rate_limited', message: 'too many register and reconnect messages from this address; try again later', ref: message.type })
    }
    const entry = handlers[message.type]
    const user = ctx.connection.user
    if (entry.audience === 'user' && user === null) return ctx.fail({ ...stateErrors.user, ref: message.type })
    if (entry.audience === 'guest' && user !== null) return ctx.fail({ ...stateErrors.guest, ref: message.type })
    // The table's entry and the message share a type; TypeScript cannot correlate the two through the union.
    return (entry.handle as (ctx: HandlerContext, message: unknown, user: unknown) => void | Promise<void>)(ctx, message, user)
  }
}

/**
 * An idle connection should cost its socket and its user, not its upgrade request:
 * @fastify/websocket's error listener closes over the request and reply, and the
 * hijacked HTTP response stays attached to the TCP socket (with the request and
 * its headers), several KiB per connection for its whole life. Replace the one
 * and detach the other, so all of it can be collected.
 */
function releaseUpgradeRequest (socket: WebSocket, request: FastifyRequest, onError: (this: WebSocket, err: Error) => void): void {
  socket.removeAllListeners('error')
  socket.on('error', onError)
  // `_httpMessage` is Node's link from a socket to its response; detachSocket is the public way to cut it.
  const tcp = request.raw.socket as NetSocket & { _httpMessage?: ServerResponse | null }
  tcp._httpMessage?.detachSocket(tcp)
}
