/** What a session store keeps per user, so that a reconnect restores the user exactly. */
import { Type, type Static } from '@sinclair/typebox'
import { Position, StoredState } from './protocol.js'

export const SessionRecord = Type.Object({
  secretHash: Type.String(),
  id: Type.String(),
  name: Type.String(),
  room: Type.String(),
  position: Position,
  state: StoredState,
  listeningTo: Type.Array(Type.String()),
  /** When the user was last connected (ms since the epoch); expiry slides from here. */
  lastSeen: Type.Number()
})

export type SessionRecordT = Static<typeof SessionRecord>
