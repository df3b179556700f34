/**
 * The fan-out load generator: child processes of bench/fanout/run.ts (started
 * through `taskset -c 1`, so they never compete with the server on core 0), driven
 * over the IPC channel (messages and roles in ./protocol.ts). They drive real
 * WebSocket clients against 127.0.0.1, each bound to one of several 127.0.0.x
 * source addresses so that ephemeral ports never run out.
 *
 * Clients:
 * - movers (room, crowd): register, then send their position at `hz` with `z` = the
 *   send time in ms since the run's shared epoch (an absolute epoch agreed with the
 *   runner, subtracted, so |z| stays far below 1e9). Phases are spread evenly over
 *   one period across both processes by one pump timer each; a pump that falls a
 *   whole period behind drops the backlog rather than bursting (the achieved share
 *   is reported).
 * - observers (the `observe` process): the first `observers` movers. They parse
 *   every frame; for each `positions` entry `[id, x, y, z]` from another user whose
 *   `z` is newer than the last seen from that sender, latency = now − z (same clock:
 *   one machine, one epoch), and the arrival is logged. After the window, with the
 *   `load` process's log of every update it sent (time and position), delivery is
 *   computed: an update is owed to an observer in `room` always, in `crowd` when the
 *   observer was within radius × (1 − margin) of it at send time (the margin is
 *   hysteresis); it counts as delivered when that value or a newer one from the same
 *   sender arrived within `deliveryMs` (1 s), late when it arrived later, missed when
 *   it never did. The load continues for that second after the window.
 * - every other client (the `load` process) only counts frames and bytes: no
 *   JSON.parse, no UTF-8 decoding, not even a copy (the minimal RFC 6455 client of
 *   ./raw-ws.ts, reading into one shared buffer), so that the generator does not
 *   become the bottleneck. Each process reports its own CPU (process.cpuUsage) and
 *   event-loop delay; the runner adds them up and flags a run above SATURATION.
 * - several nodes (`baseUrls`, the runner's `cluster` command): client i connects
 *   to node i % nodes, so the clients, observers included, alternate between the
 *   nodes; each latency sample and each owed update is also counted as a
 *   same-node or a cross-node pair (observer and sender on one node or not).
 * - idle: connections that register and do nothing (they answer the heartbeat pings).
 * - churn: `users` per second connect, register, wait for `welcome`, and close,
 *   among `background` users who stay; achieved rate, errors and time to welcome.
 *
 * Wire kinds: `json` is Shoal's protocol (Shoal and the naive baseline, path /ws);
 * its observers and churn clients use `ws`. With `encoding: 'compact'` (target
 * `shoal-compact`) every client adds `"encoding": "compact"` to its register and
 * fails unless the welcome confirms it; `positions` then arrive as binary frames
 * (src/protocol/compact.ts: u8 kind, f64 t, then u32 sid, f32 x, f32 y, f32 z per entry)
 * that the counting clients count like text ones and the observers decode, mapping
 * each short id to its user through the User objects they received (welcome `you`
 * and `users`, `presence.joined`, `snapshot.users`). Since z travels as an f32, the
 * movers send z already rounded to an f32 (Math.fround): the value the observers
 * decode is then exactly the one logged at send time, and the rounding (at most
 * 1/64 ms while z < 2^18 ms, about 4 min after the run's epoch) is all the error. `socketio` is Socket.IO 4 over the
 * websocket transport: the observers use the real `socket.io-client` (transports:
 * ['websocket']); the other clients speak the Engine.IO v4 framing over the minimal
 * client (`0` open → `40` connect → `42[...]` events, answering the server's `2`
 * pings with `3`), which changes nothing on the server's side.
 */
