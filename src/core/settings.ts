/**
 * Resolving settings and the csvFeeds option: defaults filled in, then checked,
 * with an error that names the bad setting (or environment variable) and says
 * what it should be.
 */
import { resolve } from 'node:path'
import { Value } from '@sinclair/typebox/value'
import { CsvFeedsOption, ShoalSettings, type CsvFeedConfigT, type ShoalSettingName, type ShoalSettingsT } from '../../schemas/options.js'

export class SettingsError extends Error {
  override name = 'SettingsError'
}

export const SETTING_NAMES = Object.keys(ShoalSettings.properties) as ShoalSettingName[]

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
  for (const name of SETTING_NAMES) {
    if (input[name] !== undefined) picked[name] = input[name]
  }
  const settings = Value.Default(ShoalSettings, picked)
  for (const name of SETTING_NAMES) {
    const value = (settings as Record<string, unknown>)[name]
    // An optional setting (no default) may stay unset.
    if (value === undefined && !(ShoalSettings.required as string[] | undefined ?? []).includes(name)) continue
    if (!Value.Check(ShoalSettings.properties[name], value)) {
      throw new SettingsError(`${label(name)}: expected ${describe(name)}, got ${shown(input[name])}`)
    }
  }
  const resolved = settings as ShoalSettingsT
  if (resolved.slowReaderCloseBytes <= resolved.slowReaderSkipBytes) {
    throw new SettingsError(`${label('slowReaderCloseBytes')}: must be larger than ${label('slowReaderSkipBytes')}`)
  }
  return resolved
}

/** A value as the person set it: `Infinity` stays `Infinity`, strings keep their quotes. */
function shown (value: unknown): string {
  return typeof value === 'number' ? String(value) : JSON.stringify(value)
}

/** The csvFeeds option, checked like the settings: a bad entry fails with an error naming it; files are resolved against the working directory. */
export function checkCsvFeeds (feeds: unknown, label = 'option csvFeeds'): CsvFeedConfigT[] {
  if (!Value.Check(CsvFeedsOption, feeds)) {
    const [error] = [...Value.Errors(CsvFeedsOption, feeds)]
    throw new SettingsError(`${label}${error?.path.replace(/\/(\d+)/g, '[$1]').replace(/\//g, '.') ?? ''}: ${error?.message ?? 'invalid'}`)
  }
  const names = feeds.map((feed) => feed.name)
  const twice = names.find((name, i) => names.indexOf(name) !== i)
  if (twice !== undefined) throw new SettingsError(`${label}: the name "${twice}" is used twice`)
  return feeds.map((feed) => ({ ...feed, file: resolve(feed.file) }))
}
