#!/usr/bin/env node
/**
 * The standalone server: the Shoal plugin in a Fastify app, configured from the
 * environment, with graceful shutdown on SIGTERM and SIGINT. Alone it keeps
 * sessions in a SQLite file under DATA_DIR; with REDIS_URL it is a node of a
 * cluster, with sessions and membership in Redis.
 */
import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import { join } from 'node:path'
import closeWithGrace from 'close-with-grace'
import Fastify from 'fastify'
import shoal, { type ShoalOptions } from '../../index.js'
import type { RedisClusterBus } from '../adapters/redis-bus.js'
import { systemClock } from '../core/clock.js'
import type { SessionStore } from '../core/sessions/session-store.js'
import { SettingsError } from '../core/settings.js'
import { adminFromEnv, allowedOriginsFromEnv, csvFeedsFromEnv, dataDirFromEnv, listenFromEnv, metricsAuthorizeFromEnv, redisTargetFromEnv, settingsFromEnv, trustProxyFromEnv } from './env.js'
import { loggerOptions } from './logger.js'

/** The contract: the process exits within 10 seconds of the signal. */
const SHUTDOWN_LIMIT_MS = 10_000

/** What the server keeps its sessions in, and the cluster bus when it has one. */
interface Backing {
  sessionStore: SessionStore & { close(): Promise<void> }
  bus?: RedisClusterBus
  describe: Record<string, string>
}

/**
 * An adapter, loaded only when the environment asks for it, so that a server
 * without Redis needs no ioredis, and one on Redis no better-sqlite3. A missing
 * package is an error that names it.
 */
async function adapter<T> (load: () => Promise<T>, packageName: string, purpose: string): Promise<T> {
  try {
    return await load()
  } catch (err) {
    const missing = (err as { code?: string }).code === 'ERR_MODULE_NOT_FOUND' && String((err as Error).message).includes(`'${packageName}'`)
    if (missing) throw new BackingError(`${purpose} needs the package ${packageName}, which is not installed: npm install ${packageName}`)
    throw err
  }
}

/** With REDIS_URL or REDIS_CLUSTER_NODES: a node of a cluster, sessions in Redis. Without: one node, sessions in SQLite. */
async function backing (env: NodeJS.ProcessEnv, sessionTtlMs: number): Promise<Backing> {
  const redis = redisTargetFromEnv(env)
  if (redis === undefined) {
    const { SessionDatabaseError, SqliteAddonError, SqliteSessionStore } = await adapter(async () => await import('../adapters/sqlite-session-store.js'), 'better-sqlite3', 'keeping sessions in a SQLite file (no REDIS_URL)')
    // Never a silent fallback to memory: identities that should survive a restart would not.
    try {
      const store = new SqliteSessionStore(join(dataDirFromEnv(env), 'sessions.db'))
      return { sessionStore: store, describe: { sessions: store.file } }
    } catch (err) {
      throw err instanceof SessionDatabaseError || err instanceof SqliteAddonError ? new BackingError(err.message) : err
    }
  }
  const purpose = 'url' in redis ? 'REDIS_URL' : 'REDIS_CLUSTER_NODES'
  const { RedisClusterBus } = await adapter(async () => await import('../adapters/redis-bus.js'), 'ioredis', `a cluster on Redis (${purpose})`)
  const { RedisSessionStore } = await adapter(async () => await import('../adapters/redis-session-store.js'), 'ioredis', `sessions in Redis (${purpose})`)
  const { describeTarget } = await import('../adapters/redis-connection.js')
  const prefix = env.REDIS_PREFIX === undefined || env.REDIS_PREFIX === '' ? 'shoal:' : env.REDIS_PREFIX
  // Each start is a new node to the others, NODE_ID or not: the users a restarted node had are then
  // seen to be gone (its old self stops beating), not kept as replicas of a node that still beats.
  const nodeName = env.NODE_ID === undefined || env.NODE_ID === '' ? `${hostname()}:${process.pid}` : env.NODE_ID
  const nodeId = `${nodeName}:${randomBytes(3).toString('hex')}`
  const store = new RedisSessionStore({ redis, prefix, sessionTtlMs })
  try {
    await store.ready()
  } catch (err) {
    await store.close()
    throw new BackingError(`cannot reach ${describeTarget(redis)}: ${err instanceof Error ? err.message : String(err)}`)
  }
  const bus = new RedisClusterBus({ redis, prefix, nodeId, clock: systemClock })
  return { sessionStore: store, bus, describe: { sessions: 'url' in redis ? 'redis' : 'redis cluster', node: nodeId, redis: describeTarget(redis) } }
}

