/**
 * The fan-out load generator: a child process of bench/fanout/run.ts (started
 * through `taskset -c 1`, so it never competes with the server on core 0), driven
 * over the IPC channel (messages in ./protocol.ts). It drives real WebSocket clients
 * against 127.0.0.1, each bound to one of several 127.0.0.x source addresses so that
 * ephemeral ports never run out.
 *
 * Clients:
 * - movers (room, crowd): register, then send their position at `hz` with `z` = the
 *   send time in ms since the run's shared epoch (an absolute epoch agreed with the
 *   runner, subtracted, so |z| stays far below 1e9). Phases are spread evenly over
 *   one period by a single pump timer; a pump that falls a whole period behind drops
 *   the backlog rather than bursting (the achieved share is reported).
 * - observers: the first `observers` movers. They parse every frame; for each
 *   `positions` entry `[id, x, y, z]` from another user whose `z` is newer than the
 *   last seen from that sender, latency = now − z (same clock: one process). For
 *   delivery, every update sent during the window records which observers should see
 *   it (room: all; crowd: observers within radius × (1 − margin) at send time, the
 *   margin being hysteresis); an observer's copy counts as delivered when that value
 *   or a newer one from the same sender arrived within `deliveryMs` (1 s), late when
 *   it arrived later, missed when it never did. The load continues for that second
 *   after the window so the last updates get their chance.
 * - every other client only counts frames and bytes (no JSON.parse, no UTF-8
 *   validation) so that the generator does not become the bottleneck; its own CPU
 *   (process.cpuUsage) and event-loop delay are reported, and a run above
 *   SATURATION of a core is flagged.
 * - idle: connections that register and do nothing (ws answers the heartbeat pings).
 * - churn: `users` per second connect, register, wait for `welcome`, and close,
 *   among `background` users who stay; achieved rate, errors and time to welcome.
 *
 * Wire kinds: `json` is Shoal's protocol (Shoal and the naive baseline, path /ws).
 * `socketio` is Socket.IO 4 over the websocket transport: the observers use the real
 * `socket.io-client` (transports: ['websocket']); the counting clients speak the
 * Engine.IO v4 framing directly over `ws` (`0` open → `40` connect → `42[...]`
 * events, answering the server's `2` pings with `3`), which costs the generator far
 * less than a full client per socket and changes nothing on the server's side.
 */
import { monitorEventLoopDelay, performance } from 'node:perf_hooks'
import { io as sioConnect, type Socket as SioSocket } from 'socket.io-client'
import WebSocket from 'ws'
import { percentile, round } from '../lib/proc.js'
import {
  SATURATION, type GeneratorConfig, type GeneratorMessage, type GeneratorResult, type LatencySummary,
  type RunnerMessage, type SetupReport
} from './protocol.js'

const CONNECT_TIMEOUT_MS = 10_000
const MAX_OBSERVERS = 30
const CHURN_INFLIGHT_CAP = 1000

if (process.send === undefined) {
  process.stderr.write('bench/fanout/generator.ts is started by bench/fanout/run.ts (npm run bench), not directly\n')
  process.exit(2)
}

function post (message: GeneratorMessage): void {
  process.send?.(message)
}

let config: GeneratorConfig
const nowRel = (): number => performance.timeOrigin + performance.now() - config.epochMs

// ---- randomness: seeded, so that two runs walk the same paths ----------------
let seed = 0x9e3779b9
function random (): number {
  seed = (seed + 0x6d2b79f5) | 0
  let t = seed
  t = Math.imul(t ^ (t >>> 15), t | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

// ---- counters ----------------------------------------------------------------
/** Window boundaries in epoch-relative ms; Infinity until set. */
let windowStart = Infinity
let windowEnd = Infinity
let measuring = false
const traffic = { frames: 0, bytes: 0, errorFrames: 0, pings: 0, closes: {} as Record<string, number> }
const bump = (record: Record<string, number>, key: string): void => { record[key] = (record[key] ?? 0) + 1 }
const ERROR_PREFIX = Buffer.from('{"type":"error"')

function startsWith (data: Buffer, prefix: Buffer): boolean {
  return data.length >= prefix.length && data.compare(prefix, 0, prefix.length, 0, prefix.length) === 0
}

// ---- clients -----------------------------------------------------------------
interface Mover { x: number, y: number, heading: number }

interface Client {
  index: number
  id: string
  /** Observer slot, or -1. */
  slot: number
  open: boolean
  /** Set once the generator itself closes the client: its close is not counted. */
  closing: boolean
  mover: Mover
  sendPosition: (x: number, y: number, z: number) => void
  close: () => void
}

type PositionEntry = [string, number, number, number]
interface RegisterFields { name: string, room?: string, position: { x: number, y: number, z: number } }

const sourceAddress = (index: number): string => `127.0.0.${1 + (index % config.sourceAddresses)}`
const wsOptions = (index: number): WebSocket.ClientOptions => ({
  perMessageDeflate: false,
  skipUTF8Validation: true,
  handshakeTimeout: CONNECT_TIMEOUT_MS,
  localAddress: sourceAddress(index)
})

function reason (err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: string }).code
    if (code !== undefined) return code
    return err.message.replace(/[0-9a-f-]{36}/g, '<id>').slice(0, 80)
  }
  return String(err).slice(0, 80)
}

