/**
 * Who a connection's user is and what it may do, as the host's hooks decide:
 * `authenticate` (the `auth` of register and reconnect), `canJoin` (register and
 * join into a room) and `canUpdate` (update, data and listening in a room). Each
 * hook may be sync or async; one that throws is logged and never reaches the
 * engine. Without hooks every answer is immediate and every user is allowed.
 */
import type { IdentityT } from '../../schemas/identity.js'
import { CloseCode } from '../protocol/close-codes.js'
import type { EngineLog } from './engine.js'
import { checkedIdentity, ShoalError } from './identity.js'
import type { ProtocolError } from './validation.js'

type Maybe<T> = T | Promise<T>

/** What `authenticate` may answer: an identity, true to admit the connection as it is, false or null to refuse (`unauthorized`). */
export type AuthenticateResult = IdentityT | boolean | null

export interface AccessHooks {
  /** `request` is what the transport kept of the upgrade (the HTTP request). Throw a ShoalError('forbidden') to refuse with 4403. */
  authenticate?: (auth: unknown, request: unknown) => Maybe<AuthenticateResult>
  canJoin?: (identity: IdentityT | null, room: string) => Maybe<boolean>
  canUpdate?: (identity: IdentityT | null, room: string) => Maybe<boolean>
}

/**
 * A refusal: the error to send, and the close code that follows it (none: the
 * connection stays). Refusals of credentials close with 4401 or 4403, after
 * graphql-ws, so that a browser, which never sees an HTTP status, can tell a refusal from an outage.
 */
export interface AccessRefusal { error: ProtocolError, close?: number }

/** A hook that has not answered in this long has failed (so a stalled one cannot hold a connection's messages forever). */
export const DEFAULT_HOOK_TIMEOUT_MS = 5000

class HookTimeout extends Error {
  override name = 'HookTimeout'
}

export class Access {
  constructor (private readonly hooks: AccessHooks, private readonly log: EngineLog, private readonly timeoutMs = DEFAULT_HOOK_TIMEOUT_MS) {}

  /** Some hook is set: register, reconnect and join wait for its answers. */
  get hasHooks (): boolean {
    return this.hooks.authenticate !== undefined || this.hooks.canJoin !== undefined || this.hooks.canUpdate !== undefined
  }

  /** `authenticate` is set: every register and reconnect is decided by it. */
  get authenticates (): boolean {
    return this.hooks.authenticate !== undefined
  }

  /** The identity a register or reconnect speaks for: `authenticate`'s, else the upgrade's (`fromUpgrade`). */
  async identify (auth: unknown, request: unknown, fromUpgrade: IdentityT | null, ref: 'register' | 'reconnect'): Promise<{ identity: IdentityT | null } | AccessRefusal> {
    const authenticate = this.hooks.authenticate
    if (authenticate === undefined) return { identity: fromUpgrade }
    let verdict: unknown
    try {
      verdict = await this.answer(authenticate(auth, request), 'authenticate')
    } catch (err) {
      if (err instanceof ShoalError && (err.code === 'unauthorized' || err.code === 'forbidden')) {
        return { error: { code: err.code, message: err.message, ref }, close: CloseCode[err.code] }
      }
      return this.failed('authenticate', err, ref, true)
    }
    if (verdict === true) return { identity: fromUpgrade }
    if (verdict === false || verdict === null || verdict === undefined) {
      return { error: { code: 'unauthorized', message: 'credentials refused', ref }, close: CloseCode.unauthorized }
    }
    try {
      return { identity: checkedIdentity(verdict, 'authenticate') }
    } catch (err) {
      return this.failed('authenticate', err, ref, true)
    }
  }

  /** Null when `identity` may enter `room`, else the refusal (`forbidden` naming the room). */
  async mayJoin (identity: IdentityT | null, room: string, ref: 'register' | 'join'): Promise<AccessRefusal | null> {
    const canJoin = this.hooks.canJoin
    if (canJoin === undefined) return null
    try {
      if (await this.answer(canJoin(identity, room), 'canJoin') === true) return null
    } catch (err) {
      return this.failed('canJoin', err, ref, false)
    }
    return { error: { code: 'forbidden', message: `room ${JSON.stringify(room)}: not allowed`, ref } }
  }

  /** Whether `identity` may only watch in `room`; a `canUpdate` that fails counts as a refusal (logged). */
  async readOnly (identity: IdentityT | null, room: string): Promise<boolean> {
    const canUpdate = this.hooks.canUpdate
    if (canUpdate === undefined) return false
    try {
      return await this.answer(canUpdate(identity, room), 'canUpdate') !== true
    } catch (err) {
      this.log.error({ err, room }, 'canUpdate failed; the user is read-only in this room')
      return true
    }
  }

  /** The hook's answer, or a HookTimeout once timeoutMs has passed without one. */
  private async answer<T> (result: Maybe<T>, hook: string): Promise<T> {
    if (typeof (result as PromiseLike<T> | null)?.then !== 'function') return result as T
    let timer: ReturnType<typeof setTimeout> | undefined
    const late = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => { reject(new HookTimeout(`${hook} did not answer within ${this.timeoutMs} ms`)) }, this.timeoutMs)
    })
    try {
      return await Promise.race([Promise.resolve(result), late])
    } finally {
      clearTimeout(timer)
    }
  }

  private failed (hook: string, err: unknown, ref: string, close: boolean): AccessRefusal {
    this.log.error({ err, hook }, `${hook} failed`)
    const error: ProtocolError = { code: 'server_error', message: 'the server could not decide; try again later', ref }
    return close ? { error, close: CloseCode.serverError } : { error }
  }
}
