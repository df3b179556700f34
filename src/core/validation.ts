/**
 * Inbound frame checks in the contract's order: envelope (JSON, object, string
 * `type`, known type), then the message's compiled TypeBox schema. One frame
 * yields one message or one error.
 */
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler'
import { ValueErrorType, type ValueError } from '@sinclair/typebox/errors'
import {
  ClientMessageSchemas, Coordinate, RequestId,
  type ClientMessage, type ClientMessageOf, type ClientMessageType, type CustomClientMessage, type ProtocolErrorT, type RequestIdT
} from '../../schemas/protocol.js'
import type { CustomMessages, CustomMessageType } from './custom-messages.js'

export type ProtocolError = ProtocolErrorT

export type ParseResult =
  | { ok: true, message: ClientMessage, custom?: undefined }
  /** A message of a type the host registered. */
  | { ok: true, message: CustomClientMessage, custom: CustomMessageType }
  | { ok: false, error: ProtocolError }

const requestIdCheck = TypeCompiler.Compile(RequestId)

/** The message's `id`, when it has a valid one: errors about it carry it, so the client can match them to its request. */
function requestIdOf (value: object): { id?: RequestIdT } {
  const id = (value as { id?: unknown }).id
  return requestIdCheck.Check(id) ? { id } : {}
}

const checks = Object.fromEntries(
  Object.entries(ClientMessageSchemas).map(([type, schema]) => [type, TypeCompiler.Compile(schema)])
) as Record<ClientMessageType, TypeCheck<(typeof ClientMessageSchemas)[ClientMessageType]>>

const isMessageType = (type: string): type is ClientMessageType => Object.hasOwn(checks, type)

/**
 * `/position/x` → `position.x`, `/listeningTo/3` → `listeningTo[3]` (JSON pointer
 * unescaped). A segment is an index only where `value` holds an array there, so a
 * state key such as `123` stays `state.123`.
 */
export function dottedPath (pointer: string, value?: unknown): string {
  let path = ''
  let here: unknown = value
  for (const raw of pointer.split('/').slice(1)) {
    const segment = raw.replaceAll('~1', '/').replaceAll('~0', '~')
    path += Array.isArray(here) ? `[${segment}]` : (path === '' ? segment : `.${segment}`)
    here = typeof here === 'object' && here !== null ? (here as Record<string, unknown>)[segment] : undefined
  }
  return path
}

function describe (error: ValueError, type: string, message: unknown): string {
  const path = dottedPath(error.path, message)
  const expected = (error.schema as { expected?: string }).expected
  switch (error.type) {
    case ValueErrorType.ObjectRequiredProperty:
      return `${path}: required`
    case ValueErrorType.ObjectAdditionalProperties:
      return 'patternProperties' in error.schema
        ? `${path}: key must match ${Object.keys(error.schema.patternProperties as object)[0] ?? ''}`
        : `${path}: unexpected field`
    case ValueErrorType.ObjectMinProperties:
      return `${type}: needs ${expected ?? 'more fields'}`
    default:
      return `${path}: expected ${expected ?? error.message.replace(/^Expected /, '')}`
  }
}

export function invalid (message: string, ref?: string): ProtocolError {
  return ref === undefined ? { code: 'invalid_message', message } : { code: 'invalid_message', message, ref }
}

/** The per-address budget of register and reconnect is spent. */
export function overBudget (ref: 'register' | 'reconnect'): ProtocolError {
  return { code: 'rate_limited', message: 'too many register and reconnect messages from this address; try again later', ref }
}

/** A JSON number, as JSON's grammar has it (RFC 8259 section 6). */
const JSON_NUMBER = '(-?(?:0|[1-9][0-9]*)(?:\\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)'
/** The frame nearly every client sends ten times a second: a position alone, compact, keys in order. */
const POSITION_UPDATE = new RegExp(`^\\{"type":"update","position":\\{"x":${JSON_NUMBER},"y":${JSON_NUMBER}(?:,"z":${JSON_NUMBER})?\\}\\}$`)
const POSITION_UPDATE_PREFIX = '{"type":"update","position":{"x":'

const COORDINATE_MIN = Coordinate.minimum ?? Number.NEGATIVE_INFINITY
const COORDINATE_MAX = Coordinate.maximum ?? Number.POSITIVE_INFINITY

/** A coordinate the schema accepts (its bounds, read from it; never ±Infinity, which a long exponent gives), else NaN. */
function coordinate (digits: string): number {
  const value = Number(digits)
  return Number.isFinite(value) && value >= COORDINATE_MIN && value <= COORDINATE_MAX ? value : Number.NaN
}

/**
 * The fast path of `update`: a frame of exactly that shape whose coordinates the
 * schema accepts, as the message JSON.parse and the schema would have given, or
 * null for anything else, which then takes the general path (and gets its error
 * there). The shape alone rules out every other schema failure: no other key, no
 * duplicate, only numbers; JSON's number grammar is what `Number` reads the same
 * way as JSON.parse. It skips JSON.parse's generic object building and the
 * compiled check's walks over the keys: about 0.65 µs a frame instead of 1.1.
 */
export function positionUpdate (text: string): ClientMessageOf<'update'> | null {
  if (!text.startsWith(POSITION_UPDATE_PREFIX)) return null
  const match = POSITION_UPDATE.exec(text)
  if (match === null) return null
  const x = coordinate(match[1] as string)
  const y = coordinate(match[2] as string)
  if (Number.isNaN(x) || Number.isNaN(y)) return null
  if (match[3] === undefined) return { type: 'update', position: { x, y } }
  const z = coordinate(match[3])
  return Number.isNaN(z) ? null : { type: 'update', position: { x, y, z } }
}

/** Parses and validates one text frame (`custom`: the host's own message types). Never throws. */
export function parseFrame (text: string, custom?: CustomMessages): ParseResult {
  const update = positionUpdate(text)
  if (update !== null) return { ok: true, message: update }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return { ok: false, error: { code: 'bad_json', message: 'frame is not valid JSON' } }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, error: invalid('message must be a JSON object') }
  }
  const type: unknown = (value as { type?: unknown }).type
  if (typeof type !== 'string') {
    return { ok: false, error: invalid('type: expected a string') }
  }
  if (!isMessageType(type)) {
    const entry = custom?.get(type)
    if (entry !== undefined) return parseCustom(entry, value)
    return { ok: false, error: { code: 'unknown_type', message: `type: unknown message type ${JSON.stringify(type.slice(0, 64))}`, ref: type.slice(0, 64), ...requestIdOf(value) } }
  }
  const check = checks[type]
  if (!check.Check(value)) {
    const first = check.Errors(value).First()
    return { ok: false, error: invalid(first === undefined ? `${type}: invalid message` : describe(first, type, value), type) }
  }
  return { ok: true, message: value as ClientMessage }
}

function parseCustom (entry: CustomMessageType, value: object): ParseResult {
  if (entry.check.Check(value)) return { ok: true, message: value as CustomClientMessage, custom: entry }
  const first = entry.check.Errors(value).First()
  const message = first === undefined ? `${entry.type}: invalid message` : describe(first, entry.type, value)
  return { ok: false, error: { ...invalid(message, entry.type), ...requestIdOf(value) } }
}