/** What a client does with frames after its welcome: count them, or (observers) parse them too. */
type FrameSink = (client: Client) => (data: Buffer) => void

/** Opens one client speaking Shoal's JSON protocol; resolves on `welcome`. */
function openJson (index: number, slot: number, fields: RegisterFields, sink: FrameSink | null): Promise<Client> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`${config.baseUrl}/ws`, wsOptions(index))
    let settled = false
    const client: Client = {
      index,
      id: '',
      slot,
      open: false,
      closing: false,
      mover: { x: fields.position.x, y: fields.position.y, heading: random() * 2 * Math.PI },
      sendPosition: (x, y, z) => socket.send(`{"type":"update","position":{"x":${x},"y":${y},"z":${z}}}`),
      close: () => { client.closing = true; socket.close(1000) }
    }
    const fail = (why: string): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      client.closing = true
      socket.terminate()
      reject(new Error(why))
    }
    const timer = setTimeout(() => fail('timeout'), CONNECT_TIMEOUT_MS)
    socket.on('error', (err) => fail(reason(err)))
    socket.on('unexpected-response', (_request, response) => fail(`http ${String(response.statusCode)}`))
    socket.on('open', () => {
      client.open = true
      socket.send(JSON.stringify({ type: 'register', ...fields }))
    })
    socket.on('close', (code) => {
      client.open = false
      if (!settled) fail(`closed ${code}`)
      else if (!client.closing) bump(traffic.closes, String(code))
    })
    socket.on('ping', () => { if (measuring) traffic.pings++ })
    const onWelcome = (data: Buffer): void => {
      let message: { type?: string, id?: string, code?: string }
      try {
        message = JSON.parse(data.toString()) as typeof message
      } catch {
        return fail('bad welcome')
      }
      if (message.type === 'welcome' && typeof message.id === 'string') {
        settled = true
        clearTimeout(timer)
        client.id = message.id
        socket.off('message', onWelcome)
        if (sink !== null) socket.on('message', sink(client))
        resolve(client)
      } else if (message.type === 'error') {
        fail(`register: ${message.code ?? 'error'}`)
      }
    }
    socket.on('message', onWelcome)
  })
}

