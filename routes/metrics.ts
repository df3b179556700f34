/** Prometheus scrape endpoint for this instance's registry. */
import type { FastifyInstance } from 'fastify'

export default async function metricsRoute (app: FastifyInstance): Promise<void> {
  const { registry } = app.shoalMetrics
  app.get('/metrics', { logLevel: 'warn' }, async (_request, reply) => {
    return await reply.type(registry.contentType).send(await registry.metrics())
  })
}