import { monitorEventLoopDelay, performance } from 'node:perf_hooks'
import { io as sioConnect, type Socket as SioSocket } from 'socket.io-client'
import WebSocket from 'ws'
import { decodeCompactPositions } from '../../src/protocol/compact.js'
import { round } from '../lib/proc.js'
import { connectTo, type RawWebSocket } from './raw-ws.js'
import { bump, openMany, reason, settleOnce, spreadAddress, startsWith, summary } from './shared.js'
import {
  SATURATION, type GeneratorConfig, type GeneratorMessage, type GeneratorResult,
  type PairFigures, type RunnerMessage, type SentLog, type SetupReport
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
const ERROR_PREFIX = Buffer.from('{"type":"error"')

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
interface RegisterFields { name: string, room?: string, position: { x: number, y: number, z: number }, encoding?: 'compact' }
/** What observers read of a User object: its id, and its short id with the compact encoding. */
interface WireUser { id?: unknown, sid?: unknown }
/** The fields of a `welcome` the generator checks. */
interface Welcome { type?: string, id?: string, code?: string, encoding?: string, you?: WireUser, users?: WireUser[] }

/** With the compact encoding, a welcome that does not confirm it is a failed register (the run would measure JSON). */
function welcomeProblem (message: Welcome): string | null {
  return config.encoding === 'compact' && message.encoding !== 'compact' ? 'compact encoding not confirmed by welcome' : null
}

/** Which node client `index` connects to, and that node's base URL. */
const nodeOf = (index: number): number => index % config.baseUrls.length
const baseUrlOf = (index: number): string => config.baseUrls[nodeOf(index)] ?? ''
/** More than one node: observers split their figures into same-node and cross-node pairs. */
const splitByNode = (): boolean => config.baseUrls.length > 1

const sourceAddress = (index: number): string => spreadAddress(index, config.sourceAddresses)
const wsOptions = (index: number): WebSocket.ClientOptions => ({
  perMessageDeflate: false,
  skipUTF8Validation: true,
  handshakeTimeout: CONNECT_TIMEOUT_MS,
  localAddress: sourceAddress(index)
})

/** What a client does with frames after its welcome: count them, or (observers) parse them too. */
type FrameSink = (client: Client) => (data: Buffer, isBinary: boolean) => void

/** Shoal's JSON protocol on the wire: the register and the position update. */
const jsonRegister = (fields: RegisterFields): string => JSON.stringify({ type: 'register', ...fields })
const jsonUpdate = (x: number, y: number, z: number): string => `{"type":"update","position":{"x":${x},"y":${y},"z":${z}}}`

const countPing = (): void => { if (measuring) traffic.pings++ }

/** What a client record needs of its socket; `close` is the socket's own normal close. */
interface ClientSocket { open: boolean, sendPosition: Client['sendPosition'], close: () => void }

/** A new client record; the generator's own close marks it `closing`, so that it is not counted. */
function newClient (index: number, slot: number, fields: RegisterFields, socket: ClientSocket): Client {
  const client: Client = {
    index,
    id: '',
    slot,
    open: socket.open,
    closing: false,
    mover: { x: fields.position.x, y: fields.position.y, heading: random() * 2 * Math.PI },
    sendPosition: socket.sendPosition,
    close: () => { client.closing = true; socket.close() }
  }
  return client
}

/** A connecting client's outcome, settled once: by its welcome, its first failure, or the connect timeout. */
interface Outcome {
  readonly settled: boolean
  /** Fails the connect: the socket is dropped (`abort`), and its close is not counted. */
  fail: (why: string) => void
  /** The welcome came: the client is registered as `id`. */
  welcome: (id: string) => void
  /** The socket closed: before the welcome a failure, after it a close to count (unless the generator's own). */
  closed: (code: number) => void
}

function outcomeOf (client: Client, abort: () => void, resolve: (client: Client) => void, reject: (err: Error) => void): Outcome {
  const once = settleOnce(CONNECT_TIMEOUT_MS, () => { client.closing = true; abort() }, resolve, reject)
  return {
    get settled () { return once.settled },
    fail: once.fail,
    welcome: (id) => {
      client.id = id
      once.succeed(client)
    },
    closed: (code) => {
      client.open = false
      if (!once.settled) once.fail(`closed ${code}`)
      else if (!client.closing) bump(traffic.closes, String(code))
    }
  }
}

/** A JSON-protocol text message before the welcome: the welcome's id, or undefined (failing the client on a bad one or an error). */
function welcomeId (text: string, slot: number, fail: (why: string) => void): string | undefined {
  let message: Welcome
  try {
    message = JSON.parse(text) as typeof message
  } catch {
    fail('bad welcome')
    return undefined
  }
  if (message.type === 'welcome' && typeof message.id === 'string') {
    const problem = welcomeProblem(message)
    if (problem !== null) {
      fail(problem)
      return undefined
    }
    if (slot >= 0 && config.encoding === 'compact') learnSids(slot, [message.you, ...(message.users ?? [])])
    return message.id
  }
  if (message.type === 'error') fail(`register: ${message.code ?? 'error'}`)
  return undefined
}

/** Opens one client speaking Shoal's JSON protocol; resolves on `welcome`. */
function openJson (index: number, slot: number, fields: RegisterFields, sink: FrameSink | null): Promise<Client> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`${baseUrlOf(index)}/ws`, wsOptions(index))
    const client = newClient(index, slot, fields, {
      open: false,
      sendPosition: (x, y, z) => socket.send(jsonUpdate(x, y, z)),
      close: () => socket.close(1000)
    })
    const outcome = outcomeOf(client, () => socket.terminate(), resolve, reject)
    socket.on('error', (err) => outcome.fail(reason(err)))
    socket.on('unexpected-response', (_request, response) => outcome.fail(`http ${String(response.statusCode)}`))
    socket.on('open', () => {
      client.open = true
      socket.send(jsonRegister(fields))
    })
    socket.on('close', (code) => outcome.closed(code))
    socket.on('ping', countPing)
    const onWelcome = (data: Buffer, isBinary: boolean): void => {
      if (isBinary) return // positions come after the welcome only
      const id = welcomeId(data.toString(), slot, outcome.fail)
      if (id === undefined) return
      socket.off('message', onWelcome)
      if (sink !== null) socket.on('message', sink(client))
      outcome.welcome(id)
    }
    socket.on('message', onWelcome)
  })
}

