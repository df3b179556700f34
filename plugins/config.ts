/**
 * The instance's options, resolved (src/host/options.ts): settings with their
 * defaults, checked, and the collaborators the host injected, for every other plugin.
 */
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { QuietLog } from '../src/core/quiet-log.js'
import type { ShoalConfig } from '../src/host/options.js'

/** The instance's log, with repeated warnings and errors held back (QuietLog); what it held back is written at close. */
export function quietLog (app: FastifyInstance): QuietLog {
  const log = new QuietLog(app.log, app.shoalConfig.clock)
  app.addHook('onClose', async () => { log.flush() })
  return log
}

declare module 'fastify' {
  interface FastifyInstance {
    shoalConfig: ShoalConfig
  }
}

export default fp<{ config: ShoalConfig }>(async function config (app, { config }) {
  app.decorate('shoalConfig', config)
}, { name: 'shoal-config', fastify: '5.x' })
