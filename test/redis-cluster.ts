/**
 * A real three-master Redis Cluster for tests. The cluster tests need sharded pub/sub
 * (SSUBSCRIBE/SPUBLISH), which only means something when channels live on different
 * masters: a single redis-server, or a mock, would hide the routing by slot that they
 * are about. So we start three `redis-server` processes of our own (never the system
 * Redis on 6379) and join them with `redis-cli --cluster create`, or with plain
 * commands through ioredis when there is no redis-cli. Needs Redis 7 or later
 * (`--cluster-port`, `CLUSTER ADDSLOTSRANGE`).
 *
 * `REDIS_CLUSTER_NODES` (`host:port,host:port,...`) points the tests at an existing
 * cluster instead. Without either the tests skip, except under CI=true, where they
 * fail: CI must never pass by skipping.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Cluster, Redis } from 'ioredis'
import { freePort } from './process.js'
import { hasRedisServerBinary } from './redis.js'
import { within } from './wait.js'

export interface RedisClusterNode { host: string, port: number }

const HOST = '127.0.0.1'
/** The slot ranges redis-cli gives three masters; the fallback assigns the same. */
const THIRDS: ReadonlyArray<readonly [number, number]> = [[0, 5460], [5461, 10922], [10923, 16383]]

const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

const gone = (child: ChildProcess): boolean => child.pid === undefined || child.exitCode !== null || child.signalCode !== null

function hasRedisCli (): boolean {
  return spawnSync('redis-cli', ['--version'], { stdio: 'ignore' }).status === 0
}

/** Runs `fn` on a one-off connection to a single node (no retries: the caller polls). */
async function onNode<T> (node: RedisClusterNode, fn: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = new Redis({ ...node, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1000 })
  redis.on('error', () => {})
  try {
    await redis.connect()
    return await fn(redis)
  } finally {
    redis.disconnect()
  }
}

/** Three redis-server processes in cluster mode, joined into one cluster with all 16384 slots. */
export class OwnRedisCluster {
  private constructor (
    readonly nodes: RedisClusterNode[],
    private readonly children: ChildProcess[],
    private readonly dir: string
  ) {}

  static async start (): Promise<OwnRedisCluster> {
    const dir = await mkdtemp(join(tmpdir(), 'shoal-redis-cluster-'))
    const nodes: RedisClusterNode[] = []
    const children: ChildProcess[] = []
    const cluster = new OwnRedisCluster(nodes, children, dir)
    try {
      for (let i = 0; i < 3; i++) {
        // The bus port gets a free port of its own: the default, port + 10000, may be taken or above 65535.
        const port = await freePort()
        const busPort = await freePort()
        const child = spawn('redis-server', [
          '--port', String(port), '--cluster-port', String(busPort), '--bind', HOST,
          '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--dir', dir,
          '--save', '', '--appendonly', 'no', '--cluster-node-timeout', '2000'
        ], { stdio: 'ignore' })
        // A failed spawn (no binary) shows as a child without a pid; waitForPing reports it.
        child.on('error', () => {})
        children.push(child)
        nodes.push({ host: HOST, port })
      }
      await Promise.all(nodes.map(async (node, i) => await waitForPing(node, children[i] as ChildProcess)))
      if (hasRedisCli()) await createWithRedisCli(nodes)
      else await createWithCommands(nodes)
      await waitForClusterOk(nodes, children)
      await waitForClusterClient(nodes)
    } catch (err) {
      await cluster.stop()
      throw err
    }
    return cluster
  }

  /** The masters as `REDIS_CLUSTER_NODES` spells them: `127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3`. */
  get seeds (): string { return this.nodes.map(({ host, port }) => `${host}:${port}`).join(',') }

  async stop (): Promise<void> {
    await Promise.all(this.children.map(async (child) => {
      if (gone(child)) return
      const exited = once(child, 'exit')
      child.kill('SIGKILL')
      await exited
    }))
    await rm(this.dir, { recursive: true, force: true })
  }
}

async function waitForPing (node: RedisClusterNode, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 10_000
  for (;;) {
    if (gone(child)) {
      throw new Error(`redis-server on port ${node.port} exited (${child.exitCode ?? child.signalCode ?? 'not started'}) before answering PING`)
    }
    if (await onNode(node, async (redis) => await redis.ping()).catch(() => null) === 'PONG') return
    if (Date.now() > deadline) throw new Error(`redis-server on port ${node.port} did not answer PING within 10 s`)
    await sleep(50)
  }
}

async function createWithRedisCli (nodes: RedisClusterNode[]): Promise<void> {
  const args = ['--cluster', 'create', ...nodes.map(({ host, port }) => `${host}:${port}`), '--cluster-replicas', '0', '--cluster-yes']
  try {
    await promisify(execFile)('redis-cli', args, { timeout: 20_000 })
  } catch (err) {
    // execFile's error carries the output, which says what redis-cli disliked.
    const { stdout, stderr } = err as { stdout?: string, stderr?: string }
    throw new Error(`redis-cli ${args.join(' ')} failed: ${String(err)}\n${stdout ?? ''}${stderr ?? ''}`)
  }
}

