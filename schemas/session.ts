/** What a session store keeps per user, so that a reconnect restores the user exactly. */
import { Type, type Static } from '@sinclair/typebox'
import { AccountId, Info, User } from './protocol.js'

export const SessionRecord = Type.Composite([
  Type.Pick(User, ['id', 'name', 'room', 'position', 'state', 'listeningTo']),
  Type.Object({
    /** SHA-256 of the secret (base64url); the secret itself is never stored. */
    secretHash: Type.String(),
    /** When the user was last connected (ms since the epoch); expiry slides from here. */
    lastSeen: Type.Number(),
    /** The host's account id, when it identified the user: only that account may resume the session. */
    userId: Type.Optional(AccountId),
    info: Type.Optional(Info)
  })
])

export type SessionRecordT = Static<typeof SessionRecord>