/** Opens one Socket.IO client over raw Engine.IO framing; resolves on the `welcome` event. */
function openSioRaw (index: number, fields: RegisterFields, sink: FrameSink | null): Promise<Client> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`${config.baseUrl}/socket.io/?EIO=4&transport=websocket`, wsOptions(index))
    let settled = false
    const client: Client = {
      index,
      id: '',
      slot: -1,
      open: false,
      closing: false,
      mover: { x: fields.position.x, y: fields.position.y, heading: random() * 2 * Math.PI },
      sendPosition: (x, y, z) => socket.send(`42["update",{"position":{"x":${x},"y":${y},"z":${z}}}]`),
      close: () => { client.closing = true; socket.close(1000) }
    }
    const fail = (why: string): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      client.closing = true
      socket.terminate()
      reject(new Error(why))
    }
    const timer = setTimeout(() => fail('timeout'), CONNECT_TIMEOUT_MS)
    socket.on('error', (err) => fail(reason(err)))
    socket.on('unexpected-response', (_request, response) => fail(`http ${String(response.statusCode)}`))
    socket.on('open', () => { client.open = true })
    socket.on('close', (code) => {
      client.open = false
      if (!settled) fail(`closed ${code}`)
      else if (!client.closing) bump(traffic.closes, String(code))
    })
    const onHandshake = (data: Buffer): void => {
      const text = data.toString()
      if (text === '2') {
        socket.send('3')
      } else if (text.startsWith('0')) {
        socket.send('40') // Engine.IO open → Socket.IO connect to the main namespace
      } else if (text.startsWith('40')) {
        socket.send(`42${JSON.stringify(['register', fields])}`)
      } else if (text.startsWith('44')) {
        fail('connect_error')
      } else if (text.startsWith('42["welcome"')) {
        const [, welcome] = JSON.parse(text.slice(2)) as [string, { id: string }]
        settled = true
        clearTimeout(timer)
        client.id = welcome.id
        socket.off('message', onHandshake)
        const count = sink?.(client)
        socket.on('message', (frame: Buffer) => {
          if (frame.length === 1 && frame[0] === 0x32) { // '2': Engine.IO ping, the heartbeat
            socket.send('3')
            if (measuring) traffic.pings++
            return
          }
          count?.(frame)
        })
        resolve(client)
      }
    }
    socket.on('message', onHandshake)
  })
}

/** Opens one observer with the real socket.io-client; resolves on the `welcome` event. */
function openSioObserver (index: number, slot: number, fields: RegisterFields): Promise<Client> {
  return new Promise((resolve, reject) => {
    const socket: SioSocket = sioConnect(config.baseUrl, {
      transports: ['websocket'],
      reconnection: false,
      forceNew: true,
      timeout: CONNECT_TIMEOUT_MS,
      // engine.io-client passes localAddress on to ws; its option type omits it.
      ...({ localAddress: sourceAddress(index) } as object)
    })
    let settled = false
    const client: Client = {
      index,
      id: '',
      slot,
      open: false,
      closing: false,
      mover: { x: fields.position.x, y: fields.position.y, heading: random() * 2 * Math.PI },
      sendPosition: (x, y, z) => { socket.emit('update', { position: { x, y, z } }) },
      close: () => { client.closing = true; socket.disconnect() }
    }
    const fail = (why: string): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      client.closing = true
      socket.disconnect()
      reject(new Error(why))
    }
    const timer = setTimeout(() => fail('timeout'), CONNECT_TIMEOUT_MS)
    socket.on('connect_error', (err) => fail(`connect_error ${reason(err)}`))
    socket.on('connect', () => {
      client.open = true
      socket.io.engine.on('packet', (packet) => {
        if (!measuring) return
        if (packet.type === 'ping') {
          traffic.pings++
          return
        }
        traffic.frames++
        traffic.bytes += 1 + (typeof packet.data === 'string' ? Buffer.byteLength(packet.data) : 0)
      })
      socket.emit('register', fields)
    })
    socket.on('disconnect', (why) => {
      client.open = false
      if (settled && !client.closing) bump(traffic.closes, `socket.io ${why}`)
    })
    socket.once('welcome', (welcome: { id: string }) => {
      settled = true
      clearTimeout(timer)
      client.id = welcome.id
      resolve(client)
    })
    socket.on('positions', (message: { p: PositionEntry[] }) => {
      if (settled) onPositions(client, message.p, nowRel())
    })
  })
}

// ---- counting and observing ---------------------------------------------------
const countFrames: FrameSink = () => (data) => {
  if (!measuring) return
  traffic.frames++
  traffic.bytes += data.length
  if (startsWith(data, ERROR_PREFIX)) traffic.errorFrames++
}

const observeJson: FrameSink = (client) => (data) => {
  const now = nowRel()
  if (measuring) {
    traffic.frames++
    traffic.bytes += data.length
  }
  let message: { type?: string, p?: PositionEntry[] }
  try {
    message = JSON.parse(data.toString()) as typeof message
  } catch {
    return
  }
  if (message.type === 'positions' && Array.isArray(message.p)) onPositions(client, message.p, now)
  else if (message.type === 'error' && measuring) traffic.errorFrames++
}

/** Per-sender log of the updates sent during the window: send time and the observers that should see it. */
let sentZ: number[][] = []
let sentMask: number[][] = []
/** Per observer: next unchecked entry of each sender's log, last z seen from each sender, senders seen / expected. */
let pointer: Int32Array[] = []
let lastZ: Float64Array[] = []
let seen: Uint8Array[] = []
let expectedSeen: Uint8Array[] = []
const idIndex = new Map<string, number>()
const latencies: number[] = []
const delivery = { delivered: 0, late: 0, missed: 0 }
const positions = { frames: 0, entries: 0 }

