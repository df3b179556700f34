/**
 * The instance's options, resolved: settings with their defaults, checked, and
 * the collaborators the host injected, for every other plugin.
 */
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { CsvFeedConfigT, RoomOptionsT, ShoalSettingsT } from '../schemas/options.js'
import { systemClock, type Clock } from '../src/core/clock.js'
import type { ClusterBus } from '../src/core/cluster/bus.js'
import type { SessionStore } from '../src/core/sessions/session-store.js'
import { QuietLog } from '../src/core/quiet-log.js'
import { checkCsvFeeds, resolveSettings, SettingsError } from '../src/core/settings.js'

/** What `authorize` may answer: allow, refuse with 403, or refuse with a status and reason. */
export type AuthorizeResult = boolean | { statusCode: 401 | 403, message?: string }

/** An HTTP refusal: its status and the body's `error`. */
export interface Refusal { statusCode: number, error: string }

/** The refusal an `authorize`-style hook's answer means, or null when it allows. */
export function refusalOf (verdict: AuthorizeResult): Refusal | null {
  if (verdict === true) return null
  const { statusCode, message } = verdict === false ? { statusCode: 403, message: undefined } : verdict
  return { statusCode, error: message ?? (statusCode === 401 ? 'unauthorized' : 'forbidden') }
}

/** What the host may inject besides the settings. */
export interface ShoalCollaborators {
  /** Decides whether a WebSocket upgrade may proceed, before the socket opens. */
  authorize?: (request: FastifyRequest) => AuthorizeResult | Promise<AuthorizeResult>
  /**
   * Origins a browser may connect from (the upgrade's `Origin` header): a list
   * (exact match, such as `https://app.example.com`) or a function; any when absent.
   * A request without an Origin header (not a browser) is not refused by the list.
   */
  allowedOrigins?: readonly string[] | ((origin: string, request: FastifyRequest) => boolean | Promise<boolean>)
  /** Decides whether a request may read /metrics (e.g. a bearer token); anyone may when absent. */
  metricsAuthorize?: (request: FastifyRequest) => AuthorizeResult | Promise<AuthorizeResult>
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
    ...(options.authorize !== undefined && { authorize: checkFunction('authorize', options.authorize) }),
    ...(options.allowedOrigins !== undefined && { allowedOrigins: checkOrigins(options.allowedOrigins) }),
    ...(options.metricsAuthorize !== undefined && { metricsAuthorize: checkFunction('metricsAuthorize', options.metricsAuthorize) }),
    ...(options.sessionStore !== undefined && { sessionStore: options.sessionStore }),
    ...(options.bus !== undefined && { bus: options.bus }),
    ...(options.csvFeeds !== undefined && { csvFeeds: checkCsvFeeds(options.csvFeeds) }),
    ...(options.roomOptions !== undefined && { roomOptions: options.roomOptions })
  }
}

function checkFunction<T> (name: string, value: T): T {
  if (typeof value !== 'function') throw new SettingsError(`option ${name}: expected a function, got ${typeof value}`)
  return value
}

function checkOrigins (value: ShoalCollaborators['allowedOrigins']): NonNullable<ShoalCollaborators['allowedOrigins']> {
  if (typeof value === 'function') return value
  if (Array.isArray(value) && value.every((origin) => typeof origin === 'string')) return [...value]
  throw new SettingsError('option allowedOrigins: expected a list of origins (strings) or a function')
}

/** The instance's log, with repeated warnings and errors held back (QuietLog); what it held back is written at close. */
export function quietLog (app: FastifyInstance): QuietLog {
  const log = new QuietLog(app.log, app.shoalConfig.clock)
  app.addHook('onClose', async () => { log.flush() })
  return log
}

declare module 'fastify' {
  interface FastifyInstance {
    shoalConfig: ShoalConfig
  }
}

export default fp<{ config: ShoalConfig }>(async function config (app, { config }) {
  app.decorate('shoalConfig', config)
}, { name: 'shoal-config', fastify: '5.x' })
