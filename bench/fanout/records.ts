/** The result files of the fan-out benchmark: written by run.ts, read by report.ts. */
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

export interface RunRecord {
  kind: 'fanout-run'
  version: 1
  scenario: Scenario
  /** `shoal` and `shoal-compact` are the same server; `shoal-compact`'s clients use the compact encoding. */
  target: TargetName
  users: number
  date: string
  command: string
  sweep: { id: string, step: number } | null
  pass: boolean
  failReasons: string[]
  warnings: string[]
  error: string | null
  config: RunConfig
  machine: MachineInfo
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
