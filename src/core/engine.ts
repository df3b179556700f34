/**
 * The engine's one entry point. The transport opens a connection per socket and
 * hands the engine each inbound frame; the engine runs the contract's checks in
 * order (rate limit, size, text, envelope and schema, register budget,
 * connection state) and then the message's handler. It knows nothing of Fastify
 * or ws: a `Socket` is any object with ws's few methods, and everything else it
 * needs comes in as `Services`. Nothing a client sends can throw out of here.
 */
import type { ShoalSettingsT } from '../../schemas/options.js'
import type { ErrorCodeT, ServerMessageT } from '../../schemas/protocol.js'
import { CloseCode } from '../protocol/close-codes.js'
import { serverFrame } from '../protocol/frames.js'
import type { Clock } from './clock.js'
import { handlers } from './handlers.js'
import type { Broadcaster } from './presence/broadcaster.js'
import type { UserStore } from './presence/user-store.js'
import type { LiveUser } from './presence/user.js'
import type { SessionManager } from './sessions/sessions.js'
import { Connection, type Socket } from './transport/connection.js'
import type { ConnectionRegistry } from './transport/connections.js'
import { MessageLimiter, type AddressLimiter } from './transport/rate-limit.js'
import { overBudget, parseFrame, type ProtocolError } from './validation.js'

export type EngineSettings = Pick<ShoalSettingsT,
  'tickHz' | 'heartbeatMs' | 'maxPayload' | 'messagesPerSecond' | 'messageBurst' | 'registerTimeoutMs' | 'maxConnectionsPerAddress' |
  'snapshotsPerSecond' | 'snapshotBurst' | 'maxRoomSize'>

/** What the engine reports, for metrics. */
export interface EngineMeter {
  /** An inbound message by type (`invalid`: not a known message). */
  received(type: string): void
  error(code: ErrorCodeT): void
}

/** The few log calls the engine makes (pino's logger fits). */
export interface EngineLog {
  debug(fields: object, message: string): void
  warn(fields: object, message: string): void
  error(fields: object, message: string): void
}

/** Everything the engine works with, made by whoever hosts it (the plugins, or a test). */
export interface Services {
  readonly settings: EngineSettings
  readonly clock: Clock
  readonly users: UserStore
  readonly sessions: SessionManager
  readonly broadcaster: Broadcaster
  readonly connections: ConnectionRegistry
  /** The per-address budget of `register` and `reconnect`. */
  readonly registrations: AddressLimiter
  /** The CSV feeds a client of a room gets, as frames. */
  readonly feeds: { framesFor(room: string): string[] }
  readonly meter: EngineMeter
  readonly log: EngineLog
}

/** What handlers may do besides using the services. */
export interface HandlerContext {
  readonly services: Services
  reply(connection: Connection, message: ServerMessageT): void
  fail(connection: Connection, error: ProtocolError): void
  /** Ends the user's session for good (its room sees it leave, its secret stops working) and closes its socket with 1000. */
  endSession(user: LiveUser, reason: string): void
  /** Counts a register, or a reconnect that resumed nobody, against the address's budget; false once it is spent. */
  spendBudget(connection: Connection): boolean
}

/** An inbound WebSocket message as ws delivers it. */
export type InboundFrame = Buffer | ArrayBuffer | Buffer[]

const stateErrors: Record<'user' | 'guest', { code: ErrorCodeT, message: string }> = {
  user: { code: 'not_registered', message: 'send register or reconnect first' },
  guest: { code: 'already_registered', message: 'this connection already has a user' }
}

export class Engine implements HandlerContext {
  private readonly onTaskError = (err: unknown): void => { this.services.log.error({ err }, 'message handler failed') }
  /** Connections that have no user yet, oldest first: closed when registerTimeoutMs passes. */
  private readonly awaitingUser = new Set<Connection>()

  constructor (readonly services: Services) {}

  /** A socket opened: its connection, which the transport then feeds through `receive`, `pong` and `closed`. */
  open (socket: Socket, address: string): Connection {
    const { settings, clock, connections } = this.services
    const now = clock.now()
    const connection = new Connection(socket, address, now, new MessageLimiter(settings, now), this.onTaskError)
    connections.add(connection)
    // The transport refuses upgrades while draining and over the cap; this catches those that raced past it.
    if (connections.draining) {
      connection.close(CloseCode.restarting, 'server shutting down')
    } else if (connections.countFrom(address) > settings.maxConnectionsPerAddress) {
      connection.close(CloseCode.policy, 'too many connections from this address')
    } else {
      this.awaitingUser.add(connection)
    }
    return connection
  }

