/**
 * Shoal as a Fastify plugin: `await app.register(shoal, options)`.
 *
 * Each registration is one self-contained instance in an encapsulated context of
 * its own (under `prefix` when given): its settings, users, sessions, tick,
 * heartbeat and metrics are shared with nothing else. The host app gets one
 * decorator, `app.shoal`, the instance's server-side API.
 */
import fp from 'fastify-plugin'
import websocket from '@fastify/websocket'
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import type { ShoalSettingsT } from './schemas/options.js'
import type { UserT } from './schemas/protocol.js'
import { systemClock, type Clock } from './src/clock.js'
import type { SessionStore } from './src/session-store.js'
import { resolveSettings } from './src/settings.js'
import config, { type ShoalConfig } from './plugins/config.js'
import metrics from './plugins/metrics.js'
import userStore from './plugins/user-store.js'
import ticker from './plugins/ticker.js'
import sessions from './plugins/sessions.js'
import broadcast from './plugins/broadcast.js'
import connections from './plugins/connections.js'
import heartbeat from './plugins/heartbeat.js'
import limits from './plugins/limits.js'
import wsRoute from './routes/ws.js'
import healthRoute from './routes/health.js'
import metricsRoute from './routes/metrics.js'
import demoRoute from './routes/demo.js'

export type { ShoalSettingsT as ShoalSettings } from './schemas/options.js'
export { ShoalSettings as ShoalSettingsSchema } from './schemas/options.js'
export type * from './schemas/protocol.js'
export { ClientMessageSchemas, ServerMessage as ServerMessageSchema, PROTOCOL_VERSION } from './schemas/protocol.js'
export type { SessionRecordT as SessionRecord } from './schemas/session.js'
export type { SessionStore } from './src/session-store.js'
export { MemorySessionStore } from './src/session-store.js'
export type { Clock } from './src/clock.js'
export type { AuthorizeResult } from './plugins/config.js'
export { SettingsError, settingsFromEnv } from './src/settings.js'

export type ShoalOptions = Partial<ShoalSettingsT> & {
  /** Route prefix of every Shoal route (`/ws`, `/health`, `/metrics`, the demo). */
  prefix?: string
  authorize?: ShoalConfig['authorize']
  /** Where sessions are kept; defaults to a new in-memory store. */
  sessionStore?: SessionStore
  /** Time source; tests inject a manual clock. */
  clock?: Clock
}

/** The server-side API of one Shoal instance, as `app.shoal`. */
export interface ShoalApi {
  /** Names of the rooms that have users. */
  rooms(): string[]
  /** Users of a room (connected or in grace), as clients see them. */
  users(room: string): UserT[]
  user(id: string): UserT | undefined
  /** Sends `{type:"data", from:"server", payload}` to every connected user of a room; returns how many got it. */
  sendToRoom(room: string, payload: unknown): number
  /** Sends `{type:"data", from:"server", payload}` to one user; false when not connected. */
  sendToUser(id: string, payload: unknown): boolean
  /** Ends a user's session for good (the room sees it leave) and closes its socket with 1000. */
  disconnect(id: string): boolean
  /** Starts the shutdown sequence: health 503, upgrades refused, sockets closed with 1012, sessions flushed. */
  drain(): Promise<void>
  readonly stats: { connections: number, users: number, rooms: number, draining: boolean }
}

declare module 'fastify' {
  interface FastifyInstance {
    shoal: ShoalApi
  }
}

export const SERVER_SENDER = 'server'

function createApi (instance: FastifyInstance): ShoalApi {
  const { shoalUsers: users, shoalBroadcast: broadcast, shoalSessions: sessions, shoalConnections: connections } = instance
  const serverData = (payload: unknown): string => JSON.stringify({ type: 'data', from: SERVER_SENDER, payload })
  return {
    rooms: () => users.roomNames(),
    users: (room) => [...(users.room(room)?.members.values() ?? [])].map((user) => user.toWire()),
    user: (id) => users.get(id)?.toWire(),
    sendToRoom: (room, payload) => broadcast.sendToRoom(room, serverData(payload), 'data'),
    sendToUser (id, payload) {
      const peer = users.get(id)?.peer
      if (peer == null) return false
      broadcast.send(peer, serverData(payload), 'data')
      return true
    },
    disconnect (id) {
      const user = users.get(id)
      if (user === undefined) return false
      const peer = user.peer
      sessions.leave(user)
      peer?.close(1000, 'disconnected by the server')
      return true
    },
    drain: () => connections.drain(),
    get stats () {
      return { connections: connections.size, users: users.userCount, rooms: users.roomCount, draining: connections.draining }
    }
  }
}

const shoal: FastifyPluginAsync<ShoalOptions> = async function shoal (app, options) {
  const settings = resolveSettings(options)
  const instanceConfig: ShoalConfig = {
    ...settings,
    clock: options.clock ?? systemClock,
    ...(options.authorize !== undefined && { authorize: options.authorize }),
    ...(options.sessionStore !== undefined && { sessionStore: options.sessionStore })
  }

  // One upgrade listener per server: a host that registered @fastify/websocket keeps its own.
  if (!app.hasDecorator('websocketServer')) {
    await app.register(websocket, {
      options: { maxPayload: settings.maxPayload },
      // Clients are closed by each instance's drain (with 1012), not here without a code.
      preClose (done) { this.websocketServer.close(() => done()) },
      errorHandler (err, _socket, request) { request.log.debug({ err }, 'websocket protocol error') }
    })
  }

  let api: ShoalApi | undefined
  await app.register(async function shoalInstance (instance) {
    await instance.register(config, { config: instanceConfig })
    await instance.register(metrics)
    await instance.register(userStore)
    await instance.register(ticker)
    await instance.register(sessions)
    await instance.register(broadcast)
    await instance.register(connections)
    await instance.register(heartbeat)
    await instance.register(limits)
    await instance.register(wsRoute)
    await instance.register(healthRoute)
    await instance.register(metricsRoute)
    if (settings.demo) await instance.register(demoRoute)
    api = createApi(instance)
  }, { prefix: options.prefix ?? '' })

  if (api === undefined) throw new Error('shoal: instance failed to load')
  app.decorate('shoal', api)
}

export default fp(shoal, { name: 'shoal', fastify: '5.x' })
