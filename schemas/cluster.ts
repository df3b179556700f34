/**
 * What nodes of a cluster say to each other over the bus. A node validates every
 * message it receives against these, so a node of another version, or anything
 * else on the channel, cannot corrupt its rooms.
 */
import { Type, type Static } from '@sinclair/typebox'
import {
  AccountId, Coordinate, DATA_PAYLOAD_MAX_BYTES, Info, ListeningTo, RoomName, STATE_MAX_KEYS, STATE_STRING_MAX_LENGTH, StateKeyPattern, UserId, UserName
} from './protocol.js'

/*
 * Another node's users are held to the limits a client is held to (ids, names,
 * rooms, coordinates, state keys and values, listening sets), so a node of another
 * version, or anything else that reaches the bus or its keys, cannot put into a
 * room what no client could. The state's size in bytes is checked where it is
 * applied (src/core/cluster/cluster.ts), as for clients.
 */
export const ReplicaState = Type.Record(
  Type.String({ pattern: StateKeyPattern }),
  Type.Union([Type.String({ maxLength: STATE_STRING_MAX_LENGTH }), Type.Number(), Type.Boolean()]),
  { additionalProperties: false, maxProperties: STATE_MAX_KEYS }
)

/** A user as its owner node announces it (the User of the protocol, within the client limits). */
export const ReplicaUser = Type.Object({
  id: UserId,
  name: UserName,
  room: RoomName,
  position: Type.Object({ x: Coordinate, y: Coordinate, z: Coordinate }),
  state: ReplicaState,
  listeningTo: ListeningTo,
  connected: Type.Boolean(),
  userId: Type.Optional(AccountId),
  /** Its size is checked where it is applied, as for the host's own. */
  info: Type.Optional(Info)
})

/** What changed of a user (as in `presence.updated`). */
export const ReplicaUpdate = Type.Object({
  id: UserId,
  name: Type.Optional(UserName),
  state: Type.Optional(ReplicaState),
  listeningTo: Type.Optional(ListeningTo),
  connected: Type.Optional(Type.Boolean()),
  info: Type.Optional(Info)
})

/** One room's changes of one node's own users during one tick. */
export const RoomBatch = Type.Object({
  room: RoomName,
  joined: Type.Array(ReplicaUser),
  left: Type.Array(UserId),
  updated: Type.Array(ReplicaUpdate),
  positions: Type.Array(Type.Tuple([UserId, Coordinate, Coordinate, Coordinate])),
  /**
   * Users the sender announced before, sent whole again for a node that started
   * serving the room (its records may be a beat old): applied where they are not
   * the receiver's own, never taking a user over as `joined` does.
   */
  present: Type.Optional(Type.Array(ReplicaUser)),
  /** Users the sender handed over to another node (a reconnect there): receivers hold them as that node's from now on. */
  handed: Type.Optional(Type.Array(Type.Tuple([UserId, Type.String()]))),
  /**
   * Every user the sender has in the room, after an outage or for a node that
   * started serving it: the sender's replicas there that are not listed leave.
   */
  roster: Type.Optional(Type.Array(UserId))
})

/** One room's changes in one tick, on that room's topic: only the nodes serving the room get it. */
export const RoomMessage = Type.Object({
  kind: Type.Literal('room'),
  from: Type.String(),
  batch: RoomBatch
})

/** More `data` from one user in one tick than any rate limit lets through: a message with more is not from a sound node. */
export const DATA_PAYLOADS_PER_MESSAGE_MAX = 1000

/**
 * A node has started serving a room, or misses some of it, on that room's topic:
 * the nodes serving it announce their users there again at their next tick
 * (current positions included, which records hold only as of the last beat), and
 * a node that had stopped publishing the room for want of listeners starts again.
 */
export const ServingMessage = Type.Object({
  kind: Type.Literal('serving'),
  from: Type.String(),
  room: RoomName
})

/**
 * What one user sent as `data` in one tick, on that user's topic: only the nodes
 * with listeners of that user get it, whatever room they serve. Each payload is
 * serialized JSON, parsed again on arrival.
 */
export const DataMessage = Type.Object({
  kind: Type.Literal('data'),
  from: Type.String(),
  user: UserId,
  /** A sender's rate limit bounds how many; each is checked against the payload limit on arrival. */
  payloads: Type.Array(Type.String({ maxLength: DATA_PAYLOAD_MAX_BYTES }), { maxItems: DATA_PAYLOADS_PER_MESSAGE_MAX })
})

/** A node asks a user's owner, on the owner's own topic, to hand it over (a reconnect landed elsewhere). */
export const ClaimMessage = Type.Object({
  kind: Type.Literal('claim'),
  from: Type.String(),
  to: Type.String(),
  userId: UserId,
  requestId: Type.String()
})

/** The owner's answer on the claimant's topic: the user as it last had it, or null when it no longer has the user. */
export const HandoverMessage = Type.Object({
  kind: Type.Literal('handover'),
  from: Type.String(),
  to: Type.String(),
  requestId: Type.String(),
  user: Type.Union([ReplicaUser, Type.Null()])
})

/** A room's membership record of one user, as its owner stored it for nodes that start serving the room later. */
export const MemberRecord = Type.Object({
  owner: Type.String(),
  user: ReplicaUser
})

export const ClusterMessage = Type.Union([RoomMessage, ServingMessage, DataMessage, ClaimMessage, HandoverMessage])

export type ReplicaUserT = Static<typeof ReplicaUser>
export type RoomBatchT = Static<typeof RoomBatch>
export type DataMessageT = Static<typeof DataMessage>
export type MemberRecordT = Static<typeof MemberRecord>
export type ClusterMessageT = Static<typeof ClusterMessage>
