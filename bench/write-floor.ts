/**
 * Benchmark: the write-syscall floor. How many frames per second one core can
 * write to loopback TCP sockets with nothing else to do: the bound on any
 * server that sends each recipient its own frame each tick (a crowd with
 * interest management does: one `positions` frame per member per tick).
 *
 * The writer (this process, pinned to core 0 as the server is in
 * `npm run bench -- crowd`) listens on 127.0.0.1; a reader child pinned to core
 * 1 opens `--connections` sockets and reads everything, discarding it. The
 * writer then writes one `--bytes` frame to every socket per round, as a tick
 * would, with Node's `socket.write` (what ws's sender calls) of one Buffer,
 * for `--seconds`, back to back or `--hz` rounds a second (a tick's pattern: the
 * reader then sleeps between rounds, and waking it is part of each write's cost).
 * A socket with a backlog over 1 MiB is skipped for a round.
 * Prints writes per second of the writer's CPU (utime + stime), its CPU share,
 * and what that leaves per frame.
 *
 * Run: `npx tsx bench/write-floor.ts [--connections 3000] [--bytes 2500] [--seconds 5] [--hz 0]`
 */
import { fork } from 'node:child_process'
import { createConnection, createServer, type Socket } from 'node:net'
import { parseArgs } from 'node:util'
import { canPin, pinProcess, sleep } from './lib/proc.js'
import { spreadAddress } from './fanout/shared.js'

const BACKLOG_SKIP_BYTES = 1 << 20
const SOURCE_ADDRESSES = 8
const CONNECT_BATCH = 200

if (process.argv[2] === 'reader') {
  const [, , , port, connections] = process.argv
  // A few hundred at a time: the listen backlog would drop the rest.
  for (let first = 0; first < Number(connections); first += CONNECT_BATCH) {
    const batch = Math.min(CONNECT_BATCH, Number(connections) - first)
    await Promise.all(Array.from({ length: batch }, (_, i) => new Promise<void>((resolve, reject) => {
      const socket = createConnection({ host: '127.0.0.1', port: Number(port), localAddress: spreadAddress(first + i, SOURCE_ADDRESSES) })
      socket.once('connect', resolve)
      socket.once('error', reject)
      socket.on('data', () => {})
    })))
  }
  process.send?.('ready')
} else {
  await measure()
}

async function measure (): Promise<void> {
  const { values } = parseArgs({
    options: {
      connections: { type: 'string', default: '3000' },
      bytes: { type: 'string', default: '2500' },
      seconds: { type: 'string', default: '5' },
      hz: { type: 'string', default: '0' }
    }
  })
  const connections = Number(values.connections)
  const frame = Buffer.alloc(Number(values.bytes), 0x61)
  const seconds = Number(values.seconds)
  const hz = Number(values.hz)
  const pinned = canPin() && pinProcess(process.pid, 0)
  const sockets: Socket[] = []
  const server = createServer((socket) => { socket.setNoDelay(true); sockets.push(socket) })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  const reader = fork(new URL(import.meta.url).pathname, ['reader', String(port), String(connections)], { execArgv: ['--import', 'tsx'] })
  if (pinned && reader.pid !== undefined) pinProcess(reader.pid, 1)
  await new Promise<void>((resolve) => reader.once('message', () => resolve()))
  while (sockets.length < connections) await sleep(10)

  let writes = 0
  let skipped = 0
  const round = (): void => {
    for (const socket of sockets) {
      if (socket.writableLength > BACKLOG_SKIP_BYTES) skipped++
      else { socket.write(frame); writes++ }
    }
  }
  // Warm up, then measure whole rounds for `seconds` of wall time: back to back (yielding to the
  // event loop between rounds), or at `hz` rounds a second, as a tick would.
  const until = async (ms: number): Promise<void> => {
    const end = Date.now() + ms
    let next = Date.now()
    while (Date.now() < end) {
      round()
      if (hz > 0) next += 1000 / hz
      await new Promise((resolve) => hz > 0 ? setTimeout(resolve, Math.max(0, next - Date.now())) : setImmediate(resolve))
    }
  }
  await until(1000)
  writes = 0
  skipped = 0
  const cpu = process.cpuUsage()
  const started = process.hrtime.bigint()
  await until(seconds * 1000)
  const used = process.cpuUsage(cpu)
  const wallMs = Number(process.hrtime.bigint() - started) / 1e6
  const cpuSeconds = (used.user + used.system) / 1e6
  process.stdout.write(`write-floor: ${connections} sockets, ${frame.length}-byte frames, ${hz > 0 ? `${hz} rounds a second` : 'rounds back to back'}${pinned ? ', writer on core 0, reader on core 1' : ' (not pinned)'}: ` +
    `${Math.round(writes / cpuSeconds).toLocaleString('en')} writes per CPU second (${(cpuSeconds * 1e6 / writes).toFixed(2)} µs each; ` +
    `user ${(used.user / 1e3).toFixed(0)} ms, system ${(used.system / 1e3).toFixed(0)} ms), writer CPU ${(100 * cpuSeconds * 1000 / wallMs).toFixed(0)}%, ` +
    `${skipped} writes skipped for backlog\n`)
  reader.kill()
  for (const socket of sockets) socket.destroy()
  server.close()
}
