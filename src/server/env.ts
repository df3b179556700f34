/**
 * The standalone server's environment: one variable per setting (`TICK_HZ`...),
 * plus PORT, HOST, LOG_LEVEL, DATA_DIR and CSV_FEEDS. A bad value is an error
 * naming the variable.
 */
import { resolve } from 'node:path'
import type { CsvFeedConfigT, ShoalSettingName, ShoalSettingsT } from '../../schemas/options.js'
import { ShoalSettings } from '../../schemas/options.js'
import { checkCsvFeeds, resolveSettings, SETTING_NAMES, SettingsError } from '../core/settings.js'

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

/** The sample feed the repository ships, which the standalone server publishes unless told otherwise. */
export const DEFAULT_CSV_FEEDS = 'landmarks=data/landmarks.csv'

/**
 * CSV_FEEDS of the standalone server: `name=file` or `name=file@room`, comma
 * separated (files relative to the working directory); empty for none. Names
 * and rooms are checked by the csvFeeds option's schema.
 */
export function csvFeedsFromEnv (env: NodeJS.ProcessEnv): CsvFeedConfigT[] {
  const raw = env.CSV_FEEDS ?? DEFAULT_CSV_FEEDS
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
