/**
 * Shared pieces of the benchmarks: process and machine measurements read from
 * /proc (CPU ticks, RSS), CPU pinning with taskset, building and starting the
 * standalone Shoal server, waiting for /health, stopping children for sure, and
 * small statistics helpers. Used by bench/update-cpu.ts and the fan-out harness
 * in bench/fanout/. Linux only (reads /proc).
 */
import { execFileSync, type ChildProcess } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { availableParallelism, cpus, totalmem, release } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The repository root. */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
export const RESULTS_DIR = join(ROOT, 'bench', 'results')
/** Preloaded (`--import`) into every process the harness starts: exits when the parent dies. */
export const ORPHAN_GUARD = join(ROOT, 'bench', 'lib', 'orphan-guard.mjs')

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

export function commandExists (command: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/** True when there are two cores or more and taskset exists: server on core 0, load on core 1. */
export function canPin (): boolean {
  return Math.max(availableParallelism(), cpus().length) >= 2 && commandExists('taskset')
}

/** Pins every thread of a running process to one core; false when that failed. */
export function pinProcess (pid: number, core: number): boolean {
  try {
    execFileSync('taskset', ['-a', '-p', '-c', String(core), String(pid)], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })
}

export function clockTicks (): number {
  try {
    const value = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim())
    return value > 0 ? value : 100
  } catch {
    return 100
  }
}

/** utime + stime of a process, in clock ticks. */
export function processTicks (pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // The command name (field 2) may hold spaces: count the fields after its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return Number(fields[11]) + Number(fields[12]) // fields 14 and 15 of proc(5)
}

function statusKiB (pid: number, field: 'VmRSS' | 'VmHWM'): number {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return match === null ? 0 : Number(match[1])
  } catch {
    return 0
  }
}

/** Resident set size now, in KiB (0 when the process is gone). */
export const rssKiB = (pid: number) => statusKiB(pid, 'VmRSS')
/** Peak resident set size, in KiB. */
export const peakRssKiB = (pid: number) => statusKiB(pid, 'VmHWM')

/** Bytes the process passed to write(2)-like calls, sockets included (`wchar` of /proc/<pid>/io); null when unreadable. */
export function writtenBytes (pid: number): number | null {
  try {
    const match = /^wchar:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))
    return match === null ? null : Number(match[1])
  } catch {
    return null
  }
}

/**
 * The Shoal checkout under test: this repository, or another one named by
 * BENCH_SHOAL_ROOT (before/after comparisons; the harness itself always runs from here).
 */
export const SHOAL_ROOT = resolve(process.env.BENCH_SHOAL_ROOT ?? ROOT)

export interface ShoalCommand {
  args: string[]
  compiled: boolean
  buildError?: string
  /** The checkout it comes from (the server's working directory) and its entry point, relative to it. */
  root: string
  entry: string
}

/** The standalone server's entry point in a checkout: src/server/main.ts, or src/server.ts in older ones. */
function serverEntry (root: string): string {
  return existsSync(join(root, 'src', 'server', 'main.ts')) ? 'src/server/main' : 'src/server'
}

