/**
 * Redis for tests: the one on 127.0.0.1:6379 when it answers, otherwise a
 * `redis-server` of our own on a free port. Without either the tests that need it
 * skip, except under CI=true, where they fail: CI must never pass by skipping.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { Redis } from 'ioredis'
import { freePort } from './process.js'

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379'

async function answers (url: string): Promise<boolean> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1000 })
  client.on('error', () => {})
  try {
    await client.connect()
    return (await client.ping()) === 'PONG'
  } catch {
    return false
  } finally {
    client.disconnect()
  }
}

export function hasRedisServerBinary (): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0
}

/** A redis-server of the test's own (nothing on disk), which the test may stop and start again. */
export class OwnRedis {
  private child: ChildProcess | null = null

  private constructor (readonly port: number) {}

  static async start (): Promise<OwnRedis> {
    const redis = new OwnRedis(await freePort())
    await redis.start()
    return redis
  }

  get url (): string { return `redis://127.0.0.1:${this.port}` }

  async start (): Promise<void> {
    const child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
    this.child = child
    const deadline = Date.now() + 10_000
    while (!(await answers(this.url))) {
      if (child.exitCode !== null) throw new Error(`redis-server on port ${this.port} exited with ${child.exitCode}`)
      if (Date.now() > deadline) throw new Error(`redis-server on port ${this.port} did not answer within 10 s`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }

  async stop (): Promise<void> {
    const child = this.child
    this.child = null
    if (child === null || child.exitCode !== null) return
    child.kill('SIGKILL')
    await once(child, 'exit')
  }
}

/**
 * A Redis URL for this test file, or null (with the reason) when there is none
 * and skipping is allowed. Call `release` at teardown.
 */
export async function redisForTests (): Promise<{ url: string, release: () => Promise<void> } | { url: null, reason: string }> {
  const url = process.env.REDIS_URL ?? DEFAULT_REDIS_URL
  if (await answers(url)) return { url, release: async () => {} }
  if (hasRedisServerBinary()) {
    const own = await OwnRedis.start()
    return { url: own.url, release: async () => await own.stop() }
  }
  const reason = `no Redis at ${url} and no redis-server binary to start one`
  if (process.env.CI === 'true') throw new Error(`${reason}; under CI=true the Redis tests must run (.ci/run starts Redis)`)
  return { url: null, reason }
}

/** A key prefix no other test uses. */
export function uniquePrefix (): string {
  return `shoal-test:${randomUUID()}:`
}
