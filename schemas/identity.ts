/**
 * What the host's `authorize` or `authenticate` says of a user: its account, and
 * optionally the name it must have and server-set `info` for its room to see.
 */
import { Type, type Static } from '@sinclair/typebox'
import { AccountId, Info, UserName } from './protocol.js'

export const Identity = Type.Object({
  userId: AccountId,
  /** The user's name; clients cannot change it (`update.name` gets `forbidden`). */
  name: Type.Optional(UserName),
  info: Type.Optional(Info)
}, { additionalProperties: false })

export type IdentityT = Static<typeof Identity>
