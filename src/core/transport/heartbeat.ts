/** Liveness: a WebSocket ping to every socket each interval; a socket that has not answered the previous one is terminated (and its user goes into grace). */
import type { ConnectionRegistry } from './connections.js'

export class Heartbeat {
  private timer: ReturnType<typeof setInterval> | null = null

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
