/**
 * The standalone server's environment: one variable per setting (`TICK_HZ`...),
 * plus PORT, HOST, LOG_LEVEL, DATA_DIR, CSV_FEEDS, METRICS_TOKEN, ADMIN_TOKEN... A bad value is an error
 * naming the variable.
 */
import { isIP } from 'node:net'
import { join, resolve } from 'node:path'
import type { CsvFeedConfigT, ShoalSettingName, ShoalSettingsT } from '../../schemas/options.js'
import { ShoalSettings } from '../../schemas/options.js'
import { adminToken } from '../host/admin-token.js'
import { tokenMatcher } from '../host/secret-token.js'
import type { AdminOptions, AuthorizeResult } from '../host/options.js'
import type { RedisTarget } from '../adapters/redis-target.js'
import { checkCsvFeeds, resolveSettings, SETTING_NAMES, SettingsError } from '../core/settings.js'
import { packageRoot } from './package-root.js'

/** `tickHz` → `TICK_HZ`; `path` → `WS_PATH`, since `PATH` belongs to the shell. */
export function envName (name: ShoalSettingName): string {
  return name === 'path' ? 'WS_PATH' : name.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()
}

/** Settings from environment variables: numbers and booleans are parsed, unset ones take defaults. */
export function settingsFromEnv (env: NodeJS.ProcessEnv): ShoalSettingsT {
  const input: Partial<Record<ShoalSettingName, unknown>> = {}
  for (const name of SETTING_NAMES) {
    const raw = env[envName(name)]
    if (raw === undefined || raw === '') continue
    const type = (ShoalSettings.properties[name] as { type: string }).type
    input[name] = type === 'string' ? raw : type === 'boolean' ? parseBoolean(raw) : parseNumber(raw)
  }
  return resolveSettings(input, (name) => `environment variable ${envName(name)}`)
}

export interface ListenSettings {
  port: number
  host: string
  logLevel: string
}

const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

/** PORT, HOST and LOG_LEVEL of the standalone server. */
export function listenFromEnv (env: NodeJS.ProcessEnv): ListenSettings {
  const port = env.PORT === undefined || env.PORT === '' ? 3000 : /^\d+$/.test(env.PORT) ? Number(env.PORT) : Number.NaN
  if (!Number.isInteger(port) || port > 65535) {
    throw new SettingsError(`environment variable PORT: expected an integer from 0 to 65535, got ${JSON.stringify(env.PORT)}`)
  }
  const logLevel = env.LOG_LEVEL === undefined || env.LOG_LEVEL === '' ? 'info' : env.LOG_LEVEL
  if (!logLevels.includes(logLevel)) {
    throw new SettingsError(`environment variable LOG_LEVEL: expected one of ${logLevels.join(', ')}, got ${JSON.stringify(env.LOG_LEVEL)}`)
  }
  return { port, host: env.HOST === undefined || env.HOST === '' ? '0.0.0.0' : env.HOST, logLevel }
}

/** Where the standalone server keeps its files (DATA_DIR, default ./data), resolved against the working directory. */
export function dataDirFromEnv (env: NodeJS.ProcessEnv): string {
  return resolve(env.DATA_DIR === undefined || env.DATA_DIR === '' ? 'data' : env.DATA_DIR)
}

/** The sample feed the package ships (in its own folder, wherever it is installed), which the standalone server publishes unless told otherwise. */
const defaultCsvFeeds = (): CsvFeedConfigT[] => [{ name: 'landmarks', file: join(packageRoot(), 'data', 'landmarks.csv') }]

/**
 * CSV_FEEDS of the standalone server: `name=file` or `name=file@room`, comma
 * separated (files relative to the working directory); empty for none. Names
 * and rooms are checked by the csvFeeds option's schema.
 */
export function csvFeedsFromEnv (env: NodeJS.ProcessEnv): CsvFeedConfigT[] {
  // The default is not parsed: the package's own path may hold any character (`@` in a pnpm store).
  if (env.CSV_FEEDS === undefined) return defaultCsvFeeds()
  const raw = env.CSV_FEEDS
  if (raw.trim() === '') return []
  const feeds = raw.split(',').map((entry) => {
    const match = /^\s*([^=@]+)=([^@]+?)(?:@([^@]+?))?\s*$/.exec(entry)
    if (match === null) throw new SettingsError(`environment variable CSV_FEEDS: expected name=file or name=file@room, comma separated, got ${JSON.stringify(entry)}`)
    const [, name = '', file = '', room] = match
    return room === undefined ? { name, file: file.trim() } : { name, file: file.trim(), room }
  })
  checkCsvFeeds(feeds, 'environment variable CSV_FEEDS')
  return feeds
}

function parseNumber (raw: string): number | string {
  const value = Number(raw.trim())
  return raw.trim() === '' || Number.isNaN(value) ? raw : value
}

