/**
 * Redis as the `cluster` command of run.ts sees it: its CPU (utime + stime of the
 * redis-server process from /proc/<pid>/stat, the pid from `INFO server`) and its
 * traffic (`INFO stats` counters) between two samples, and the removal of a run's
 * keys. Redis is a system process: the harness only reads it, never starts, stops
 * or pins it.
 */
import { readFileSync } from 'node:fs'
import { performance } from 'node:perf_hooks'
import { Redis } from 'ioredis'
import { redactRedisUrl } from '../../src/adapters/redis-bus.js'
import { clockTicks, processTicks, round } from '../lib/proc.js'
import type { RedisFigures } from './records.js'

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379'

interface Sample { at: number, ticks: number | null, input: number, output: number, commands: number }

/** `key:value` lines of an INFO section. */
function parseInfo (text: string): Map<string, string> {
  const fields = new Map<string, string>()
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(':')
    if (colon > 0 && !line.startsWith('#')) fields.set(line.slice(0, colon), line.slice(colon + 1).trim())
  }
  return fields
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '::1', '[::1]'])

export class RedisProbe {
  /** The redis-server process whose CPU is read; null with `pidNote` saying why. */
  pid: number | null = null
  pidNote: string | null = null
  version: string | null = null

  private constructor (private readonly client: Redis, readonly url: string) {}

  /** Connects (fails fast when Redis does not answer) and finds the server's pid. */
  static async connect (url: string): Promise<RedisProbe> {
    const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 3000, retryStrategy: () => null })
    client.on('error', () => {})
    try {
      await client.connect()
    } catch (err) {
      client.disconnect()
      throw new Error(`cannot reach Redis at ${redactRedisUrl(url)}: ${err instanceof Error ? err.message : String(err)}`)
    }
    const probe = new RedisProbe(client, url)
    const server = parseInfo(await client.info('server'))
    probe.version = server.get('redis_version') ?? null
    const pid = Number(server.get('process_id'))
    let host = ''
    try {
      host = new URL(url).hostname
    } catch {}
    if (!(pid > 0)) {
      probe.pidNote = 'INFO server gave no process_id'
    } else if (!LOOPBACK.has(host) && !host.startsWith('127.')) {
      probe.pidNote = `Redis at ${host} may not be on this machine: its process_id ${pid} cannot be read here`
    } else {
      try {
        const comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim()
        if (comm.includes('redis')) {
          processTicks(pid)
          probe.pid = pid
        } else {
          probe.pidNote = `process ${pid} is ${JSON.stringify(comm)}, not redis-server (Redis runs in another PID namespace?)`
        }
      } catch {
        probe.pidNote = `no /proc/${pid} for Redis's process_id (Redis runs in another PID namespace or container?)`
      }
    }
    return probe
  }

  async sample (): Promise<Sample> {
    const stats = parseInfo(await this.client.info('stats'))
    let ticks: number | null = null
    if (this.pid !== null) {
      try {
        ticks = processTicks(this.pid)
      } catch {}
    }
    return {
      at: performance.now(),
      ticks,
      input: Number(stats.get('total_net_input_bytes') ?? 0),
      output: Number(stats.get('total_net_output_bytes') ?? 0),
      commands: Number(stats.get('total_commands_processed') ?? 0)
    }
  }

  /** Redis between two samples (its counters include this probe's own INFO calls: a few hundred bytes). */
  figures (start: Sample, end: Sample): RedisFigures {
    const ms = end.at - start.at
    const perSecond = (delta: number): number => ms > 0 ? Math.round((delta * 1000) / ms) : 0
    const cpuMs = start.ticks === null || end.ticks === null ? null : ((end.ticks - start.ticks) * 1000) / clockTicks()
    return {
      windowMs: round(ms, 1),
      cpuMs: cpuMs === null ? null : round(cpuMs, 1),
      cpuShareOfOneCore: cpuMs === null || ms <= 0 ? null : round(cpuMs / ms, 4),
      inputBytesPerSecond: perSecond(end.input - start.input),
      outputBytesPerSecond: perSecond(end.output - start.output),
      commandsPerSecond: perSecond(end.commands - start.commands)
    }
  }

  /** The keys under `prefix`, batch by batch (SCAN MATCH prefix*; glob characters in the prefix escaped). */
  private async * keys (prefix: string): AsyncGenerator<string[]> {
    const pattern = `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`
    let cursor = '0'
    do {
      const [next, keys] = await this.client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000)
      cursor = next
      if (keys.length > 0) yield keys
    } while (cursor !== '0')
  }

  /** Deletes every key under `prefix` (SCAN, then DEL); returns how many were deleted and how many are left after. */
  async deleteKeys (prefix: string): Promise<{ deleted: number, left: number }> {
    let deleted = 0
    for await (const batch of this.keys(prefix)) deleted += await this.client.del(...batch)
    let left = 0
    for await (const batch of this.keys(prefix)) left += batch.length
    return { deleted, left }
  }

  close (): void {
    this.client.disconnect()
  }
}