  /** The tick step: sockets that never registered or reconnected in time are closed with 1008. */
  expireUnregistered (): void {
    const cutoff = this.services.clock.now() - this.services.settings.registerTimeoutMs
    for (const connection of this.awaitingUser) {
      if (connection.user === null && !connection.closed) {
        if (connection.openedAt > cutoff) break
        connection.close(CloseCode.policy, 'no register or reconnect in time')
      }
      this.awaitingUser.delete(connection)
    }
  }

  /** One inbound frame of `connection`. */
  receive (connection: Connection, data: InboundFrame, isBinary: boolean): void {
    // Frames already in flight when the server began closing (leave, takeover, disconnect) are not handled.
    if (!connection.isOpen) return
    const admission = connection.limiter.admit(this.services.clock.now())
    if (admission !== 'ok') {
      if (admission === 'drop-notify') this.fail(connection, { code: 'rate_limited', message: 'too many messages; slow down' })
      if (admission === 'close') connection.close(CloseCode.policy, 'rate limit exceeded')
      return
    }
    const size = Array.isArray(data) ? data.reduce((sum, part) => sum + part.length, 0) : data.byteLength
    if (size > this.services.settings.maxPayload) {
      // ws enforces maxPayload itself when Shoal registered it; a host's own registration may allow more.
      connection.close(CloseCode.tooBig, 'message too big')
      return
    }
    if (isBinary) {
      this.services.meter.received('invalid')
      this.fail(connection, { code: 'unsupported_frame', message: 'binary frames are not supported; send JSON text' })
      return
    }
    const text = frameText(data)
    connection.serially(() => this.dispatch(connection, text))
  }

  /** The socket answered a heartbeat ping. */
  pong (connection: Connection): void {
    connection.alive = true
  }

  /** The socket closed: a user it spoke for goes into grace. */
  closed (connection: Connection): void {
    connection.closed = true
    this.awaitingUser.delete(connection)
    this.services.connections.delete(connection)
    const user = connection.user
    if (user !== null && user.peer === connection) this.services.sessions.disconnect(user)
  }

  reply (connection: Connection, message: ServerMessageT): void {
    this.services.broadcaster.broadcast(serverFrame(message), message.type, { peer: connection })
  }

  fail (connection: Connection, error: ProtocolError): void {
    this.services.meter.error(error.code)
    this.reply(connection, { type: 'error', ...error })
  }

  spendBudget (connection: Connection): boolean {
    return this.services.registrations.admit(connection.address, this.services.clock.now())
  }

  endSession (user: LiveUser, reason: string): void {
    const peer = user.peer
    this.services.sessions.leave(user).catch((err: unknown) => this.services.log.error({ err, user: user.id }, 'deleting a session failed'))
    peer?.close(CloseCode.ended, reason)
  }

  private dispatch (connection: Connection, text: string): void | Promise<void> {
    if (!connection.isOpen) return
    const { meter } = this.services
    const parsed = parseFrame(text)
    if (!parsed.ok) {
      meter.received(parsed.error.ref !== undefined && parsed.error.code === 'invalid_message' ? parsed.error.ref : 'invalid')
      return this.fail(connection, parsed.error)
    }
    const { message } = parsed
    meter.received(message.type)
    // A reconnect counts only when it resumes nobody (its handler charges it): everyone behind one address comes back at once after a restart.
    if (message.type === 'register' && !this.spendBudget(connection)) return this.fail(connection, overBudget('register'))
    const entry = handlers[message.type]
    const user = connection.user
    if (entry.audience === 'user' && user === null) return this.fail(connection, { ...stateErrors.user, ref: message.type })
    if (entry.audience === 'guest' && user !== null) {
      // A refused reconnect resumes nobody, so it counts like a register.
      if (message.type === 'reconnect') this.spendBudget(connection)
      return this.fail(connection, { ...stateErrors.guest, ref: message.type })
    }
    // The table's entry and the message share a type; TypeScript cannot correlate the two through the union.
    return (entry.handle as (ctx: HandlerContext, connection: Connection, message: unknown, user: unknown) => void | Promise<void>)(this, connection, message, user)
  }
}

/** The frame's text: a Buffer as it is (ws's default), other shapes without copying where they can. */
function frameText (data: InboundFrame): string {
  if (Buffer.isBuffer(data)) return data.toString()
  return Array.isArray(data) ? Buffer.concat(data).toString() : Buffer.from(data).toString()
}
