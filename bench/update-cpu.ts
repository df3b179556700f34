/**
 * Benchmark: server CPU time per 1,000 inbound `update` messages.
 *
 * What it measures: the standalone Shoal server runs as a child process (compiled
 * JS from dist/, built first; pinned to core 0 with taskset when there are at least
 * two cores). This process is the load generator (pinned to core 1): it connects
 * `--users` WebSocket clients to one room, `bench`, and each sends
 * `{"type":"update","position":{x,y,z}}` at `--hz` per second, z being the send time.
 * After a 2 s warm-up, the server's utime+stime from /proc/<pid>/stat is read at the
 * start and at the end of a `--seconds` window. Reported: updates sent, server CPU ms
 * and CPU ms per 1,000 updates, the server's share of one core, frames and bytes per
 * second received by all clients, p50/p99 end-to-end latency (send → `positions`
 * frame, measured by two observer clients, the only ones that parse frames), the
 * server's RSS, and the load generator's own CPU (a figure over ~80% of a core means
 * the generator, not the server, may be the bottleneck).
 *
 * Run: `npm run bench -- update-cpu` (defaults: 100 users, 10 Hz, 10 s), or
 *      `npm run bench -- update-cpu --users 100 --hz 10 --seconds 10`
 *      (or directly: `npx tsx bench/update-cpu.ts --users 100`).
 * The shared helpers (/proc readings, server build, health wait) are in bench/lib/proc.ts.
 * A human-readable summary goes to stdout and the JSON to
 * bench/results/update-cpu-<timestamp>.json. Everything listens on 127.0.0.1 only.
 */
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import WebSocket from 'ws'
import {
  clockTicks, commandExists, freePort, percentile, pinProcess, processTicks, RESULTS_DIR, round, rssKiB,
  shoalServerCommand as serverCommand, sleep, stopChild as stopServer, waitForHealth
} from './lib/proc.js'

const ROOM = 'bench'
const WARMUP_MS = 2000
const OBSERVERS = 2
/** Default per-connection budget of the contract: 60 messages/s, burst 120. */
const DEFAULT_RATE = 60
const DEFAULT_BURST = 120

interface Options { users: number, hz: number, seconds: number }

function options (): Options {
  const { values } = parseArgs({
    options: {
      users: { type: 'string', default: '100' },
      hz: { type: 'string', default: '10' },
      seconds: { type: 'string', default: '10' }
    }
  })
  const users = Number(values.users)
  const hz = Number(values.hz)
  const seconds = Number(values.seconds)
  if (!Number.isInteger(users) || users < OBSERVERS) throw new Error(`--users: expected an integer of at least ${OBSERVERS}`)
  if (!(hz > 0 && hz <= 1000)) throw new Error('--hz: expected a number above 0, at most 1000')
  if (!(seconds > 0)) throw new Error('--seconds: expected a number above 0')
  return { users, hz, seconds }
}

/** Counters of the measured window; the clients add to them only while `measuring` is set. */
const counters = { measuring: false, sent: 0, frames: 0, bytes: 0, errors: 0, latencies: [] as number[] }
const ERROR_PREFIX = Buffer.from('{"type":"error"')
const POSITIONS_PREFIX = Buffer.from('{"type":"positions"')

function startsWith (data: Buffer, prefix: Buffer): boolean {
  return data.length >= prefix.length && data.compare(prefix, 0, prefix.length, 0, prefix.length) === 0
}

interface BenchClient { socket: WebSocket, id: string }

async function connectClient (url: string, index: number, observer: boolean): Promise<BenchClient> {
  const socket = new WebSocket(url)
  socket.on('error', () => {})
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve())
    socket.once('error', reject)
  })
  const id = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`client ${index}: no welcome within 5 s`)), 5000)
    // Only the welcome is parsed; then the listener below takes over.
    const onWelcome = (data: WebSocket.RawData): void => {
      const message = JSON.parse(String(data)) as { type: string, id?: string, code?: string }
      if (message.type === 'welcome' && message.id !== undefined) {
        clearTimeout(timer)
        socket.off('message', onWelcome)
        resolve(message.id)
      } else if (message.type === 'error') {
        clearTimeout(timer)
        reject(new Error(`client ${index}: register failed: ${message.code ?? ''}`))
      }
    }
    socket.on('message', onWelcome)
    socket.send(JSON.stringify({ type: 'register', name: `bench-${index}`, room: ROOM, position: { x: 0, y: 0 } }))
  })
  socket.on('message', (data: Buffer) => {
    if (!counters.measuring) return
    counters.frames++
    counters.bytes += data.length
    if (startsWith(data, ERROR_PREFIX)) counters.errors++
    else if (observer && startsWith(data, POSITIONS_PREFIX)) {
      const now = performance.now()
      const { p } = JSON.parse(data.toString()) as { p: Array<[string, number, number, number]> }
      for (const entry of p) counters.latencies.push(now - entry[3])
    }
  })
  return { socket, id }
}

