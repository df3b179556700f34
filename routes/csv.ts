/** The CSV feeds over HTTP: what each feed is serving and how its file looks now, and one feed's rows. */
import type { FastifyInstance } from 'fastify'
import { Type } from '@sinclair/typebox'

const FeedStatus = Type.Object({
  name: Type.String(),
  file: Type.String(),
  room: Type.Union([Type.String(), Type.Null()]),
  size: Type.Union([Type.Integer(), Type.Null()], { description: 'Bytes of the file on disk now.' }),
  modifiedAt: Type.Union([Type.Number(), Type.Null()], { description: 'Modification time of the file on disk (ms since the epoch).' }),
  version: Type.Integer({ description: 'Version being served; 0 until the file is first valid.' }),
  updatedAt: Type.Union([Type.Number(), Type.Null()]),
  rows: Type.Integer(),
  columns: Type.Integer(),
  lastError: Type.Union([Type.Object({ message: Type.String(), line: Type.Union([Type.Integer(), Type.Null()]), at: Type.Number() }), Type.Null()])
})

const FeedRows = Type.Object({
  name: Type.String(),
  version: Type.Integer(),
  updatedAt: Type.Union([Type.Number(), Type.Null()]),
  columns: Type.Array(Type.String()),
  rows: Type.Array(Type.Array(Type.String()))
})

export default async function csvRoute (app: FastifyInstance): Promise<void> {
  const feeds = app.shoalCsvFeeds
  app.get('/csv', { schema: { response: { 200: Type.Array(FeedStatus) } } }, async () => [...feeds.feeds.values()].map((feed) => feed.status()))

  app.get<{ Params: { name: string } }>('/csv/:name', {
    schema: { params: Type.Object({ name: Type.String() }), response: { 200: FeedRows, 404: Type.Object({ error: Type.String() }) } }
  }, async (request, reply) => {
    const feed = feeds.feeds.get(request.params.name)
    if (feed === undefined) return await reply.code(404).send({ error: `no csv feed named ${JSON.stringify(request.params.name)}` })
    return { name: feed.name, version: feed.version, updatedAt: feed.updatedAt, columns: feed.table.columns, rows: feed.table.rows }
  })
}
