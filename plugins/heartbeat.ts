/** Liveness: a WebSocket ping to every socket each heartbeatMs; a socket that has not answered the previous one is terminated (and its user goes into grace). */
import fp from 'fastify-plugin'
import type { ConnectionRegistry } from './connections.js'

export class Heartbeat {
  private timer: NodeJS.Timeout | null = null

  constructor (private readonly connections: ConnectionRegistry, private readonly intervalMs: number) {}

  start (): void {
    this.timer ??= setInterval(() => this.beat(), this.intervalMs)
  }

  stop (): void {
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
  }

  /** One beat: terminate the silent, ping the rest. */
  beat (): void {
    for (const connection of this.connections) {
      if (!connection.alive) {
        connection.socket.terminate()
        continue
      }
      connection.alive = false
      connection.socket.ping()
    }
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    shoalHeartbeat: Heartbeat
  }
}

export default fp(async function heartbeat (app) {
  const beat = new Heartbeat(app.shoalConnections, app.shoalConfig.heartbeatMs)
  app.decorate('shoalHeartbeat', beat)
  app.addHook('onReady', async () => beat.start())
  app.addHook('preClose', async () => beat.stop())
}, { name: 'shoal-heartbeat', fastify: '5.x', dependencies: ['shoal-config', 'shoal-connections'] })
