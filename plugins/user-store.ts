/** The live users, rooms and listening graph of this instance; its change events are what the other plugins subscribe to. */
import fp from 'fastify-plugin'
import { Value } from '@sinclair/typebox/value'
import { RoomOptions } from '../schemas/options.js'
import { UserStore } from '../src/core/presence/user-store.js'

declare module 'fastify' {
  interface FastifyInstance {
    shoalUsers: UserStore
  }
}

export default fp(async function userStore (app) {
  const { interestRadius, roomOptions } = app.shoalConfig
  const users = new UserStore((room) => {
    const asked = roomOptions?.(room).interestRadius
    const chosen = { interestRadius: asked ?? interestRadius }
    if (Value.Check(RoomOptions, chosen)) return chosen
    // The host's function gave a bad value: say so, and keep the room working with the setting.
    app.log.error({ room, interestRadius: asked }, 'roomOptions: interestRadius must be a number from 0 to 1e9; using the interestRadius setting')
    return { interestRadius }
  })
  app.shoalMetrics.gauge('shoal_users', 'Users in rooms, connected or within their grace period.', () => users.userCount)
  app.shoalMetrics.gauge('shoal_rooms', 'Rooms with at least one user.', () => users.roomCount)
  app.shoalMetrics.gauge('shoal_users_connected', 'Users in rooms with an open socket (to this node or, in a cluster, to another).', () => users.connectedCount())
  app.shoalMetrics.gauge('shoal_users_in_grace', 'Users in rooms without a socket, kept until they resume or their grace period ends.', () => users.userCount - users.connectedCount())
  app.decorate('shoalUsers', users)
}, { name: 'shoal-user-store', fastify: '5.x', dependencies: ['shoal-config', 'shoal-metrics'] })
