/** The per-address budget of `register` and `reconnect` (each connection's message limiter is the engine's). */
import fp from 'fastify-plugin'
import { AddressLimiter } from '../src/core/transport/rate-limit.js'

declare module 'fastify' {
  interface FastifyInstance {
    shoalRegistrations: AddressLimiter
  }
}

export default fp(async function limits (app) {
  const { registerLimit, registerWindowMs, clock } = app.shoalConfig
  const registrations = new AddressLimiter(registerLimit, registerWindowMs)
  app.decorate('shoalRegistrations', registrations)
  // Forget addresses that went quiet, so the table does not grow with every address ever seen.
  let pruneTimer: NodeJS.Timeout | undefined
  app.addHook('onReady', async () => {
    pruneTimer = setInterval(() => registrations.prune(clock.now()), registerWindowMs)
  })
  app.addHook('onClose', async () => clearInterval(pruneTimer))
}, { name: 'shoal-limits', fastify: '5.x', dependencies: ['shoal-config'] })
