/** The open connections of this instance, and draining them at shutdown (1012 to every socket, then the sessions flushed). */
import fp from 'fastify-plugin'
import { ConnectionRegistry } from '../src/core/transport/connections.js'

declare module 'fastify' {
  interface FastifyInstance {
    shoalConnections: ConnectionRegistry
  }
}

export default fp(async function connections (app) {
  const flush = async (): Promise<void> => {
    await app.shoalSessions.flush().catch((err: unknown) => { app.log.error({ err }, 'saving sessions at shutdown failed') })
  }
  const registry = new ConnectionRegistry(app.shoalConfig.drainTimeoutMs, flush)
  app.shoalMetrics.gauge('shoal_connections', 'Open WebSocket connections.', () => registry.size)
  // Before the server closes: it would wait for these sockets, which no one else closes.
  app.addHook('preClose', async () => { await registry.drain() })
  app.decorate('shoalConnections', registry)
}, { name: 'shoal-connections', fastify: '5.x', dependencies: ['shoal-config', 'shoal-metrics', 'shoal-sessions'] })
