/**
 * Wire protocol v1: every message and value of the contract (docs/protocol.md
 * describes it for client developers) as a TypeBox schema. Types are derived
 * from these schemas; nothing here is written twice.
 *
 * `expected` is a Shoal annotation read by the error formatter
 * (src/core/validation.ts) so that error messages say what a field should hold.
 */
import { FormatRegistry, Type, type Static, type TSchema } from '@sinclair/typebox'

export const PROTOCOL_VERSION = 1

export const NAME_MAX_CODE_POINTS = 64
export const STATE_MAX_KEYS = 32
export const STATE_MAX_BYTES = 2048
export const STATE_STRING_MAX_LENGTH = 256
export const LISTENING_MAX = 256
export const DATA_PAYLOAD_MAX_BYTES = 8192
export const COORDINATE_LIMIT = 1e9
/** Shoal extensions: the `auth` of register and reconnect, and the `info` the host sets, serialized. */
export const AUTH_MAX_BYTES = 4096
export const INFO_MAX_BYTES = 4096
export const USER_ID_MAX_LENGTH = 256

/** A trimmed name of 1..64 Unicode code points (string length counts UTF-16 units, hence a format). */
FormatRegistry.Set('shoal-name', (value) => {
  const codePoints = [...value.trim()].length
  return codePoints >= 1 && codePoints <= NAME_MAX_CODE_POINTS
})

const uuidPattern = '^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$'
export const StateKeyPattern = '^[A-Za-z0-9_]{1,32}$'
export const RoomPattern = '^[A-Za-z0-9_.:-]{1,64}$'

export const UserId = Type.String({ pattern: uuidPattern, expected: 'a UUID string' })
export const RoomName = Type.String({ pattern: RoomPattern, expected: `a room name matching ${RoomPattern}` })
export const UserName = Type.String({ format: 'shoal-name', expected: `a name of 1 to ${NAME_MAX_CODE_POINTS} characters after trimming` })

export const Coordinate = Type.Number({
  minimum: -COORDINATE_LIMIT,
  maximum: COORDINATE_LIMIT,
  expected: `a finite number with absolute value at most ${COORDINATE_LIMIT}`
})

/** Position as clients send it: `z` may be omitted and then means 0. */
export const PositionInput = Type.Object({
  x: Coordinate,
  y: Coordinate,
  z: Type.Optional(Coordinate)
}, { additionalProperties: false })

/** Position as the server stores and sends it. */
export const Position = Type.Object({ x: Type.Number(), y: Type.Number(), z: Type.Number() })

export const StateValue = Type.Union([
  Type.String({ maxLength: STATE_STRING_MAX_LENGTH }),
  Type.Number(),
  Type.Boolean(),
  Type.Null()
], { expected: `a string of at most ${STATE_STRING_MAX_LENGTH} characters, a number, a boolean or null` })

/**
 * A flat state object. The key-count and size limits apply to the merged result,
 * so they are checked where states merge (src/core/presence/state.ts), not here.
 */
export const State = Type.Record(Type.String({ pattern: StateKeyPattern }), StateValue, {
  additionalProperties: false,
  expected: 'an object of flat values'
})

/** State as the server keeps and sends it: null values are removals, so none remain. */
export const StoredState = Type.Record(Type.String(), Type.Union([Type.String(), Type.Number(), Type.Boolean()]))

/**
 * Shoal extension: what the host says of a user (its own data: a role, an avatar), a
 * JSON object of at most INFO_MAX_BYTES serialized (checked where the host sets it).
 */
export const Info = Type.Record(Type.String(), Type.Unknown(), { expected: 'a JSON object' })

/** Shoal extension: the host's account id of a user, from its `authorize` or `authenticate`. */
export const AccountId = Type.String({ minLength: 1, maxLength: USER_ID_MAX_LENGTH, expected: `a string of 1 to ${USER_ID_MAX_LENGTH} characters` })

export const ListeningTo = Type.Array(UserId, { maxItems: LISTENING_MAX, expected: `an array of at most ${LISTENING_MAX} UUID strings` })

export const User = Type.Object({
  id: Type.String(),
  name: Type.String(),
  room: Type.String(),
  position: Position,
  state: StoredState,
  listeningTo: Type.Array(Type.String()),
  connected: Type.Boolean(),
  /** Shoal extension, sent only to clients that chose the compact encoding: the user's short id in compact `positions`. */
  sid: Type.Optional(Type.Integer()),
  /** Shoal extension, only for users the host identified: its account id (several users may share one: tabs, devices). */
  userId: Type.Optional(Type.String()),
  /** Shoal extension, only when the host set it: read-only to clients. */
  info: Type.Optional(Info)
})

