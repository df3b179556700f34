/**
 * The plugin's settings: one schema, defaults equal to the contract's. The
 * standalone server reads the same settings from environment variables.
 */
import { Type, type Static } from '@sinclair/typebox'
import { RoomPattern } from './protocol.js'

const ms = (defaultValue: number, description: string, minimum = 1) =>
  Type.Integer({ default: defaultValue, minimum, description })

export const ShoalSettings = Type.Object({
  path: Type.String({ default: '/ws', pattern: '^/[^:*?#\\s]*$', description: 'WebSocket endpoint, relative to the plugin prefix: a plain path (no route parameters, wildcards or query).' }),
  tickHz: Type.Number({ default: 20, minimum: 1, maximum: 200, description: 'Broadcast ticks per second: positions and presence are flushed once per tick.' }),
  heartbeatMs: ms(10_000, 'Interval of WebSocket ping frames; a socket that has not answered by the next one is terminated.', 10),
  graceMs: ms(30_000, 'How long a user whose socket dropped stays in its room (connected: false) before it leaves.', 0),
  sessionTtlMs: ms(86_400_000, 'A secret expires this long after its user was last connected.'),
  sweepMs: ms(3_600_000, 'Interval of the sweep that deletes expired sessions.', 10),
  maxPayload: Type.Integer({ default: 16_384, minimum: 128, maximum: 16_777_216, description: 'Largest inbound frame in bytes; a larger one closes the connection with 1009.' }),
  messagesPerSecond: Type.Number({ default: 60, exclusiveMinimum: 0, description: 'Token-bucket refill rate of inbound messages per connection.' }),
  messageBurst: Type.Integer({ default: 120, minimum: 1, description: 'Token-bucket size of inbound messages per connection.' }),
  registerLimit: Type.Integer({ default: 30, minimum: 1, description: 'register and reconnect messages allowed per remote address within registerWindowMs.' }),
  registerWindowMs: ms(60_000, 'Sliding window of registerLimit.'),
  registerTimeoutMs: ms(10_000, 'A socket that has not sent register or reconnect this long after it opened is closed with 1008.', 10),
  snapshotsPerSecond: Type.Number({ default: 1, exclusiveMinimum: 0, description: 'join and sync messages (each answered with a snapshot of the whole room) per second per connection, after snapshotBurst; more get rate_limited.' }),
  snapshotBurst: Type.Integer({ default: 5, minimum: 1, description: 'join and sync messages a connection may send at once before snapshotsPerSecond applies.' }),
  maxRoomSize: Type.Integer({ default: 0, minimum: 0, description: 'Most users a room may hold, in grace included (0: no cap); a register or join into a full room gets room_full. A user resuming its session is let back in.' }),
  maxConnectionsPerAddress: Type.Integer({ default: 1000, minimum: 1, description: 'Open WebSocket connections allowed per remote address; an upgrade over it is refused with HTTP 429.' }),
  slowReaderSkipBytes: Type.Integer({ default: 1_048_576, minimum: 0, description: 'A client with more buffered output than this is skipped for positions frames until it drains.' }),
  slowReaderCloseBytes: Type.Integer({ default: 8_388_608, minimum: 1, description: 'A client with more buffered output than this is closed with 1013.' }),
  presenceBytesPerSecond: Type.Integer({ default: 16_384, minimum: 256, description: 'Presence bytes per second each member of a room may be sent; over it, a room\'s changes are coalesced over longer intervals (latest value wins, at most 1 s).' }),
  presenceWritesPerSecond: Type.Integer({ default: 20_000, minimum: 1, description: 'Presence frames per second a room may cost (one per member per frame): a big room gets fewer, larger frames (at least one a second).' }),
  presenceUserIntervalMs: Type.Integer({ default: 250, minimum: 0, maximum: 1000, description: 'A user\'s own presence changes (name, state, listening set, connection) are sent at most once per this interval, latest value winning.' }),
  interestRadius: Type.Number({ default: 0, minimum: 0, maximum: 1e9, description: 'Interest management for every room: each client gets positions only of users within this distance (plus those it listens to); 0 turns it off.' }),
  hookTimeoutMs: ms(5_000, 'How long authenticate, canJoin and canUpdate may take to answer; a later answer counts as a failure (server_error, or read-only for canUpdate).', 10),
  drainTimeoutMs: ms(3_000, 'At shutdown, how long clients get to answer the 1012 close before their sockets are dropped.', 0),
  nodeHeartbeatMs: ms(2_000, 'In a cluster: how often a node says it is alive; a node silent for two beats is dead, and its users leave after graceMs.', 10),
  claimTimeoutMs: ms(1_000, 'In a cluster: how long a reconnect on one node waits for the node that had the user to hand it over.', 10),
  csvMaxRows: Type.Integer({ default: 10_000, minimum: 1, description: 'Most data rows a CSV feed file may have; a longer file is refused and the last good version stays.' }),
  csvMaxBytes: Type.Integer({ default: 1_048_576, minimum: 1, description: 'Largest CSV feed file in bytes; a larger file is refused and the last good version stays.' }),
  demo: Type.Boolean({ default: true, description: 'Serve the demo page from public/ at the prefix root.' }),
  clientBundle: Type.Optional(Type.Boolean({ description: 'Serve the client library as one ES module at /build/shoal-client.js (relative to the prefix), for pages without a bundler; when unset, as demo.' })),
  metrics: Type.Boolean({ default: true, description: 'Serve /metrics (Prometheus); see also metricsAuthorize.' })
}, { additionalProperties: false })

export type ShoalSettingsT = Static<typeof ShoalSettings>

export type ShoalSettingName = keyof ShoalSettingsT

export const FeedNamePattern = '^[A-Za-z0-9_.-]{1,64}$'

/** One CSV feed: which file to publish, under which name, to which room (every room when none). */
export const CsvFeedConfig = Type.Object({
  name: Type.String({ pattern: FeedNamePattern }),
  file: Type.String({ minLength: 1 }),
  /** Only this room's clients get the feed; every room's when absent. */
  room: Type.Optional(Type.String({ pattern: RoomPattern }))
}, { additionalProperties: false })

/** The csvFeeds option. */
export const CsvFeedsOption = Type.Array(CsvFeedConfig)

export type CsvFeedConfigT = Static<typeof CsvFeedConfig>

/** Options of one room, decided when it is created (the roomOptions option); what it leaves out comes from the settings. */
export const RoomOptions = Type.Object({
  interestRadius: ShoalSettings.properties.interestRadius
})

export type RoomOptionsT = Static<typeof RoomOptions>
