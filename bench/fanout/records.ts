/**
 * The result files of the fan-out benchmark: written by run.ts, read by report.ts.
 * `fanout-run`: one run; `fanout-sweep`: a capacity sweep listing its runs;
 * `fanout-cluster`: the `cluster` command, a `room` run on one Shoal node and the
 * same run on two nodes sharing Redis, back to back, in one file.
 */
import type { MachineInfo } from '../lib/proc.js'
import type { GeneratorResult, PositionsEncoding, Scenario, SetupReport, TargetName } from './protocol.js'
import type { InterestVerdict } from './verdicts.js'

/** What a run was configured with: the runner's options (more keys than these may be present). */
export interface RunConfig {
  hz?: number
  seconds?: number
  warmup?: number
  observers?: number
  tickHz?: number
  heartbeatMs?: number
  radius?: number
  serverEnv?: Record<string, string>
  /** How the clients asked for `positions`: `compact` for `shoal-compact` (absent in records written before it existed). */
  encoding?: PositionsEncoding
  compiled?: boolean
  pinned?: boolean
  [key: string]: unknown
}

/** The fields every run's result file has (fanout-run, fanout-cluster, scenario-run). */
export interface RecordHead {
  version: 1
  users: number
  date: string
  /** The command line it came from. */
  command: string
  pass: boolean
  failReasons: string[]
  warnings: string[]
  error: string | null
  machine: MachineInfo
}

export interface RunRecord extends RecordHead {
  kind: 'fanout-run'
  scenario: Scenario
  /** `shoal` and `shoal-compact` are the same server; `shoal-compact`'s clients use the compact encoding. */
  target: TargetName
  sweep: { id: string, step: number } | null
  config: RunConfig
  setup: SetupReport | null
  server: {
    cpuMs: number | null
    cpuShareOfOneCore: number | null
    rssMiB: number | null
    rssPeakMiB: number | null
    rssBaselineMiB: number | null
    rssPerConnectionKiB: number | null
    health: unknown
    exitedDuringRun: boolean
    logTail: string | null
  }
  generator: GeneratorResult | null
  /** The machine is shared: how busy it was before the run, and each core's busy share during the window. */
  environment: {
    quietBeforeRun: boolean
    busyBeforeRun: number[]
    waitedForQuietMs: number
    loadAverage: number[]
    coreBusyDuringWindow: number[]
    /** Core 0's busy share beyond the server's own CPU (other processes, kernel network work). */
    otherLoadOnServerCore: number | null
  } | null
  interest: InterestVerdict | null
  /**
   * Two nodes (the cluster half of a `cluster` record): each node's own figures;
   * `server` then holds their sums (both nodes share core 0).
   */
  nodes?: ServerNode[]
  /**
   * Redis over the window, in both halves of a `cluster` record: with two nodes the
   * cluster's traffic, with one node (on SQLite, not Redis) Redis's background.
   */
  redis?: RedisFigures | null
  /** The JSON file; '' for the runs embedded in a `cluster` record. */
  file: string
}

/** One Shoal node of a two-node run: CPU over the window, RSS at its end, /health after it. */
export interface ServerNode {
  id: string
  port: number
  cpuMs: number | null
  cpuShareOfOneCore: number | null
  rssMiB: number | null
  rssPeakMiB: number | null
  rssBaselineMiB: number | null
  /** /health after the window: `connections` are this node's clients, `users` its own plus its replicas of the other's. */
  health: unknown
  exitedDuringRun: boolean
  logTail: string | null
}

/** Redis (a system process, not pinned, shared with anything else using it) over a run's window. */
export interface RedisFigures {
  windowMs: number
  /** utime + stime of the redis-server process from /proc/<pid>/stat; null with `pidNote` saying why. */
  cpuMs: number | null
  cpuShareOfOneCore: number | null
  /** Deltas of INFO stats `total_net_input_bytes`, `total_net_output_bytes` and `total_commands_processed`, per second. */
  inputBytesPerSecond: number
  outputBytesPerSecond: number
  commandsPerSecond: number
}

export interface ClusterRecord extends RecordHead {
  kind: 'fanout-cluster'
  scenario: 'cluster'
  /** `shoal` or `shoal-compact`. */
  target: TargetName
  /** The two-node run's verdict (as `room`: p99 < 100 ms and delivery ≥ 0.99). */
  pass: boolean
  redis: {
    /** Without its password. */
    url: string
    /** This run's REDIS_PREFIX; its keys are deleted at the end. */
    prefix: string
    version: string | null
    pid: number | null
    /** Why `pid` is null (then the Redis CPU figures are null too). */
    pidNote: string | null
    /** Keys under the prefix deleted at the end; null when the cleanup failed (`cleanupError`). */
    keysDeleted: number | null
    cleanupError: string | null
  }
  /** The same `room` run on one node (sessions in SQLite, no Redis), just before; null when it could not run. */
  single: RunRecord | null
  /** The `room` run on two nodes, clients alternating between them. */
  cluster: RunRecord | null
  /** Cluster minus single node, p50 and p99 of all pairs (ms); null where either is missing. */
  addedLatencyMs: { p50: number | null, p99: number | null }
  file: string
}

export interface SweepTarget { capacity: number | null, firstFail: number | null, limitedBy: string, runs: string[] }

export interface SweepRecord {
  kind: 'fanout-sweep'
  version: 1
  id: string
  scenario: Scenario
  command: string
  date: string
  from: number
  max: number
  factor: number
  bisect: boolean
  machine: MachineInfo
  targets: Record<string, SweepTarget>
}
