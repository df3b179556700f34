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
import { systemClock } from './src/clock.js'
import type { LiveUser } from './src/user.js'
import { resolveSettings, SettingsError } from './src/settings.js'
import type { CsvFeedConfig } from './src/csv-feed.js'
import { CsvFeedsOption } from './schemas/options.js'
import { resolve } from 'node:path'
import { Value } from '@sinclair/typebox/value'
import config, { type ShoalConfig } from './plugins/config.js'
import metrics from './plugins/metrics.js'
import userStore from './plugins/user-store.js'
import ticker from './plugins/ticker.js'
import sessions from './plugins/sessions.js'
import broadcast from './plugins/broadcast.js'
import cluster from './plugins/cluster.js'
import csvFeeds from './plugins/csv-feeds.js'
import connections from './plugins/connections.js'
import heartbeat from './plugins/heartbeat.js'
import limits from './plugins/limits.js'
import wsRoute from './routes/ws.js'
import { CLOSE_NORMAL } from './routes/handlers.js'
import healthRoute from './routes/health.js'
import metricsRoute from './routes/metrics.js'
import csvRoute from './routes/csv.js'
import demoRoute from './routes/demo.js'

export type { ShoalSettingsT as ShoalSettings } from './schemas/options.js'
export { ShoalSettings as ShoalSettingsSchema } from './schemas/options.js'
export type * from './schemas/protocol.js'
export { ClientMessageSchemas, ServerMessage as ServerMessageSchema, PROTOCOL_VERSION } from './schemas/protocol.js'
export type { SessionRecordT as SessionRecord } from './schemas/session.js'
export type { SessionStore } from './src/session-store.js'
export { MemorySessionStore } from './src/session-store.js'
export { SessionDatabaseError, SqliteSessionStore } from './src/sqlite-session-store.js'
export type { BusStatus, ClusterBus } from './src/cluster-bus.js'
export { MemoryClusterHub } from './src/cluster-bus.js'
export type { Clock } from './src/clock.js'
export type { RoomOptions } from './src/room.js'
export type { AuthorizeResult } from './plugins/config.js'
export type { CsvFeedConfig, CsvFeedStatus } from './src/csv-feed.js'
export { SettingsError, settingsFromEnv } from './src/settings.js'

