import { existsSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import WebSocket from 'ws'
import { ShoalClient } from '../../src/client/index.js'
import { resolveSettings, SettingsError } from '../../src/core/settings.js'
import { allowedOriginsFromEnv, csvFeedsFromEnv, envName, listenFromEnv, metricsAuthorizeFromEnv, redisTargetFromEnv, settingsFromEnv, trustProxyFromEnv } from '../../src/server/env.js'
import type { TapTest } from '../core/fakes.js'

const contractDefaults = {
  tickHz: 20,
  heartbeatMs: 10_000,
  graceMs: 30_000,
  sessionTtlMs: 86_400_000,
  sweepMs: 3_600_000,
  maxPayload: 16_384,
  messagesPerSecond: 60,
  messageBurst: 120,
  registerLimit: 30,
  registerWindowMs: 60_000,
  slowReaderSkipBytes: 1_048_576,
  slowReaderCloseBytes: 8_388_608
}

/** Asserts that `fn` throws a SettingsError whose message names `name`, and returns the message. */
function settingsError (t: TapTest, fn: () => unknown, name: string): string {
  try {
    fn()
  } catch (err) {
    t.ok(err instanceof SettingsError, `${name}: a SettingsError`)
    const message = (err as Error).message
    t.match(message, new RegExp(`\\b${name}\\b`), `message names ${name}: ${message}`)
    return message
  }
  t.ok(false, `${name}: expected a SettingsError`)
  return ''
}

t.test('defaults equal the contract\'s', async (t) => {
  t.match(resolveSettings({}), contractDefaults)
  t.match(settingsFromEnv({}), contractDefaults)
  t.equal(resolveSettings({}).path, '/ws')
})

t.test('options override defaults; unknown options are ignored', async (t) => {
  const settings = resolveSettings({ tickHz: 50, graceMs: 0, path: '/live', ...{ bogus: 1 } } as Parameters<typeof resolveSettings>[0])
  t.equal(settings.tickHz, 50)
  t.equal(settings.graceMs, 0)
  t.equal(settings.path, '/live')
  t.equal(settings.heartbeatMs, 10_000)
  t.notOk('bogus' in settings)
})

t.test('a bad option throws a SettingsError naming it and what it should be', async (t) => {
  const message = settingsError(t, () => resolveSettings({ tickHz: 0 }), 'tickHz')
  t.match(message, /at least 1/)
  t.match(message, /0/)
  settingsError(t, () => resolveSettings({ tickHz: 'fast' }), 'tickHz')
  settingsError(t, () => resolveSettings({ heartbeatMs: 1.5 }), 'heartbeatMs')
  settingsError(t, () => resolveSettings({ path: 'ws' }), 'path')
  settingsError(t, () => resolveSettings({ demo: 'yes' }), 'demo')
  settingsError(t, () => resolveSettings({ messagesPerSecond: 0 }), 'messagesPerSecond')
})

t.test('slowReaderCloseBytes must be larger than slowReaderSkipBytes', async (t) => {
  settingsError(t, () => resolveSettings({ slowReaderSkipBytes: 100, slowReaderCloseBytes: 100 }), 'slowReaderCloseBytes')
  t.equal(resolveSettings({ slowReaderSkipBytes: 100, slowReaderCloseBytes: 101 }).slowReaderCloseBytes, 101)
})

t.test('envName', async (t) => {
  t.equal(envName('path'), 'WS_PATH', 'PATH belongs to the shell')
  t.equal(envName('tickHz'), 'TICK_HZ')
  t.equal(envName('graceMs'), 'GRACE_MS')
  t.equal(envName('sessionTtlMs'), 'SESSION_TTL_MS')
  t.equal(envName('slowReaderCloseBytes'), 'SLOW_READER_CLOSE_BYTES')
  t.equal(envName('demo'), 'DEMO')
})

t.test('settingsFromEnv parses numbers, booleans and strings', async (t) => {
  const settings = settingsFromEnv({
    TICK_HZ: '30',
    GRACE_MS: '0',
    SESSION_TTL_MS: ' 1000 ',
    MESSAGES_PER_SECOND: '2.5',
    MAX_PAYLOAD: '65536',
    SLOW_READER_SKIP_BYTES: '10',
    SLOW_READER_CLOSE_BYTES: '20',
    DEMO: 'false',
    WS_PATH: '/socket'
  })
  t.equal(settings.tickHz, 30)
  t.equal(settings.graceMs, 0)
  t.equal(settings.sessionTtlMs, 1000)
  t.equal(settings.messagesPerSecond, 2.5)
  t.equal(settings.maxPayload, 65_536)
  t.equal(settings.slowReaderSkipBytes, 10)
  t.equal(settings.slowReaderCloseBytes, 20)
  t.equal(settings.demo, false)
  t.equal(settings.path, '/socket')
  t.equal(settings.heartbeatMs, 10_000, 'unset: default')
})

t.test('booleans: true/false/1/0 in any case', async (t) => {
  for (const [raw, value] of [['true', true], ['TRUE', true], ['1', true], ['false', false], ['False', false], ['0', false]] as const) {
    t.equal(settingsFromEnv({ DEMO: raw }).demo, value, raw)
  }
})

t.test('empty variables take defaults; PATH is not the WebSocket path', async (t) => {
  const settings = settingsFromEnv({ TICK_HZ: '', DEMO: '', PATH: '/usr/bin:/bin' })
  t.equal(settings.tickHz, 20)
  t.equal(settings.demo, true)
  t.equal(settings.path, '/ws')
})

t.test('a bad variable throws a SettingsError naming the environment variable', async (t) => {
  const cases: Array<[Record<string, string>, string]> = [
    [{ TICK_HZ: 'abc' }, 'TICK_HZ'],
    [{ TICK_HZ: '0' }, 'TICK_HZ'],
    [{ TICK_HZ: '201' }, 'TICK_HZ'],
    [{ TICK_HZ: 'Infinity' }, 'TICK_HZ'],
    [{ TICK_HZ: '  ' }, 'TICK_HZ'],
    [{ GRACE_MS: '-5' }, 'GRACE_MS'],
    [{ GRACE_MS: '1.5' }, 'GRACE_MS'],
    [{ HEARTBEAT_MS: '5' }, 'HEARTBEAT_MS'],
    [{ MAX_PAYLOAD: '100' }, 'MAX_PAYLOAD'],
    [{ MESSAGE_BURST: '0' }, 'MESSAGE_BURST'],
    [{ MESSAGES_PER_SECOND: '0' }, 'MESSAGES_PER_SECOND'],
    [{ DEMO: 'maybe' }, 'DEMO'],
    [{ DEMO: 'yes' }, 'DEMO'],
    [{ WS_PATH: 'ws' }, 'WS_PATH'],
    [{ SLOW_READER_SKIP_BYTES: '100', SLOW_READER_CLOSE_BYTES: '50' }, 'SLOW_READER_CLOSE_BYTES']
  ]
  for (const [env, name] of cases) {
    const message = settingsError(t, () => settingsFromEnv(env), name)
    t.match(message, /environment variable/, 'says it is an environment variable')
    const raw = (Object.values(env).at(-1) ?? '').trim()
    if (name !== 'SLOW_READER_CLOSE_BYTES' && raw !== 'Infinity' && raw !== '') t.ok(message.includes(raw), `shows the bad value ${raw}`)
  }
})

t.test('listenFromEnv', async (t) => {
  t.strictSame(listenFromEnv({}), { port: 3000, host: '0.0.0.0', logLevel: 'info' })
  t.strictSame(listenFromEnv({ PORT: '', HOST: '', LOG_LEVEL: '' }), { port: 3000, host: '0.0.0.0', logLevel: 'info' })
  t.strictSame(listenFromEnv({ PORT: '8080', HOST: '127.0.0.1', LOG_LEVEL: 'debug' }), { port: 8080, host: '127.0.0.1', logLevel: 'debug' })
  t.equal(listenFromEnv({ PORT: '0' }).port, 0)
  t.equal(listenFromEnv({ PORT: '65535' }).port, 65_535)
  for (const level of ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']) {
    t.equal(listenFromEnv({ LOG_LEVEL: level }).logLevel, level)
  }
  for (const port of ['abc', '65536', '-1', '80.5', '8080x']) {
    settingsError(t, () => listenFromEnv({ PORT: port }), 'PORT')
  }
  for (const level of ['verbose', 'INFO', 'warning']) {
    settingsError(t, () => listenFromEnv({ LOG_LEVEL: level }), 'LOG_LEVEL')
  }
})

t.test('TRUST_PROXY: false, true, a hop count, or addresses and CIDRs; anything else names the variable', async (t) => {
  t.equal(trustProxyFromEnv({}), false)
  t.equal(trustProxyFromEnv({ TRUST_PROXY: 'false' }), false)
  t.equal(trustProxyFromEnv({ TRUST_PROXY: 'TRUE' }), true)
  t.strictSame(trustProxyFromEnv({ TRUST_PROXY: '10.0.0.2, 10.1.0.0/16,fd00::/8' }), ['10.0.0.2', '10.1.0.0/16', 'fd00::/8'])
  const hops = trustProxyFromEnv({ TRUST_PROXY: '2' })
  if (typeof hops !== 'function') throw new Error('a hop count is a function for Fastify')
  t.strictSame([0, 1, 2].map((hop) => hops('10.0.0.1', hop)), [true, true, false])
  for (const bad of ['yes', '10.0.0.300', '10.0.0.0/33', '10.0.0.0/8/1', 'proxy.example']) {
    t.throws(() => trustProxyFromEnv({ TRUST_PROXY: bad }), { name: 'SettingsError', message: /^environment variable TRUST_PROXY: / }, bad)
  }
})

t.test('ALLOWED_ORIGINS: origins, comma separated; empty for any', async (t) => {
  t.equal(allowedOriginsFromEnv({}), undefined)
  t.equal(allowedOriginsFromEnv({ ALLOWED_ORIGINS: ' ' }), undefined)
  t.strictSame(allowedOriginsFromEnv({ ALLOWED_ORIGINS: 'https://a.example, http://localhost:3000' }), ['https://a.example', 'http://localhost:3000'])
  t.throws(() => allowedOriginsFromEnv({ ALLOWED_ORIGINS: 'a.example' }), { message: /environment variable ALLOWED_ORIGINS: expected origins/ })
  t.throws(() => allowedOriginsFromEnv({ ALLOWED_ORIGINS: 'https://a.example/path' }), { message: /ALLOWED_ORIGINS/ })
})

t.test('METRICS_TOKEN: a bearer token for /metrics', async (t) => {
  t.equal(metricsAuthorizeFromEnv({}), undefined)
  const check = metricsAuthorizeFromEnv({ METRICS_TOKEN: 'tok' })
  if (check === undefined) throw new Error('no check')
  t.match(check({ headers: {} }), { statusCode: 401 })
  t.equal(check({ headers: { authorization: 'Bearer nope' } }), false)
  t.equal(check({ headers: { authorization: 'Bearer tok' } }), true)
})

t.test('CSV_FEEDS: unset is the package\'s own sample feed, whatever its path holds; empty is none; entries are parsed', async (t) => {
  const [sample] = csvFeedsFromEnv({})
  t.equal(sample?.name, 'landmarks')
  t.ok(sample !== undefined && existsSync(sample.file) && sample.file.endsWith(join('data', 'landmarks.csv')), 'the shipped file, by its absolute path')
  t.same(csvFeedsFromEnv({ CSV_FEEDS: '' }), [])
  t.same(csvFeedsFromEnv({ CSV_FEEDS: 'seats=hall.csv@hall' }), [{ name: 'seats', file: 'hall.csv', room: 'hall' }], 'files relative to the working directory (resolved by the option\'s check)')
})

t.test('the client refuses a url that is not one at once, as WebSocket does', async (t) => {
  t.throws(() => new ShoalClient({ url: 'not a url', WebSocket: WebSocket as never }), SyntaxError)
})

t.test('redisTargetFromEnv: one Redis, a Redis Cluster\'s seeds, never both', async (t) => {
  t.equal(redisTargetFromEnv({}), undefined, 'neither: no cluster')
  t.equal(redisTargetFromEnv({ REDIS_URL: '', REDIS_CLUSTER_NODES: '' }), undefined, 'empty is unset')
  t.strictSame(redisTargetFromEnv({ REDIS_URL: 'redis://10.0.0.5:6379/0' }), { url: 'redis://10.0.0.5:6379/0' })
  t.strictSame(redisTargetFromEnv({ REDIS_CLUSTER_NODES: '10.0.0.5:6379, redis-b:7000,[::1]:7001' }),
    { clusterNodes: [{ host: '10.0.0.5', port: 6379 }, { host: 'redis-b', port: 7000 }, { host: '::1', port: 7001 }] })
  t.throws(() => redisTargetFromEnv({ REDIS_URL: 'redis://a:6379', REDIS_CLUSTER_NODES: 'b:6379' }), { name: 'SettingsError', message: /REDIS_URL and REDIS_CLUSTER_NODES: set one, not both/ })
  for (const bad of ['b', 'b:0', 'b:70000', 'b:6379,', ':6379']) {
    t.throws(() => redisTargetFromEnv({ REDIS_CLUSTER_NODES: bad }), { name: 'SettingsError', message: /REDIS_CLUSTER_NODES: expected host:port/ }, JSON.stringify(bad))
  }
})
