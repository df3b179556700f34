/** The protocol engine, built from the other plugins' decorators: routes/ws.ts feeds it every socket's frames. */
import fp from 'fastify-plugin'
import { Engine } from '../src/core/engine.js'
import { quietLog } from './config.js'

declare module 'fastify' {
  interface FastifyInstance {
    shoalEngine: Engine
  }
}

export default fp(async function engine (app) {
  const log = quietLog(app)
  const engine = new Engine({
    settings: app.shoalConfig,
    clock: app.shoalConfig.clock,
    users: app.shoalUsers,
    sessions: app.shoalSessions,
    broadcaster: app.shoalBroadcast,
    connections: app.shoalConnections,
    registrations: app.shoalRegistrations,
    feeds: app.shoalCsvFeeds,
    meter: app.shoalMetrics,
    log,
    access: app.shoalAccess,
    messages: app.shoalMessages
  })
  app.shoalTicker.add('expire', 'expire-unregistered', () => engine.expireUnregistered())
  app.decorate('shoalEngine', engine)
}, {
  name: 'shoal-engine',
  fastify: '5.x',
  dependencies: ['shoal-config', 'shoal-metrics', 'shoal-ticker', 'shoal-user-store', 'shoal-sessions', 'shoal-broadcast', 'shoal-csv-feeds', 'shoal-connections', 'shoal-limits', 'shoal-access', 'shoal-messages']
})