/**
 * Opens one counting client on the minimal WebSocket client (./raw-ws.ts): Shoal's
 * JSON protocol, or Socket.IO's Engine.IO v4 framing. It reads text until its
 * `welcome`, then only counts frames and bytes (and answers Engine.IO pings).
 */
function openRaw (index: number, fields: RegisterFields): Promise<Client> {
  const sio = config.wire === 'socketio'
  const connecting = connectTo(baseUrlOf(index), sio ? '/socket.io/?EIO=4&transport=websocket' : '/ws', sourceAddress(index), CONNECT_TIMEOUT_MS)
  return connecting.then((socket) => new Promise<Client>((resolve, reject) => {
    const client = newClient(index, -1, fields, {
      open: true,
      sendPosition: sio
        ? (x, y, z) => socket.send(`42["update",{"position":{"x":${x},"y":${y},"z":${z}}}]`)
        : (x, y, z) => socket.send(jsonUpdate(x, y, z)),
      close: () => socket.close(1000)
    })
    const outcome = outcomeOf(client, () => socket.terminate(), resolve, reject)
    const welcomed = (id: string): void => {
      socket.collect = false
      socket.handlers.text = undefined
      socket.handlers.frame = sio ? countSioFrame(socket) : countJsonFrame
      outcome.welcome(id)
    }
    socket.handlers = {
      ping: countPing,
      close: outcome.closed,
      text: sio
        ? sioHandshake(socket, fields, outcome.fail, welcomed)
        : (text) => {
            const id = welcomeId(text, -1, outcome.fail)
            if (id !== undefined) welcomed(id)
          }
    }
    socket.start()
    if (!sio) socket.send(jsonRegister(fields))
  }))
}

