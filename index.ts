/**
 * Shoal as a Fastify plugin: `await app.register(shoal, options)`.
 *
 * Each registration is one self-contained instance in an encapsulated context of
 * its own (under `prefix` when given): its settings, users, sessions, tick,
 * heartbeat and metrics are shared with nothing else. The host app gets one
 * decorator, `app.shoal`, the instance's server-side API. The plugins below,
 * in order, are the architecture: each adds one capability on top of the ones
 * before it.
 */
import fp from 'fastify-plugin'
import type { FastifyPluginAsync } from 'fastify'
import config from './plugins/config.js'
import { resolveConfig, type ShoalOptions } from './src/host/options.js'
import metrics from './plugins/metrics.js'
import userStore from './plugins/user-store.js'
import ticker from './plugins/ticker.js'
import broadcast from './plugins/broadcast.js'
import cluster from './plugins/cluster.js'
import sessions from './plugins/sessions.js'
import csvFeeds from './plugins/csv-feeds.js'
import connections from './plugins/connections.js'
import heartbeat from './plugins/heartbeat.js'
import limits from './plugins/limits.js'
import access from './plugins/access.js'
import messages from './plugins/messages.js'
import engine from './plugins/engine.js'
import apiPlugin from './plugins/api.js'
import admin from './plugins/admin.js'
import websocket from './plugins/websocket.js'
import wsRoute from './routes/ws.js'
import healthRoute from './routes/health.js'
import metricsRoute from './routes/metrics.js'
import csvRoute from './routes/csv.js'
import demoRoute from './routes/demo.js'
import adminRoute from './routes/admin.js'
import type { ShoalApi } from './src/core/api.js'

export type { ShoalSettingsT as ShoalSettings, CsvFeedConfigT as CsvFeedConfig, RoomOptionsT as RoomOptions } from './schemas/options.js'
export { ShoalSettings as ShoalSettingsSchema } from './schemas/options.js'
export type * from './schemas/protocol.js'
export { ClientMessageSchemas, ServerMessage as ServerMessageSchema, PROTOCOL_VERSION } from './schemas/protocol.js'
export type { FeedStatusT as CsvFeedStatus } from './schemas/http.js'
export type { SessionRecordT as SessionRecord } from './schemas/session.js'
export type { SessionStore } from './src/core/sessions/session-store.js'
export { MemorySessionStore } from './src/core/sessions/session-store.js'
export type { BusStatus, ClusterBus } from './src/core/cluster/bus.js'
export { MemoryClusterHub } from './src/core/cluster/bus.js'
export type { Clock } from './src/core/clock.js'
export type { AdminOptions, AuthorizeResult, ShoalIdentity, ShoalOptions, UpgradeAuthorizeResult } from './src/host/options.js'
export { adminToken } from './src/host/admin-token.js'
export type { AdminOverviewT as AdminOverview, AdminRoomT as AdminRoom, AdminUserT as AdminUser } from './schemas/admin.js'
export type { AuthenticateResult } from './src/core/access.js'
export { ShoalError } from './src/core/identity.js'
export type { CustomMessageOf, MessageContext, MessageHandler } from './src/core/custom-messages.js'
export { SettingsError } from './src/core/settings.js'
export { settingsFromEnv } from './src/server/env.js'
export { SERVER_SENDER, type ShoalApi } from './src/core/api.js'
export type { ShoalEventName, ShoalEvents, ShoalListener } from './src/core/host-events.js'
export { CloseCode } from './src/protocol/close-codes.js'

declare module 'fastify' {
  interface FastifyInstance {
    shoal: ShoalApi
  }
}

const shoal: FastifyPluginAsync<ShoalOptions> = async function shoal (app, options) {
  // Its own property: a child scope may hold another instance under one at the root (hasDecorator would see the parent's).
  if (Object.hasOwn(app, 'shoal')) {
    throw new Error('shoal is registered in this scope already: register each further instance in a scope of its own, e.g. app.register(async (scope) => { await scope.register(shoal, { prefix: \'/second\' }) })')
  }
  const instanceConfig = resolveConfig(options)
  let api: ShoalApi | undefined

  await app.register(async function shoalInstance (instance) {
    await instance.register(config, { config: instanceConfig })
    await instance.register(metrics)
    await instance.register(userStore)
    await instance.register(ticker)
    await instance.register(broadcast)
    await instance.register(cluster)
    await instance.register(sessions)
    await instance.register(csvFeeds)
    await instance.register(connections)
    await instance.register(heartbeat)
    await instance.register(limits)
    await instance.register(access)
    await instance.register(messages)
    await instance.register(engine)
    await instance.register(apiPlugin)
    await instance.register(admin)
    await instance.register(websocket)
    await instance.register(wsRoute)
    await instance.register(healthRoute)
    await instance.register(metricsRoute)
    await instance.register(csvRoute)
    await instance.register(adminRoute)
    if (instanceConfig.demo || instanceConfig.clientBundle === true) await instance.register(demoRoute)
    api = instance.shoalApi
  }, { prefix: options.prefix ?? '' })

  if (api === undefined) throw new Error('shoal: instance failed to load')
  app.decorate('shoal', api)
}

export default fp(shoal, { name: 'shoal', fastify: '5.x' })
