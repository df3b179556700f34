/**
 * The open connections of this instance, and draining them at shutdown: from the
 * first moment of a drain, /health says `draining`, upgrades are refused and every
 * socket is closed with 1012 so clients reconnect elsewhere.
 */
import fp from 'fastify-plugin'
import type { Connection } from '../src/connection.js'

export const CLOSE_RESTARTING = 1012

export class ConnectionRegistry {
  private readonly open = new Set<Connection>()
  private drainRun: Promise<void> | null = null

  constructor (private readonly drainTimeoutMs: number, private readonly beforeExit: () => Promise<void>) {}

  get size (): number { return this.open.size }
  get draining (): boolean { return this.drainRun !== null }

  add (connection: Connection): void { this.open.add(connection) }
  delete (connection: Connection): void { this.open.delete(connection) }
  [Symbol.iterator] (): IterableIterator<Connection> { return this.open.values() }

  /** Closes every socket with 1012, waits for them (at most drainTimeoutMs), then flushes sessions. Idempotent. */
  drain (): Promise<void> {
    this.drainRun ??= this.run()
    return this.drainRun
  }

  private async run (): Promise<void> {
    for (const connection of this.open) connection.close(CLOSE_RESTARTING, 'server shutting down')
    const deadline = Date.now() + this.drainTimeoutMs
    while (this.open.size > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    for (const connection of this.open) connection.socket.terminate()
    await this.beforeExit()
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    shoalConnections: ConnectionRegistry
  }
}

export default fp(async function connections (app) {
  const registry = new ConnectionRegistry(app.shoalConfig.drainTimeoutMs, () => app.shoalSessions.flush())
  app.shoalMetrics.gauge('shoal_connections', 'Open WebSocket connections.', () => registry.size)
  app.decorate('shoalConnections', registry)
  app.addHook('preClose', async () => { await registry.drain() })
}, { name: 'shoal-connections', fastify: '5.x', dependencies: ['shoal-config', 'shoal-metrics', 'shoal-sessions'] })
