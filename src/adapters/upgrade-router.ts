/**
 * Who answers an HTTP server's upgrades. Node hands every upgrade to every
 * `upgrade` listener, and @fastify/websocket's listener routes all of them
 * through Fastify with its own ws server and limits, whatever their path. So
 * Shoal keeps one listener per server for every instance on it: the paths
 * Shoal claims are routed through Fastify marked as Shoal's, so that Shoal's
 * route upgrades them with its own ws server; every other listener (the host's
 * @fastify/websocket, registered before Shoal or after) is wrapped so that it
 * never sees those paths and still gets all the others. With no other listener,
 * an upgrade to another path is answered as the plain HTTP request it also is,
 * as Node does when nobody listens.
 */
import { ServerResponse, type IncomingMessage, type Server } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'

/** An upgrade Shoal claimed, between its routing and its handshake. */
export interface PendingUpgrade {
  readonly socket: Duplex
  readonly head: Buffer
}

type UpgradeListener = (this: Server, request: IncomingMessage, socket: Duplex, head: Buffer) => void
/** Fastify's router: hooks, then the route's handler. */
export type Route = (request: IncomingMessage, response: ServerResponse) => void
/** Another listener behind Shoal's filter; `listener` is how EventEmitter's removeListener still finds it by the original. */
type Wrapped = UpgradeListener & { listener: UpgradeListener }

/** Shared by any copy of Shoal loaded in the process, so that one server has one router. */
const kRouter = Symbol.for('shoal.upgradeRouter.v1')
type RoutedServer = Server & { [kRouter]?: UpgradeRouter }

/** Node takes its own error listener off a socket it hands to `upgrade`: without one, a reset would crash the process. */
function destroyOnError (this: Duplex): void { this.destroy() }

/** The path of a request's URL, without its query. */
function pathOf (url: string | undefined): string {
  const path = url ?? '/'
  const query = path.indexOf('?')
  return query === -1 ? path : path.slice(0, query)
}

export class UpgradeRouter {
  private readonly paths = new Set<string>()
  private readonly pending = new WeakMap<IncomingMessage, PendingUpgrade>()
  private readonly wrapped = new WeakSet<UpgradeListener>()

  private constructor (private readonly server: Server, private readonly route: Route) {}

  /** The server's router (its listener is installed with the first claim). */
  static of (server: Server, route: Route): UpgradeRouter {
    const routed = server as RoutedServer
    routed[kRouter] ??= new UpgradeRouter(server, route)
    return routed[kRouter]
  }

  /** Takes the upgrades of a path (a route's full URL); the returned function gives it back. */
  claim (path: string): () => void {
    if (this.paths.size === 0) this.install()
    this.paths.add(path)
    return () => {
      this.paths.delete(path)
      if (this.paths.size === 0) this.uninstall()
    }
  }

  /**
   * The socket of a claimed upgrade, taken out of its HTTP response (which
   * would otherwise keep the request and its headers for the socket's life),
   * or undefined for a request that came as plain HTTP.
   */
  take (request: IncomingMessage): PendingUpgrade | undefined {
    const upgrade = this.pending.get(request)
    if (upgrade === undefined) return undefined
    this.pending.delete(request)
    upgrade.socket.removeListener('error', destroyOnError)
    const socket = upgrade.socket as Socket & { _httpMessage?: ServerResponse | null }
    socket._httpMessage?.detachSocket(socket)
    return upgrade
  }

  private readonly onUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer): void => {
    if (this.claims(request)) this.dispatch(request, socket, head, true)
    else if (!this.server.rawListeners('upgrade').some((listener) => this.wrapped.has(listener as UpgradeListener))) this.dispatch(request, socket, head, false)
  }

  /** A listener added later (a host registering @fastify/websocket after Shoal) goes behind the filter too; it is added right after this event. */
  private readonly onNewListener = (event: string | symbol): void => {
    if (event === 'upgrade') process.nextTick(() => { if (this.paths.size > 0) this.wrapOthers() })
  }

  private claims (request: IncomingMessage): boolean {
    return this.paths.has(pathOf(request.url))
  }

  /** Routes the upgrade through Fastify; answered over HTTP (a refusal, a 404), its connection ends there, having left Node's HTTP parser. */
  private dispatch (request: IncomingMessage, socket: Duplex, head: Buffer, claimed: boolean): void {
    socket.on('error', destroyOnError)
    if (claimed) this.pending.set(request, { socket, head })
    const response = new ServerResponse(request)
    // Says `Connection: close`, so that a client does not send its next request on this socket.
    response.shouldKeepAlive = false
    response.once('finish', () => socket.destroy())
    try {
      response.assignSocket(socket as Socket)
      this.route(request, response)
    } catch {
      socket.destroy()
    }
  }

  private install (): void {
    this.server.on('upgrade', this.onUpgrade)
    this.server.on('newListener', this.onNewListener)
    this.wrapOthers()
  }

  private uninstall (): void {
    this.server.removeListener('upgrade', this.onUpgrade)
    this.server.removeListener('newListener', this.onNewListener)
    for (const listener of this.server.rawListeners('upgrade') as UpgradeListener[]) {
      if (!this.wrapped.has(listener)) continue
      this.server.removeListener('upgrade', listener)
      this.server.on('upgrade', (listener as Wrapped).listener)
    }
    delete (this.server as RoutedServer)[kRouter]
  }

  private wrapOthers (): void {
    const claims = (request: IncomingMessage): boolean => this.claims(request)
    for (const listener of this.server.rawListeners('upgrade') as UpgradeListener[]) {
      if (listener === this.onUpgrade || this.wrapped.has(listener)) continue
      const filtered = function (this: Server, request: IncomingMessage, socket: Duplex, head: Buffer): void {
        if (!claims(request)) listener.call(this, request, socket, head)
      } as Wrapped
      filtered.listener = listener
      this.wrapped.add(filtered)
      this.server.removeListener('upgrade', listener)
      this.server.on('upgrade', filtered)
    }
  }
}
