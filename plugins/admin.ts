/**
 * The operator's feed behind `/admin` (the `admin` option): snapshots of this
 * instance, taken once an interval for every page that watches. Without the
 * option this decorates null and nothing runs.
 */
import fp from 'fastify-plugin'
import { AdminFeed } from '../src/core/admin/feed.js'
import { OperatorView } from '../src/core/admin/operator-view.js'
import { quietLog } from './config.js'

declare module 'fastify' {
  interface FastifyInstance {
    shoalAdmin: AdminFeed | null
  }
}

/** Pages that may watch at once, and what one may leave unread before it misses snapshots. */
const MAX_WATCHERS = 16
const MAX_BACKLOG_BYTES = 1 << 20

export default fp(async function admin (app) {
  const { admin: options, clock, tickHz } = app.shoalConfig
  if (options === undefined) {
    app.decorate('shoalAdmin', null)
    return
  }
  const log = quietLog(app)
  const failed = (err: unknown): void => { log.error({ err }, 'admin feed: a snapshot failed') }
  const view = new OperatorView({
    users: app.shoalUsers,
    connections: app.shoalConnections,
    cluster: app.shoalCluster,
    readMeter: async () => await app.shoalMetrics.reading(),
    clock,
    tickHz
  })
  const feed = new AdminFeed(view, {
    maxWatchers: MAX_WATCHERS,
    maxBacklogBytes: MAX_BACKLOG_BYTES,
    onError: failed
  })
  const timer = setInterval(() => { feed.publish().catch(failed) }, options.intervalMs)
  app.addHook('preClose', async () => {
    clearInterval(timer)
    feed.close()
  })
  app.decorate('shoalAdmin', feed)
}, { name: 'shoal-admin', fastify: '5.x', dependencies: ['shoal-config', 'shoal-metrics', 'shoal-user-store', 'shoal-connections', 'shoal-cluster'] })