/** Compiles a checkout's server (SHOAL_ROOT by default) to its dist/; returns the node arguments that run it (source via tsx if the build fails). */
export function shoalServerCommand (root = SHOAL_ROOT): ShoalCommand {
  const entry = serverEntry(root)
  const own = join(root, 'node_modules', '.bin', 'tsc')
  const tsc = existsSync(own) ? own : join(ROOT, 'node_modules', '.bin', 'tsc')
  try {
    execFileSync(tsc, ['-p', 'tsconfig.build.json'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
  } catch (err) {
    const output = String((err as { stdout?: Buffer }).stdout ?? '').slice(0, 2000)
    process.stderr.write(`warning: build of ${root} failed, measuring the TypeScript source through tsx instead\n${output}\n`)
    return { args: ['--import', 'tsx', join(root, `${entry}.ts`)], compiled: false, buildError: output, root, entry: `${entry}.ts` }
  }
  return { args: [join(root, 'dist', `${entry}.js`)], compiled: true, root, entry: `dist/${entry}.js` }
}

/** The checkout's commit and whether its work tree differs from it (null outside git). */
export function shoalRevision (root = SHOAL_ROOT): { commit: string, dirty: boolean } | null {
  try {
    const git = (...args: string[]) => execFileSync('git', ['-C', root, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
    return { commit: git('rev-parse', '--short', 'HEAD'), dirty: git('status', '--porcelain', '--untracked-files=no') !== '' }
  } catch {
    return null
  }
}

export function exited (child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null
}

/** Polls `url` until it answers 2xx; fails early when `child` exits. */
export async function waitForHealth (url: string, child: ChildProcess, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (exited(child)) {
      throw new Error(`server exited before answering /health (code ${String(child.exitCode)}, signal ${String(child.signalCode)})`)
    }
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2000) })
      if (response.ok) return
    } catch {}
    await sleep(100)
  }
  throw new Error(`server did not answer ${url} within ${timeoutMs / 1000} s`)
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the child has exited. */
export async function stopChild (child: ChildProcess, graceMs = 5000): Promise<void> {
  if (exited(child)) return
  const done = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
  await done
  clearTimeout(timer)
}

export function percentile (sorted: ArrayLike<number>, p: number): number | null {
  if (sorted.length === 0) return null
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[index] ?? null
}

export const round = (value: number, digits = 2) => Math.round(value * 10 ** digits) / 10 ** digits

export interface MachineInfo {
  cpuModel: string
  cores: number
  memoryGiB: number
  node: string
  kernel: string
  openFilesLimit: number | null
}

/** The machine the figures come from: CPU model from /proc/cpuinfo, cores, memory, node and kernel. */
export function machineInfo (): MachineInfo {
  let cpuModel = 'unknown'
  try {
    cpuModel = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? 'unknown'
  } catch {}
  let openFilesLimit: number | null = null
  try {
    openFilesLimit = Number(execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim()) || null
  } catch {}
  return {
    cpuModel,
    // Not availableParallelism(): that follows this process's CPU affinity, and the runner is pinned to one core.
    cores: cpus().length,
    memoryGiB: round(totalmem() / 2 ** 30, 1),
    node: process.version,
    kernel: release(),
    openFilesLimit
  }
}

/** Busy and total jiffies of each CPU (cpu0, cpu1, ...) from /proc/stat. */
export function cpuJiffies (): Array<{ busy: number, total: number }> {
  const cpus: Array<{ busy: number, total: number }> = []
  for (const line of readFileSync('/proc/stat', 'utf8').split('\n')) {
    const match = /^cpu(\d+)\s+(.+)$/.exec(line)
    if (match === null) continue
    const fields = (match[2] ?? '').trim().split(/\s+/).map(Number)
    const total = fields.slice(0, 8).reduce((sum, value) => sum + value, 0)
    const idle = (fields[3] ?? 0) + (fields[4] ?? 0) // idle + iowait
    cpus[Number(match[1])] = { busy: total - idle, total }
  }
  return cpus
}

/** Busy share of each CPU between two readings of cpuJiffies(). */
export function cpuBusyShares (before: Array<{ busy: number, total: number }>, after: Array<{ busy: number, total: number }>): number[] {
  return after.map((cpu, i) => {
    const start = before[i]
    const total = cpu.total - (start?.total ?? 0)
    return total > 0 ? round((cpu.busy - (start?.busy ?? 0)) / total, 4) : 0
  })
}

/**
 * Waits until the machine is quiet (every CPU under `maxBusy` over a 1 s sample),
 * at most `timeoutMs`; returns the last busy shares. Benchmarks on a shared machine
 * call it before starting, so that someone else's test run is not measured.
 */
export async function waitForQuiet (maxBusy = 0.15, timeoutMs = 60_000): Promise<{ quiet: boolean, busy: number[], waitedMs: number }> {
  const started = Date.now()
  for (;;) {
    const before = cpuJiffies()
    await sleep(1000)
    const busy = cpuBusyShares(before, cpuJiffies())
    const quiet = busy.every((share) => share < maxBusy)
    if (quiet || Date.now() - started >= timeoutMs) return { quiet, busy, waitedMs: Date.now() - started }
  }
}