class BackingError extends Error {}

/** Everything the environment says, checked before anything starts. */
function readEnvironment (env: NodeJS.ProcessEnv) {
  const metricsAuthorize = metricsAuthorizeFromEnv(env)
  const allowedOrigins = allowedOriginsFromEnv(env)
  const admin = adminFromEnv(env)
  return {
    settings: settingsFromEnv(env),
    listen: listenFromEnv(env),
    trustProxy: trustProxyFromEnv(env),
    options: {
      csvFeeds: csvFeedsFromEnv(env),
      ...(allowedOrigins !== undefined && { allowedOrigins }),
      ...(metricsAuthorize !== undefined && { metricsAuthorize }),
      ...(admin !== undefined && { admin })
    } satisfies ShoalOptions
  }
}

async function main (): Promise<void> {
  let environment, backed
  try {
    environment = readEnvironment(process.env)
    backed = await backing(process.env, environment.settings.sessionTtlMs)
  } catch (err) {
    if (!(err instanceof SettingsError) && !(err instanceof BackingError)) throw err
    process.stderr.write(`shoal: ${err.message}\n`)
    process.exit(1)
  }
  const { settings, listen, trustProxy, options } = environment
  const { sessionStore, bus } = backed

  // Health must answer `draining` (not Fastify's generic 503) while shutdown runs.
  const app = Fastify({ logger: loggerOptions(listen.logLevel), return503OnClosing: false, trustProxy })
  await app.register(shoal, { ...settings, ...options, sessionStore, ...(bus !== undefined && { bus }) })
  app.log.info(backed.describe, bus === undefined ? 'single node, sessions in SQLite' : 'cluster node, sessions in Redis')

  closeWithGrace({ delay: SHUTDOWN_LIMIT_MS, logger: { error: (message: string) => app.log.error(message) } }, async ({ signal, err }) => {
    if (err !== undefined) app.log.error({ err }, 'shutting down after an error')
    else app.log.info({ signal }, 'shutting down')
    await app.shoal.drain()
    await app.close()
    // The plugin flushed the store when the app closed; the store and bus belong to this file, which closes them.
    await bus?.close()
    await sessionStore.close()
  })

  const address = await app.listen({ port: listen.port, host: listen.host })
  // One line for the person who started it, whatever LOG_LEVEL says, on stderr: stdout is pino's JSON, for machines.
  process.stderr.write(`${startLine(address, settings, backed.describe, bus !== undefined, options.admin !== undefined)}\n`)
}

/** Where to point a browser and a client, and what the sessions and the cluster are. */
function startLine (address: string, settings: { demo: boolean, path: string }, describe: Record<string, string>, clustered: boolean, admin: boolean): string {
  const page = (settings.demo ? `demo at ${address}/` : 'no demo (DEMO=false)') + (admin ? ` · admin at ${address}/admin` : '')
  const mode = clustered ? `cluster node ${describe.node ?? '?'} on Redis ${describe.redis ?? ''}` : 'single node'
  return `shoal: ${page} · WebSocket ${address.replace(/^http/, 'ws')}${settings.path} · sessions in ${describe.sessions ?? '?'} · ${mode}`
}

await main()
