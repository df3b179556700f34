/**
 * The dispatch table: one handler per client message type, and the protocol's
 * defaults (a guest name, the `lobby`). Handlers see only messages that passed
 * their schema and the connection-state check, and change users only through
 * the user store, whose events tell sessions and the cluster.
 */
import { randomBytes } from 'node:crypto'
import {
  DATA_PAYLOAD_MAX_BYTES, PROTOCOL_VERSION,
  type ClientMessageOf, type ClientMessageType, type PositionInputT, type PositionT
} from '../../schemas/protocol.js'
import { CloseCode } from '../protocol/close-codes.js'
import { snapshotFrame, welcomeFrame } from '../protocol/frames.js'
import type { HandlerContext } from './engine.js'
import { emptyState, mergeState, normalizeListening } from './presence/state.js'
import type { LiveUser } from './presence/user.js'
import type { Resumption } from './sessions/sessions.js'
import type { Connection } from './transport/connection.js'
import { TokenBucket } from './transport/rate-limit.js'
import { invalid, overBudget, type ProtocolError } from './validation.js'

export const DEFAULT_ROOM = 'lobby'

/** A name for a user that did not give one. */
export const guestName = (): string => `guest-${randomBytes(2).toString('hex')}`

/** Which connections a message type is for: `user` needs a user, `guest` needs none. */
type Audience = 'user' | 'guest' | 'any'

interface HandlerEntry<K extends ClientMessageType> {
  audience: Audience
  handle: (ctx: HandlerContext, connection: Connection, message: ClientMessageOf<K>, user: LiveUser) => void | Promise<void>
}

type HandlerTable = { [K in ClientMessageType]: HandlerEntry<K> }

/** A payload as JSON, or null when it is nested too deeply for the serializer (a frame within maxPayload can be). */
function serializedPayload (payload: unknown): string | null {
  try {
    return JSON.stringify(payload)
  } catch (err) {
    if (err instanceof RangeError) return null
    throw err
  }
}

const toPosition = (input: PositionInputT): PositionT => ({ x: input.x, y: input.y, z: input.z ?? 0 })
/** Where a user who gives no position starts; shared, as positions are replaced, never changed. */
const ORIGIN: PositionT = Object.freeze({ x: 0, y: 0, z: 0 })

function welcome (ctx: HandlerContext, connection: Connection, user: LiveUser, secret: string, resumed: boolean): void {
  const { users, settings, clock, broadcaster } = ctx.services
  const compact = connection.encoding === 'compact'
  const frame = welcomeFrame({
    type: 'welcome',
    protocol: PROTOCOL_VERSION,
    id: user.id,
    secret,
    room: user.room,
    resumed,
    you: user.toWire(compact),
    heartbeatMs: settings.heartbeatMs,
    serverTime: clock.now(),
    tickHz: settings.tickHz,
    encoding: compact ? 'compact' : undefined
  }, users.others(user, compact))
  broadcaster.broadcast(frame, 'welcome', { peer: connection })
  sendFeeds(ctx, connection, user)
}

/** The room's CSV feeds at their current versions (a Shoal extension), right after welcome or snapshot. */
function sendFeeds (ctx: HandlerContext, connection: Connection, user: LiveUser): void {
  for (const frame of ctx.services.feeds.framesFor(user.room)) ctx.services.broadcaster.broadcast(frame, 'csv', { peer: connection })
}

function snapshot (ctx: HandlerContext, connection: Connection, user: LiveUser): void {
  const users = ctx.services.users.others(user, connection.encoding === 'compact')
  ctx.services.broadcaster.broadcast(snapshotFrame(user.room, users), 'snapshot', { peer: connection })
}

/** join and sync are answered with the whole room: a connection gets a few at once, then snapshotsPerSecond. */
function snapshotAllowed (ctx: HandlerContext, connection: Connection, ref: 'join' | 'sync'): boolean {
  const { settings, clock } = ctx.services
  connection.snapshots ??= new TokenBucket(settings.snapshotBurst, clock.now())
  if (connection.snapshots.take(clock.now(), settings.snapshotsPerSecond, settings.snapshotBurst)) return true
  ctx.fail(connection, { code: 'rate_limited', message: `too many join and sync messages; at most ${settings.snapshotsPerSecond} a second`, ref })
  return false
}

/** Whether `room` holds maxRoomSize users already (then nobody new enters it). */
function isFull (ctx: HandlerContext, room: string): boolean {
  const max = ctx.services.settings.maxRoomSize
  return max > 0 && (ctx.services.users.room(room)?.members.size ?? 0) >= max
}

const roomFull = (room: string, ref: 'register' | 'join'): ProtocolError =>
  ({ code: 'room_full', message: `room ${JSON.stringify(room)} is full`, ref })

