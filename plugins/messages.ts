/** Message types of the host's own, registered through `app.shoal.handle` and checked by the engine like the protocol's. */
import fp from 'fastify-plugin'
import { CustomMessages } from '../src/core/custom-messages.js'

declare module 'fastify' {
  interface FastifyInstance {
    shoalMessages: CustomMessages
  }
}

export default fp(async function messages (app) {
  app.decorate('shoalMessages', new CustomMessages())
}, { name: 'shoal-messages', fastify: '5.x' })
