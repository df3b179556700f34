/**
 * Identities and errors the host hands the engine: what its `authorize` or
 * `authenticate` says of a user, the `info` it sets, and the `ShoalError` its
 * handlers throw to answer a client with a code of their own. All of it is
 * checked here, so that a mistake in the host's code is a clear error, never a
 * room that holds what no client could be sent.
 */
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { Identity, type IdentityT } from '../../schemas/identity.js'
import { AUTH_MAX_BYTES, INFO_MAX_BYTES, type InfoT } from '../../schemas/protocol.js'

const identityCheck = TypeCompiler.Compile(Identity)
const APP_ERROR_CODE = /^[a-z][a-z0-9_]{0,63}$/

/** Thrown by a host's handler to answer the client with `error` of this code and message. */
export class ShoalError extends Error {
  override name = 'ShoalError'
  constructor (readonly code: string, message: string) {
    super(message)
    if (!APP_ERROR_CODE.test(code)) throw new TypeError(`ShoalError: code ${JSON.stringify(code)} must match ${APP_ERROR_CODE.source}`)
  }
}

/** Why `value` cannot be a user's `info`, or null when it can: a plain JSON object within INFO_MAX_BYTES. */
export function infoProblem (value: unknown): string | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'expected a JSON object'
  let json: string | undefined
  try {
    json = JSON.stringify(value)
  } catch (err) {
    return `not serializable as JSON (${err instanceof Error ? err.message : String(err)})`
  }
  if (json === undefined || Buffer.byteLength(json) > INFO_MAX_BYTES) return `larger than ${INFO_MAX_BYTES} bytes as JSON`
  return null
}

/** `info` as the engine keeps it: its own copy, so the host's object may change afterwards. */
export function checkedInfo (value: unknown, source: string): InfoT {
  const problem = infoProblem(value)
  if (problem !== null) throw new TypeError(`${source}: info: ${problem}`)
  return structuredClone(value as InfoT)
}

/** The identity `value` says, checked; throws a TypeError naming `source` and the field otherwise. */
export function checkedIdentity (value: unknown, source: string): IdentityT {
  if (!identityCheck.Check(value)) {
    const first = identityCheck.Errors(value).First()
    const where = first === undefined || first.path === '' ? '' : `${first.path.slice(1).replaceAll('/', '.')}: `
    throw new TypeError(`${source}: not an identity ({ userId, name?, info? }): ${where}${first?.message ?? 'invalid'}`)
  }
  const identity: IdentityT = { userId: value.userId }
  if (value.name !== undefined) identity.name = value.name.trim()
  if (value.info !== undefined) identity.info = checkedInfo(value.info, source)
  return identity
}

/** Why a client's `auth` cannot be taken, or null: any JSON up to AUTH_MAX_BYTES serialized. */
export function authProblem (auth: unknown): string | null {
  let json: string | undefined
  try {
    json = JSON.stringify(auth)
  } catch {
    return 'auth: nested too deeply to serialize'
  }
  return json !== undefined && Buffer.byteLength(json) > AUTH_MAX_BYTES ? `auth: larger than ${AUTH_MAX_BYTES} bytes when serialized` : null
}