/** Engine.IO open → Socket.IO connect to the main namespace → register → `welcome`, answering pings on the way. */
function sioHandshake (socket: RawWebSocket, fields: RegisterFields, fail: (why: string) => void, welcomed: (id: string) => void) {
  return (text: string): void => {
    if (text === '2') socket.send('3')
    else if (text.startsWith('0')) socket.send('40')
    else if (text.startsWith('40')) socket.send(`42${JSON.stringify(['register', fields])}`)
    else if (text.startsWith('44')) fail('connect_error')
    else if (text.startsWith('42["welcome"')) welcomed((JSON.parse(text.slice(2)) as [string, { id: string }])[1].id)
  }
}

/** Text and binary (compact `positions`) frames alike: payload bytes as they came. */
function countJsonFrame (bytes: number, prefix: Buffer): void {
  if (!measuring) return
  traffic.frames++
  traffic.bytes += bytes
  if (startsWith(prefix, ERROR_PREFIX)) traffic.errorFrames++
}

/** Socket.IO's heartbeat is an Engine.IO `2` message that must be answered with `3`. */
function countSioFrame (socket: RawWebSocket) {
  return (bytes: number, prefix: Buffer): void => {
    if (bytes === 1 && prefix[0] === 0x32) {
      socket.send('3')
      if (measuring) traffic.pings++
      return
    }
    if (!measuring) return
    traffic.frames++
    traffic.bytes += bytes
  }
}

/** Opens one observer with the real socket.io-client; resolves on the `welcome` event. */
function openSioObserver (index: number, slot: number, fields: RegisterFields): Promise<Client> {
  return new Promise((resolve, reject) => {
    const socket: SioSocket = sioConnect(baseUrlOf(index), {
      transports: ['websocket'],
      reconnection: false,
      forceNew: true,
      timeout: CONNECT_TIMEOUT_MS,
      // engine.io-client passes localAddress on to ws; its option type omits it.
      ...({ localAddress: sourceAddress(index) } as object)
    })
    const client = newClient(index, slot, fields, {
      open: false,
      sendPosition: (x, y, z) => { socket.emit('update', { position: { x, y, z } }) },
      close: () => { socket.disconnect() }
    })
    const outcome = outcomeOf(client, () => { socket.disconnect() }, resolve, reject)
    socket.on('connect_error', (err) => outcome.fail(`connect_error ${reason(err)}`))
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
    // Unlike the ws clients, a disconnect before the welcome is left to the connect timeout.
    socket.on('disconnect', (why) => {
      client.open = false
      if (outcome.settled && !client.closing) bump(traffic.closes, `socket.io ${why}`)
    })
    socket.once('welcome', (welcome: { id: string }) => outcome.welcome(welcome.id))
    socket.on('positions', (message: { p: PositionEntry[] }) => {
      if (outcome.settled) onPositions(client, message.p, senderOfId, nowRel())
    })
  })
}

// ---- observing ------------------------------------------------------------------
const observeJson: FrameSink = (client) => (data, isBinary) => {
  const now = nowRel()
  if (measuring) {
    traffic.frames++
    traffic.bytes += data.length
  }
  if (isBinary) {
    const frame = decodeCompactPositions(data)
    const slot = client.slot
    if (frame !== null) onPositions(client, frame.entries, (sid) => senderOfSid(slot, sid), now)
    else if (measuring) traffic.errorFrames++ // binary, but not a compact positions frame
    return
  }
  let message: { type?: string, p?: PositionEntry[], joined?: WireUser[], users?: WireUser[] }
  try {
    message = JSON.parse(data.toString()) as typeof message
  } catch {
    return
  }
  if (message.type === 'positions' && Array.isArray(message.p)) onPositions(client, message.p, senderOfId, now)
  else if (message.type === 'error' && measuring) traffic.errorFrames++
  else if (config.encoding === 'compact') {
    // Users entering later, or a resync: their short ids.
    if (message.type === 'presence' && Array.isArray(message.joined)) learnSids(client.slot, message.joined)
    else if (message.type === 'snapshot' && Array.isArray(message.users)) learnSids(client.slot, message.users)
  }
}