/** `reconnect` once the store has answered (the socket may have gone meanwhile). */
function resumed (ctx: HandlerContext, connection: Connection, message: ClientMessageOf<'reconnect'>, resumption: NonNullable<Resumption>): void {
  const { sessions, log } = ctx.services
  const { user, replaced, rejoined } = resumption
  replaced?.close(CloseCode.replaced, 'replaced by a newer connection')
  if (connection.closed) {
    // The socket went away while the store answered: the user is back, but in grace.
    sessions.disconnect(user)
    return
  }
  connection.encoding = message.encoding ?? 'json'
  log.debug({ user: user.id, takeover: replaced !== null, fromStore: rejoined }, 'user resumed')
  welcome(ctx, connection, user, message.secret, true)
}

export const handlers: HandlerTable = {
  register: {
    audience: 'guest',
    handle (ctx, connection, message) {
      const state = mergeState(emptyState(), message.state ?? {})
      if ('error' in state) return ctx.fail(connection, invalid(state.error, 'register'))
      const room = message.room ?? DEFAULT_ROOM
      if (isFull(ctx, room)) return ctx.fail(connection, roomFull(room, 'register'))
      connection.encoding = message.encoding ?? 'json'
      const { user, secret } = ctx.services.sessions.register(connection, {
        name: message.name?.trim() ?? guestName(),
        room,
        position: message.position === undefined ? ORIGIN : toPosition(message.position),
        state: state.state
      })
      ctx.services.log.debug({ user: user.id, room: user.room }, 'user registered')
      welcome(ctx, connection, user, secret, false)
    }
  },

  reconnect: {
    audience: 'guest',
    async handle (ctx, connection, message) {
      let resumption
      try {
        resumption = await ctx.services.sessions.reconnect(connection, message.secret)
      } catch (err) {
        // The session store (Redis, a file) is unreachable: the secret may well be good, so the client keeps it and retries.
        ctx.services.log.warn({ err }, 'session store unavailable for a reconnect')
        ctx.spendBudget(connection)
        return ctx.fail(connection, { code: 'rate_limited', message: 'sessions are unavailable right now; try again shortly', ref: 'reconnect' })
      }
      if (resumption !== null) return resumed(ctx, connection, message, resumption)
      // Only a reconnect that resumes nobody counts toward the address's budget (revision 1.1 of the contract).
      if (!ctx.spendBudget(connection)) return ctx.fail(connection, overBudget('reconnect'))
      ctx.fail(connection, { code: 'invalid_secret', message: 'secret: not a live session secret', ref: 'reconnect' })
    }
  },

  update: {
    audience: 'user',
    handle (ctx, connection, message, user) {
      const { users } = ctx.services
      const state = message.state === undefined ? null : mergeState(user.state, message.state)
      if (state !== null && 'error' in state) return ctx.fail(connection, invalid(state.error, 'update'))
      if (message.position !== undefined) users.setPosition(user, toPosition(message.position))
      if (message.name !== undefined || state !== null) {
        users.setProfile(user, message.name?.trim() ?? user.name, state?.state ?? user.state)
      }
    }
  },

  updatelisteningto: {
    audience: 'user',
    handle (ctx, _connection, message, user) {
      ctx.services.users.setListening(user, normalizeListening(message.listeningTo, user.id))
    }
  },

  data: {
    audience: 'user',
    handle (ctx, connection, message, user) {
      const payload = serializedPayload(message.payload)
      if (payload === null) return ctx.fail(connection, invalid('payload: nested too deeply to serialize', 'data'))
      if (Buffer.byteLength(payload) > DATA_PAYLOAD_MAX_BYTES) {
        return ctx.fail(connection, invalid(`payload: larger than ${DATA_PAYLOAD_MAX_BYTES} bytes when serialized`, 'data'))
      }
      ctx.services.users.sendData(user, payload)
    }
  },

  ping: {
    audience: 'any',
    handle (ctx, connection, message) {
      ctx.reply(connection, { type: 'pong', t: message.t, serverTime: ctx.services.clock.now() })
    }
  },

  join: {
    audience: 'user',
    handle (ctx, connection, message, user) {
      const moving = message.room !== user.room
      if (moving && isFull(ctx, message.room)) return ctx.fail(connection, roomFull(message.room, 'join'))
      if (!snapshotAllowed(ctx, connection, 'join')) return
      if (moving) ctx.services.users.moveToRoom(user, message.room)
      snapshot(ctx, connection, user)
      sendFeeds(ctx, connection, user)
    }
  },

  sync: {
    audience: 'user',
    handle (ctx, connection, _message, user) {
      if (snapshotAllowed(ctx, connection, 'sync')) snapshot(ctx, connection, user)
    }
  },

  leave: {
    audience: 'user',
    handle (ctx, _connection, _message, user) {
      ctx.services.log.debug({ user: user.id }, 'user left')
      ctx.endSession(user, 'left')
    }
  }
}
