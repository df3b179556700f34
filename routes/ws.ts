/**
 * The WebSocket endpoint: the upgrade (refused over HTTP while draining or when
 * `authorize` says no), then each socket's events handed to the engine. Nothing
 * a client sends can throw out of here.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { RawData, WebSocket } from 'ws'
import type { IdentityT } from '../schemas/identity.js'
import { isIdentityVerdict, refusalOf, type Refusal } from '../src/host/options.js'
import type { Upgrade } from '../src/core/engine.js'
import { checkedIdentity } from '../src/core/identity.js'
import type { Connection } from '../src/core/transport/connection.js'

/** Whether the upgrade's Origin may connect (a request without one is not a browser's). */
async function originAllowed (app: FastifyInstance, request: FastifyRequest): Promise<boolean> {
  const { allowedOrigins } = app.shoalConfig
  const origin = request.headers.origin
  if (allowedOrigins === undefined || origin === undefined) return true
  return typeof allowedOrigins === 'function' ? await allowedOrigins(origin, request) === true : allowedOrigins.includes(origin)
}

/** Why the upgrade is refused, or the identity `authorize` gave (null: none): decided before it, so a refusal is a plain HTTP answer. */
async function admission (app: FastifyInstance, request: FastifyRequest): Promise<{ refusal: Refusal } | { identity: IdentityT | null }> {
  const { shoalConnections: connections, shoalConfig: config } = app
  if (connections.draining) return { refusal: { statusCode: 503, error: 'draining' } }
  if (connections.countFrom(request.ip) >= config.maxConnectionsPerAddress) return { refusal: { statusCode: 429, error: 'too many connections from this address' } }
  if (!await originAllowed(app, request)) return { refusal: { statusCode: 403, error: 'origin not allowed' } }
  if (config.authorize === undefined) return { identity: null }
  const verdict = await config.authorize(request)
  if (!isIdentityVerdict(verdict)) {
    const refused = refusalOf(verdict)
    return refused === null ? { identity: null } : { refusal: refused }
  }
  try {
    return { identity: checkedIdentity(verdict, 'authorize') }
  } catch (err) {
    app.log.error({ err }, 'authorize returned an invalid identity')
    return { refusal: { statusCode: 500, error: 'the server could not identify this client' } }
  }
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
  // The identity authorize gave, from the upgrade's check to its socket.
  const identities = new WeakMap<FastifyRequest, IdentityT>()
  const keepRequest = app.shoalConfig.authenticate !== undefined
  /** A broken socket (a reset, a bad frame) ends that connection only. */
  function onSocketError (this: WebSocket, err: Error): void {
    app.log.debug({ err }, 'websocket error')
    this.terminate()
  }

  // Every URL of the route (Fastify adds a trailing-slash twin for a path of '/' under a prefix) is this instance's to upgrade.
  app.addHook('onRoute', (route) => { if (route.method === 'GET') app.shoalWebsocket.claim(route.url) })

  /** Hands a socket's events to the engine; its listeners find the connection, holding nothing of the upgrade. */
  function opened (socket: WebSocket, request: FastifyRequest): void {
    const identity = identities.get(request) ?? null
    const upgrade: Upgrade | undefined = identity === null && !keepRequest ? undefined : { identity, ...(keepRequest && { request }) }
    connections.set(socket, engine.open(socket, request.ip, upgrade))
    socket.on('error', onSocketError)
    socket.on('message', onMessage)
    socket.on('pong', onPong)
    socket.on('close', onClose)
  }

  app.get(app.shoalConfig.path, {
    preValidation: async (request, reply) => {
      const verdict = await admission(app, request)
      if ('refusal' in verdict) await reply.code(verdict.refusal.statusCode).send({ error: verdict.refusal.error })
      else if (verdict.identity !== null) identities.set(request, verdict.identity)
    }
  }, async (request, reply) => {
    if (!app.shoalWebsocket.accept(request.raw, (socket) => opened(socket, request))) {
      return await reply.code(426).header('upgrade', 'websocket').send({ error: 'this endpoint takes WebSocket upgrades only' })
    }
    reply.hijack()
  })
}
