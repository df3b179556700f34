/**
 * Small pieces shared by the load generators (bench/fanout/generator.ts and
 * bench/scenarios/clients.ts) and their runners: counting by key, naming a
 * failure, matching a frame's first bytes, latency summaries, source addresses,
 * opening many clients at a bounded concurrency, and formatting figures.
 */
import { percentile, round } from '../lib/proc.js'
import type { LatencySummary, SetupReport } from './protocol.js'

export const bump = (record: Record<string, number>, key: string, by = 1): void => { record[key] = (record[key] ?? 0) + by }

/** Adds every count of `from` into `into`. */
export function addCounts (into: Record<string, number>, from: Record<string, number>): Record<string, number> {
  for (const [key, n] of Object.entries(from)) bump(into, key, n)
  return into
}

/** A failure's short name: its error code (ECONNREFUSED...), or its message without ids. */
export function reason (err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: string }).code
    if (code !== undefined) return code
    return err.message.replace(/[0-9a-f-]{36}/g, '<id>').slice(0, 80)
  }
  return String(err).slice(0, 80)
}

export function startsWith (data: Buffer, prefix: Buffer): boolean {
  return data.length >= prefix.length && data.compare(prefix, 0, prefix.length, 0, prefix.length) === 0
}

/** The `code` of an `error` frame, read from its first bytes (raw-ws keeps 64: every code fits). */
export function errorCode (prefix: Buffer): string {
  return /"code":"([a-z_]+)"/.exec(prefix.toString('latin1'))?.[1] ?? 'error'
}

/** Sorts `values` in place and summarizes them. */
export function summary (values: number[]): LatencySummary {
  const sorted = values.sort((a, b) => a - b)
  let sum = 0
  for (const value of sorted) sum += value
  const pick = (p: number) => sorted.length === 0 ? null : round(percentile(sorted, p) ?? 0, 2)
  return {
    samples: sorted.length,
    p50: pick(50),
    p95: pick(95),
    p99: pick(99),
    max: sorted.length === 0 ? null : round(sorted[sorted.length - 1] ?? 0, 2),
    mean: sorted.length === 0 ? null : round(sum / sorted.length, 2)
  }
}

/** A connect that settles once, by `succeed` or `fail` (which aborts it), whichever comes first; it fails by itself after `timeoutMs`. */
export interface Settle<T> {
  readonly settled: boolean
  fail: (why: string) => void
  succeed: (value: T) => void
}

export function settleOnce<T> (timeoutMs: number, abort: () => void, resolve: (value: T) => void, reject: (err: Error) => void): Settle<T> {
  let settled = false
  const fail = (why: string): void => {
    if (settled) return
    settled = true
    clearTimeout(timer)
    abort()
    reject(new Error(why))
  }
  const timer = setTimeout(() => fail('timeout'), timeoutMs)
  return {
    get settled () { return settled },
    fail,
    succeed: (value) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      resolve(value)
    }
  }
}

/** Client `index` of clients spread over `count` addresses 127.0.0.1, 127.0.0.2, ... (ephemeral ports per address). */
export const spreadAddress = (index: number, count: number): string => `127.0.0.${1 + (index % count)}`

/** A loopback address of client `index`'s own (127.1.0.1 onwards, never .0 or .255): per-address limits see one client each. */
export function ownAddress (index: number): string {
  const block = Math.floor(index / 254)
  return `127.${1 + Math.floor(block / 256)}.${block % 256}.${1 + (index % 254)}`
}

/**
 * Opens clients `first` to `end - 1` with `open`, `concurrency` at a time, until
 * done, `timeoutMs` passed, or too many failed (over 5%, at least 20).
 */
export async function openMany<T extends { index: number }> (first: number, end: number, concurrency: number, timeoutMs: number, open: (index: number) => Promise<T>): Promise<{ opened: T[], report: SetupReport }> {
  const total = end - first
  const started = Date.now()
  const deadline = started + timeoutMs
  const errors: Record<string, number> = {}
  let failed = 0
  let next = first
  const opened: T[] = []
  const tooManyFailures = (): boolean => failed > Math.max(20, total * 0.05)
  const worker = async (): Promise<void> => {
    while (next < end && Date.now() < deadline && !tooManyFailures()) {
      const index = next++
      try {
        opened.push(await open(index))
      } catch (err) {
        failed++
        bump(errors, reason(err))
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, Math.max(1, total)) }, worker))
  opened.sort((a, b) => a.index - b.index)
  if (next < end) bump(errors, tooManyFailures() ? 'gave up after too many failures' : 'setup deadline')
  return { opened, report: { target: total, registered: opened.length, failed, complete: opened.length === total, ms: Date.now() - started, errors } }
}

/** The setups of several generator processes as one. */
export function mergeSetups (setups: SetupReport[]): SetupReport {
  return {
    target: setups.reduce((sum, setup) => sum + setup.target, 0),
    registered: setups.reduce((sum, setup) => sum + setup.registered, 0),
    failed: setups.reduce((sum, setup) => sum + setup.failed, 0),
    complete: setups.every((setup) => setup.complete),
    ms: Math.max(...setups.map((setup) => setup.ms)),
    errors: setups.reduce((errors, setup) => addCounts(errors, setup.errors), {})
  }
}

/** A bad command line: the runner prints it with the usage. */
export class UsageError extends Error {}

export function positiveNumber (name: string, raw: string | undefined, integer = false): number {
  const value = Number(raw)
  if (!(value > 0) || (integer && !Number.isInteger(value))) throw new UsageError(`--${name}: expected a positive ${integer ? 'integer' : 'number'}, got ${JSON.stringify(raw)}`)
  return value
}

export const percent = (share: number | null | undefined): string => share === null || share === undefined ? '-' : `${round(share * 100, 1)}%`
export const kBps = (bytesPerSecond: number): string => `${round(bytesPerSecond / 1e3, 1)} kB/s`
