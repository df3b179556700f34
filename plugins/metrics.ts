/** Prometheus metrics of this instance: the other plugins count into it, `/metrics` reads it. */
import fp from 'fastify-plugin'
import { ShoalMetrics } from '../src/adapters/prometheus.js'

declare module 'fastify' {
  interface FastifyInstance {
    shoalMetrics: ShoalMetrics
  }
}

export default fp(async function metrics (app) {
  app.decorate('shoalMetrics', new ShoalMetrics())
}, { name: 'shoal-metrics', fastify: '5.x' })
