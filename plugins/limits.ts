/** Abuse limits: each connection's message limiter, and the per-address register/reconnect budget. */
import fp from 'fastify-plugin'
import { AddressLimiter, MessageLimiter } from '../src/rate-limit.js'
import type { ShoalConfig } from './config.js'

export class Limits {
  readonly registrations: AddressLimiter

  constructor (private readonly config: ShoalConfig) {
    this.registrations = new AddressLimiter(config.registerLimit, config.registerWindowMs)
  }

  forConnection (): MessageLimiter {
    return new MessageLimiter(this.config, this.config.clock.now())
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    shoalLimits: Limits
  }
}

export default fp(async function limits (app) {
  const limits = new Limits(app.shoalConfig)
  app.decorate('shoalLimits', limits)
  // Forget addresses that went quiet, so the table does not grow with every address ever seen.
  let pruneTimer: NodeJS.Timeout | undefined
  app.addHook('onReady', async () => {
    pruneTimer = setInterval(() => limits.registrations.prune(app.shoalConfig.clock.now()), app.shoalConfig.registerWindowMs)
  })
  app.addHook('onClose', async () => clearInterval(pruneTimer))
}, { name: 'shoal-limits', fastify: '5.x', dependencies: ['shoal-config'] })
