/**
 * Load-balancer probe: 200 while serving, 503 `draining` from the moment shutdown
 * begins. A cluster node that cannot reach its bus answers 200 `degraded`: it
 * still serves its own users, so the balancer should keep it.
 */
import type { FastifyInstance } from 'fastify'
import { Health } from '../schemas/http.js'

export default async function healthRoute (app: FastifyInstance): Promise<void> {
  const started = app.shoalConfig.clock.now()
  // Probes arrive every few seconds: keep them out of the info log.
  app.get('/health', { logLevel: 'warn', schema: { response: { 200: Health, 503: Health } } }, async (_request, reply) => {
    if (app.shoalConnections.draining) return await reply.code(503).send({ status: 'draining' })
    return {
      status: app.shoalCluster?.status === 'degraded' ? 'degraded' : 'ok',
      uptime: (app.shoalConfig.clock.now() - started) / 1000,
      connections: app.shoalConnections.size,
      users: app.shoalUsers.userCount,
      rooms: app.shoalUsers.roomCount,
      node: app.shoalCluster?.nodeId
    }
  })
}
