/** What a session store keeps per user, so that a reconnect restores the user exactly. */
import { Type, type Static } from '@sinclair/typebox'
import { User } from './protocol.js'

export const SessionRecord = Type.Composite([
  Type.Pick(User, ['id', 'name', 'room', 'position', 'state', 'listeningTo']),
  Type.Object({
    /** SHA-256 of the secret (base64url); the secret itself is never stored. */
    secretHash: Type.String(),
    /** When the user was last connected (ms since the epoch); expiry slides from here. */
    lastSeen: Type.Number()
  })
])

export type SessionRecordT = Static<typeof SessionRecord>
