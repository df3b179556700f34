/** Prometheus scrape endpoint for this instance's registry; off with `metrics: false`, guarded by `metricsAuthorize`. */
import type { FastifyInstance } from 'fastify'
import { refusalOf } from '../src/host/options.js'

export default async function metricsRoute (app: FastifyInstance): Promise<void> {
  const { registry } = app.shoalMetrics
  const { metrics, metricsAuthorize } = app.shoalConfig
  if (!metrics) return
  app.get('/metrics', {
    logLevel: 'warn',
    preHandler: async (request, reply) => {
      const refused = metricsAuthorize === undefined ? null : refusalOf(await metricsAuthorize(request))
      if (refused !== null) await reply.code(refused.statusCode).send({ error: refused.error })
    }
  }, async (_request, reply) => {
    return await reply.type(registry.contentType).send(await registry.metrics())
  })
}
