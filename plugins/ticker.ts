/** The instance's tick: other plugins add steps by phase; it runs them tickHz times a second while the server is up. */
import fp from 'fastify-plugin'
import { quietLog } from './config.js'
import { TickScheduler } from '../src/core/tick.js'

declare module 'fastify' {
  interface FastifyInstance {
    shoalTicker: TickScheduler
  }
}

export default fp(async function ticker (app) {
  const log = quietLog(app)
  const scheduler = new TickScheduler(app.shoalConfig.tickHz, {
    observe: (seconds) => app.shoalMetrics.observeTick(seconds),
    onError: (step, err) => { log.error({ err, step }, `tick step ${step} failed`) }
  })
  app.decorate('shoalTicker', scheduler)
  app.addHook('onReady', async () => scheduler.start())
  app.addHook('onClose', async () => scheduler.stop())
}, { name: 'shoal-ticker', fastify: '5.x', dependencies: ['shoal-config', 'shoal-metrics'] })
