/**
 * What the host app hands the plugin: the option types, and their checks. Kept
 * apart from the plugins, whose module augmentations (internal decorators) must
 * not reach the host's types.
 */
import type { FastifyRequest } from 'fastify'
import type { IdentityT } from '../../schemas/identity.js'
import type { CsvFeedConfigT, RoomOptionsT, ShoalSettingsT } from '../../schemas/options.js'
import type { AuthenticateResult } from '../core/access.js'
import { systemClock, type Clock } from '../core/clock.js'
import type { ClusterBus } from '../core/cluster/bus.js'
import type { SessionStore } from '../core/sessions/session-store.js'
import { checkCsvFeeds, resolveSettings, SETTING_NAMES, SettingsError } from '../core/settings.js'

/** What the host says of a user: its account id (required), the name it must have, `info` its room sees. */
export type ShoalIdentity = IdentityT

/** What `authorize` may answer: allow, refuse with 403, or refuse with a status and reason. */
export type AuthorizeResult = boolean | { statusCode: 401 | 403, message?: string }

/** What the upgrade's `authorize` may answer: as AuthorizeResult, or an identity (allowed, as that account). */
export type UpgradeAuthorizeResult = AuthorizeResult | ShoalIdentity

/** `authorize`'s answer says who the client is: any object but a refusal (a malformed one is then checked as an identity, and named). */
export const isIdentityVerdict = (verdict: UpgradeAuthorizeResult): verdict is ShoalIdentity =>
  typeof verdict === 'object' && verdict !== null && !('statusCode' in verdict)

/** An HTTP refusal: its status and the body's `error`. */
export interface Refusal { statusCode: number, error: string }

/** The refusal an `authorize`-style hook's answer means, or null when it allows. */
export function refusalOf (verdict: AuthorizeResult): Refusal | null {
  if (verdict === true) return null
  const { statusCode, message } = verdict === false ? { statusCode: 403, message: undefined } : verdict
  // From JavaScript anything may come: what is not 401 is a 403.
  const status = statusCode === 401 ? 401 : 403
  return { statusCode: status, error: typeof message === 'string' ? message : (status === 401 ? 'unauthorized' : 'forbidden') }
}

/** The operator's page at `/admin` (off without these): who may see it, and how often its feed sends. */
export interface AdminOptions {
  /**
   * Decides every request to the page, its feed and its actions (a session cookie
   * of the host's, a bearer token...). `adminToken(token)` makes one for a shared secret.
   */
  authorize: (request: FastifyRequest) => AuthorizeResult | Promise<AuthorizeResult>
  /** Sent as `WWW-Authenticate` with a 401, e.g. `Basic realm="Shoal admin"`, so that a browser asks for credentials. */
  challenge?: string
  /** Milliseconds between two snapshots of the feed: 250 to 60000, 1000 when absent. */
  intervalMs?: number
}

