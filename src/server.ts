/**
 * The standalone server: the Shoal plugin in a Fastify app, configured from the
 * environment, with sessions in a SQLite file under DATA_DIR, and graceful
 * shutdown on SIGTERM and SIGINT.
 */
import { join } from 'node:path'
import closeWithGrace from 'close-with-grace'
import Fastify from 'fastify'
import shoal from '../index.js'
import { loggerOptions } from './logger.js'
import { dataDirFromEnv, listenFromEnv, SettingsError, settingsFromEnv } from './settings.js'
import { SessionDatabaseError, SqliteSessionStore } from './sqlite-session-store.js'

/** The contract: the process exits within 10 seconds of the signal. */
const SHUTDOWN_LIMIT_MS = 10_000

async function main (): Promise<void> {
  let settings, listen, sessionStore
  try {
    settings = settingsFromEnv(process.env)
    listen = listenFromEnv(process.env)
    // Never a silent fallback to memory: identities that should survive a restart would not.
    sessionStore = new SqliteSessionStore(join(dataDirFromEnv(process.env), 'sessions.db'))
  } catch (err) {
    if (!(err instanceof SettingsError) && !(err instanceof SessionDatabaseError)) throw err
    process.stderr.write(`shoal: ${err.message}\n`)
    process.exit(1)
  }

  // Health must answer `draining` (not Fastify's generic 503) while shutdown runs.
  const app = Fastify({ logger: loggerOptions(listen.logLevel), return503OnClosing: false, trustProxy: process.env.TRUST_PROXY === 'true' })
  await app.register(shoal, { ...settings, sessionStore })
  app.log.info({ file: sessionStore.file }, 'sessions are kept in SQLite')

  closeWithGrace({ delay: SHUTDOWN_LIMIT_MS, logger: { error: (message: string) => app.log.error(message) } }, async ({ signal, err }) => {
    if (err !== undefined) app.log.error({ err }, 'shutting down after an error')
    else app.log.info({ signal }, 'shutting down')
    await app.shoal.drain()
    await app.close()
    // The plugin flushed the store when the app closed; it belongs to this file, which closes it.
    await sessionStore.close()
  })

  await app.listen({ port: listen.port, host: listen.host })
}

await main()
