/** The instance's server-side API (`app.shoal` for the host), made once here so that Shoal's own routes use it too. */
import fp from 'fastify-plugin'
import { createApi, type ShoalApi } from '../src/core/api.js'

declare module 'fastify' {
  interface FastifyInstance {
    shoalApi: ShoalApi
  }
}

export default fp(async function api (app) {
  app.decorate('shoalApi', createApi(app.shoalEngine))
}, { name: 'shoal-api', fastify: '5.x', dependencies: ['shoal-engine'] })
