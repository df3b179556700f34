/**
 * The dispatch table: one handler per client message type. Handlers see only
 * messages that passed their schema and the connection-state check.
 */
import { randomBytes } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import {
  DATA_PAYLOAD_MAX_BYTES, PROTOCOL_VERSION,
  type ClientMessageOf, type ClientMessageType, type PositionInputT, type PositionT, type ServerMessageT
} from '../schemas/protocol.js'
import type { Connection } from '../src/connection.js'
import { emptyState, mergeState, normalizeListening } from '../src/state.js'
import type { LiveUser } from '../src/user.js'
import { invalid, type ProtocolError } from '../src/validation.js'

export const DEFAULT_ROOM = 'lobby'
export const CLOSE_NORMAL = 1000
export const CLOSE_REPLACED = 4001

export interface HandlerContext {
  app: FastifyInstance
  connection: Connection
  reply(message: ServerMessageT): void
  fail(error: ProtocolError): void
}

/** Which connections a message type is for: `user` needs a user, `guest` needs none. */
type Audience = 'user' | 'guest' | 'any'

interface HandlerEntry<K extends ClientMessageType> {
  audience: Audience
  handle: (ctx: HandlerContext, message: ClientMessageOf<K>, user: LiveUser) => void | Promise<void>
}

type HandlerTable = { [K in ClientMessageType]: HandlerEntry<K> }

const toPosition = (input: PositionInputT): PositionT => ({ x: input.x, y: input.y, z: input.z ?? 0 })

function welcome (ctx: HandlerContext, user: LiveUser, secret: string, resumed: boolean): void {
  const compact = ctx.connection.encoding === 'compact'
  ctx.reply({
    type: 'welcome',
    protocol: PROTOCOL_VERSION,
    id: user.id,
    secret,
    room: user.room,
    resumed,
    you: user.toWire(compact),
    users: ctx.app.shoalUsers.othersInRoom(user, compact),
    heartbeatMs: ctx.app.shoalConfig.heartbeatMs,
    serverTime: ctx.app.shoalConfig.clock.now(),
    tickHz: ctx.app.shoalConfig.tickHz,
    encoding: compact ? 'compact' : undefined
  })
  sendFeeds(ctx, user)
}

/** The room's CSV feeds at their current versions (a Shoal extension), right after welcome or snapshot. */
function sendFeeds (ctx: HandlerContext, user: LiveUser): void {
  for (const frame of ctx.app.shoalCsvFeeds.framesFor(user.room)) ctx.app.shoalBroadcast.send(ctx.connection, frame, 'csv')
}

function snapshot (ctx: HandlerContext, user: LiveUser): void {
  ctx.reply({ type: 'snapshot', room: user.room, users: ctx.app.shoalUsers.othersInRoom(user, ctx.connection.encoding === 'compact') })
}

export const handlers: HandlerTable = {
  register: {
    audience: 'guest',
    handle (ctx, message) {
      const state = mergeState(emptyState(), message.state ?? {})
      if ('error' in state) return ctx.fail(invalid(state.error, 'register'))
      ctx.connection.encoding = message.encoding ?? 'json'
      const { user, secret } = ctx.app.shoalSessions.register(ctx.connection, {
        name: message.name?.trim() ?? `guest-${randomBytes(2).toString('hex')}`,
        room: message.room ?? DEFAULT_ROOM,
        position: message.position === undefined ? { x: 0, y: 0, z: 0 } : toPosition(message.position),
        state: state.state
      })
      ctx.app.log.debug({ user: user.id, room: user.room }, 'user registered')
      welcome(ctx, user, secret, false)
    }
  },

  reconnect: {
    audience: 'guest',
    async handle (ctx, message) {
      const { connection, app } = ctx
      let resumed
      try {
        resumed = await app.shoalSessions.reconnect(connection, message.secret)
      } catch (err) {
        // The session store (Redis, a file) is unreachable: the secret may well be good, so the client keeps it and retries.
        app.log.warn({ err }, 'session store unavailable for a reconnect')
        return ctx.fail({ code: 'rate_limited', message: 'sessions are unavailable right now; try again shortly', ref: 'reconnect' })
      }
      if (resumed === null) return ctx.fail({ code: 'invalid_secret', message: 'secret: not a live session secret', ref: 'reconnect' })
      const { user, replaced, rejoined } = resumed
      replaced?.close(CLOSE_REPLACED, 'replaced by a newer connection')
      if (connection.closed) {
        // The socket went away while the store answered: the user is back, but in grace.
        app.shoalSessions.disconnect(user)
        return
      }
      connection.encoding = message.encoding ?? 'json'
      app.log.debug({ user: user.id, takeover: replaced !== null, fromStore: rejoined }, 'user resumed')
      welcome(ctx, user, message.secret, true)
    }
  },

  update: {
    audience: 'user',
    handle (ctx, message, user) {
      const { shoalUsers: users, shoalSessions: sessions } = ctx.app
      const state = message.state === undefined ? null : mergeState(user.state, message.state)
      if (state !== null && 'error' in state) return ctx.fail(invalid(state.error, 'update'))
      if (message.position !== undefined) users.setPosition(user, toPosition(message.position))
      if (message.name !== undefined || state !== null) {
        users.setProfile(user, message.name?.trim() ?? user.name, state?.state ?? user.state)
      }
      sessions.changed(user)
    }
  },

  updatelisteningto: {
    audience: 'user',
    handle (ctx, message, user) {
      ctx.app.shoalUsers.setListening(user, normalizeListening(message.listeningTo, user.id))
      ctx.app.shoalSessions.changed(user)
    }
  },

  data: {
    audience: 'user',
    handle (ctx, message, user) {
      const payload = JSON.stringify(message.payload)
      if (Buffer.byteLength(payload) > DATA_PAYLOAD_MAX_BYTES) {
        return ctx.fail(invalid(`payload: larger than ${DATA_PAYLOAD_MAX_BYTES} bytes when serialized`, 'data'))
      }
      ctx.app.shoalBroadcast.sendData(user.id, payload)
      ctx.app.shoalCluster?.queueData(user.id, payload)
    }
  },

  ping: {
    audience: 'any',
    handle (ctx, message) {
      ctx.reply({ type: 'pong', t: message.t, serverTime: ctx.app.shoalConfig.clock.now() })
    }
  },

  join: {
    audience: 'user',
    handle (ctx, message, user) {
      if (message.room !== user.room) {
        ctx.app.shoalUsers.moveToRoom(user, message.room)
        ctx.app.shoalSessions.changed(user)
      }
      snapshot(ctx, user)
      sendFeeds(ctx, user)
    }
  },

  sync: {
    audience: 'user',
    handle (ctx, _message, user) {
      snapshot(ctx, user)
    }
  },

  leave: {
    audience: 'user',
    handle (ctx, _message, user) {
      ctx.app.shoalSessions.leave(user).catch((err: unknown) => ctx.app.log.error({ err, user: user.id }, 'deleting a session failed'))
      ctx.app.log.debug({ user: user.id }, 'user left')
      ctx.connection.close(CLOSE_NORMAL, 'left')
    }
  }
}
