/** Bodies of Shoal's HTTP endpoints: `/health`, `/csv`, `/csv/:name`. */
import { Type, type Static } from '@sinclair/typebox'

export const Health = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('degraded'), Type.Literal('draining')]),
  uptime: Type.Optional(Type.Number({ description: 'Seconds since this instance started.' })),
  connections: Type.Optional(Type.Integer()),
  users: Type.Optional(Type.Integer()),
  rooms: Type.Optional(Type.Integer()),
  node: Type.Optional(Type.String({ description: 'In a cluster: this node\'s id.' }))
})

/** What a CSV feed is serving, and how its file looks now. */
export const FeedStatus = Type.Object({
  name: Type.String(),
  file: Type.String(),
  room: Type.Union([Type.String(), Type.Null()]),
  size: Type.Union([Type.Integer(), Type.Null()], { description: 'Bytes of the file on disk now (null when it cannot be read).' }),
  modifiedAt: Type.Union([Type.Number(), Type.Null()], { description: 'Modification time of the file on disk (ms since the epoch).' }),
  version: Type.Integer({ description: 'Version being served; 0 until the file is first valid.' }),
  updatedAt: Type.Union([Type.Number(), Type.Null()]),
  rows: Type.Integer(),
  columns: Type.Integer(),
  lastError: Type.Union([Type.Object({ message: Type.String(), line: Type.Union([Type.Integer(), Type.Null()]), at: Type.Number() }), Type.Null()])
})

/** One feed's current version. */
export const FeedRows = Type.Object({
  name: Type.String(),
  version: Type.Integer(),
  updatedAt: Type.Union([Type.Number(), Type.Null()]),
  columns: Type.Array(Type.String()),
  rows: Type.Array(Type.Array(Type.String()))
})

export const HttpError = Type.Object({ error: Type.String() })

export type FeedStatusT = Static<typeof FeedStatus>
export type FeedRowsT = Static<typeof FeedRows>