function onPositions (client: Client, entries: PositionEntry[], now: number): void {
  const slot = client.slot
  const ptr = pointer[slot]
  const last = lastZ[slot]
  const seenBy = seen[slot]
  if (ptr === undefined || last === undefined || seenBy === undefined) return
  if (measuring) {
    positions.frames++
    positions.entries += entries.length
  }
  const bit = 1 << slot
  for (const entry of entries) {
    const sender = idIndex.get(entry[0])
    if (sender === undefined || sender === client.index) continue
    const z = entry[3]
    if (!(z > (last[sender] ?? Infinity))) continue // an old or repeated value: not a new arrival
    last[sender] = z
    if (z >= windowStart && z < windowEnd) {
      latencies.push(now - z)
      seenBy[sender] = 1
    }
    const log = sentZ[sender]
    const masks = sentMask[sender]
    if (log === undefined || masks === undefined) continue
    let p = ptr[sender] ?? 0
    while (p < log.length && (log[p] ?? Infinity) <= z) {
      if (((masks[p] ?? 0) & bit) !== 0) {
        if (now - (log[p] ?? 0) <= config.deliveryMs) delivery.delivered++
        else delivery.late++
      }
      p++
    }
    ptr[sender] = p
  }
}

// ---- setup --------------------------------------------------------------------
let clients: Client[] = []
let observerClients: Client[] = []

function registerFields (index: number): RegisterFields {
  const position = { x: round(random() * config.area), y: round(random() * config.area), z: 0 }
  const name = `b${index}`
  switch (config.scenario) {
    case 'idle': return { name, room: `idle-${Math.floor(index / config.roomSize)}`, position }
    case 'churn': return { name, room: `churn-${index % config.churnRooms}`, position }
    default: return config.wire === 'socketio' ? { name, position } : { name, room: config.room, position }
  }
}

function openClient (index: number, slot: number, fields: RegisterFields, sink: FrameSink | null): Promise<Client> {
  if (config.wire === 'json') return openJson(index, slot, fields, slot >= 0 ? observeJson : sink)
  if (slot >= 0) return openSioObserver(index, slot, fields)
  return openSioRaw(index, fields, sink)
}

async function setup (): Promise<SetupReport> {
  const moving = config.scenario === 'room' || config.scenario === 'crowd'
  const total = config.scenario === 'churn' ? config.background : config.users
  const observers = moving ? Math.min(config.observers, total, MAX_OBSERVERS) : 0
  const started = Date.now()
  const deadline = started + config.setupTimeoutMs
  const errors: Record<string, number> = {}
  let failed = 0
  let next = 0
  const opened: Array<Client | undefined> = new Array<Client | undefined>(total)
  const tooManyFailures = (): boolean => failed > Math.max(20, total * 0.05)
  const worker = async (): Promise<void> => {
    while (next < total && Date.now() < deadline && !tooManyFailures()) {
      const index = next++
      const slot = index < observers ? index : -1
      try {
        opened[index] = await openClient(index, slot, registerFields(index), countFrames)
      } catch (err) {
        failed++
        bump(errors, reason(err))
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(config.connectConcurrency, Math.max(1, total)) }, worker))
  clients = opened.filter((client): client is Client => client !== undefined)
  observerClients = clients.filter((client) => client.slot >= 0)
  if (next < total) bump(errors, tooManyFailures() ? 'gave up after too many failures' : 'setup deadline')

  // Delivery bookkeeping, indexed by client index.
  for (const client of clients) idIndex.set(client.id, client.index)
  sentZ = Array.from({ length: total }, () => [])
  sentMask = Array.from({ length: total }, () => [])
  pointer = Array.from({ length: observers }, () => new Int32Array(total))
  lastZ = Array.from({ length: observers }, () => new Float64Array(total).fill(-Infinity))
  seen = Array.from({ length: observers }, () => new Uint8Array(total))
  expectedSeen = Array.from({ length: observers }, () => new Uint8Array(total))
  return { target: total, registered: clients.length, failed, complete: clients.length === total, ms: Date.now() - started, errors }
}

