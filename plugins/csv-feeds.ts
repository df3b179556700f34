/**
 * CSV data feeds (the `csvFeeds` option): each file is loaded at start, watched,
 * and every new valid version goes to the clients of its room (every room's when
 * it has none) as a `csv` message. Clients also get the current versions right
 * after `welcome` and after `join`.
 */
import fp from 'fastify-plugin'
import { CsvFeeds } from '../src/core/feeds/csv-feed.js'

declare module 'fastify' {
  interface FastifyInstance {
    shoalCsvFeeds: CsvFeeds
  }
}

export default fp(async function csvFeeds (app) {
  const { shoalConfig: config, shoalBroadcast: broadcast, shoalUsers: users } = app
  const feeds = new CsvFeeds(config.csvFeeds ?? [], { maxRows: config.csvMaxRows, maxBytes: config.csvMaxBytes }, config.clock, {
    toRoom: (room, frame) => { broadcast.broadcast(frame, 'csv', { room }) },
    toEveryRoom: (frame) => { for (const room of users.roomNames()) broadcast.broadcast(frame, 'csv', { room }) }
  }, (feed, problem) => {
    const where = problem.line === null ? feed.config.file : `${feed.config.file} line ${problem.line}`
    app.log.error({ feed: feed.name, file: feed.config.file, line: problem.line },
      `csv feed ${feed.name}: ${where}: ${problem.message}; ${feed.version > 0 ? `still serving version ${feed.version}` : 'no valid version yet'}`)
  })
  app.decorate('shoalCsvFeeds', feeds)
  app.addHook('onReady', async () => { feeds.start() })
  app.addHook('onClose', async () => { feeds.close() })
}, { name: 'shoal-csv-feeds', fastify: '5.x', dependencies: ['shoal-config', 'shoal-user-store', 'shoal-broadcast'] })
