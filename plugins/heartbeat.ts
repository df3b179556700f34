/** Liveness: pings every open socket each heartbeatMs while the server is up; only a timer, so it decorates nothing. */
import fp from 'fastify-plugin'
import { Heartbeat } from '../src/core/transport/heartbeat.js'

export default fp(async function heartbeat (app) {
  const beat = new Heartbeat(app.shoalConnections, app.shoalConfig.heartbeatMs)
  app.addHook('onReady', async () => beat.start())
  app.addHook('preClose', async () => beat.stop())
}, { name: 'shoal-heartbeat', fastify: '5.x', dependencies: ['shoal-config', 'shoal-connections'] })
