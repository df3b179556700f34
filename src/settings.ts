/**
 * Resolving settings: defaults filled in, then checked, with an error that names
 * the bad setting (or environment variable) and says what it should be.
 */
import { resolve } from 'node:path'
import { Value } from '@sinclair/typebox/value'
import { ShoalSettings, type ShoalSettingName, type ShoalSettingsT } from '../schemas/options.js'

export class SettingsError extends Error {
  override name = 'SettingsError'
}

const names = Object.keys(ShoalSettings.properties) as ShoalSettingName[]

/** `tickHz` → `TICK_HZ`; `path` → `WS_PATH`, since `PATH` belongs to the shell. */
export function envName (name: ShoalSettingName): string {
  return name === 'path' ? 'WS_PATH' : name.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()
}

function describe (name: ShoalSettingName): string {
  const schema = ShoalSettings.properties[name] as { type: string, minimum?: number, maximum?: number, exclusiveMinimum?: number, pattern?: string }
  const bounds = [
    schema.minimum !== undefined ? `at least ${schema.minimum}` : '',
    schema.exclusiveMinimum !== undefined ? `above ${schema.exclusiveMinimum}` : '',
    schema.maximum !== undefined ? `at most ${schema.maximum}` : '',
    schema.pattern !== undefined ? `matching ${schema.pattern}` : ''
  ].filter(Boolean).join(' and ')
  const kind = schema.type === 'integer' ? 'an integer' : schema.type === 'number' ? 'a number' : schema.type === 'boolean' ? 'true or false' : 'a string'
  return bounds === '' ? kind : `${kind} ${bounds}`
}

/** Fills defaults into `input` (unknown keys are ignored) and checks every setting. */
export function resolveSettings (input: Partial<Record<ShoalSettingName, unknown>>, label: (name: ShoalSettingName) => string = (name) => `option ${name}`): ShoalSettingsT {
  const picked: Record<string, unknown> = {}
  for (const name of names) {
    if (input[name] !== undefined) picked[name] = input[name]
  }
  const settings = Value.Default(ShoalSettings, picked)
  for (const name of names) {
    if (!Value.Check(ShoalSettings.properties[name], (settings as Record<string, unknown>)[name])) {
      throw new SettingsError(`${label(name)}: expected ${describe(name)}, got ${shown(input[name])}`)
    }
  }
  const resolved = settings as ShoalSettingsT
  if (resolved.slowReaderCloseBytes <= resolved.slowReaderSkipBytes) {
    throw new SettingsError(`${label('slowReaderCloseBytes')}: must be larger than ${label('slowReaderSkipBytes')}`)
  }
  return resolved
}

/** Settings from environment variables: numbers and booleans are parsed, unset ones take defaults. */
export function settingsFromEnv (env: NodeJS.ProcessEnv): ShoalSettingsT {
  const input: Partial<Record<ShoalSettingName, unknown>> = {}
  for (const name of names) {
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
 * separated (files relative to the working directory); empty for none.
 */
export function csvFeedsFromEnv (env: NodeJS.ProcessEnv): Array<{ name: string, file: string, room?: string }> {
  const raw = env.CSV_FEEDS ?? DEFAULT_CSV_FEEDS
  if (raw.trim() === '') return []
  return raw.split(',').map((entry) => {
    const match = /^\s*([A-Za-z0-9_.-]{1,64})=([^@]+?)(?:@([A-Za-z0-9_.:-]{1,64}))?\s*$/.exec(entry)
    if (match === null) throw new SettingsError(`environment variable CSV_FEEDS: expected name=file or name=file@room, comma separated, got ${JSON.stringify(entry)}`)
    const [, name = '', file = '', room] = match
    return room === undefined ? { name, file: file.trim() } : { name, file: file.trim(), room }
  })
}

/** A value as the person set it: `Infinity` stays `Infinity`, strings keep their quotes. */
function shown (value: unknown): string {
  return typeof value === 'number' ? String(value) : JSON.stringify(value)
}

function parseNumber (raw: string): number | string {
  const value = Number(raw.trim())
  return raw.trim() === '' || Number.isNaN(value) ? raw : value
}

function parseBoolean (raw: string): boolean | string {
  const lower = raw.trim().toLowerCase()
  return lower === 'true' || lower === '1' ? true : lower === 'false' || lower === '0' ? false : raw
}
