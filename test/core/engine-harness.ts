/** The engine with its real parts and a fake socket per client, on a manual clock: what the core tests drive. */
import type { ServerMessageT } from '../../schemas/protocol.js'
import { ManualClock } from '../../src/core/clock.js'
import { Access, type AccessHooks } from '../../src/core/access.js'
import { CustomMessages } from '../../src/core/custom-messages.js'
import { Engine, type EngineLog, type EngineMeter, type Upgrade } from '../../src/core/engine.js'
import { Broadcaster, type BroadcastMeter, type PresencePacing } from '../../src/core/presence/broadcaster.js'
import { UserStore } from '../../src/core/presence/user-store.js'
import { MemorySessionStore } from '../../src/core/sessions/session-store.js'
import { SessionManager } from '../../src/core/sessions/sessions.js'
import type { Socket } from '../../src/core/transport/connection.js'
import { ConnectionRegistry } from '../../src/core/transport/connections.js'
import { AddressLimiter } from '../../src/core/transport/rate-limit.js'
import type { FrameOf } from './fakes.js'

const OPEN = 1
const CLOSED = 3

/** ws's few methods, recording what the engine does with them. */
export class FakeSocket implements Socket {
  readyState = OPEN
  bufferedAmount = 0
  readonly sent: Array<string | Uint8Array> = []
  readonly closes: Array<{ code: number, reason: string }> = []
  terminated = false
  pings = 0

  /** The fragments of a text message not finished yet, as sent. */
  readonly fragments: Uint8Array[] = []
  /** Messages that came in more than one fragment, as sent. */
  readonly fragmented: Uint8Array[][] = []
  /** The bytes sent as the same for many sockets (what SharedFrameSocket frames once), as sent. */
  readonly shared: Uint8Array[] = []

  /** Text frames are kept as text, however they were sent (a string, bytes encoded once for many, or fragments of one message). */
  send (data: string | Uint8Array, options: { binary: boolean, fin?: boolean }): void {
    if (options.fin === false || this.fragments.length > 0) {
      this.fragments.push(data as Uint8Array)
      if (options.fin === false) return
      const parts = this.fragments.splice(0)
      this.fragmented.push(parts)
      this.sent.push(Buffer.concat(parts).toString())
      return
    }
    this.sent.push(options.binary || typeof data === 'string' ? data : Buffer.from(data).toString())
  }

  sendShared (bytes: Uint8Array, binary: boolean): void {
    this.shared.push(bytes)
    this.send(bytes, { binary })
  }

  close (code: number, reason: string): void { this.closes.push({ code, reason }); this.readyState = CLOSED }
  terminate (): void { this.terminated = true; this.readyState = CLOSED }
  ping (): void { this.pings++ }

  get frames (): ServerMessageT[] {
    return this.sent.filter((frame): frame is string => typeof frame === 'string').map((text) => JSON.parse(text) as ServerMessageT)
  }

  ofType<T extends ServerMessageT['type']> (type: T): Array<FrameOf<T>> {
    return this.frames.filter((frame) => frame.type === type) as Array<FrameOf<T>>
  }

  /** The one frame of `type` received so far. */
  only<T extends ServerMessageT['type']> (type: T): FrameOf<T> {
    const frames = this.ofType(type)
    if (frames.length !== 1) throw new Error(`expected one ${type}, got ${frames.length}: ${JSON.stringify(this.frames).slice(0, 300)}`)
    return frames[0] as FrameOf<T>
  }

  clear (): void { this.sent.length = 0 }
}

class RecordingMeter {
  readonly received: string[] = []
  readonly errors: string[] = []
  // Arrow properties: the broadcaster and the engine call these detached.
  readonly meter: EngineMeter & BroadcastMeter = {
    received: (type: string) => { this.received.push(type) },
    error: (code: string) => { this.errors.push(code) },
    sent () {},
    skipped () {},
    closedSlow () {}
  }
}

const quietLog: EngineLog = { debug () {}, warn () {}, error () {} }

export interface HarnessLimits {
  registerLimit?: number
  messagesPerSecond?: number
  messageBurst?: number
  maxConnectionsPerAddress?: number
  maxRoomSize?: number
  /** Presence pacing; none (every tick's changes at once) when absent. */
  pacing?: PresencePacing
  /** Where the engine logs; nowhere when absent. */
  log?: EngineLog
  /** The host's identity and permission hooks; none when absent. */
  access?: AccessHooks
  /** How long a hook may take (default 5 s). */
  hookTimeoutMs?: number
}

export function setup (limits: HarnessLimits = {}) {
  const clock = new ManualClock()
  const users = new UserStore()
  const store = new MemorySessionStore()
  const sessions = new SessionManager(users, store, clock, { graceMs: 1000, sessionTtlMs: 60_000 })
  const recorded = new RecordingMeter()
  const broadcaster = new Broadcaster(users, clock, { slowReaderSkipBytes: 1e6, slowReaderCloseBytes: 1e7, ...limits.pacing }, recorded.meter)
  const connections = new ConnectionRegistry(10, async () => { await sessions.flush() })
  const engine = new Engine({
    settings: { tickHz: 20, heartbeatMs: 10_000, maxPayload: 16_384, messagesPerSecond: limits.messagesPerSecond ?? 10, messageBurst: limits.messageBurst ?? 20, registerTimeoutMs: 1000, maxConnectionsPerAddress: limits.maxConnectionsPerAddress ?? 100, snapshotsPerSecond: 1, snapshotBurst: 5, maxRoomSize: limits.maxRoomSize ?? 0 },
    clock,
    users,
    sessions,
    broadcaster,
    connections,
    registrations: new AddressLimiter(limits.registerLimit ?? 30, 60_000),
    feeds: { framesFor: () => [] },
    meter: recorded.meter,
    log: limits.log ?? quietLog,
    access: new Access(limits.access ?? {}, limits.log ?? quietLog, limits.hookTimeoutMs),
    messages: new CustomMessages()
  })
  /** A client: its socket, its connection, and what it sends as text; `upgrade` is what authorize said of it. */
  const connect = (address = '10.0.0.1', upgrade?: Upgrade) => {
    const socket = new FakeSocket()
    const connection = engine.open(socket, address, upgrade)
    const send = (message: unknown): void => engine.receive(connection, Buffer.from(typeof message === 'string' ? message : JSON.stringify(message)), false)
    return { socket, connection, send }
  }
  const registered = (name: string, room = 'r1') => {
    const client = connect()
    client.send({ type: 'register', name, room })
    const welcome = client.socket.only('welcome')
    client.socket.clear()
    return { ...client, welcome, id: welcome.id }
  }
  return { clock, users, store, sessions, broadcaster, connections, engine, recorded, connect, registered }
}

/** Lets queued handlers (reconnect awaits its store) run. */
export const settle = async (): Promise<void> => { for (let i = 0; i < 10; i++) await Promise.resolve() }

export const errorOf = (socket: FakeSocket): { code: string, ref?: string | undefined } => {
  const error = socket.only('error')
  return { code: error.code, ref: error.ref }
}
