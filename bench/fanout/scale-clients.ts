/**
 * The clients of the cluster scaling run (bench/fanout/scale.ts, `npm run bench --
 * cluster --scale`): one child process (core 1, with the runner) driven over IPC.
 *
 * Every client is a mover on the minimal WebSocket client (./raw-ws.ts): it registers
 * in its room on the node the runner assigned, then sends the protocol's `update`
 * with its position at `hz`, `z` = send time in ms since this process's origin (one
 * process, one clock). Phases are spread over one period; a pump a whole period
 * behind drops the backlog instead of bursting, as in ./generator.ts.
 *
 * Clients marked `observer` also parse their `positions` frames: for each entry from
 * another user with a newer `z` than the last seen from that sender, latency = now − z,
 * counted as a same-node or a cross-node pair (sender on the observer's node or not).
 * Arrivals are compared with the updates the room's other members sent in the window
 * (`arrivalShare`; a tick that coalesces two updates of one sender delivers one).
 * Everyone else only counts frames and bytes.
 */
import { monitorEventLoopDelay, performance } from 'node:perf_hooks'
import { round } from '../lib/proc.js'
import { connectTo, type RawWebSocket } from './raw-ws.js'
import { bump, errorCode, openMany, settleOnce, spreadAddress, summary } from './shared.js'
import type { LatencySummary, SetupReport } from './protocol.js'

export interface ScaleClientSpec {
  room: string
  /** Index into `baseUrls`. */
  node: number
  observer: boolean
}

export interface ScaleClientsConfig {
  /** `ws://127.0.0.1:PORT` per node. */
  baseUrls: string[]
  clients: ScaleClientSpec[]
  hz: number
  connectConcurrency: number
  setupTimeoutMs: number
  /** After window-end, how long arrivals of in-window updates still count. */
  deliveryMs: number
}

export type ScaleRunnerMessage =
  | { cmd: 'setup', config: ScaleClientsConfig }
  | { cmd: 'start' }
  | { cmd: 'window-start' }
  | { cmd: 'window-end' }
  | { cmd: 'stop' }

export interface ScalePairFigures {
  latencyMs: LatencySummary
  /** Updates sent in the window by the observers' room-mates of this kind, summed over observers. */
  owed: number
  /** New positions from them that arrived (within deliveryMs after the window). */
  arrived: number
  arrivalShare: number | null
  /** Distinct senders heard, summed over observers, and how many there were to hear. */
  senders: { heard: number, expected: number }
}

export interface ScaleClientsResult {
  windowMs: number
  clients: number
  observers: number
  updates: { sent: number, expected: number, achievedShare: number | null, droppedCycles: number }
  same: ScalePairFigures
  cross: ScalePairFigures
  received: { framesPerSecond: number, bytesPerSecond: number, errorFrames: number, errorCodes: Record<string, number> }
  closes: Record<string, number>
  stillOpen: number
  cpu: { ms: number, shareOfOneCore: number }
  loopDelayMs: { p99: number, max: number }
}

export type ScaleClientsMessage =
  | { ev: 'ready', setup: SetupReport }
  | { ev: 'result', result: ScaleClientsResult }
  | { ev: 'error', message: string }

const CONNECT_TIMEOUT_MS = 10_000
const SOURCE_ADDRESSES = 4

if (process.send === undefined) {
  process.stderr.write('bench/fanout/scale-clients.ts is started by bench/fanout/scale.ts (npm run bench -- cluster --scale), not directly\n')
  process.exit(2)
}

const post = (message: ScaleClientsMessage): void => { process.send?.(message) }

let config: ScaleClientsConfig
const origin = performance.now()
const nowRel = (): number => performance.now() - origin

interface Client {
  index: number
  spec: ScaleClientSpec
  socket: RawWebSocket
  id: string
  open: boolean
  closing: boolean
  /** Updates sent with z inside the window. */
  sentInWindow: number
}

let windowStart = Infinity
let windowEnd = Infinity
let measuring = false
const received = { frames: 0, bytes: 0, errorFrames: 0, errorCodes: {} as Record<string, number> }
const closes: Record<string, number> = {}
const ERROR_PREFIX = Buffer.from('{"type":"error"')

let clients: Client[] = []
/** Clients by index (holes where a setup failed). */
const byIndex: Array<Client | undefined> = []
const idIndex = new Map<string, number>()
/** Per observer (by client index): last z per sender, senders heard in the window. */
const lastZ = new Map<number, Map<number, number>>()
const heard = new Map<number, Set<number>>()
const pairs = {
  same: { latencies: [] as number[], arrived: 0 },
  cross: { latencies: [] as number[], arrived: 0 }
}

