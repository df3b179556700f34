/**
 * What the fan-out runner (bench/fanout/run.ts) and its load generator processes
 * (bench/fanout/generator.ts) say to each other over the child-process IPC
 * channel, and the shapes of their results. All sides import this file, so the
 * processes cannot disagree about a field.
 *
 * Roles: in `room` and `crowd` there are two generator processes, both on core 1:
 * `observe` hosts the few observers (movers that parse every frame), `load` hosts
 * every other client (movers that only count). Apart, the observers are read as
 * soon as their frames arrive instead of waiting behind thousands of counting
 * sockets in one event loop, so latency is the server's, not the generator's.
 * In `idle` and `churn` there is only `load`.
 *
 * Nodes: the clients of a run connect to one server, or (the `cluster` command
 * of run.ts: a `room` run on two Shoal nodes sharing Redis) alternate between
 * several: client i connects to `baseUrls[i % baseUrls.length]`, the observers
 * too, and each observer's latency and delivery are also split by whether the
 * sender was on its node or on another (`nodePairs`).
 *
 * Sequence: runner → `setup` (connect and register the process's clients) →
 * each process `ready` (with its clients' ids); runner → `ids` (every id, to the
 * observe process) → `start` (senders or churn begin; warm-up) → `window-start`
 * (counting begins; the runner reads the server's CPU at the same moment) →
 * `window-end` (counting stops; the load stays on for the 1 s delivery deadline)
 * → load `result` with its log of sent updates → runner → `sent-log` to the
 * observe process, which computes delivery → observe `result` → `stop`.
 */

export const SCENARIOS = ['room', 'crowd', 'idle', 'churn'] as const
export type Scenario = typeof SCENARIOS[number]
/**
 * `shoal` and `shoal-compact` are the same server process with the same settings;
 * with `shoal-compact` every client asks for the compact encoding of `positions`
 * at register (binary frames, short ids, 32-bit floats: src/protocol/compact.ts).
 */
export const TARGETS = ['shoal', 'shoal-compact', 'naive', 'socketio'] as const
export type TargetName = typeof TARGETS[number]

/** Targets that run Shoal itself (the standalone server, configured through its environment). */
export function isShoal (target: string): boolean {
  return target === 'shoal' || target === 'shoal-compact'
}

/** How the generator speaks to the target: Shoal's JSON protocol over ws (Shoal and the naive baseline), or Socket.IO 4. */
export type WireKind = 'json' | 'socketio'

/**
 * How `positions` arrive over the `json` wire: JSON text (the protocol's default),
 * or Shoal's compact encoding, which every client then asks for at register.
 */
export type PositionsEncoding = 'json' | 'compact'

export type GeneratorRole = 'load' | 'observe'

export interface GeneratorConfig {
  role: GeneratorRole
  scenario: Scenario
  target: TargetName
  wire: WireKind
  /** `compact` only with `shoal-compact`: every register (and so every welcome, User object and `positions`) uses it. */
  encoding: PositionsEncoding
  /**
   * One `ws://127.0.0.1:PORT` per server node; the generator appends `/ws` or
   * `/socket.io/...`. Client i (observers included) connects to node i % length.
   */
  baseUrls: string[]
  /** Movers (room, crowd), idle connections (idle), or the churn rate per second (churn). */
  users: number
  /** Movers that parse every frame and measure latency and delivery. */
  observers: number
  /** Updates per second per mover. */
  hz: number
  /** Absolute epoch (ms since the Unix epoch): every `z` is milliseconds since this moment. */
  epochMs: number
  /** Side of the square the movers walk in. */
  area: number
  /** Interest radius used for the delivery expectation; 0: everyone sees everyone. */
  radius: number
  /** Hysteresis: an update is expected at an observer only within radius × (1 − margin). */
  margin: number
  /** Speed of the random walk, units per second. */
  speed: number
  /** Room name for room and crowd (omitted in Socket.IO: namespace-wide `socket.broadcast.emit`). */
  room: string
  /** Idle: users per room. */
  roomSize: number
  /** Churn: connected users that stay through the run, spread over `churnRooms` rooms. */
  background: number
  churnRooms: number
  /** How many 127.0.0.x source addresses the clients are spread over (ephemeral ports). */
  sourceAddresses: number
  /** Connections being opened at once during setup. */
  connectConcurrency: number
  /** Setup gives up after this long; the run is then reported as failed. */
  setupTimeoutMs: number
  /** The delivery deadline. */
  deliveryMs: number
}

export type RunnerMessage =
  | { cmd: 'setup', config: GeneratorConfig }
  | { cmd: 'ids', ids: string[] }
  | { cmd: 'sent-log', log: SentLog }
  | { cmd: 'start' }
  | { cmd: 'window-start' }
  | { cmd: 'window-end' }
  | { cmd: 'stop' }

/** The updates a process's movers sent during the window: per sender, send time (z) and position. */
export interface SentLog {
  senders: Array<{ index: number, z: number[], x: number[], y: number[] }>
}

export interface SetupReport {
  target: number
  registered: number
  failed: number
  complete: boolean
  ms: number
  errors: Record<string, number>
}

export interface LatencySummary {
  samples: number
  p50: number | null
  p95: number | null
  p99: number | null
  max: number | null
  mean: number | null
}

/** Latency and delivery over the (observer, update) pairs of one kind. */
export interface PairFigures {
  latencyMs: LatencySummary
  delivery: { expected: number, delivered: number, ratio: number | null }
}

export interface GeneratorResult {
  windowMs: number
  updates: { sent: number, expected: number, achievedShare: number | null }
  latencyMs: LatencySummary
  delivery: { expected: number, delivered: number, late: number, missed: number, ratio: number | null }
  traffic: {
    frames: number
    bytes: number
    framesPerSecond: number
    bytesPerSecond: number
    errorFrames: number
    /** WebSocket ping frames received (the heartbeat), all clients. */
    pings: number
    /** Closes the generator did not ask for, by close code or reason. */
    closes: Record<string, number>
    stillOpen: number
  }
  /** All generator processes together (they share one core). */
  cpu: { ms: number, userMs: number, shareOfOneCore: number, saturated: boolean }
  /** The worst of the processes; `observerP99` is the observers' own event loop (their latency error). */
  loopDelayMs: { p99: number, max: number, observerP99?: number }
  rssMiB: number
  processes?: Array<{ role: GeneratorRole, cpuShareOfOneCore: number, loopDelayP99Ms: number, rssMiB: number, clients: number }>
  /**
   * With several nodes (`baseUrls`): the observers' figures split by where the
   * sender was, on the observer's own node (`same`) or on another (`cross`).
   * Absent or null with one node.
   */
  nodePairs?: { same: PairFigures, cross: PairFigures } | null
  interest: {
    /** Distinct senders an observer received during the window, averaged over observers. */
    receivedSendersPerObserver: number
    /** Distinct senders within radius × (1 − margin) of an observer at some send, averaged. */
    expectedSendersPerObserver: number
    entriesPerPositionsFrame: number
    positionsFrames: number
  } | null
  churn: {
    started: number
    completed: number
    failed: number
    errors: Record<string, number>
    /** Per second over the window. */
    achievedRate: number
    targetRate: number
    welcomeMs: LatencySummary
    capped: number
  } | null
}

export type GeneratorMessage =
  | { ev: 'ready', setup: SetupReport, ids: Array<[number, string]> }
  | { ev: 'result', result: GeneratorResult, sentLog: SentLog | null }
  | { ev: 'error', message: string }

/** The generator is flagged as saturated (its figures unreliable) above this share of its core. */
export const SATURATION = 0.85
