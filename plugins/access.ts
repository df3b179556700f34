/** Identity and room permissions: the host's authenticate, canJoin and canUpdate hooks, as the engine asks them. */
import fp from 'fastify-plugin'
import type { FastifyRequest } from 'fastify'
import { Access } from '../src/core/access.js'
import { quietLog } from './config.js'

declare module 'fastify' {
  interface FastifyInstance {
    shoalAccess: Access
  }
}

export default fp(async function access (app) {
  const { authenticate, canJoin, canUpdate } = app.shoalConfig
  app.decorate('shoalAccess', new Access({
    // routes/ws.ts keeps the upgrade request for exactly this hook.
    ...(authenticate !== undefined && { authenticate: async (auth: unknown, request: unknown) => await authenticate(auth, request as FastifyRequest) }),
    ...(canJoin !== undefined && { canJoin }),
    ...(canUpdate !== undefined && { canUpdate })
  }, quietLog(app), app.shoalConfig.hookTimeoutMs))
}, { name: 'shoal-access', fastify: '5.x', dependencies: ['shoal-config'] })
