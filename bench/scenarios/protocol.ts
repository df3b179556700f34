/**
 * What the scenario runners (bench/scenarios/bigroom.ts, restart.ts, hostile.ts)
 * and their client processes (bench/scenarios/clients.ts, one role each) say to
 * each other over IPC, and the shapes of the results.
 *
 * Sequence: runner → `setup` → process `ready`; runner → `start` (bigroom: the
 * ramp begins; restart: the restarted server answered /health at `at`; hostile:
 * the hostile clients and the probe begin) → for bigroom and restart the process
 * sends a `result` by itself once done (all in, or the deadline); runner →
 * `window-start`, `window-end` (bigroom's idle window after the ramp, hostile's
 * measured window) → `result`; runner → `stop`.
 */
import type { LatencySummary, SetupReport } from '../fanout/protocol.js'

export const SCENARIO_NAMES = ['bigroom', 'restart', 'hostile'] as const
export type ScenarioName = typeof SCENARIO_NAMES[number]
export const HOSTILE_PATTERNS = ['listening', 'hop', 'sync'] as const
export type HostilePattern = typeof HOSTILE_PATTERNS[number]
export const ADDRESS_MODES = ['one', 'many'] as const
export type AddressMode = typeof ADDRESS_MODES[number]

export type ClientsRole = 'bigroom' | 'restart' | 'members' | 'hostile' | 'probe'

export interface CommonConfig {
  /** `ws://127.0.0.1:PORT`. */
  baseUrl: string
  /** Connections opened at once during setup, and how long setup may take. */
  concurrency: number
  setupTimeoutMs: number
  /** Clients spread over this many 127.0.0.x source addresses (restart uses an address per client instead). */
  sourceAddresses: number
  room: string
  /** Clients of this process (bigroom: all users, the observers included). */
  users: number
}

export interface BigroomConfig extends CommonConfig {
  role: 'bigroom'
  /** The first users, registered during setup. */
  observers: number
  /** Registers started per second during the ramp. */
  rate: number
  deadlineMs: number
}

export interface RestartConfig extends CommonConfig {
  role: 'restart'
  roomSize: number
  /** `one`: every reconnect from 127.0.0.1; `many`: each client from its own address (registers always are). */
  addresses: AddressMode
  deadlineMs: number
}

export interface MembersConfig extends CommonConfig {
  role: 'members'
  /** Each member registers with a state of about 2 KiB (the `sync` pattern: snapshots are then big). */
  bigState: boolean
}

export interface HostileConfig extends CommonConfig {
  role: 'hostile'
  pattern: HostilePattern
  /** Messages per second per hostile client. */
  rate: number
  /** The room `hop` alternates with. */
  otherRoom: string
}

export interface ProbeConfig extends CommonConfig {
  role: 'probe'
  intervalMs: number
}

export type ClientsConfig = BigroomConfig | RestartConfig | MembersConfig | HostileConfig | ProbeConfig

export type ClientsCommand =
  | { cmd: 'setup', config: ClientsConfig }
  | { cmd: 'start', at: number }
  | { cmd: 'window-start' }
  | { cmd: 'window-end' }
  | { cmd: 'stop' }

/** A client process over its last measured stretch (bigroom: the ramp, then the idle window; else the window). */
export interface ProcessFigures {
  role: ClientsRole
  clients: number
  cpuShareOfOneCore: number
  loopDelayP99Ms: number
  loopDelayMaxMs: number
  rssMiB: number
}

export interface Traffic { frames: number, bytes: number, framesPerSecond: number, bytesPerSecond: number }
/** Mean and max over clients of a per-client rate. */
export interface Spread { mean: number, max: number }

export interface RampResult {
  kind: 'ramp'
  /** Clients opened by the ramp (users − observers), and what became of them. */
  launched: number
  welcomed: number
  failed: number
  /** Still waiting for their welcome at the deadline. */
  pending: number
  errors: Record<string, number>
  /** Ramp start → last welcome (everyone in) or → the deadline; `allInMs` null unless everyone got in. */
  rampMs: number
  allInMs: number | null
  /** Achieved registers per second (launched over the launch period). */
  launchRate: number
  /** Per client: connect started → welcome received (whole). */
  welcomeMs: LatencySummary
  welcomeBytes: Spread
  /** What the observers (registered before the ramp) received during it, per second. */
  observers: { clients: number, framesPerSecond: Spread, bytesPerSecond: Spread, presenceFramesPerSecond: Spread, largestPresenceFrameBytes: number }
  /** Everything every client received during the ramp. */
  traffic: Traffic
  closes: Record<string, number>
}

/** Over a window: its length, the role's clients still connected at its end, and the server's closes (by code) so far. */
interface WindowFigures {
  windowMs: number
  stillOpen: number
  closes: Record<string, number>
}

export interface IdleResult extends WindowFigures {
  kind: 'idle'
  traffic: Traffic
}

export interface RestartResult {
  kind: 'restart'
  users: number
  resumed: number
  /** Resumed within 10 s and 30 s of the restarted server's /health, and by the deadline. */
  within10s: number
  within30s: number
  byDeadline: number
  /** Restarted server's /health → welcome with `resumed: true` (clamped at 0: `beforeHealth` got in between two /health polls). */
  resumeMs: LatencySummary
  beforeHealth: number
  /** Connect attempts per client from the 1012 on, resumed clients only. */
  attempts: LatencySummary
  /** Connect failures and refusals by kind (ECONNREFUSED, http 503, rate_limited, ...), and close codes seen. */
  errors: Record<string, number>
  closes: Record<string, number>
  /** Clients that gave up for good (invalid_secret, or a welcome that did not resume). */
  gaveUp: number
}

export interface MembersResult extends WindowFigures {
  kind: 'members'
  perMember: { frames: Spread, framesPerSecond: Spread, bytesPerSecond: Spread }
  traffic: Traffic
}

export interface HostileResult extends WindowFigures {
  kind: 'hostile'
  clients: number
  sent: number
  /** Per hostile client, over the window. */
  sentPerSecond: number
  /** Messages not sent because the pump fell behind (never sent in a burst). */
  skipped: number
  received: Traffic
  /** Frames received in the window by type, and `error` frames by code. */
  receivedByType: Record<string, number>
  errors: Record<string, number>
}

export interface ProbeResult {
  kind: 'probe'
  windowMs: number
  pings: number
  pongs: number
  rttMs: LatencySummary
  closes: Record<string, number>
}

export type ClientsResult = RampResult | IdleResult | RestartResult | MembersResult | HostileResult | ProbeResult

export type ClientsEvent =
  | { ev: 'ready', setup: SetupReport }
  | { ev: 'result', result: ClientsResult, process: ProcessFigures }
  | { ev: 'error', message: string }
