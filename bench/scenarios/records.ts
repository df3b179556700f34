/**
 * The result files of the scenarios in bench/scenarios/ (kind `scenario-run`):
 * bench/results/<scenario>[-<variant>]-shoal-<N>-<timestamp>.json, one per run.
 * bench/report.ts leaves them out of docs/performance.md.
 */
import type { SetupReport } from '../fanout/protocol.js'
import type { RecordHead, RunRecord } from '../fanout/records.js'
import type {
  AddressMode, HostilePattern, HostileResult, IdleResult, MembersResult, ProbeResult, ProcessFigures, RampResult, RestartResult, ScenarioName
} from './protocol.js'

/** The server over one stretch of a run, from /proc. */
export interface ServerWindow {
  ms: number
  cpuMs: number
  cpuShareOfOneCore: number
  /** `wchar` of /proc/<pid>/io per second: what the server wrote, to its sockets almost all (null when unreadable). */
  bytesOutPerSecond: number | null
  /** RSS at the end, and the peak since the process started (VmHWM). */
  rssMiB: number
  rssPeakMiB: number
  /** Core 0's busy share beyond the server's own CPU (another process, kernel network work); null unpinned. */
  otherLoadOnServerCore: number | null
}

export interface ScenarioRecordBase extends RecordHead {
  kind: 'scenario-run'
  scenario: ScenarioName
  /** restart: `one` or `many`; hostile: the pattern; bigroom: null. */
  variant: string | null
  target: 'shoal'
  /** The options, the server's environment (`serverEnv`), which checkout ran (`shoal`), the client processes' configs (`clients`). */
  config: Record<string, unknown>
  environment: RunRecord['environment']
  setup: SetupReport | null
  server: { rssBaselineMiB: number | null, exitedDuringRun: boolean, logTail: string | null }
  /** The client processes (all on core 1), per stretch of the run. */
  generator: Record<string, ProcessFigures[]>
  file: string
}

export interface BigroomRecord extends ScenarioRecordBase {
  scenario: 'bigroom'
  ramp: RampResult | null
  /** After the ramp: every connection idle for `idleSeconds`. */
  idle: IdleResult | null
  serverRamp: ServerWindow | null
  serverIdle: ServerWindow | null
  /** The server each second of the ramp. */
  timeline: TimelineSample[]
  /** (RSS at the end of the idle window − RSS before any client) / connections. */
  rssPerConnectionKiB: number | null
}

export interface TimelineSample { s: number, rssMiB: number, cpuShareOfOneCore: number }

export interface RestartRecord extends ScenarioRecordBase {
  scenario: 'restart'
  addresses: AddressMode
  /** SIGTERM → exit (graceful: exited by itself), and spawn → /health of the new process. */
  restart: { stopMs: number, exitCode: number | null, exitSignal: string | null, graceful: boolean, startMs: number } | null
  resume: RestartResult | null
  /** The new process from its /health until every client resumed (or the deadline). */
  serverRecovery: ServerWindow | null
}

export interface HostileRecord extends ScenarioRecordBase {
  scenario: 'hostile'
  pattern: HostilePattern
  hostileClients: number
  members: MembersResult | null
  hostile: HostileResult | null
  probe: ProbeResult | null
  serverWindow: ServerWindow | null
  /** What the members and the hostile clients received per second, in all (payload bytes, framing aside). */
  clientBytesInPerSecond: number | null
}

export type ScenarioRecord = BigroomRecord | RestartRecord | HostileRecord
