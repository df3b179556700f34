/**
 * The engine's one entry point. The transport opens a connection per socket and
 * hands the engine each inbound frame; the engine runs the contract's checks in
 * order (rate limit, size, text, envelope and schema, register budget,
 * connection state) and then the message's handler. It knows nothing of Fastify
 * or ws: a `Socket` is any object with ws's few methods, and everything else it
 * needs comes in as `Services`. Nothing a client sends can throw out of here.
 */
import type { ShoalSettingsT } from '../../schemas/options.js'
import type { CustomClientMessage, ErrorCodeT, RequestIdT, ServerMessageT } from '../../schemas/protocol.js'
import { CloseCode } from '../protocol/close-codes.js'
import { replyFrame, serverFrame } from '../protocol/frames.js'
import type { Access } from './access.js'
import type { Clock } from './clock.js'
import type { CustomMessages, CustomMessageType } from './custom-messages.js'
import { handlers } from './handlers.js'
import { ShoalError } from './identity.js'
import { copyUser } from './presence/user.js'
import type { Broadcaster } from './presence/broadcaster.js'
import type { UserStore } from './presence/user-store.js'
import type { LiveUser } from './presence/user.js'
import type { SessionManager } from './sessions/sessions.js'
import { ANONYMOUS, Connection, type Socket, type Upgrade } from './transport/connection.js'
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
  /** An error reply by code (the contract's, or one a host handler chose). */
  error(code: string): void
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
  /** The host's identity and permission hooks. */
  readonly access: Access
  /** Message types of the host's own. */
  readonly messages: CustomMessages
}

export type { Upgrade }

/** Messages of host types one connection may have waiting for their handler: more get `rate_limited`. */
export const MAX_PENDING_REQUESTS = 32

/** What handlers may do besides using the services. */
export interface HandlerContext {
  readonly services: Services
  reply(connection: Connection, message: ServerMessageT): void
  fail(connection: Connection, error: ProtocolError): void
  /** Ends the user's session for good (its room sees it leave, its secret stops working) and closes its socket with 1000. */
  endSession(user: LiveUser, reason: string): void
  /** Counts a register, or a reconnect that resumed nobody, against the address's budget; false once it is spent. */
  spendBudget(connection: Connection): boolean
  /** Whether the address's budget is spent (nothing is counted). */
  budgetSpent(connection: Connection): boolean
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
  open (socket: Socket, address: string, upgrade: Upgrade = ANONYMOUS): Connection {
    const { settings, clock, connections } = this.services
    const now = clock.now()
    const connection = new Connection(socket, address, now, new MessageLimiter(settings, now), this.onTaskError)
    connection.upgrade = upgrade
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
      // Shoal's ws server enforces it before this; a transport of its own need not.
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

  budgetSpent (connection: Connection): boolean {
    return this.services.registrations.exhausted(connection.address, this.services.clock.now())
  }

  endSession (user: LiveUser, reason: string): void {
    const peer = user.peer
    this.services.sessions.leave(user).catch((err: unknown) => this.services.log.error({ err, user: user.id }, 'deleting a session failed'))
    peer?.close(CloseCode.ended, reason)
  }

  private dispatch (connection: Connection, text: string): void | Promise<void> {
    if (!connection.isOpen) return
    const { meter, messages } = this.services
    const parsed = parseFrame(text, messages)
    if (!parsed.ok) {
      meter.received(parsed.error.ref !== undefined && parsed.error.code === 'invalid_message' ? parsed.error.ref : 'invalid')
      return this.fail(connection, parsed.error)
    }
    if (parsed.custom !== undefined) {
      meter.received(parsed.custom.type)
      return this.runCustom(connection, parsed.custom, parsed.message)
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

  /**
   * A message of a host type: its handler runs outside the connection's queue (a
   * slow one holds up no `update`), at most MAX_PENDING_REQUESTS at a time; its
   * result goes back as `reply` when the message had an `id`.
   */
  private runCustom (connection: Connection, entry: CustomMessageType, message: CustomClientMessage): void {
    const ref = entry.type
    const idField = message.id === undefined ? {} : { id: message.id }
    const user = connection.user
    if (user === null) return this.fail(connection, { ...stateErrors.user, ref, ...idField })
    if (connection.pendingRequests >= MAX_PENDING_REQUESTS) {
      return this.fail(connection, { code: 'rate_limited', message: `at most ${MAX_PENDING_REQUESTS} messages may await their reply`, ref, ...idField })
    }
    connection.pendingRequests++
    const settle = (ok: boolean, value: unknown): void => {
      connection.pendingRequests--
      if (!connection.isOpen) return
      if (!ok) this.handlerFailed(connection, ref, message.id, value)
      else if (message.id !== undefined) this.sendReply(connection, ref, message.id, value)
    }
    let result: unknown
    try {
      result = entry.handle(message, { user: copyUser(user.toWire()), identity: user.identity, readOnly: user.readOnly })
    } catch (err) {
      return settle(false, err)
    }
    if (typeof (result as PromiseLike<unknown> | null)?.then === 'function') {
      Promise.resolve(result).then((value) => { settle(true, value) }, (err: unknown) => { settle(false, err) })
    } else {
      settle(true, result)
    }
  }

  private sendReply (connection: Connection, ref: string, id: RequestIdT, result: unknown): void {
    let json: string | undefined
    try {
      json = JSON.stringify(result)
    } catch (err) {
      return this.handlerFailed(connection, ref, id, err)
    }
    this.services.broadcaster.broadcast(replyFrame(ref, id, json ?? 'null'), 'reply', { peer: connection })
  }

  /** A ShoalError answers with its code and message; anything else is `server_error`, its details only in the log. */
  private handlerFailed (connection: Connection, ref: string, id: RequestIdT | undefined, err: unknown): void {
    const idField = id === undefined ? {} : { id }
    if (err instanceof ShoalError) {
      this.services.meter.error(err.code)
      this.reply(connection, { type: 'error', code: err.code, message: err.message, ref, ...idField })
      return
    }
    this.services.log.error({ err, type: ref }, 'a handler of app.shoal.handle failed')
    this.fail(connection, { code: 'server_error', message: 'the server failed to handle this message', ref, ...idField })
  }
}

/** The frame's text: a Buffer as it is (ws's default), other shapes without copying where they can. */
function frameText (data: InboundFrame): string {
  if (Buffer.isBuffer(data)) return data.toString()
  return Array.isArray(data) ? Buffer.concat(data).toString() : Buffer.from(data).toString()
}