// ---- load: movers ---------------------------------------------------------------
const timers: NodeJS.Timeout[] = []
const updates = { sent: 0, droppedCycles: 0 }

function step (mover: Mover): void {
  const distance = config.speed / config.hz
  const area = config.area
  mover.heading += (random() - 0.5) * 0.6
  mover.x += Math.cos(mover.heading) * distance
  mover.y += Math.sin(mover.heading) * distance
  if (mover.x < 0 || mover.x > area) {
    mover.x = mover.x < 0 ? -mover.x : 2 * area - mover.x
    mover.heading = Math.PI - mover.heading
  }
  if (mover.y < 0 || mover.y > area) {
    mover.y = mover.y < 0 ? -mover.y : 2 * area - mover.y
    mover.heading = -mover.heading
  }
}

function sendUpdate (client: Client): void {
  if (!client.open) return
  step(client.mover)
  const x = round(client.mover.x)
  const y = round(client.mover.y)
  const z = round(nowRel())
  client.sendPosition(x, y, z)
  if (z < windowStart || z >= windowEnd) return
  // Which observers should see this update: all (room), or those within the radius less the margin (crowd).
  let mask = 0
  const reach = config.radius > 0 ? config.radius * (1 - config.margin) : Infinity
  for (const observer of observerClients) {
    if (observer === client) continue
    if (reach !== Infinity) {
      const dx = observer.mover.x - x
      const dy = observer.mover.y - y
      if (dx * dx + dy * dy > reach * reach) continue
    }
    mask |= 1 << observer.slot
    const expected = expectedSeen[observer.slot]
    if (expected !== undefined) expected[client.index] = 1
  }
  sentZ[client.index]?.push(z)
  sentMask[client.index]?.push(mask)
  updates.sent++
}

function startMovers (): void {
  const movers = clients
  if (movers.length === 0) return
  const period = 1000 / config.hz
  let k = 0
  let cycleStart = nowRel()
  const pump = (): void => {
    const now = nowRel()
    for (let budget = movers.length; budget > 0; budget--) {
      if (cycleStart + (k * period) / movers.length > now) break
      const client = movers[k]
      if (client !== undefined) sendUpdate(client)
      k++
      if (k === movers.length) {
        k = 0
        cycleStart += period
        if (now - cycleStart > period) { // a whole period behind: drop the backlog instead of bursting
          updates.droppedCycles++
          cycleStart = now
        }
      }
    }
  }
  timers.push(setInterval(pump, 2))
}

// ---- load: churn -----------------------------------------------------------------
const churn = { started: 0, completed: 0, failed: 0, capped: 0, inflight: 0, errors: {} as Record<string, number>, welcomeMs: [] as number[] }
let churnIndex = 0

function churnCycle (): void {
  const t0 = nowRel()
  const inWindow = t0 >= windowStart && t0 < windowEnd
  if (inWindow) churn.started++
  const index = config.background + churnIndex++
  churn.inflight++
  openClient(index, -1, { name: `c${index}`, room: `churn-${index % config.churnRooms}`, position: { x: 0, y: 0, z: 0 } }, null).then((client) => {
    if (inWindow) {
      churn.completed++
      churn.welcomeMs.push(nowRel() - t0)
    }
    client.close()
    churn.inflight--
  }, (err: unknown) => {
    if (inWindow) {
      churn.failed++
      bump(churn.errors, reason(err))
    }
    churn.inflight--
  })
}

function startChurn (): void {
  const t0 = nowRel()
  let launched = 0
  timers.push(setInterval(() => {
    const due = Math.floor(((nowRel() - t0) * config.users) / 1000)
    while (launched < due) {
      launched++
      if (churn.inflight >= CHURN_INFLIGHT_CAP) {
        if (nowRel() >= windowStart && nowRel() < windowEnd) churn.capped++
        continue
      }
      churnCycle()
    }
  }, 5))
}

// ---- window and result ---------------------------------------------------------
const loopDelay = monitorEventLoopDelay({ resolution: 5 })
let cpuAtStart = process.cpuUsage()
let wallAtStart = 0
let cpuMs = 0
let wallMs = 0