function countFrame (bytes: number, prefix: Buffer): void {
  if (!measuring) return
  received.frames++
  received.bytes += bytes
  if (prefix.length >= ERROR_PREFIX.length && prefix.compare(ERROR_PREFIX, 0, ERROR_PREFIX.length, 0, ERROR_PREFIX.length) === 0) {
    received.errorFrames++
    bump(received.errorCodes, errorCode(prefix))
  }
}

type PositionEntry = [string, number, number, number]

function observe (client: Client) {
  const last = new Map<number, number>()
  const senders = new Set<number>()
  lastZ.set(client.index, last)
  heard.set(client.index, senders)
  return (text: string): void => {
    const now = nowRel()
    if (!text.startsWith('{"type":"positions"')) return
    let message: { p?: PositionEntry[] }
    try {
      message = JSON.parse(text) as typeof message
    } catch {
      return
    }
    for (const entry of message.p ?? []) {
      const sender = idIndex.get(entry[0])
      if (sender === undefined || sender === client.index) continue
      const z = entry[3]
      if (!(z > (last.get(sender) ?? -Infinity))) continue
      last.set(sender, z)
      // In-window updates only; arrivals after the window still count (the runner waits deliveryMs).
      if (z < windowStart || z >= windowEnd) continue
      const pair = byIndex[sender]?.spec.node === client.spec.node ? pairs.same : pairs.cross
      pair.latencies.push(now - z)
      pair.arrived++
      senders.add(sender)
    }
  }
}

function registerText (index: number, room: string): string {
  return JSON.stringify({ type: 'register', name: `scale${index}`, room, position: { x: 500, y: 500, z: 0 } })
}

async function open (index: number): Promise<Client> {
  const spec = config.clients[index]
  const baseUrl = spec === undefined ? undefined : config.baseUrls[spec.node]
  if (spec === undefined || baseUrl === undefined) throw new Error(`no node for client ${index}`)
  const socket = await connectTo(baseUrl, '/ws', spreadAddress(index, SOURCE_ADDRESSES), CONNECT_TIMEOUT_MS)
  return await new Promise<Client>((resolve, reject) => {
    const client: Client = { index, spec, socket, id: '', open: true, closing: false, sentInWindow: 0 }
    const once = settleOnce<Client>(CONNECT_TIMEOUT_MS, () => { client.closing = true; socket.terminate() }, resolve, reject)
    socket.handlers = {
      close: (code) => {
        client.open = false
        if (!once.settled) once.fail(`closed ${code}`)
        else if (!client.closing) bump(closes, String(code))
      },
      text: (text) => {
        let message: { type?: string, id?: unknown, code?: string }
        try {
          message = JSON.parse(text) as typeof message
        } catch {
          once.fail('bad welcome')
          return
        }
        if (message.type === 'welcome' && typeof message.id === 'string') {
          client.id = message.id
          // Only observers go on assembling text: the others count frames without reading them.
          if (spec.observer) socket.handlers.text = observe(client)
          else {
            socket.collect = false
            socket.handlers.text = undefined
          }
          socket.handlers.frame = countFrame
          once.succeed(client)
        } else if (message.type === 'error') {
          once.fail(`register: ${message.code ?? 'error'}`)
        }
      }
    }
    socket.start()
    socket.send(registerText(index, spec.room))
  })
}

// ---- movers ---------------------------------------------------------------------
const timers: NodeJS.Timeout[] = []
const updates = { sent: 0, droppedCycles: 0 }

function sendUpdate (client: Client): void {
  if (!client.open) return
  const z = round(nowRel())
  // A slow circle per client: every update is a move.
  const angle = client.index + z / 4000
  const x = round(500 + 300 * Math.cos(angle))
  const y = round(500 + 300 * Math.sin(angle))
  client.socket.send(`{"type":"update","position":{"x":${x},"y":${y},"z":${z}}}`)
  if (z < windowStart || z >= windowEnd) return
  client.sentInWindow++
  updates.sent++
}

