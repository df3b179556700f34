/**
 * Identities and errors the host hands the engine: what its `authorize` or
 * `authenticate` says of a user, the `info` it sets, and the `ShoalError` its
 * handlers throw to answer a client with a code of their own. All of it is
 * checked here, so that a mistake in the host's code is a clear error, never a
 * room that holds what no client could be sent.
 */
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { Identity, type IdentityT } from '../../schemas/identity.js'
import { AppErrorCode, AUTH_MAX_BYTES, ErrorCode, INFO_MAX_BYTES, type InfoT } from '../../schemas/protocol.js'

const identityCheck = TypeCompiler.Compile(Identity)
const appErrorCode = TypeCompiler.Compile(AppErrorCode)

/** The contract's codes that mean something to clients beyond the message they answer (a dead secret, a connection's state). */
const RESERVED_CODES = new Set(ErrorCode.anyOf.map((literal) => literal.const as string)
  .filter((code) => !['invalid_message', 'rate_limited', 'unauthorized', 'forbidden'].includes(code)))

/**
 * Thrown by a host's handler to answer the client with `error` of this code and
 * message: a code of the host's own (lower case and `_`), or one of
 * `invalid_message`, `rate_limited`, `unauthorized`, `forbidden`.
 */
export class ShoalError extends Error {
  override name = 'ShoalError'
  constructor (readonly code: string, message: string) {
    super(message)
    if (!appErrorCode.Check(code)) throw new TypeError(`ShoalError: code ${JSON.stringify(code)} must match ${AppErrorCode.pattern}`)
    if (RESERVED_CODES.has(code)) throw new TypeError(`ShoalError: ${code} is a code of the protocol that clients act on; choose one of your own`)
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

/** Freezes `value` and everything in it: what the engine hands to hooks and handlers cannot change a user behind the room's back. */
function deepFreeze<T> (value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const inner of Object.values(value)) deepFreeze(inner)
  }
  return value
}

/** `info` as the engine keeps it: its own frozen copy, so the host's object may change afterwards. */
export function checkedInfo (value: unknown, source: string): InfoT {
  const problem = infoProblem(value)
  if (problem !== null) throw new TypeError(`${source}: info: ${problem}`)
  return deepFreeze(structuredClone(value as InfoT))
}

/** The identity `value` says, checked; throws a TypeError naming `source` and the field otherwise. */
export function checkedIdentity (value: unknown, source: string): IdentityT {
  if (!identityCheck.Check(value)) {
    // Every problem, up to a few: a typo (`username`) shows as both a missing userId and an unexpected field.
    const problems = [...identityCheck.Errors(value)].slice(0, 3).map((error) => error.path === '' ? error.message : `${error.path.slice(1).replaceAll('/', '.')}: ${error.message}`)
    throw new TypeError(`${source}: not an identity ({ userId, name?, info? }): ${problems.join('; ')}`)
  }
  const identity: IdentityT = { userId: value.userId }
  if (value.name !== undefined) identity.name = value.name.trim()
  if (value.info !== undefined) identity.info = checkedInfo(value.info, source)
  return Object.freeze(identity)
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