/** What the host may inject besides the settings. */
export interface ShoalCollaborators {
  /**
   * Decides whether a WebSocket upgrade may proceed, before the socket opens; an
   * identity it returns is the account every user of that socket speaks for.
   */
  authorize?: (request: FastifyRequest) => UpgradeAuthorizeResult | Promise<UpgradeAuthorizeResult>
  /**
   * Decides each register and reconnect from its `auth` field (a Shoal extension,
   * any JSON up to 4 KiB), for tokens that should not travel in a URL: an identity
   * admits it as that account, true as it is, false refuses it (`unauthorized`,
   * close 4401); throw `new ShoalError('forbidden', ...)` for 4403. The upgrade
   * request is kept for the socket's life when this is set.
   */
  authenticate?: (auth: unknown, request: FastifyRequest) => AuthenticateResult | Promise<AuthenticateResult>
  /** Decides register and join into `room` (identity null: anonymous); a refusal is `forbidden` and nothing changes. */
  canJoin?: (identity: ShoalIdentity | null, room: string) => boolean | Promise<boolean>
  /**
   * Decided when a user enters a room (register, join, resume, moveToRoom): false
   * makes it read-only there, its update, data and updatelisteningto `forbidden`.
   */
  canUpdate?: (identity: ShoalIdentity | null, room: string) => boolean | Promise<boolean>
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
  /** Serves the operator's page at `/admin`, for those `admin.authorize` lets in. */
  admin?: AdminOptions
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

export interface ShoalConfig extends ShoalSettingsT, Omit<ShoalCollaborators, 'clock' | 'admin'> {
  clock: Clock
  admin?: Required<Omit<AdminOptions, 'challenge'>> & Pick<AdminOptions, 'challenge'>
}

/** Every collaborator's name: a Record, so that one added to ShoalCollaborators but not here fails to compile. */
const COLLABORATORS: Record<keyof ShoalCollaborators, true> = {
  authorize: true, authenticate: true, canJoin: true, canUpdate: true, allowedOrigins: true, metricsAuthorize: true, sessionStore: true, csvFeeds: true, bus: true, clock: true, roomOptions: true, admin: true
}

/** Every option name; Fastify's own register options (`prefix`, `logLevel`, `logSerializers`) too. */
const OPTION_NAMES = new Set<string>([...SETTING_NAMES, ...Object.keys(COLLABORATORS), 'prefix', 'logLevel', 'logSerializers'])

/** From JavaScript a misspelt option would be ignored without a word: name it, and the option it resembles. */
function checkNames (options: object): void {
  for (const name of Object.keys(options)) {
    if (OPTION_NAMES.has(name)) continue
    const like = [...OPTION_NAMES].find((known) => known.toLowerCase() === name.toLowerCase())
    throw new SettingsError(`option ${name}: not an option of shoal${like === undefined ? '' : ` (did you mean ${like}?)`}`)
  }
}

/** An object the engine will call: every method it needs is there, or a SettingsError names the first missing one. */
function checkMethods<T extends object> (name: string, value: T, methods: ReadonlyArray<keyof T & string>, what: string): T {
  const missing = methods.find((method) => typeof (value as Record<string, unknown> | null)?.[method] !== 'function')
  if (typeof value !== 'object' || value === null || missing !== undefined) {
    throw new SettingsError(`option ${name}: expected ${what} (with ${methods.join(', ')}), ${missing === undefined ? `got ${typeof value}` : `but ${missing} is not a function`}`)
  }
  return value
}

/** Checks every option; a bad one throws a SettingsError naming it. */
export function resolveConfig (options: ShoalOptions): ShoalConfig {
  checkNames(options)
  return {
    ...resolveSettings(options),
    clock: options.clock === undefined ? systemClock : checkMethods('clock', options.clock, ['now'], 'a clock'),
    ...(options.authorize !== undefined && { authorize: checkFunction('authorize', options.authorize) }),
    ...(options.authenticate !== undefined && { authenticate: checkFunction('authenticate', options.authenticate) }),
    ...(options.canJoin !== undefined && { canJoin: checkFunction('canJoin', options.canJoin) }),
    ...(options.canUpdate !== undefined && { canUpdate: checkFunction('canUpdate', options.canUpdate) }),
    ...(options.allowedOrigins !== undefined && { allowedOrigins: checkOrigins(options.allowedOrigins) }),
    ...(options.metricsAuthorize !== undefined && { metricsAuthorize: checkFunction('metricsAuthorize', options.metricsAuthorize) }),
    ...(options.sessionStore !== undefined && { sessionStore: checkMethods('sessionStore', options.sessionStore, ['load', 'save', 'delete', 'sweep'], 'a SessionStore') }),
    ...(options.bus !== undefined && { bus: checkMethods('bus', options.bus, ['start', 'subscribe', 'unsubscribe', 'publish', 'heartbeat', 'alive', 'saveMembers', 'removeMembers', 'members'], 'a ClusterBus') }),
    ...(options.csvFeeds !== undefined && { csvFeeds: checkCsvFeeds(options.csvFeeds) }),
    ...(options.roomOptions !== undefined && { roomOptions: checkFunction('roomOptions', options.roomOptions) }),
    ...(options.admin !== undefined && { admin: checkAdmin(options.admin) })
  }
}

const ADMIN_INTERVAL_MS = { default: 1000, minimum: 250, maximum: 60_000 }

function checkAdmin (admin: AdminOptions): NonNullable<ShoalConfig['admin']> {
  if (typeof admin !== 'object' || admin === null) throw new SettingsError(`option admin: expected an object with an authorize function, got ${admin === null ? 'null' : typeof admin}`)
  const unknown = Object.keys(admin).find((key) => !['authorize', 'challenge', 'intervalMs'].includes(key))
  if (unknown !== undefined) throw new SettingsError(`option admin.${unknown}: not an option of admin (authorize, challenge, intervalMs)`)
  const { authorize, challenge, intervalMs = ADMIN_INTERVAL_MS.default } = admin
  checkFunction('admin.authorize', authorize)
  if (challenge !== undefined && (typeof challenge !== 'string' || challenge === '')) throw new SettingsError('option admin.challenge: expected a non-empty string (a WWW-Authenticate value)')
  if (typeof intervalMs !== 'number' || !(intervalMs >= ADMIN_INTERVAL_MS.minimum && intervalMs <= ADMIN_INTERVAL_MS.maximum)) {
    throw new SettingsError(`option admin.intervalMs: expected a number from ${ADMIN_INTERVAL_MS.minimum} to ${ADMIN_INTERVAL_MS.maximum}, got ${String(intervalMs)}`)
  }
  return { authorize, intervalMs, ...(challenge !== undefined && { challenge }) }
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