/** Shoal extension: how a client wants `positions`; JSON unless it asks. */
export const Encoding = Type.Union([Type.Literal('json'), Type.Literal('compact')], { expected: '"json" or "compact"' })

// ---- client to server -------------------------------------------------------

const message = <T extends string, P extends Record<string, TSchema>>(type: T, properties: P, options: object = {}) =>
  Type.Object({ type: Type.Literal(type), ...properties }, { additionalProperties: false, ...options })

/** Shoal extension: credentials for the host's `authenticate` (any JSON up to AUTH_MAX_BYTES, checked as serialized). */
export const Auth = Type.Unknown({ expected: 'a JSON value' })

export const RegisterMessage = message('register', {
  name: Type.Optional(UserName),
  room: Type.Optional(RoomName),
  state: Type.Optional(State),
  position: Type.Optional(PositionInput),
  encoding: Type.Optional(Encoding),
  auth: Type.Optional(Auth)
})

/** Any string is schema-valid: every non-live secret gets `invalid_secret`, not `invalid_message`. */
export const ReconnectMessage = message('reconnect', {
  secret: Type.String({ expected: 'a string' }),
  encoding: Type.Optional(Encoding),
  auth: Type.Optional(Auth)
})

export const UpdateMessage = message('update', {
  position: Type.Optional(PositionInput),
  state: Type.Optional(State),
  name: Type.Optional(UserName)
}, { minProperties: 2, expected: 'at least one of position, state, name' })

export const UpdateListeningToMessage = message('updatelisteningto', { listeningTo: ListeningTo })

/** `payload` is any JSON value; its size is checked as the server re-serializes it. */
export const DataMessage = message('data', { payload: Type.Unknown({ expected: 'a JSON value' }) })

export const PingMessage = message('ping', { t: Type.Optional(Type.Number({ expected: 'a number' })) })

export const JoinMessage = message('join', { room: RoomName })

export const SyncMessage = message('sync', {})

export const LeaveMessage = message('leave', {})

export const ClientMessageSchemas = {
  register: RegisterMessage,
  reconnect: ReconnectMessage,
  update: UpdateMessage,
  updatelisteningto: UpdateListeningToMessage,
  data: DataMessage,
  ping: PingMessage,
  join: JoinMessage,
  sync: SyncMessage,
  leave: LeaveMessage
}

export type ClientMessageType = keyof typeof ClientMessageSchemas
export type ClientMessageOf<K extends ClientMessageType> = Static<(typeof ClientMessageSchemas)[K]>
export type ClientMessage = { [K in ClientMessageType]: ClientMessageOf<K> }[ClientMessageType]

/** Shoal extension: the id a client gives a message of the host's own, echoed in its `reply` or `error`. */
export const RequestId = Type.Union([
  Type.Number(),
  Type.String({ maxLength: 64 })
], { expected: 'a number or a string of at most 64 characters' })

/** A type name the host may give a message of its own: not one of the contract's (checked at registration). */
export const CustomTypePattern = '^[A-Za-z][A-Za-z0-9_.:-]{0,63}$'

/** Shoal extension: a message of a type the host registered (`app.shoal.handle`); its fields are the host's schema's. */
export interface CustomClientMessage {
  type: string
  id?: Static<typeof RequestId>
  [field: string]: unknown
}

// ---- server to client -------------------------------------------------------

export const ErrorCode = Type.Union([
  Type.Literal('bad_json'),
  Type.Literal('invalid_message'),
  Type.Literal('unknown_type'),
  Type.Literal('unsupported_frame'),
  Type.Literal('not_registered'),
  Type.Literal('already_registered'),
  Type.Literal('invalid_secret'),
  Type.Literal('rate_limited'),
  /** Shoal extension: the room holds `maxRoomSize` users already. */
  Type.Literal('room_full'),
  /** Shoal extension: the host's `authenticate` refused the credentials (then close 4401). */
  Type.Literal('unauthorized'),
  /** Shoal extension: the host refused this (a room, a read-only member, credentials: then close 4403). */
  Type.Literal('forbidden'),
  /** Shoal extension: a handler of the host failed; the details are in the server's log. */
  Type.Literal('server_error')
])

/** Shoal extension: an error code a host handler chose (`ShoalError`). */
export const AppErrorCode = Type.String({ pattern: '^[a-z][a-z0-9_]{0,63}$' })

