/**
 * Message types of the host's own (`app.shoal.handle`): each with a TypeBox
 * schema of its fields, compiled once and checked like the contract's messages
 * (same error shape, same rate limit), and a handler whose result goes back to
 * the client as `reply`.
 */
import { Kind, Type, type Static, type TObject } from '@sinclair/typebox'
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler'
import type { IdentityT } from '../../schemas/identity.js'
import { ClientMessageSchemas, CustomTypePattern, RequestId, ServerMessage, type RequestIdT, type UserT } from '../../schemas/protocol.js'

/** What a handler is told besides the message: the user that sent it (a copy), what the host said of it, and whether canUpdate made it read-only in its room. */
export interface MessageContext {
  user: UserT
  identity: IdentityT | null
  readOnly: boolean
}

/** A message of a host type as its handler gets it: the schema's fields, its `type`, and the client's `id` when it gave one. */
export type CustomMessageOf<S extends TObject> = Static<S> & { type: string, id?: RequestIdT }

/** Returns (or resolves to) the reply's `result`; throws a ShoalError to answer with `error` of its code. */
export type MessageHandler<S extends TObject> = (message: CustomMessageOf<S>, context: MessageContext) => unknown

export interface CustomMessageType {
  readonly type: string
  readonly check: TypeCheck<TObject>
  readonly handle: MessageHandler<TObject>
}

/** Names no host type may take: the contract's client and server message types. */
const RESERVED = new Set<string>([
  ...Object.keys(ClientMessageSchemas),
  ...ServerMessage.anyOf.map((schema) => schema.properties.type.const as string)
])
const typePattern = new RegExp(CustomTypePattern)

export class CustomMessages {
  private readonly types = new Map<string, CustomMessageType>()

  get size (): number { return this.types.size }
  get (type: string): CustomMessageType | undefined { return this.types.get(type) }

  /** Adds a type; a name that is taken, reserved or malformed, or a schema that is not a TypeBox object, throws a TypeError. */
  register<S extends TObject> (type: string, schema: S, handle: MessageHandler<S>): void {
    const where = `app.shoal.handle(${JSON.stringify(type)})`
    if (typeof type !== 'string' || !typePattern.test(type)) throw new TypeError(`${where}: the type must match ${CustomTypePattern}`)
    if (RESERVED.has(type)) throw new TypeError(`${where}: ${type} is a message type of the protocol`)
    if (this.types.has(type)) throw new TypeError(`${where}: a handler for ${type} is registered already`)
    if (typeof schema !== 'object' || schema === null || (schema as { [Kind]?: unknown })[Kind] !== 'Object') {
      throw new TypeError(`${where}: the schema must be a TypeBox Type.Object of the message's fields`)
    }
    if ('type' in schema.properties || 'id' in schema.properties) throw new TypeError(`${where}: the fields type and id are the envelope's`)
    if (typeof handle !== 'function') throw new TypeError(`${where}: the handler must be a function`)
    const message = Type.Object({
      ...schema.properties,
      type: Type.Literal(type),
      id: Type.Optional(RequestId)
    }, { additionalProperties: schema.additionalProperties ?? false })
    this.types.set(type, { type, check: TypeCompiler.Compile(message), handle: handle as MessageHandler<TObject> })
  }
}