function startMovers (): void {
  if (clients.length === 0) return
  const period = 1000 / config.hz
  const phase = (client: Client): number => (client.index * period) / clients.length
  let k = 0
  let cycleStart = Math.ceil(nowRel() / period) * period
  timers.push(setInterval(() => {
    const now = nowRel()
    for (let budget = clients.length; budget > 0; budget--) {
      const client = clients[k]
      if (client === undefined || cycleStart + phase(client) > now) break
      sendUpdate(client)
      k++
      if (k === clients.length) {
        k = 0
        cycleStart += period
        if (now - cycleStart > period) {
          updates.droppedCycles++
          cycleStart = Math.ceil(now / period) * period
        }
      }
    }
  }, 2))
}

// ---- result ---------------------------------------------------------------------
const loopDelay = monitorEventLoopDelay({ resolution: 5 })
let cpuAtStart = process.cpuUsage()
let wallAtStart = 0
let cpuMs = 0
let wallMs = 0

function pairFigures (kind: 'same' | 'cross'): ScalePairFigures {
  let owed = 0
  let heardCount = 0
  let expected = 0
  for (const observer of clients) {
    if (!observer.spec.observer) continue
    const senders = heard.get(observer.index) ?? new Set<number>()
    for (const sender of clients) {
      if (sender.index === observer.index || sender.spec.room !== observer.spec.room) continue
      if ((sender.spec.node === observer.spec.node) !== (kind === 'same')) continue
      owed += sender.sentInWindow
      expected++
      if (senders.has(sender.index)) heardCount++
    }
  }
  const pair = pairs[kind]
  return {
    latencyMs: summary(pair.latencies),
    owed,
    arrived: pair.arrived,
    arrivalShare: owed === 0 ? null : round(pair.arrived / owed, 4),
    senders: { heard: heardCount, expected }
  }
}

function result (): ScaleClientsResult {
  const seconds = wallMs / 1000
  const expected = Math.round(clients.length * config.hz * seconds)
  return {
    windowMs: round(wallMs, 1),
    clients: clients.length,
    observers: clients.filter((client) => client.spec.observer).length,
    updates: { sent: updates.sent, expected, achievedShare: expected === 0 ? null : round(updates.sent / expected, 4), droppedCycles: updates.droppedCycles },
    same: pairFigures('same'),
    cross: pairFigures('cross'),
    received: {
      framesPerSecond: seconds > 0 ? round(received.frames / seconds, 1) : 0,
      bytesPerSecond: seconds > 0 ? Math.round(received.bytes / seconds) : 0,
      errorFrames: received.errorFrames,
      errorCodes: received.errorCodes
    },
    closes,
    stillOpen: clients.filter((client) => client.open).length,
    cpu: { ms: round(cpuMs, 1), shareOfOneCore: wallMs > 0 ? round(cpuMs / wallMs, 4) : 0 },
    loopDelayMs: { p99: round(loopDelay.percentile(99) / 1e6, 2), max: round(loopDelay.max / 1e6, 2) }
  }
}

async function setup (): Promise<SetupReport> {
  const { opened, report } = await openMany(0, config.clients.length, config.connectConcurrency, config.setupTimeoutMs, open)
  clients = opened
  for (const client of clients) {
    idIndex.set(client.id, client.index)
    byIndex[client.index] = client
  }
  return report
}

process.on('message', (message: ScaleRunnerMessage) => {
  try {
    switch (message.cmd) {
      case 'setup':
        config = message.config
        setup().then((report) => post({ ev: 'ready', setup: report }), (err: unknown) => post({ ev: 'error', message: String(err) }))
        return
      case 'start':
        startMovers()
        return
      case 'window-start':
        windowStart = nowRel()
        measuring = true
        loopDelay.enable()
        cpuAtStart = process.cpuUsage()
        wallAtStart = performance.now()
        return
      case 'window-end': {
        windowEnd = nowRel()
        measuring = false
        loopDelay.disable()
        const cpu = process.cpuUsage(cpuAtStart)
        cpuMs = (cpu.user + cpu.system) / 1000
        wallMs = performance.now() - wallAtStart
        setTimeout(() => post({ ev: 'result', result: result() }), config.deliveryMs + 250)
        return
      }
      case 'stop':
        for (const timer of timers) clearInterval(timer)
        for (const client of clients) {
          client.closing = true
          client.socket.close(1000)
        }
        setTimeout(() => process.exit(0), 500).unref()
    }
  } catch (err) {
    post({ ev: 'error', message: err instanceof Error ? err.message : String(err) })
  }
})

process.on('disconnect', () => process.exit(0))
process.on('uncaughtException', (err) => {
  post({ ev: 'error', message: err.stack ?? err.message })
  process.exit(1)
})