async function main (): Promise<void> {
  const opts = options()
  const cores = availableParallelism()
  const pin = cores >= 2 && commandExists('taskset')
  if (pin) {
    // Every thread of this process (the generator), including libuv's.
    if (!pinProcess(process.pid, 1)) process.stderr.write('warning: could not pin the load generator to core 1\n')
  } else {
    process.stderr.write('warning: fewer than 2 cores or no taskset: server and generator are not pinned\n')
  }

  const { args, compiled, root } = serverCommand()
  const port = await freePort()
  // Raise the per-connection budget only when the send rate needs it; every client registers from 127.0.0.1.
  const rateEnv: Record<string, string> = {}
  if (opts.hz > DEFAULT_RATE * 0.8) {
    rateEnv.MESSAGES_PER_SECOND = String(Math.ceil(opts.hz * 2))
    rateEnv.MESSAGE_BURST = String(Math.max(DEFAULT_BURST, Math.ceil(opts.hz * 4)))
  }
  const env = {
    ...process.env,
    PORT: String(port),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    REGISTER_LIMIT: String(opts.users * 10 + 100),
    // Every client comes from 127.0.0.1: the per-address cap (1000 by default) must not refuse them.
    MAX_CONNECTIONS_PER_ADDRESS: String(opts.users + 100),
    ...rateEnv
  }
  const command = pin ? 'taskset' : process.execPath
  const commandArgs = pin ? ['-c', '0', process.execPath, ...args] : args
  const server = spawn(command, commandArgs, { cwd: root, env, stdio: ['ignore', 'inherit', 'inherit'] })
  const serverPid = server.pid
  if (serverPid === undefined) throw new Error('could not start the server')
  const cleanup = (): void => { if (server.exitCode === null) server.kill('SIGKILL') }
  process.once('exit', cleanup)

  const clients: BenchClient[] = []
  const timers: NodeJS.Timeout[] = []
  try {
    await waitForHealth(`http://127.0.0.1:${port}/health`, server)
    const url = `ws://127.0.0.1:${port}/ws`
    for (let start = 0; start < opts.users; start += 20) {
      const batch = []
      for (let i = start; i < Math.min(opts.users, start + 20); i++) batch.push(connectClient(url, i, i < OBSERVERS))
      clients.push(...await Promise.all(batch))
    }

    // Each client sends at `hz`, the clients' phases spread evenly over one period.
    const period = 1000 / opts.hz
    clients.forEach((client, i) => {
      let x = i
      const send = (): void => {
        if (client.socket.readyState !== WebSocket.OPEN) return
        x = (x + 1) % 1000
        client.socket.send(`{"type":"update","position":{"x":${x},"y":${i},"z":${performance.now()}}}`)
        if (counters.measuring) counters.sent++
      }
      timers.push(setTimeout(() => { send(); timers.push(setInterval(send, period)) }, (i * period) / clients.length))
    })

    await sleep(WARMUP_MS)
    const ticksPerSecond = clockTicks()
    const serverTicks0 = processTicks(serverPid)
    const generatorCpu0 = process.cpuUsage()
    const wall0 = performance.now()
    counters.measuring = true
    await sleep(opts.seconds * 1000)
    counters.measuring = false
    const wallMs = performance.now() - wall0
    const serverTicks1 = processTicks(serverPid)
    const generatorCpu = process.cpuUsage(generatorCpu0)
    const serverRssKiB = rssKiB(serverPid)
    for (const timer of timers) clearTimeout(timer)

    const serverCpuMs = ((serverTicks1 - serverTicks0) * 1000) / ticksPerSecond
    const generatorCpuMs = (generatorCpu.user + generatorCpu.system) / 1000
    const latencies = counters.latencies.sort((a, b) => a - b)
    const seconds = wallMs / 1000
    const result = {
      benchmark: 'update-cpu',
      date: new Date().toISOString(),
      node: process.version,
      config: {
        users: opts.users,
        hz: opts.hz,
        seconds: opts.seconds,
        warmupMs: WARMUP_MS,
        room: ROOM,
        observers: OBSERVERS,
        compiled,
        pinned: pin,
        cores,
        clockTicksPerSecond: ticksPerSecond,
        serverEnv: { LOG_LEVEL: env.LOG_LEVEL, REGISTER_LIMIT: env.REGISTER_LIMIT, ...rateEnv }
      },
      windowMs: round(wallMs, 1),
      updatesSent: counters.sent,
      updatesPerSecond: round(counters.sent / seconds, 1),
      serverCpuMs: round(serverCpuMs, 1),
      serverCpuMsPer1000Updates: counters.sent === 0 ? null : round((serverCpuMs * 1000) / counters.sent, 2),
      serverCpuShareOfOneCore: round(serverCpuMs / wallMs, 4),
      serverRssMiB: round(serverRssKiB / 1024, 1),
      clientsReceived: {
        framesPerSecond: round(counters.frames / seconds, 1),
        bytesPerSecond: Math.round(counters.bytes / seconds),
        errorFrames: counters.errors
      },
      latencyMs: {
        samples: latencies.length,
        p50: latencies.length === 0 ? null : round(percentile(latencies, 50) ?? 0, 2),
        p99: latencies.length === 0 ? null : round(percentile(latencies, 99) ?? 0, 2),
        max: latencies.length === 0 ? null : round(latencies[latencies.length - 1] ?? 0, 2)
      },
      generatorCpuMs: round(generatorCpuMs, 1),
      generatorCpuShareOfOneCore: round(generatorCpuMs / wallMs, 4)
    }

    const warnings: string[] = []
    if (result.generatorCpuShareOfOneCore > 0.8) warnings.push(`the load generator used ${Math.round(result.generatorCpuShareOfOneCore * 100)}% of a core: it may be the bottleneck, and the figures may understate the server's load`)
    if (counters.errors > 0) warnings.push(`clients received ${counters.errors} error frames (rate limited?)`)
    const expected = opts.users * opts.hz * seconds
    if (counters.sent < expected * 0.95) warnings.push(`only ${counters.sent} of ~${Math.round(expected)} updates were sent: the generator fell behind`)

    const lines = [
      `Shoal update CPU benchmark: ${opts.users} users in one room, ${opts.hz} Hz each, ${round(seconds, 2)} s window after ${WARMUP_MS / 1000} s warm-up`,
      `  server: ${compiled ? 'compiled (dist/)' : 'TypeScript via tsx'}, ${pin ? 'pinned to core 0 (generator on core 1)' : 'not pinned'}, node ${process.version}`,
      `  updates sent:               ${result.updatesSent} (${result.updatesPerSecond}/s)`,
      `  server CPU:                 ${result.serverCpuMs} ms (${round(result.serverCpuShareOfOneCore * 100, 1)}% of one core)`,
      `  server CPU per 1,000 updates: ${result.serverCpuMsPer1000Updates ?? 'n/a'} ms`,
      `  server RSS:                 ${result.serverRssMiB} MiB`,
      `  clients received:           ${result.clientsReceived.framesPerSecond} frames/s, ${round(result.clientsReceived.bytesPerSecond / 1e6, 2)} MB/s`,
      `  latency (send → positions): p50 ${result.latencyMs.p50 ?? 'n/a'} ms, p99 ${result.latencyMs.p99 ?? 'n/a'} ms (${result.latencyMs.samples} samples, ${OBSERVERS} observers)`,
      `  load generator CPU:         ${result.generatorCpuMs} ms (${round(result.generatorCpuShareOfOneCore * 100, 1)}% of one core)`,
      ...warnings.map((warning) => `  WARNING: ${warning}`)
    ]

    const dir = RESULTS_DIR
    if (!existsSync(dir)) mkdirSync(dir, { recursive: true })
    const file = join(dir, `update-cpu-${new Date().toISOString().replace(/[:.]/g, '-')}.json`)
    writeFileSync(file, JSON.stringify({ ...result, warnings }, null, 2) + '\n')
    process.stdout.write(lines.join('\n') + `\n  JSON: ${file}\n`)
  } finally {
    for (const timer of timers) clearTimeout(timer)
    for (const client of clients) client.socket.terminate()
    await stopServer(server, 12_000)
    process.off('exit', cleanup)
  }
}

try {
  await main()
  process.exit(0)
} catch (err) {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
  process.exit(1)
}
