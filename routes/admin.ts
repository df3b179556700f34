/**
 * The operator's page (`admin` option): `/admin` and its bundle, its feed of
 * server-sent events at `/admin/feed` (never the public WebSocket), and two
 * actions. Every request passes `admin.authorize`, then one rate limit for the
 * whole admin surface.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Static, TSchema } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import type { FastifyInstance, FastifyReply, FastifyRequest, FastifySchemaCompiler } from 'fastify'
import { AdminDisconnected, AdminFeedQuery, AdminRoomMessage, AdminRoomParams, AdminSent, AdminUserParams } from '../schemas/admin.js'
import { HttpError } from '../schemas/http.js'
import { DATA_PAYLOAD_MAX_BYTES } from '../schemas/protocol.js'
import { refusalOf } from '../src/host/options.js'
import { TokenBucket } from '../src/core/transport/rate-limit.js'
import { packageRoot } from '../src/server/package-root.js'

/** Admin requests per second, and the burst a page's first load and a few clicks take. */
const REQUESTS_PER_SECOND = 5
const REQUEST_BURST = 30
const ASSETS: Record<string, string> = { 'admin.js': 'text/javascript; charset=utf-8', 'admin.css': 'text/css; charset=utf-8' }

/**
 * Requests checked by TypeBox, as the protocol's messages are: a field the schema
 * does not name is refused (Fastify's own validator would drop it without a word).
 */
const typeboxValidator: FastifySchemaCompiler<TSchema> = ({ schema }) => {
  const check = TypeCompiler.Compile(schema)
  return (data) => {
    if (check.Check(data)) return { value: data }
    const first = check.Errors(data).First()
    return { error: new Error(`${first?.path === '' || first === undefined ? '' : `${first.path.slice(1)}: `}${first?.message ?? 'invalid'}`) }
  }
}

const htmlAttribute = (text: string): string => text.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;')

export default async function adminRoute (app: FastifyInstance): Promise<void> {
  const { admin, clock } = app.shoalConfig
  const feed = app.shoalAdmin
  if (admin === undefined || feed === null) return
  const requests = new TokenBucket(REQUEST_BURST, clock.now())
  const publicDir = join(packageRoot(), 'public')
  const base = `${app.prefix}/admin`
  app.setValidatorCompiler(typeboxValidator)

  // onRequest, so that nothing of a refused request is parsed.
  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    const refused = refusalOf(await admin.authorize(request))
    if (refused !== null) {
      if (refused.statusCode === 401 && admin.challenge !== undefined) reply.header('www-authenticate', admin.challenge)
      return await reply.code(refused.statusCode).send({ error: refused.error })
    }
    if (!requests.take(clock.now(), REQUESTS_PER_SECOND, REQUEST_BURST)) {
      return await reply.code(429).header('retry-after', '1').send({ error: 'too many admin requests: at most 5 a second' })
    }
  })

  const page = async (_request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    const html = await readFile(join(publicDir, 'admin.html'), 'utf8').catch(() => null)
    if (html === null) return await reply.code(404).send({ error: 'the admin page is not built (npm run build:web)' })
    return await reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(html.replaceAll('%ADMIN_BASE%', htmlAttribute(base)))
  }
  // With and without the slash people type: the page's own URLs are absolute.
  app.get('/admin', page)
  app.get('/admin/', page)

  app.get<{ Params: { file: string } }>('/admin/assets/:file', async (request, reply) => {
    const type = ASSETS[request.params.file]
    const asset = type === undefined ? null : await readFile(join(publicDir, 'build', request.params.file)).catch(() => null)
    if (type === undefined || asset === null) return await reply.code(404).send({ error: 'no such admin asset (npm run build:web builds them)' })
    return await reply.type(type).header('cache-control', 'no-store').send(asset)
  })

  app.get<{ Querystring: Static<typeof AdminFeedQuery> }>('/admin/feed', { schema: { querystring: AdminFeedQuery, response: { 429: HttpError } } }, async (request, reply) => {
    if (feed.full) return await reply.code(429).send({ error: 'too many admin pages are watching: close one' })
    const stream = reply.raw
    reply.hijack()
    // Headers first: a page that comes between two snapshots is written the last one at once.
    stream.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no' })
    const unwatch = feed.watch({ write: (chunk) => stream.write(chunk), end: () => stream.end(), get backlog () { return stream.writableLength } }, request.query.room ?? null)
    stream.once('close', unwatch)
  })

  actionRoutes(app)
}

/** The two actions, on this node's users: what `app.shoal.disconnect` and `sendToRoom` do, logged. */
function actionRoutes (app: FastifyInstance): void {
  app.post<{ Params: Static<typeof AdminUserParams> }>('/admin/users/:id/disconnect', { schema: { params: AdminUserParams, response: { 200: AdminDisconnected, 404: HttpError } } }, async (request, reply) => {
    const { id } = request.params
    if (!app.shoalApi.disconnect(id)) return await reply.code(404).send({ error: `no user ${id} has its session on this node` })
    request.log.info({ user: id }, 'admin: disconnected a user')
    return { disconnected: id }
  })

  app.post<{ Params: Static<typeof AdminRoomParams>, Body: Static<typeof AdminRoomMessage> }>('/admin/rooms/:room/messages', { schema: { params: AdminRoomParams, body: AdminRoomMessage, response: { 200: AdminSent } } }, async (request, reply) => {
    const { room } = request.params
    const { payload } = request.body
    if (Buffer.byteLength(JSON.stringify(payload) ?? 'null') > DATA_PAYLOAD_MAX_BYTES) {
      return await reply.code(400).send({ error: `payload: larger than ${DATA_PAYLOAD_MAX_BYTES} bytes when serialized` })
    }
    const recipients = app.shoalApi.sendToRoom(room, payload)
    request.log.info({ room, recipients }, 'admin: sent a server message to a room')
    return { room, recipients }
  })
}
