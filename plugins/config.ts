/**
 * The instance's options, resolved: settings with their defaults, checked, and
 * the collaborators the host injected, for every other plugin.
 */
import fp from 'fastify-plugin'
import type { FastifyRequest } from 'fastify'
import type { CsvFeedConfigT, RoomOptionsT, ShoalSettingsT } from '../schemas/options.js'
import { systemClock, type Clock } from '../src/core/clock.js'
import type { ClusterBus } from '../src/core/cluster/bus.js'
import type { SessionStore } from '../src/core/sessions/session-store.js'
import { checkCsvFeeds, resolveSettings } from '../src/core/settings.js'

/** What `authorize` may answer: allow, refuse with 403, or refuse with a status and reason. */
export type AuthorizeResult = boolean | { statusCode: 401 | 403, message?: string }

/** What the host may inject besides the settings. */
export interface ShoalCollaborators {
  /** Decides whether a WebSocket upgrade may proceed, before the socket opens. */
  authorize?: (request: FastifyRequest) => AuthorizeResult | Promise<AuthorizeResult>
  /** Where sessions are kept; without one, the instance makes an in-memory store. */
  sessionStore?: SessionStore
  /** CSV files to publish to clients as `csv` messages, each watched for changes. */
  csvFeeds?: CsvFeedConfigT[]
  /** Joins a cluster over this bus (e.g. Redis); without one the instance is a single node. */
  bus?: ClusterBus
  /** Time source of the core; tests inject a manual clock. */
  clock?: Clock
  /** Options of one room, decided when it is created; what it leaves out comes from the settings. */
  roomOptions?: (room: string) => Partial<RoomOptionsT>
}

/** Settings (all optional, the protocol's defaults), collaborators, and the route prefix. */
export type ShoalOptions = Partial<ShoalSettingsT> & ShoalCollaborators & {
  /** Route prefix of every Shoal route (`/ws`, `/health`, `/metrics`, the demo). */
  prefix?: string
}

export interface ShoalConfig extends ShoalSettingsT, Omit<ShoalCollaborators, 'clock'> {
  clock: Clock
}

/** Checks every option; a bad one throws a SettingsError naming it. */
export function resolveConfig (options: ShoalOptions): ShoalConfig {
  return {
    ...resolveSettings(options),
    clock: options.clock ?? systemClock,
    ...(options.authorize !== undefined && { authorize: options.authorize }),
    ...(options.sessionStore !== undefined && { sessionStore: options.sessionStore }),
    ...(options.bus !== undefined && { bus: options.bus }),
    ...(options.csvFeeds !== undefined && { csvFeeds: checkCsvFeeds(options.csvFeeds) }),
    ...(options.roomOptions !== undefined && { roomOptions: options.roomOptions })
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    shoalConfig: ShoalConfig
  }
}

export default fp<{ config: ShoalConfig }>(async function config (app, { config }) {
  app.decorate('shoalConfig', config)
}, { name: 'shoal-config', fastify: '5.x' })
