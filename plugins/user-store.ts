/** The live users, rooms and listening graph of this instance. */
import fp from 'fastify-plugin'
import { UserStore } from '../src/user-store.js'

declare module 'fastify' {
  interface FastifyInstance {
    shoalUsers: UserStore
  }
}

export default fp(async function userStore (app) {
  const users = new UserStore()
  app.shoalMetrics.gauge('shoal_users', 'Users in rooms, connected or within their grace period.', () => users.userCount)
  app.shoalMetrics.gauge('shoal_rooms', 'Rooms with at least one user.', () => users.roomCount)
  app.decorate('shoalUsers', users)
}, { name: 'shoal-user-store', fastify: '5.x', dependencies: ['shoal-metrics'] })