/** Every client's id by global index (the observe process learns them all through `ids`). */
const idIndex = new Map<string, number>()
const senderOfId = (id: string): number | undefined => idIndex.get(id)

/**
 * Compact encoding, per observer slot: user ids by short id, from the User objects
 * that observer received, and the global indexes they resolve to once `ids` came.
 */
const sidIds: Array<Map<number, string>> = []
const sidIndexes: Array<Map<number, number>> = []

function learnSids (slot: number, users: Array<WireUser | undefined>): void {
  const ids = sidIds[slot] ??= new Map()
  for (const user of users) {
    if (typeof user?.sid !== 'number' || typeof user.id !== 'string') continue
    ids.set(user.sid, user.id)
    sidIndexes[slot]?.delete(user.sid) // Shoal never reuses a short id; should it, the latest User object wins
  }
}

function senderOfSid (slot: number, sid: number): number | undefined {
  const cache = sidIndexes[slot] ??= new Map()
  let index = cache.get(sid)
  if (index === undefined) {
    const id = sidIds[slot]?.get(sid)
    index = id === undefined ? undefined : idIndex.get(id)
    if (index !== undefined) cache.set(sid, index)
  }
  return index
}
/** Per observer slot: last z seen from each sender, and the arrivals of new values (z ≥ window start). */
let lastZ: Float64Array[] = []
let receivedAt: Array<Array<number[] | undefined>> = []
let receivedZ: Array<Array<number[] | undefined>> = []
let seen: Uint8Array[] = []
const latencies: number[] = []
/** With several nodes: the same samples, by whether the sender was on the observer's node. */
const sameNodeLatencies: number[] = []
const crossNodeLatencies: number[] = []
const positions = { frames: 0, entries: 0 }

/** One `positions` frame at an observer; `senderOf` turns an entry's key (user id, or short id) into the sender's global index. */
function onPositions<K> (client: Client, entries: ReadonlyArray<readonly [K, number, number, number]>, senderOf: (key: K) => number | undefined, now: number): void {
  const slot = client.slot
  const last = lastZ[slot]
  const seenBy = seen[slot]
  const at = receivedAt[slot]
  const values = receivedZ[slot]
  if (last === undefined || seenBy === undefined || at === undefined || values === undefined) return
  if (measuring) {
    positions.frames++
    positions.entries += entries.length
  }
  for (const entry of entries) {
    const sender = senderOf(entry[0])
    if (sender === undefined || sender === client.index) continue
    const z = entry[3]
    if (!(z > (last[sender] ?? Infinity))) continue // an old or repeated value: not a new arrival
    last[sender] = z
    if (z < windowStart) continue
    if (z < windowEnd) {
      latencies.push(now - z)
      if (splitByNode()) (nodeOf(sender) === nodeOf(client.index) ? sameNodeLatencies : crossNodeLatencies).push(now - z)
      seenBy[sender] = 1
    }
    let times = at[sender]
    let zs = values[sender]
    if (times === undefined || zs === undefined) {
      times = at[sender] = []
      zs = values[sender] = []
    }
    times.push(now)
    zs.push(z)
  }
}

// ---- setup --------------------------------------------------------------------
let clients: Client[] = []
let observerClients: Client[] = []
const moving = (): boolean => config.scenario === 'room' || config.scenario === 'crowd'
/** Movers in the whole run, both processes. */
const totalMovers = (): number => moving() ? config.users : 0
const observerCount = (): number => moving() ? Math.min(config.observers, config.users, MAX_OBSERVERS) : 0

function registerFields (index: number): RegisterFields {
  const position = { x: round(random() * config.area), y: round(random() * config.area), z: 0 }
  const name = `b${index}`
  switch (config.scenario) {
    case 'idle': return withEncoding({ name, room: `idle-${Math.floor(index / config.roomSize)}`, position })
    case 'churn': return withEncoding({ name, room: `churn-${index % config.churnRooms}`, position })
    default: return config.wire === 'socketio' ? { name, position } : withEncoding({ name, room: config.room, position })
  }
}

