/** The instance's resolved settings and injected collaborators, for every other plugin. */
import fp from 'fastify-plugin'
import type { FastifyRequest } from 'fastify'
import type { ShoalSettingsT } from '../schemas/options.js'
import type { Clock } from '../src/clock.js'
import type { RoomOptions } from '../src/room.js'
import type { ClusterBus } from '../src/cluster-bus.js'
import type { CsvFeedConfig } from '../src/csv-feed.js'
import type { SessionStore } from '../src/session-store.js'

/** What `authorize` may answer: allow, refuse with 403, or refuse with a status and reason. */
export type AuthorizeResult = boolean | { statusCode: 401 | 403, message?: string }

export interface ShoalConfig extends ShoalSettingsT {
  /** Decides whether a WebSocket upgrade may proceed, before the socket opens. */
  authorize?: (request: FastifyRequest) => AuthorizeResult | Promise<AuthorizeResult>
  /** Where sessions are kept; without one, the instance makes an in-memory store. */
  sessionStore?: SessionStore
  /** CSV files to publish to clients as `csv` messages, each watched for changes. */
  csvFeeds?: CsvFeedConfig[]
  /** Joins a cluster over this bus (e.g. Redis); without one the instance is a single node. */
  bus?: ClusterBus
  /** Time source of the core; tests inject a manual clock. */
  clock: Clock
  /** Options of one room, decided when it is created; what it leaves out comes from the settings. */
  roomOptions?: (room: string) => Partial<RoomOptions>
}

declare module 'fastify' {
  interface FastifyInstance {
    shoalConfig: ShoalConfig
  }
}

export default fp<{ config: ShoalConfig }>(async function config (app, { config }) {
  app.decorate('shoalConfig', config)
}, { name: 'shoal-config', fastify: '5.x' })
