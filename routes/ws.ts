/**
 * The WebSocket endpoint: the upgrade (refused over HTTP while draining or when
 * `authorize` says no), then each socket's events handed to the engine. Nothing
 * a client sends can throw out of here.
 */
import type { ServerResponse } from 'node:http'
import type { Socket as NetSocket } from 'node:net'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type {} from '@fastify/websocket'
import type { RawData, WebSocket } from 'ws'
import { refusalOf, type Refusal } from '../plugins/config.js'
import type { Connection } from '../src/core/transport/connection.js'

/** Whether the upgrade's Origin may connect (a request without one is not a browser's). */
async function originAllowed (app: FastifyInstance, request: FastifyRequest): Promise<boolean> {
  const { allowedOrigins } = app.shoalConfig
  const origin = request.headers.origin
  if (allowedOrigins === undefined || origin === undefined) return true
  return typeof allowedOrigins === 'function' ? await allowedOrigins(origin, request) === true : allowedOrigins.includes(origin)
}

/** Why the upgrade is refused, or null: decided before it, so a refusal is a plain HTTP answer. */
async function refusal (app: FastifyInstance, request: FastifyRequest): Promise<Refusal | null> {
  const { shoalConnections: connections, shoalConfig: config } = app
  if (connections.draining) return { statusCode: 503, error: 'draining' }
  if (connections.countFrom(request.ip) >= config.maxConnectionsPerAddress) return { statusCode: 429, error: 'too many connections from this address' }
  if (!await originAllowed(app, request)) return { statusCode: 403, error: 'origin not allowed' }
  return config.authorize === undefined ? null : refusalOf(await config.authorize(request))
}

export default async function wsRoute (app: FastifyInstance): Promise<void> {
  const engine = app.shoalEngine
  // Listeners are shared functions that find the socket's connection here, so a
  // connection carries no closures of its own, and none keeps its upgrade request.
  const connections = new WeakMap<WebSocket, Connection>()
  const withConnection = (handle: (connection: Connection) => void) => function (this: WebSocket): void {
    const connection = connections.get(this)
    if (connection !== undefined) handle(connection)
  }
  function onMessage (this: WebSocket, data: RawData, isBinary: boolean): void {
    const connection = connections.get(this)
    if (connection !== undefined) engine.receive(connection, data, isBinary)
  }
  const onPong = withConnection((connection) => engine.pong(connection))
  const onClose = withConnection((connection) => engine.closed(connection))
  /** A broken socket (a reset, a bad frame) ends that connection only. */
  function onSocketError (this: WebSocket, err: Error): void {
    app.log.debug({ err }, 'websocket error')
    this.terminate()
  }

  app.get(app.shoalConfig.path, {
    websocket: true,
    preValidation: async (request, reply) => {
      const refused = await refusal(app, request)
      if (refused !== null) await reply.code(refused.statusCode).send({ error: refused.error })
    }
  }, (socket: WebSocket, request: FastifyRequest) => {
    releaseUpgradeRequest(socket, request, onSocketError)
    connections.set(socket, engine.open(socket, request.ip))
    socket.on('message', onMessage)
    socket.on('pong', onPong)
    socket.on('close', onClose)
  })
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
