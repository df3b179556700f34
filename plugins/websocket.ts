/**
 * The instance's WebSocket server: ws with Shoal's own limits (maxPayload, no
 * compression, sockets that frame a room's bytes once, no client set: Shoal
 * keeps its own registry), for the upgrades of this instance's path only.
 *
 * Not @fastify/websocket: its one upgrade listener per server routes every
 * path with the options of whoever registered it, and its request decorator is
 * inherited, so a host's registration and Shoal's would share limits or clash
 * depending on their order. The server's UpgradeRouter keeps the two apart: the
 * host's @fastify/websocket, if any, serves every other path with its own options.
 */
import fp from 'fastify-plugin'
import type { IncomingMessage } from 'node:http'
import { WebSocketServer, type WebSocket } from 'ws'
import { sharedFrameOptions } from '../src/adapters/shared-frame-socket.js'
import { UpgradeRouter } from '../src/adapters/upgrade-router.js'

export interface ShoalWebsocket {
  /** Takes the upgrades of a route's full URL for this instance, until it closes. */
  claim (url: string): void
  /** Completes a claimed upgrade with Shoal's ws server; false for a request that came as plain HTTP. */
  accept (request: IncomingMessage, onSocket: (socket: WebSocket) => void): boolean
}

declare module 'fastify' {
  interface FastifyInstance {
    shoalWebsocket: ShoalWebsocket
  }
}

export default fp(async function websocket (app) {
  const server = new WebSocketServer({ noServer: true, maxPayload: app.shoalConfig.maxPayload, clientTracking: false, ...sharedFrameOptions })
  const router = UpgradeRouter.of(app.server, (request, response) => { app.routing(request, response) })
  const releases: Array<() => void> = []
  app.addHook('onClose', async () => { for (const release of releases.splice(0)) release() })
  app.decorate('shoalWebsocket', {
    claim (url) { releases.push(router.claim(url)) },
    accept (request, onSocket) {
      const upgrade = router.take(request)
      if (upgrade === undefined) return false
      server.handleUpgrade(request, upgrade.socket, upgrade.head, onSocket)
      return true
    }
  } satisfies ShoalWebsocket)
}, { name: 'shoal-websocket', fastify: '5.x', dependencies: ['shoal-config'] })
