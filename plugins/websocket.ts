/**
 * @fastify/websocket, registered unless the host app did so itself (then Shoal
 * uses the host's, and still enforces its own maxPayload). Registered in the
 * host's context, since its upgrade listener is per server.
 */
import fp from 'fastify-plugin'
import websocket from '@fastify/websocket'
import type { FastifyInstance } from 'fastify'
import { sharedFrameOptions } from '../src/adapters/shared-frame-socket.js'

/** Marks an HTTP server whose upgrades a @fastify/websocket listener already routes. */
const kUpgradesRouted = Symbol.for('shoal.upgradesRouted')

/**
 * Its decorator and route hook are per context, but its upgrade listener is per
 * server and routes through the shared router, which reaches every context's
 * routes: a sibling context that registers it again keeps its route hook and
 * drops the second listener, which would route each upgrade twice.
 */
async function registerWebsocket (app: FastifyInstance, maxPayload: number): Promise<void> {
  const server = app.server as typeof app.server & { [kUpgradesRouted]?: true }
  const before = new Set(server.listeners('upgrade'))
  await app.register(websocket, {
    // Shoal keeps its own registry of connections (ws's would cost a closure per socket),
    // and frames what many sockets get once for all of them (SharedFrameSocket).
    options: { maxPayload, clientTracking: false, ...sharedFrameOptions },
    // Each instance drains its own clients with 1012 before this runs.
    preClose (done) { this.websocketServer.close(() => done()) },
    errorHandler (err, _socket, request) { request.log.debug({ err }, 'websocket protocol error') }
  })
  if (server[kUpgradesRouted] === true) {
    for (const listener of server.listeners('upgrade')) {
      if (!before.has(listener)) server.removeListener('upgrade', listener as (...args: unknown[]) => void)
    }
  }
  server[kUpgradesRouted] = true
}

export default fp<{ maxPayload: number }>(async function shoalWebsocket (app, { maxPayload }) {
  if (!app.hasDecorator('websocketServer')) await registerWebsocket(app, maxPayload)
}, { name: 'shoal-websocket', fastify: '5.x' })