function parseBoolean (raw: string): boolean | string {
  const lower = raw.trim().toLowerCase()
  return lower === 'true' || lower === '1' ? true : lower === 'false' || lower === '0' ? false : raw
}

/** ALLOWED_ORIGINS of the standalone server: origins browsers may connect from, comma separated; unset or empty for any. */
export function allowedOriginsFromEnv (env: NodeJS.ProcessEnv): string[] | undefined {
  const raw = env.ALLOWED_ORIGINS
  if (raw === undefined || raw.trim() === '') return undefined
  const origins = raw.split(',').map((origin) => origin.trim()).filter((origin) => origin !== '')
  const bad = origins.find((origin) => !/^[a-z][a-z0-9+.-]*:\/\/[^/\s]+$/i.test(origin))
  if (bad !== undefined) throw new SettingsError(`environment variable ALLOWED_ORIGINS: expected origins such as https://app.example.com, comma separated, got ${JSON.stringify(bad)}`)
  return origins
}

/**
 * TRUST_PROXY of the standalone server, for Fastify's `trustProxy`: unset or
 * `false` (the socket's address is the client's), `true` (trust every proxy:
 * only behind one that overwrites X-Forwarded-For), a count of trusted hops (only
 * where the server is reachable through those proxies alone), or the proxies'
 * addresses and CIDRs, comma separated (the client is the first address, from
 * the right, that is not one of them).
 */
export function trustProxyFromEnv (env: NodeJS.ProcessEnv): boolean | string[] | ((address: string, hop: number) => boolean) {
  const raw = (env.TRUST_PROXY ?? '').trim()
  if (raw === '' || raw.toLowerCase() === 'false') return false
  if (raw.toLowerCase() === 'true') return true
  if (/^\d+$/.test(raw)) {
    // Fastify takes a bare number as "trust nothing"; a count of trusted hops is a function (as in Express).
    const hops = Number(raw)
    return (_address, hop) => hop < hops
  }
  const entries = raw.split(',').map((entry) => entry.trim())
  const bad = entries.find((entry) => !isAddressOrCidr(entry))
  if (bad !== undefined) {
    throw new SettingsError(`environment variable TRUST_PROXY: expected true, false, a hop count, or addresses and CIDRs (comma separated), got ${JSON.stringify(bad)}`)
  }
  return entries
}

function isAddressOrCidr (entry: string): boolean {
  const [address = '', bits, extra] = entry.split('/')
  const family = isIP(address)
  if (family === 0 || extra !== undefined) return false
  if (bits === undefined) return true
  return /^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128)
}

/** METRICS_TOKEN of the standalone server: when set, /metrics wants `Authorization: Bearer <token>` (compared in constant time). */
export function metricsAuthorizeFromEnv (env: NodeJS.ProcessEnv): ((request: { headers: { authorization?: string } }) => AuthorizeResult) | undefined {
  const token = env.METRICS_TOKEN
  if (token === undefined || token === '') return undefined
  const matches = tokenMatcher(token)
  return (request) => {
    const given = /^bearer (.+)$/i.exec(request.headers.authorization ?? '')?.[1]
    if (given === undefined) return { statusCode: 401, message: 'send Authorization: Bearer <METRICS_TOKEN>' }
    return matches(given)
  }
}

/** ADMIN_TOKEN of the standalone server: when set, `/admin` is on, for a bearer token or Basic credentials with it as the password. */
export function adminFromEnv (env: NodeJS.ProcessEnv): AdminOptions | undefined {
  const token = env.ADMIN_TOKEN
  return token === undefined || token === '' ? undefined : adminToken(token)
}

/**
 * Where the cluster's Redis is: REDIS_CLUSTER_NODES (seed nodes of a Redis
 * Cluster, `host:port,host:port`) or REDIS_URL (one server); undefined: no
 * cluster. Both at once is an error, so that a node never joins the wrong one.
 */
export function redisTargetFromEnv (env: NodeJS.ProcessEnv): RedisTarget | undefined {
  const url = env.REDIS_URL ?? ''
  const seeds = env.REDIS_CLUSTER_NODES ?? ''
  if (url !== '' && seeds !== '') throw new SettingsError('environment variables REDIS_URL and REDIS_CLUSTER_NODES: set one, not both (REDIS_CLUSTER_NODES for a Redis Cluster, REDIS_URL for one server)')
  if (url !== '') return { url }
  if (seeds === '') return undefined
  const entries = seeds.split(',').map((entry) => entry.trim())
  const clusterNodes = entries.map((entry) => {
    const match = /^(\[[0-9a-fA-F:]+\]|[^:\s[\]]+):(\d{1,5})$/.exec(entry)
    const port = Number(match?.[2])
    if (match === null || port < 1 || port > 65535) throw new SettingsError(`environment variable REDIS_CLUSTER_NODES: expected host:port seed nodes, comma separated, got ${JSON.stringify(entry)}`)
    return { host: (match[1] ?? '').replace(/^\[|\]$/g, ''), port }
  })
  return { clusterNodes }
}