/** What `redis-cli --cluster create` does, for machines without redis-cli. */
async function createWithCommands (nodes: RedisClusterNode[]): Promise<void> {
  const busPorts: number[] = []
  for (const [i, node] of nodes.entries()) {
    const [first, last] = THIRDS[i] as readonly [number, number]
    busPorts.push(await onNode(node, async (redis) => {
      await redis.cluster('ADDSLOTSRANGE', first, last)
      // Distinct epochs up front, as redis-cli sets them, rather than a collision to resolve.
      await redis.cluster('SET-CONFIG-EPOCH', i + 1)
      return Number(await redis.config('GET', 'cluster-port').then((pair) => (pair as string[])[1]))
    }))
  }
  const [first, ...others] = nodes as [RedisClusterNode, ...RedisClusterNode[]]
  await onNode(first, async (redis) => {
    // MEET needs the bus port: ours is not the default port + 10000.
    for (const [i, other] of others.entries()) await redis.cluster('MEET', other.host, other.port, busPorts[i + 1] as number)
  })
}

async function waitForClusterOk (nodes: RedisClusterNode[], children: ChildProcess[]): Promise<void> {
  const deadline = Date.now() + 20_000
  let last = ''
  for (;;) {
    const infos = await Promise.all(nodes.map(async (node) => await onNode(node, async (redis) => await redis.cluster('INFO')).catch((err: unknown) => String(err))))
    const ok = infos.every((info) => /^cluster_state:ok\r?$/m.test(info) && /^cluster_slots_assigned:16384\r?$/m.test(info))
    if (ok) return
    last = infos.join('\n')
    const dead = children.findIndex(gone)
    if (dead !== -1) throw new Error(`redis-server on port ${nodes[dead]?.port} exited while the cluster formed`)
    if (Date.now() > deadline) throw new Error(`the cluster did not reach cluster_state:ok with 16384 slots within 20 s:\n${last}`)
    await sleep(100)
  }
}

/**
 * CLUSTER INFO can say ok before every node has the others' slots in CLUSTER SLOTS;
 * the tests' clients are ioredis Clusters, so one of those must reach each master.
 */
async function waitForClusterClient (nodes: RedisClusterNode[]): Promise<void> {
  const client = new Cluster(nodes, { clusterRetryStrategy: () => 100, redisOptions: { connectTimeout: 1000 } })
  let lastError: unknown = null
  client.on('error', (err: unknown) => { lastError = err })
  const deadline = Date.now() + 20_000
  try {
    const keys = await keyInEachThird(nodes[0] as RedisClusterNode)
    for (;;) {
      try {
        // A Cluster client queues commands until it is ready, possibly forever: each is bounded.
        for (const key of keys) {
          await within(`the answer to SET ${key}`, client.set(key, key, 'EX', 60), { timeoutMs: 2000 })
          if (await within(`the answer to GET ${key}`, client.get(key), { timeoutMs: 2000 }) !== key) throw new Error(`GET ${key} did not return what was SET`)
        }
        return
      } catch (err) {
        lastError = err
      }
      if (Date.now() > deadline) throw new Error(`an ioredis Cluster client could not SET and GET on every master within 20 s: ${String(lastError)}`)
      await sleep(100)
    }
  } finally {
    client.disconnect()
  }
}

/** One key per third of the slot space, i.e. one on each master. */
async function keyInEachThird (node: RedisClusterNode): Promise<string[]> {
  return await onNode(node, async (redis) => {
    const keys: Array<string | undefined> = THIRDS.map(() => undefined)
    for (let i = 0; keys.includes(undefined); i++) {
      const key = `shoal-test:cluster-probe:${i}`
      const slot = await redis.cluster('KEYSLOT', key)
      const third = THIRDS.findIndex(([first, last]) => slot >= first && slot <= last)
      if (keys[third] === undefined) keys[third] = key
    }
    return keys as string[]
  })
}

function parseSeeds (seeds: string): RedisClusterNode[] {
  return seeds.split(',').map((seed) => {
    const match = /^\s*([^\s:]+):(\d+)\s*$/.exec(seed)
    if (match === null) throw new Error(`REDIS_CLUSTER_NODES: expected host:port,host:port,..., got ${JSON.stringify(seeds)}`)
    return { host: match[1] as string, port: Number(match[2]) }
  })
}

/**
 * A Redis Cluster for this test file, or null (with the reason) when there is none
 * and skipping is allowed. Call `release` at teardown.
 */
export async function redisClusterForTests (): Promise<
  { seeds: string, nodes: RedisClusterNode[], release: () => Promise<void> } | { seeds: null, reason: string }
> {
  const seeds = process.env.REDIS_CLUSTER_NODES
  if (seeds !== undefined && seeds !== '') return { seeds, nodes: parseSeeds(seeds), release: async () => {} }
  if (hasRedisServerBinary()) {
    const own = await OwnRedisCluster.start()
    return { seeds: own.seeds, nodes: own.nodes, release: async () => await own.stop() }
  }
  const reason = 'no REDIS_CLUSTER_NODES and no redis-server binary to start a cluster'
  if (process.env.CI === 'true') throw new Error(`${reason}; under CI=true the Redis Cluster tests must run (.ci/run installs redis-server)`)
  return { seeds: null, reason }
}
