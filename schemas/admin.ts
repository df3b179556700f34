/**
 * The operator's view (`/admin`): what its feed sends, and the bodies of its
 * actions. The page reads these types; the routes check requests against them.
 */
import { Type, type Static } from '@sinclair/typebox'
import { ListeningTo, Position, RoomName, State } from './protocol.js'

/** At most this many rooms in an overview (the largest), and users in a room's view: an operator's page, not an export. */
export const ADMIN_ROOMS_LISTED = 100
export const ADMIN_ROOM_USERS_LISTED = 500

const Rates = Type.Record(Type.String(), Type.Number(), { description: 'Per second since the previous snapshot, by label.' })
const Totals = Type.Record(Type.String(), Type.Number(), { description: 'Since the instance started, by label.' })

export const AdminRoomSummary = Type.Object({
  name: RoomName,
  members: Type.Integer({ description: 'Users in the room, connected or in grace.' }),
  connected: Type.Integer()
})

export const AdminCluster = Type.Object({
  bus: Type.Union([Type.Literal('ok'), Type.Literal('degraded')]),
  nodes: Type.Array(Type.String(), { description: 'The nodes alive at the last heartbeat, this one first.' }),
  servedRooms: Type.Integer(),
  replicas: Type.Integer(),
  publishedBytesPerSecond: Type.Number(),
  receivedBytesPerSecond: Type.Number()
})

export const AdminOverview = Type.Object({
  node: Type.String({ description: 'This node\'s id in a cluster, else "single".' }),
  at: Type.Number({ description: 'When the snapshot was taken (ms since the epoch).' }),
  draining: Type.Boolean(),
  connections: Type.Integer(),
  users: Type.Object({ connected: Type.Integer(), inGrace: Type.Integer() }),
  rooms: Type.Object({ total: Type.Integer(), listed: Type.Array(AdminRoomSummary, { description: `The ${ADMIN_ROOMS_LISTED} largest rooms.` }) }),
  messagesIn: Type.Object({ perSecond: Rates, total: Totals }),
  messagesOut: Type.Object({ perSecond: Rates, total: Totals }),
  errors: Type.Object({ perSecond: Rates, total: Totals }),
  tick: Type.Object({
    perSecond: Type.Number(),
    meanMs: Type.Number({ description: 'Mean tick duration since the previous snapshot (0 when none ran).' }),
    maxMs: Type.Number({ description: 'Longest tick since the previous snapshot.' }),
    budgetMs: Type.Number({ description: '1000 / tickHz: a tick longer than this delays the next.' })
  }),
  slowReaders: Type.Object({
    skippedPerSecond: Type.Number({ description: 'positions frames not sent to clients that read too slowly.' }),
    closedPerSecond: Type.Number(),
    skippedTotal: Type.Number(),
    closedTotal: Type.Number()
  }),
  cluster: Type.Union([AdminCluster, Type.Null()])
})

export const AdminUser = Type.Object({
  id: Type.String(),
  name: Type.String(),
  position: Position,
  state: State,
  connection: Type.Union([Type.Literal('connected'), Type.Literal('grace')]),
  node: Type.String({ description: 'The node that has its socket (or had it, in grace).' }),
  listeningTo: ListeningTo
})

export const AdminRoom = Type.Object({
  name: RoomName,
  total: Type.Integer(),
  users: Type.Array(AdminUser, { description: `The first ${ADMIN_ROOM_USERS_LISTED} users by name.` })
})

export const AdminFeedQuery = Type.Object({
  room: Type.Optional(RoomName)
}, { additionalProperties: false })

export const AdminUserParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 256 }) })
export const AdminRoomParams = Type.Object({ room: RoomName })

/** A server message to a room: its users get `{type:"data", from:"server", payload}`. */
export const AdminRoomMessage = Type.Object({
  payload: Type.Unknown({ description: 'Any JSON value.' })
}, { additionalProperties: false })

export const AdminDisconnected = Type.Object({ disconnected: Type.String() })
export const AdminSent = Type.Object({ room: RoomName, recipients: Type.Integer() })

export type AdminOverviewT = Static<typeof AdminOverview>
export type AdminRoomT = Static<typeof AdminRoom>
export type AdminUserT = Static<typeof AdminUser>
export type AdminClusterT = Static<typeof AdminCluster>
export type AdminRoomSummaryT = Static<typeof AdminRoomSummary>