/** Every register asks for the compact encoding when the run uses it (`shoal-compact`). */
function withEncoding (fields: RegisterFields): RegisterFields {
  return config.encoding === 'compact' ? { ...fields, encoding: 'compact' } : fields
}

/** Observers: `ws` (parsing every frame) or socket.io-client; counting clients: the minimal client; churn: `ws` or the minimal one. */
function openClient (index: number, slot: number, fields: RegisterFields, counting: boolean): Promise<Client> {
  if (slot >= 0) return config.wire === 'json' ? openJson(index, slot, fields, observeJson) : openSioObserver(index, slot, fields)
  if (counting || config.wire === 'socketio') return openRaw(index, fields)
  return openJson(index, slot, fields, null)
}

/** The global indexes this process hosts: the observers, or everyone else. */
function hostedRange (): [number, number] {
  if (config.role === 'observe') return [0, observerCount()]
  if (config.scenario === 'churn') return [0, config.background]
  return [observerCount(), config.users]
}

async function setup (): Promise<SetupReport> {
  const [first, end] = hostedRange()
  const observe = config.role === 'observe'
  const { opened, report } = await openMany(first, end, config.connectConcurrency, config.setupTimeoutMs, (index) => openClient(index, observe ? index : -1, registerFields(index), true))
  clients = opened
  observerClients = clients.filter((client) => client.slot >= 0)
  return report
}

function learnIds (ids: string[]): void {
  ids.forEach((id, index) => { if (id !== '') idIndex.set(id, index) })
  const slots = observerClients.length
  const size = ids.length
  lastZ = Array.from({ length: slots }, () => new Float64Array(size).fill(-Infinity))
  receivedAt = Array.from({ length: slots }, () => new Array<number[] | undefined>(size))
  receivedZ = Array.from({ length: slots }, () => new Array<number[] | undefined>(size))
  seen = Array.from({ length: slots }, () => new Uint8Array(size))
}

// ---- load: movers ---------------------------------------------------------------
const timers: NodeJS.Timeout[] = []
const updates = { sent: 0, droppedCycles: 0 }
/** This process's updates sent during the window (per local mover), and every observer's track since the start. */
const sentLog = new Map<number, { z: number[], x: number[], y: number[] }>()
const tracks = new Map<number, { z: number[], x: number[], y: number[] }>()

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

function push (log: Map<number, { z: number[], x: number[], y: number[] }>, index: number, z: number, x: number, y: number): void {
  let entry = log.get(index)
  if (entry === undefined) log.set(index, entry = { z: [], x: [], y: [] })
  entry.z.push(z)
  entry.x.push(x)
  entry.y.push(y)
}

function sendUpdate (client: Client): void {
  if (!client.open) return
  step(client.mover)
  const x = round(client.mover.x)
  const y = round(client.mover.y)
  // Compact: z arrives as an f32, so it is sent as one (see the top of this file).
  const z = config.encoding === 'compact' ? Math.fround(round(nowRel())) : round(nowRel())
  client.sendPosition(x, y, z)
  if (client.slot >= 0) push(tracks, client.index, z, x, y)
  if (z < windowStart || z >= windowEnd) return
  push(sentLog, client.index, z, x, y)
  updates.sent++
}