/** Settings (all optional, the protocol's defaults), collaborators, and the route prefix. */
export type ShoalOptions = Partial<ShoalSettingsT> & Partial<Pick<ShoalConfig, 'authorize' | 'sessionStore' | 'bus' | 'csvFeeds' | 'clock' | 'roomOptions'>> & {
  /** Route prefix of every Shoal route (`/ws`, `/health`, `/metrics`, the demo). */
  prefix?: string
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

/** A copy the host may keep or change: ordinary objects, no link to the live user. */
function userCopy (user: LiveUser): UserT {
  const wire = user.toWire()
  return { ...wire, position: { ...wire.position }, state: { ...wire.state }, listeningTo: [...wire.listeningTo] }
}

function createApi (instance: FastifyInstance): ShoalApi {
  const { shoalUsers: users, shoalBroadcast: broadcast, shoalSessions: sessions, shoalConnections: connections } = instance
  const serverData = (payload: unknown): string => JSON.stringify({ type: 'data', from: SERVER_SENDER, payload })
  return {
    rooms: () => users.roomNames(),
    users: (room) => [...(users.room(room)?.members.values() ?? [])].map(userCopy),
    user (id) {
      const user = users.get(id)
      return user === undefined ? undefined : userCopy(user)
    },
    sendToRoom: (room, payload) => broadcast.sendToRoom(room, serverData(payload), 'data'),
    sendToUser (id, payload) {
      const peer = users.get(id)?.peer
      if (peer == null) return false
      broadcast.send(peer, serverData(payload), 'data')
      return true
    },
    disconnect (id) {
      const user = users.get(id)
      // In a cluster, only the node that has the user's socket can end its session.
      if (user === undefined || !user.isLocal) return false
      const peer = user.peer
      sessions.leave(user).catch((err: unknown) => instance.log.error({ err, user: id }, 'deleting a session failed'))
      peer?.close(CLOSE_NORMAL, 'disconnected by the server')
      return true
    },
    drain: () => connections.drain(),
    get stats () {
      return { connections: connections.size, users: users.userCount, rooms: users.roomCount, draining: connections.draining }
    }
  }
}

/** The csvFeeds option, checked like the settings: a bad entry fails registration with an error naming it. */
function checkCsvFeeds (feeds: unknown): CsvFeedConfig[] {
  if (!Value.Check(CsvFeedsOption, feeds)) {
    const [error] = [...Value.Errors(CsvFeedsOption, feeds)]
    throw new SettingsError(`option csvFeeds${error?.path.replace(/\/(\d+)/g, '[$1]').replace(/\//g, '.') ?? ''}: ${error?.message ?? 'invalid'}`)
  }
  const names = feeds.map((feed) => feed.name)
  const twice = names.find((name, i) => names.indexOf(name) !== i)
  if (twice !== undefined) throw new SettingsError(`option csvFeeds: the name "${twice}" is used twice`)
  return feeds.map((feed) => ({ ...feed, file: resolve(feed.file) }))
}

/** Marks an HTTP server whose upgrades a @fastify/websocket listener already routes. */
const kUpgradesRouted = Symbol.for('shoal.upgradesRouted')

/**
 * Registers @fastify/websocket in this context. Its decorator and route hook are
 * per context, but its upgrade listener is per server and routes through the shared
 * router, which reaches every context's routes: a sibling context that registers it
 * again keeps its route hook and drops the second listener, which would route each
 * upgrade twice.
 */
async function registerWebsocket (app: FastifyInstance, maxPayload: number): Promise<void> {
  const server = app.server as typeof app.server & { [kUpgradesRouted]?: true }
  const before = new Set(server.listeners('upgrade'))
  await app.register(websocket, {
    options: { maxPayload },
    // Each instance drains its own clients with 1012 before this runs.
    preClose (done) { this.websocketServer.close(() => done()) },
    errorHandler (err, _socket, request) { request.log.debug({ err }, 'websocket protocol error') }
  })
  if (server[kUpgradesRouted] === true) {
    for (const listener of server.listeners('upgrade')) {
      if (!before.has(listener)) server.removeListener('upgrade', listener as (...args: unknown[]) => void)
    }
  }
  server[kUpgradesRouted] = true
}

const shoal: FastifyPluginAsync<ShoalOptions> = async function shoal (app, options) {
  const settings = resolveSettings(options)
  const instanceConfig: ShoalConfig = {
    ...settings,
    clock: options.clock ?? systemClock,
    ...(options.authorize !== undefined && { authorize: options.authorize }),
    ...(options.sessionStore !== undefined && { sessionStore: options.sessionStore }),
    ...(options.bus !== undefined && { bus: options.bus }),
    ...(options.csvFeeds !== undefined && { csvFeeds: checkCsvFeeds(options.csvFeeds) }),
    ...(options.roomOptions !== undefined && { roomOptions: options.roomOptions })
  }

  let api: ShoalApi | undefined
  // Added before @fastify/websocket's own preClose (which waits for every client to
  // go), so that clients get 1012 even when the host only calls app.close().
  app.addHook('preClose', async () => { await api?.drain() })

  // A host that registered @fastify/websocket keeps its own registration.
  if (!app.hasDecorator('websocketServer')) await registerWebsocket(app, settings.maxPayload)

  await app.register(async function shoalInstance (instance) {
    await instance.register(config, { config: instanceConfig })
    await instance.register(metrics)
    await instance.register(userStore)
    await instance.register(ticker)
    await instance.register(sessions)
    await instance.register(broadcast)
    await instance.register(cluster)
    await instance.register(csvFeeds)
    await instance.register(connections)
    await instance.register(heartbeat)
    await instance.register(limits)
    await instance.register(wsRoute)
    await instance.register(healthRoute)
    await instance.register(metricsRoute)
    await instance.register(csvRoute)
    if (settings.demo) await instance.register(demoRoute)
    api = createApi(instance)
  }, { prefix: options.prefix ?? '' })

  if (api === undefined) throw new Error('shoal: instance failed to load')
  app.decorate('shoal', api)
}

export default fp(shoal, { name: 'shoal', fastify: '5.x' })
