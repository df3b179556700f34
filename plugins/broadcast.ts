/** Outbound traffic: the per-tick flush of every changed room, and the broadcast primitive every other send uses. */
import fp from 'fastify-plugin'
import { Broadcaster } from '../src/core/presence/broadcaster.js'

declare module 'fastify' {
  interface FastifyInstance {
    shoalBroadcast: Broadcaster
  }
}

export default fp(async function broadcast (app) {
  const { shoalConfig: config, shoalMetrics: metrics } = app
  const broadcaster = new Broadcaster(app.shoalUsers, config.clock, config, metrics)
  app.shoalTicker.add('flush', 'flush-rooms', () => broadcaster.flush())
  app.decorate('shoalBroadcast', broadcaster)
}, { name: 'shoal-broadcast', fastify: '5.x', dependencies: ['shoal-config', 'shoal-metrics', 'shoal-user-store', 'shoal-ticker'] })
