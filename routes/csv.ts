/** The CSV feeds over HTTP: what each feed is serving and how its file looks now, and one feed's rows. */
import type { FastifyInstance } from 'fastify'
import { Type } from '@sinclair/typebox'
import { FeedRows, FeedStatus, HttpError } from '../schemas/http.js'

export default async function csvRoute (app: FastifyInstance): Promise<void> {
  const feeds = app.shoalCsvFeeds
  app.get('/csv', { schema: { response: { 200: Type.Array(FeedStatus) } } }, async () => [...feeds.feeds.values()].map((feed) => feed.status()))

  app.get<{ Params: { name: string } }>('/csv/:name', {
    schema: { params: Type.Object({ name: Type.String() }), response: { 200: FeedRows, 404: HttpError } }
  }, async (request, reply) => {
    const feed = feeds.feeds.get(request.params.name)
    if (feed === undefined) return await reply.code(404).send({ error: `no csv feed named ${JSON.stringify(request.params.name)}` })
    return { name: feed.name, version: feed.version, updatedAt: feed.updatedAt, columns: feed.table.columns, rows: feed.table.rows }
  })
}
