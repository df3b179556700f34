/**
 * Admin options for a shared secret (the standalone server's ADMIN_TOKEN): a
 * request is let in with `Authorization: Bearer <token>`, or with HTTP Basic
 * credentials whose password is the token (any user name), which is what a
 * browser sends after asking, so that an operator can open `/admin` directly.
 */
import type { FastifyRequest } from 'fastify'
import type { AdminOptions, AuthorizeResult } from './options.js'
import { tokenMatcher } from './secret-token.js'

/** The secret a request's Authorization header carries, if any. */
function presented (header: string | undefined): string | undefined {
  const [scheme = '', credentials = ''] = (header ?? '').split(' ', 2)
  if (scheme.toLowerCase() === 'bearer') return credentials
  if (scheme.toLowerCase() !== 'basic') return undefined
  const decoded = Buffer.from(credentials, 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  return colon === -1 ? undefined : decoded.slice(colon + 1)
}

export function adminToken (token: string, options: Pick<AdminOptions, 'intervalMs'> = {}): AdminOptions {
  if (typeof token !== 'string' || token === '') throw new TypeError('adminToken: expected a non-empty token')
  const matches = tokenMatcher(token)
  return {
    ...options,
    challenge: 'Basic realm="Shoal admin", charset="UTF-8"',
    authorize: (request: Pick<FastifyRequest, 'headers'>): AuthorizeResult => {
      const given = presented(request.headers.authorization)
      if (given === undefined) return { statusCode: 401, message: 'send Authorization: Bearer <ADMIN_TOKEN>, or Basic credentials with the token as the password' }
      return matches(given) || { statusCode: 401, message: 'wrong admin token' }
    }
  }
}