export const WelcomeMessage = Type.Object({
  type: Type.Literal('welcome'),
  protocol: Type.Literal(PROTOCOL_VERSION),
  id: Type.String(),
  secret: Type.String(),
  room: Type.String(),
  resumed: Type.Boolean(),
  you: User,
  users: Type.Array(User),
  heartbeatMs: Type.Number(),
  serverTime: Type.Number(),
  /** Shoal extension: the server's tick rate, so clients can pace their updates to it. */
  tickHz: Type.Number(),
  /** Shoal extension: present when the client asked for the compact encoding, which it then gets. */
  encoding: Type.Optional(Type.Literal('compact'))
})

export const SnapshotMessage = Type.Object({
  type: Type.Literal('snapshot'),
  room: Type.String(),
  users: Type.Array(User)
})

export const PresenceUpdate = Type.Intersect([
  Type.Object({ id: Type.String() }),
  Type.Partial(Type.Pick(User, ['name', 'room', 'state', 'listeningTo', 'connected', 'info']))
])

export const PresenceMessage = Type.Object({
  type: Type.Literal('presence'),
  room: Type.String(),
  joined: Type.Optional(Type.Array(User)),
  left: Type.Optional(Type.Array(Type.String())),
  updated: Type.Optional(Type.Array(PresenceUpdate))
})

export const PositionEntry = Type.Tuple([Type.String(), Type.Number(), Type.Number(), Type.Number()])

export const PositionsMessage = Type.Object({
  type: Type.Literal('positions'),
  t: Type.Number(),
  p: Type.Array(PositionEntry)
})

export const DataDelivery = Type.Object({
  type: Type.Literal('data'),
  from: Type.String(),
  payload: Type.Unknown()
})

export const PongMessage = Type.Object({
  type: Type.Literal('pong'),
  t: Type.Optional(Type.Number()),
  serverTime: Type.Number()
})

/** What an `error` says: the server's answer to one bad message (`id`: a Shoal extension, the id of the message it answers). */
export const ProtocolError = Type.Object({
  code: ErrorCode,
  message: Type.String(),
  ref: Type.Optional(Type.String()),
  id: Type.Optional(RequestId)
})

export const ErrorMessage = Type.Composite([
  Type.Object({ type: Type.Literal('error'), code: Type.Union([ErrorCode, AppErrorCode]) }),
  Type.Omit(ProtocolError, ['code'])
])

/** What the client library reports: the server's errors, and `connection` for what happened to the socket. */
export const ClientError = Type.Composite([
  Type.Omit(ProtocolError, ['code']),
  Type.Object({ code: Type.Union([ErrorCode, AppErrorCode, Type.Literal('connection')]) })
])

/** Shoal extension: the result of a message of the host's own type that carried an `id`. */
export const ReplyMessage = Type.Object({
  type: Type.Literal('reply'),
  ref: Type.String(),
  id: RequestId,
  result: Type.Unknown()
})

/** Shoal extension: the current version of a CSV data feed (after welcome, after join, and on every change). */
export const CsvMessage = Type.Object({
  type: Type.Literal('csv'),
  name: Type.String(),
  columns: Type.Array(Type.String()),
  rows: Type.Array(Type.Array(Type.String())),
  version: Type.Integer(),
  updatedAt: Type.Number()
})

export const ServerMessage = Type.Union([
  WelcomeMessage, SnapshotMessage, PresenceMessage, PositionsMessage, DataDelivery, PongMessage, ErrorMessage, CsvMessage, ReplyMessage
])

export type PositionInputT = Static<typeof PositionInput>
export type PositionT = Static<typeof Position>
export type StateT = Static<typeof State>
export type StoredStateT = Static<typeof StoredState>
export type UserT = Static<typeof User>
export type EncodingT = Static<typeof Encoding>
export type PresenceUpdateT = Static<typeof PresenceUpdate>
export type ErrorCodeT = Static<typeof ErrorCode>
export type ProtocolErrorT = Static<typeof ProtocolError>
export type RequestIdT = Static<typeof RequestId>
export type InfoT = Static<typeof Info>
export type ReplyMessageT = Static<typeof ReplyMessage>
export type ClientErrorT = Static<typeof ClientError>
export type WelcomeMessageT = Static<typeof WelcomeMessage>
export type SnapshotMessageT = Static<typeof SnapshotMessage>
export type PresenceMessageT = Static<typeof PresenceMessage>
export type PositionsMessageT = Static<typeof PositionsMessage>
export type CsvMessageT = Static<typeof CsvMessage>
export type ServerMessageT = Static<typeof ServerMessage>
export type ServerMessageType = ServerMessageT['type']
