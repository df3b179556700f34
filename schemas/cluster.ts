/**
 * What nodes of a cluster say to each other over the bus. A node validates every
 * message it receives against these, so a node of another version, or anything
 * else on the channel, cannot corrupt its rooms.
 */
import { Type, type Static } from '@sinclair/typebox'
import { PositionEntry, PresenceUpdate, User } from './protocol.js'

/** One room's changes of one node's own users during one tick. */
export const RoomBatch = Type.Object({
  room: Type.String(),
  joined: Type.Array(User),
  left: Type.Array(Type.String()),
  updated: Type.Array(PresenceUpdate),
  positions: Type.Array(PositionEntry)
})

/** Everything a node's own users did in one tick: published once per tick, never per message. */
export const TickMessage = Type.Object({
  kind: Type.Literal('tick'),
  from: Type.String(),
  rooms: Type.Array(RoomBatch),
  /** `data` its users sent, for the listeners on other nodes; `payload` is serialized JSON. */
  data: Type.Array(Type.Object({ from: Type.String(), payload: Type.String() }))
})

/** A node asks a user's owner to hand it over (a reconnect landed elsewhere). */
export const ClaimMessage = Type.Object({
  kind: Type.Literal('claim'),
  from: Type.String(),
  to: Type.String(),
  userId: Type.String(),
  requestId: Type.String()
})

/** The owner's answer: the user as it last had it, or null when it no longer has the user. */
export const HandoverMessage = Type.Object({
  kind: Type.Literal('handover'),
  from: Type.String(),
  to: Type.String(),
  requestId: Type.String(),
  user: Type.Union([User, Type.Null()])
})

export const ClusterMessage = Type.Union([TickMessage, ClaimMessage, HandoverMessage])

export type RoomBatchT = Static<typeof RoomBatch>
export type TickMessageT = Static<typeof TickMessage>
export type ClusterMessageT = Static<typeof ClusterMessage>
