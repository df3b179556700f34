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
import type { IdentityT } from '../../schemas/identity.js'
import type { AccessRefusal } from './access.js'
import type { HandlerContext } from './engine.js'
import { authProblem } from './identity.js'
import { emptyState, mergeState, normalizeListening, type State } from './presence/state.js'
import type { LiveUser, Peer } from './presence/user.js'
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
function sendFeeds (ctx: HandlerContext, connection: Peer, user: LiveUser): void {
  for (const frame of ctx.services.feeds.framesFor(user.room)) ctx.services.broadcaster.broadcast(frame, 'csv', { peer: connection })
}

function snapshot (ctx: HandlerContext, connection: Peer, user: LiveUser): void {
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
async function resumed (ctx: HandlerContext, connection: Connection, message: ClientMessageOf<'reconnect'>, resumption: NonNullable<Resumption>, identity: IdentityT | null): Promise<void> {
  const { sessions, users, access, log } = ctx.services
  const { user, replaced, rejoined } = resumption
  replaced?.close(CloseCode.replaced, 'replaced by a newer connection')
  users.identify(user, identity)
  const room = user.room
  const readOnly = await access.readOnly(hookIdentity(user), room)
  // Only if nothing moved it meanwhile (moveToRoom decides for the new room itself).
  if (connection.user === user && user.room === room) user.readOnly = readOnly
  if (connection.closed || connection.user !== user) {
    // The socket went away while the store answered: the user is back, but in grace.
    if (user.peer === connection) sessions.disconnect(user)
    return
  }
  connection.encoding = message.encoding ?? 'json'
  log.debug({ user: user.id, takeover: replaced !== null, fromStore: rejoined }, 'user resumed')
  welcome(ctx, connection, user, message.secret, true)
}

/** What the permission hooks are told of a user: its identity, with the info it has now (the host may have changed it). */
export function hookIdentity (user: LiveUser): IdentityT | null {
  const identity = user.identity
  if (identity === null) return null
  return user.info === identity.info ? identity : { ...identity, ...(user.info !== undefined && { info: user.info }) }
}

/** Sends the refusal; one of credentials then closes the socket (4401, 4403, 1011). */
function refuse (ctx: HandlerContext, connection: Connection, refusal: AccessRefusal): void {
  ctx.fail(connection, refusal.error)
  if (refusal.close !== undefined) connection.close(refusal.close, refusal.error.message)
}

/**
 * The identity a register or reconnect speaks for, or null once refused (or the
 * socket went meanwhile). A refused reconnect resumes nobody, so it counts toward
 * the address's budget, like the register it would otherwise become.
 */
async function identityFor (ctx: HandlerContext, connection: Connection, auth: unknown, ref: 'register' | 'reconnect'): Promise<{ identity: IdentityT | null } | null> {
  const verdict = await ctx.services.access.identify(auth, connection.upgrade.request, connection.upgrade.identity, ref)
  if (!connection.isOpen) return null
  if ('error' in verdict) {
    if (ref === 'reconnect') ctx.spendBudget(connection)
    refuse(ctx, connection, verdict)
    return null
  }
  return verdict
}

interface Admission { room: string, state: State, identity: IdentityT | null, readOnly: boolean }

/** Creates the user of a register that passed every check, and welcomes it. */
function admit (ctx: HandlerContext, connection: Connection, message: ClientMessageOf<'register'>, admission: Admission): void {
  const { identity } = admission
  connection.encoding = message.encoding ?? 'json'
  const { user, secret } = ctx.services.sessions.register(connection, {
    // A name the host gives is the user's; the client's is then ignored.
    name: identity?.name ?? message.name?.trim() ?? guestName(),
    room: admission.room,
    position: message.position === undefined ? ORIGIN : toPosition(message.position),
    state: admission.state,
    identity,
    readOnly: admission.readOnly
  })
  ctx.services.log.debug({ user: user.id, room: user.room }, 'user registered')
  welcome(ctx, connection, user, secret, false)
}

/** A register under the host's hooks: who it is, whether it may enter the room, whether it may change anything there. */
async function admitChecked (ctx: HandlerContext, connection: Connection, message: ClientMessageOf<'register'>, room: string, state: State): Promise<void> {
  const { access } = ctx.services
  const verdict = await identityFor(ctx, connection, message.auth, 'register')
  if (verdict === null) return
  const { identity } = verdict
  const refusal = await access.mayJoin(identity, room, 'register')
  if (refusal !== null) return refuse(ctx, connection, refusal)
  const readOnly = await access.readOnly(identity, room)
  if (!connection.isOpen) return
  // The room may have filled while the hooks answered.
  if (isFull(ctx, room)) return ctx.fail(connection, roomFull(room, 'register'))
  admit(ctx, connection, message, { room, state, identity, readOnly })
}

/** Moves `user` into `room` (already allowed), with what `canUpdate` said of it there; its client gets the new room. */
export function enterRoom (ctx: HandlerContext, user: LiveUser, room: string, readOnly: boolean): void {
  ctx.services.users.moveToRoom(user, room)
  user.readOnly = readOnly
  const connection = user.peer
  if (connection === null) return
  snapshot(ctx, connection, user)
  sendFeeds(ctx, connection, user)
}

/** A join under the host's hooks. */
async function joinChecked (ctx: HandlerContext, connection: Connection, room: string, user: LiveUser): Promise<void> {
  const { access } = ctx.services
  const refusal = await access.mayJoin(hookIdentity(user), room, 'join')
  if (refusal !== null) return refuse(ctx, connection, refusal)
  const readOnly = await access.readOnly(hookIdentity(user), room)
  if (connection.user !== user || !connection.isOpen) return
  // The server moved it there while the hooks answered: as a join into one's own room.
  if (user.room === room) return snapshot(ctx, connection, user)
  if (isFull(ctx, room)) return ctx.fail(connection, roomFull(room, 'join'))
  enterRoom(ctx, user, room, readOnly)
}

/** A read-only user (canUpdate said no) may only watch. */
function readOnlyRefusal (ctx: HandlerContext, connection: Connection, user: LiveUser, ref: 'update' | 'updatelisteningto' | 'data'): boolean {
  if (!user.readOnly) return false
  ctx.fail(connection, { code: 'forbidden', message: `room ${JSON.stringify(user.room)}: read-only for this user`, ref })
  return true
}

export const handlers: HandlerTable = {
  register: {
    audience: 'guest',
    handle (ctx, connection, message) {
      const state = mergeState(emptyState(), message.state ?? {})
      if ('error' in state) return ctx.fail(connection, invalid(state.error, 'register'))
      const authIssue = message.auth === undefined ? null : authProblem(message.auth)
      if (authIssue !== null) return ctx.fail(connection, invalid(authIssue, 'register'))
      const room = message.room ?? DEFAULT_ROOM
      if (isFull(ctx, room)) return ctx.fail(connection, roomFull(room, 'register'))
      if (ctx.services.access.hasHooks) return admitChecked(ctx, connection, message, room, state.state)
      // Without hooks, nothing to wait for: the welcome goes out in this step.
      admit(ctx, connection, message, { room, state: state.state, identity: connection.upgrade.identity, readOnly: false })
    }
  },

  reconnect: {
    audience: 'guest',
    async handle (ctx, connection, message) {
      const authIssue = message.auth === undefined ? null : authProblem(message.auth)
      if (authIssue !== null) return ctx.fail(connection, invalid(authIssue, 'reconnect'))
      // An address over its budget does not get to try credentials on the host's authenticate.
      if (ctx.services.access.authenticates && ctx.budgetSpent(connection)) {
        ctx.spendBudget(connection)
        return ctx.fail(connection, overBudget('reconnect'))
      }
      const verdict = await identityFor(ctx, connection, message.auth, 'reconnect')
      if (verdict === null) return
      const { identity } = verdict
      let resumption
      try {
        // A secret resumes only under the account it was issued to.
        resumption = await ctx.services.sessions.reconnect(connection, message.secret, identity?.userId)
      } catch (err) {
        // The session store (Redis, a file) is unreachable: the secret may well be good, so the client keeps it and retries.
        ctx.services.log.warn({ err }, 'session store unavailable for a reconnect')
        ctx.spendBudget(connection)
        return ctx.fail(connection, { code: 'rate_limited', message: 'sessions are unavailable right now; try again shortly', ref: 'reconnect' })
      }
      if (resumption !== null) return await resumed(ctx, connection, message, resumption, identity)
      // Only a reconnect that resumes nobody counts toward the address's budget (revision 1.1 of the contract).
      if (!ctx.spendBudget(connection)) return ctx.fail(connection, overBudget('reconnect'))
      ctx.fail(connection, { code: 'invalid_secret', message: 'secret: not a live session secret', ref: 'reconnect' })
    }
  },

  update: {
    audience: 'user',
    handle (ctx, connection, message, user) {
      const { users } = ctx.services
      if (readOnlyRefusal(ctx, connection, user, 'update')) return
      const name = message.name?.trim()
      if (name !== undefined && user.identity?.name !== undefined && name !== user.name) {
        return ctx.fail(connection, { code: 'forbidden', message: 'name: set by the server for this user', ref: 'update' })
      }
      const state = message.state === undefined ? null : mergeState(user.state, message.state)
      if (state !== null && 'error' in state) return ctx.fail(connection, invalid(state.error, 'update'))
      if (message.position !== undefined) users.setPosition(user, toPosition(message.position))
      if (name !== undefined || state !== null) users.setProfile(user, name ?? user.name, state?.state ?? user.state)
    }
  },

  updatelisteningto: {
    audience: 'user',
    handle (ctx, connection, message, user) {
      if (readOnlyRefusal(ctx, connection, user, 'updatelisteningto')) return
      ctx.services.users.setListening(user, normalizeListening(message.listeningTo, user.id))
    }
  },

  data: {
    audience: 'user',
    handle (ctx, connection, message, user) {
      if (readOnlyRefusal(ctx, connection, user, 'data')) return
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
      // Joining the room one is in only replies with a snapshot (the contract's join row).
      if (!moving) return snapshot(ctx, connection, user)
      if (ctx.services.access.hasHooks) return joinChecked(ctx, connection, message.room, user)
      enterRoom(ctx, user, message.room, false)
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
