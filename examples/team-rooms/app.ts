/**
 * An example host app: people log in (a cookie), Shoal knows them by that cookie,
 * each team has a room only its members may enter, viewers may only watch, and a
 * `chat` message of the app's own goes to everyone in the sender's room.
 */
import { randomBytes } from 'node:crypto'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fastifyStatic from '@fastify/static'
import { Type, type Static } from '@sinclair/typebox'
import shoal, { ShoalError, type ShoalIdentity } from '../../index.js'

const here = dirname(fileURLToPath(import.meta.url))

export const Login = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 32 }),
  team: Type.Union([Type.Literal('red'), Type.Literal('blue')]),
  role: Type.Optional(Type.Union([Type.Literal('player'), Type.Literal('viewer')]))
}, { additionalProperties: false })

export const Chat = Type.Object({ text: Type.String({ minLength: 1, maxLength: 500 }) })

/** What the page's client library is told of the app's message types. */
export interface TeamMessages {
  chat: { request: Static<typeof Chat>, result: { at: number } }
}

/** One chat line as the room gets it (`data` from `server`). */
export interface ChatLine { kind: 'chat', from: string, team: string, text: string, at: number }

interface Account { userId: string, name: string, team: 'red' | 'blue', role: 'player' | 'viewer' }

/** A person may send one chat line per this many ms: what one sender costs a room stays bounded. */
const CHAT_INTERVAL_MS = 500

export async function buildApp (options: FastifyServerOptions = {}): Promise<FastifyInstance> {
  const app = Fastify(options)
  /** Logged-in people by their cookie's token (a real app keeps these in its session store). */
  const accounts = new Map<string, Account>()
  const accountOf = (token: string | undefined): Account | undefined => token === undefined ? undefined : accounts.get(token)
  const identityOf = (account: Account): ShoalIdentity => ({ userId: account.userId, name: account.name, info: { team: account.team, role: account.role } })
  const teamOf = (identity: ShoalIdentity | null): unknown => identity?.info?.team

  await app.register(fastifyCookie)
  await app.register(fastifyStatic, { root: join(here, 'public') })
  // The client library, as built by `npm run build:web`.
  await app.register(fastifyStatic, { root: join(here, '../../public/build'), prefix: '/lib/', decorateReply: false })

  app.post('/login', { schema: { body: Login } }, async (request, reply) => {
    const body = request.body as Static<typeof Login>
    const token = randomBytes(32).toString('base64url')
    const account: Account = { userId: `user-${randomBytes(6).toString('hex')}`, name: body.name, team: body.team, role: body.role ?? 'player' }
    accounts.set(token, account)
    return await reply.setCookie('token', token, { path: '/', httpOnly: true, sameSite: 'strict' }).send(account)
  })
  app.get('/me', async (request, reply) => accountOf(request.cookies.token) ?? await reply.code(401).send({ error: 'not logged in' }))

  const lastChat = new Map<string, number>()
  await app.register(shoal, {
    prefix: '/rt',
    demo: false,
    // The cookie travels with the upgrade: no token in the URL.
    authorize: (request) => {
      const account = accountOf(request.cookies.token)
      return account === undefined ? { statusCode: 401, message: 'log in first' } : identityOf(account)
    },
    canJoin: (identity, room) => room === 'hall' || room === `team-${String(teamOf(identity))}`,
    canUpdate: (identity) => identity?.info?.role !== 'viewer'
  })

  app.shoal.handle('chat', Chat, ({ text }, { user, readOnly }) => {
    // canUpdate covers the protocol's messages; the app's own decide for themselves, told what it said.
    if (readOnly) throw new ShoalError('forbidden', 'viewers watch only')
    const at = Date.now()
    if (at - (lastChat.get(user.id) ?? 0) < CHAT_INTERVAL_MS) throw new ShoalError('too_fast', `one chat line per ${CHAT_INTERVAL_MS} ms`)
    lastChat.set(user.id, at)
    const line: ChatLine = { kind: 'chat', from: user.name, team: String(user.info?.team), text, at }
    app.shoal.sendToRoom(user.room, line)
    return { at }
  })
  app.shoal.on('leave', ({ user }) => { if (app.shoal.user(user.id) === undefined) lastChat.delete(user.id) })
  app.shoal.on('join', ({ user, room }) => { app.log.info({ user: user.name, team: user.info?.team, room }, 'joined') })
  return app
}
