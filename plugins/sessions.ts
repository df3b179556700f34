/**
 * Secret and session management: the session store behind its interface, grace
 * expiry and store writes as tick steps, and the periodic sweep of expired
 * sessions. In a cluster, users live on another node are claimed through it.
 */
import fp from 'fastify-plugin'
import { MemorySessionStore } from '../src/core/sessions/session-store.js'
import { SessionManager } from '../src/core/sessions/sessions.js'
import { quietLog } from './config.js'

declare module 'fastify' {
  interface FastifyInstance {
    shoalSessions: SessionManager
  }
}

export default fp(async function sessions (app) {
  const { shoalConfig: config, shoalCluster: cluster } = app
  const store = config.sessionStore ?? new MemorySessionStore()
  const manager = new SessionManager(app.shoalUsers, store, config.clock, config, cluster)
  app.decorate('shoalSessions', manager)

  const log = quietLog(app)
  const persist = (): void => {
    manager.persist().catch((err: unknown) => { log.error({ err }, 'saving sessions failed') })
  }
  app.shoalTicker.add('expire', 'expire-grace', () => { manager.expireGrace() })
  app.shoalTicker.add('persist', 'persist-sessions', persist)

  let sweepTimer: NodeJS.Timeout | undefined
  app.addHook('onReady', async () => {
    sweepTimer = setInterval(() => {
      manager.sweep()
        .then((removed) => { if (removed > 0) app.log.info({ removed }, 'expired sessions swept') })
        .catch((err: unknown) => { log.error({ err }, 'session sweep failed') })
    }, config.sweepMs)
  })
  app.addHook('onClose', async () => {
    clearInterval(sweepTimer)
    // A store that is down at shutdown must not stop the shutdown: what was not written is lost, and said so.
    await manager.flush().catch((err: unknown) => { app.log.error({ err }, 'saving sessions at shutdown failed') })
    // A store passed in belongs to the host, which may share it (e.g. across a restart).
    if (config.sessionStore === undefined) await store.close()
  })
}, { name: 'shoal-sessions', fastify: '5.x', dependencies: ['shoal-config', 'shoal-user-store', 'shoal-ticker', 'shoal-cluster'] })
