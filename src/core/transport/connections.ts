/**
 * The open connections of one instance, and draining them at shutdown: from the
 * first moment of a drain, the instance counts as draining (health says so,
 * upgrades are refused) and every socket is closed with 1012 so clients
 * reconnect elsewhere.
 */
import { CloseCode } from '../../protocol/close-codes.js'
import type { Connection } from './connection.js'

export class ConnectionRegistry {
  private readonly open = new Set<Connection>()
  /** Open connections per remote address, for the per-address cap. */
  private readonly perAddress = new Map<string, number>()
  private drainRun: Promise<void> | null = null
  /** Called when the last open connection goes (for a drain waiting on it). */
  private onEmpty: (() => void) | null = null

  constructor (private readonly drainTimeoutMs: number, private readonly beforeExit: () => Promise<void>) {}

  get size (): number { return this.open.size }
  get draining (): boolean { return this.drainRun !== null }

  /** How many connections from `address` are open. */
  countFrom (address: string): number { return this.perAddress.get(address) ?? 0 }

  add (connection: Connection): void {
    if (this.open.has(connection)) return
    this.open.add(connection)
    this.perAddress.set(connection.address, this.countFrom(connection.address) + 1)
  }

  delete (connection: Connection): void {
    if (!this.open.delete(connection)) return
    const left = this.countFrom(connection.address) - 1
    if (left > 0) this.perAddress.set(connection.address, left)
    else this.perAddress.delete(connection.address)
    if (this.open.size === 0) this.onEmpty?.()
  }

  [Symbol.iterator] (): IterableIterator<Connection> { return this.open.values() }

  /**
   * Closes every socket with 1012 and waits for them (at most drainTimeoutMs);
   * drops the rest, waits for their close handlers (users go into grace), then
   * flushes sessions. Idempotent.
   */
  drain (): Promise<void> {
    this.drainRun ??= this.run()
    return this.drainRun
  }

  private async run (): Promise<void> {
    for (const connection of this.open) connection.close(CloseCode.restarting, 'server shutting down')
    await this.allClosed(this.drainTimeoutMs)
    for (const connection of this.open) connection.socket.terminate()
    await this.allClosed(this.drainTimeoutMs)
    await this.beforeExit()
  }

  private async allClosed (timeoutMs: number): Promise<void> {
    if (this.open.size === 0) return
    let timer: ReturnType<typeof setTimeout> | undefined
    await new Promise<void>((resolve) => {
      this.onEmpty = resolve
      timer = setTimeout(resolve, timeoutMs)
    })
    clearTimeout(timer)
    this.onEmpty = null
  }
}