/** One pump for this process's movers; phases spread over every mover of the run, aligned on the shared epoch. */
function startMovers (): void {
  const movers = clients
  if (movers.length === 0) return
  const period = 1000 / config.hz
  const phase = (client: Client): number => (client.index * period) / totalMovers()
  let k = 0
  let cycleStart = Math.ceil(nowRel() / period) * period
  const pump = (): void => {
    const now = nowRel()
    for (let budget = movers.length; budget > 0; budget--) {
      const client = movers[k]
      if (client === undefined || cycleStart + phase(client) > now) break
      sendUpdate(client)
      k++
      if (k === movers.length) {
        k = 0
        cycleStart += period
        if (now - cycleStart > period) { // a whole period behind: drop the backlog instead of bursting
          updates.droppedCycles++
          cycleStart = Math.ceil(now / period) * period
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
  openClient(index, -1, withEncoding({ name: `c${index}`, room: `churn-${index % config.churnRooms}`, position: { x: 0, y: 0, z: 0 } }), false).then((client) => {
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

// ---- delivery (observe process, once every sent update is known) ----------------------
/** Where an observer was at time z: its last sent position at or before z (its register position before that). */
function positionAt (observer: Client, z: number): [number, number] {
  const track = tracks.get(observer.index)
  if (track === undefined || track.z.length === 0 || (track.z[0] ?? Infinity) > z) return [observer.mover.x, observer.mover.y]
  let lo = 0
  let hi = track.z.length - 1
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1
    if ((track.z[mid] ?? Infinity) <= z) lo = mid
    else hi = mid - 1
  }
  return [track.x[lo] ?? 0, track.y[lo] ?? 0]
}

/**
 * For every update sent in the window and every observer that should see it (room:
 * all; crowd: within radius × (1 − margin) of where the observer was at that time),
 * the first arrival of that value or a newer one from the same sender: delivered
 * within `deliveryMs`, late, or missed.
 */
function computeDelivery (log: SentLog) {
  const result = { expected: 0, delivered: 0, late: 0, missed: 0 }
  const sameNode = { expected: 0, delivered: 0 }
  const crossNode = { expected: 0, delivered: 0 }
  const expectedSeen = observerClients.map(() => new Set<number>())
  const reach = config.radius > 0 ? config.radius * (1 - config.margin) : Infinity
  for (const sender of log.senders) {
    for (const observer of observerClients) {
      if (observer.index === sender.index) continue
      const pair = nodeOf(observer.index) === nodeOf(sender.index) ? sameNode : crossNode
      const times = receivedAt[observer.slot]?.[sender.index] ?? []
      const values = receivedZ[observer.slot]?.[sender.index] ?? []
      let p = 0
      for (let u = 0; u < sender.z.length; u++) {
        const z = sender.z[u] ?? 0
        if (reach !== Infinity) {
          const [ox, oy] = positionAt(observer, z)
          const dx = ox - (sender.x[u] ?? 0)
          const dy = oy - (sender.y[u] ?? 0)
          if (dx * dx + dy * dy > reach * reach) continue
        }
        result.expected++
        pair.expected++
        expectedSeen[observer.slot]?.add(sender.index)
        while (p < values.length && (values[p] ?? 0) < z) p++ // arrivals are in order of arrival and of z
        if (p === values.length) result.missed++
        else if ((times[p] ?? Infinity) - z <= config.deliveryMs) {
          result.delivered++
          pair.delivered++
        } else {
          result.late++
        }
      }
    }
  }
  return { ...result, expectedSeen, sameNode, crossNode }
}

// ---- window and result ---------------------------------------------------------
const loopDelay = monitorEventLoopDelay({ resolution: 5 })
let cpuAtStart = process.cpuUsage()
let wallAtStart = 0
let cpuMs = 0
let cpuUserMs = 0
let wallMs = 0

function pairDelivery (counts: { expected: number, delivered: number }): PairFigures['delivery'] {
  return { ...counts, ratio: counts.expected === 0 ? null : round(counts.delivered / counts.expected, 5) }
}

function ownLog (): SentLog {
  return { senders: [...sentLog.entries()].map(([index, entry]) => ({ index, ...entry })) }
}

function result (others: SentLog | null): GeneratorResult {
  const seconds = wallMs / 1000
  const expectedUpdates = moving() ? Math.round(clients.length * config.hz * seconds) : 0
  const observing = config.role === 'observe' && observerClients.length > 0
  const delivery = observing ? computeDelivery({ senders: [...ownLog().senders, ...(others?.senders ?? [])] }) : null
  const owed = delivery === null ? 0 : delivery.expected
  const share = wallMs > 0 ? cpuMs / wallMs : 0
  const average = (counts: number[]): number => counts.length === 0 ? 0 : counts.reduce((a, b) => a + b, 0) / counts.length
  const loop = { p99: round(loopDelay.percentile(99) / 1e6, 2), max: round(loopDelay.max / 1e6, 2) }
  const rssMiB = round(process.memoryUsage.rss() / 2 ** 20, 1)
  return {
    windowMs: round(wallMs, 1),
    updates: { sent: updates.sent, expected: expectedUpdates, achievedShare: expectedUpdates === 0 ? null : round(updates.sent / expectedUpdates, 4) },
    latencyMs: summary(latencies),
    delivery: {
      expected: owed,
      delivered: delivery?.delivered ?? 0,
      late: delivery?.late ?? 0,
      missed: delivery?.missed ?? 0,
      ratio: owed === 0 ? null : round((delivery?.delivered ?? 0) / owed, 5)
    },
    traffic: {
      ...traffic,
      framesPerSecond: round(traffic.frames / seconds, 1),
      bytesPerSecond: Math.round(traffic.bytes / seconds),
      stillOpen: clients.filter((client) => client.open).length
    },
    cpu: { ms: round(cpuMs, 1), userMs: round(cpuUserMs, 1), shareOfOneCore: round(share, 4), saturated: share > SATURATION },
    loopDelayMs: observing ? { ...loop, observerP99: loop.p99 } : loop,
    rssMiB,
    processes: [{ role: config.role, cpuShareOfOneCore: round(share, 4), loopDelayP99Ms: loop.p99, rssMiB, clients: clients.length }],
    nodePairs: observing && delivery !== null && splitByNode()
      ? {
          same: { latencyMs: summary(sameNodeLatencies), delivery: pairDelivery(delivery.sameNode) },
          cross: { latencyMs: summary(crossNodeLatencies), delivery: pairDelivery(delivery.crossNode) }
        }
      : null,
    interest: observing && delivery !== null
      ? {
          receivedSendersPerObserver: round(average(seen.map((array) => array.reduce((a, b) => a + b, 0))), 1),
          expectedSendersPerObserver: round(average(delivery.expectedSeen.map((set) => set.size)), 1),
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

/** After the window: the load goes on until every update of the window has had its delivery deadline. */
async function finish (): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, config.deliveryMs + 250))
  if (config.scenario === 'churn') {
    const deadline = Date.now() + CONNECT_TIMEOUT_MS + 1000
    while (churn.completed + churn.failed < churn.started && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }
  // The observe process answers once the load process's log arrives (`sent-log`).
  finished = true
  if (config.role === 'load') post({ ev: 'result', result: result(null), sentLog: moving() ? ownLog() : null })
  else if (pendingLog !== null) post({ ev: 'result', result: result(pendingLog), sentLog: null })
}
let finished = false
let pendingLog: SentLog | null = null

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
        seed = config.role === 'observe' ? 0x2545f491 : 0x9e3779b9
        if (config.observers > MAX_OBSERVERS) throw new Error(`at most ${MAX_OBSERVERS} observers`)
        setup().then((report) => post({ ev: 'ready', setup: report, ids: clients.map((client) => [client.index, client.id]) }), (err: unknown) => post({ ev: 'error', message: String(err) }))
        return
      case 'ids':
        learnIds(message.ids)
        return
      case 'start':
        if (moving()) startMovers()
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
        cpuUserMs = cpu.user / 1000
        wallMs = performance.now() - wallAtStart
        finish().catch((err: unknown) => post({ ev: 'error', message: String(err) }))
        return
      }
      case 'sent-log':
        pendingLog = message.log
        if (finished) post({ ev: 'result', result: result(pendingLog), sentLog: null })
        return
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