function summary (values: number[]): LatencySummary {
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

function result (): GeneratorResult {
  // Updates owed to an observer that never arrived (or only older values did).
  for (const observer of observerClients) {
    const ptr = pointer[observer.slot]
    if (ptr === undefined) continue
    const bit = 1 << observer.slot
    for (let sender = 0; sender < sentZ.length; sender++) {
      const masks = sentMask[sender] ?? []
      for (let p = ptr[sender] ?? 0; p < masks.length; p++) {
        if (((masks[p] ?? 0) & bit) !== 0) delivery.missed++
      }
    }
  }
  const seconds = wallMs / 1000
  const moving = config.scenario === 'room' || config.scenario === 'crowd'
  const expectedUpdates = moving ? Math.round(clients.length * config.hz * seconds) : 0
  const owed = delivery.delivered + delivery.late + delivery.missed
  const average = (arrays: Uint8Array[]): number => arrays.length === 0 ? 0 : arrays.reduce((sum, array) => sum + array.reduce((a, b) => a + b, 0), 0) / arrays.length
  const share = wallMs > 0 ? cpuMs / wallMs : 0
  return {
    windowMs: round(wallMs, 1),
    updates: { sent: updates.sent, expected: expectedUpdates, achievedShare: expectedUpdates === 0 ? null : round(updates.sent / expectedUpdates, 4) },
    latencyMs: summary(latencies),
    delivery: { expected: owed, ...delivery, ratio: owed === 0 ? null : round(delivery.delivered / owed, 5) },
    traffic: {
      ...traffic,
      framesPerSecond: round(traffic.frames / seconds, 1),
      bytesPerSecond: Math.round(traffic.bytes / seconds),
      stillOpen: clients.filter((client) => client.open).length
    },
    cpu: { ms: round(cpuMs, 1), shareOfOneCore: round(share, 4), saturated: share > SATURATION },
    loopDelayMs: { p99: round(loopDelay.percentile(99) / 1e6, 2), max: round(loopDelay.max / 1e6, 2) },
    rssMiB: round(process.memoryUsage.rss() / 2 ** 20, 1),
    interest: moving && observerClients.length > 0
      ? {
          receivedSendersPerObserver: round(average(seen), 1),
          expectedSendersPerObserver: round(average(expectedSeen), 1),
          entriesPerPositionsFrame: positions.frames === 0 ? 0 : round(positions.entries / positions.frames, 1),
          positionsFrames: positions.frames
        }
      : null,
    churn: config.scenario === 'churn'
      ? {
          started: churn.started,
          completed: churn.completed,
          failed: churn.failed,
          errors: churn.errors,
          achievedRate: round(churn.completed / seconds, 1),
          targetRate: config.users,
          welcomeMs: summary(churn.welcomeMs),
          capped: churn.capped
        }
      : null
  }
}

async function finish (): Promise<void> {
  // The load goes on until every update of the window has had its delivery deadline.
  await new Promise((resolve) => setTimeout(resolve, config.deliveryMs + 250))
  if (config.scenario === 'churn') {
    const deadline = Date.now() + CONNECT_TIMEOUT_MS + 1000
    while (churn.completed + churn.failed < churn.started && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }
  post({ ev: 'result', result: result() })
}

function stop (): void {
  for (const timer of timers) clearInterval(timer)
  for (const client of clients) {
    client.closing = true
    client.close()
  }
  // Closing handshakes get a moment; the process leaves either way.
  setTimeout(() => process.exit(0), 500).unref()
}

process.on('message', (message: RunnerMessage) => {
  try {
    switch (message.cmd) {
      case 'setup':
        config = message.config
        if (config.observers > MAX_OBSERVERS) throw new Error(`at most ${MAX_OBSERVERS} observers`)
        setup().then((report) => post({ ev: 'ready', setup: report }), (err: unknown) => post({ ev: 'error', message: String(err) }))
        return
      case 'start':
        if (config.scenario === 'room' || config.scenario === 'crowd') startMovers()
        else if (config.scenario === 'churn') startChurn()
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
        finish().catch((err: unknown) => post({ ev: 'error', message: String(err) }))
        return
      }
      case 'stop':
        stop()
    }
  } catch (err) {
    post({ ev: 'error', message: err instanceof Error ? err.message : String(err) })
  }
})

// The runner gone (even killed): leave at once, closing every socket with the process.
process.on('disconnect', () => process.exit(0))
process.on('uncaughtException', (err) => {
  post({ ev: 'error', message: err.stack ?? err.message })
  process.exit(1)
})
