/**
 * Counting clients of the scenario processes: Shoal clients on the minimal
 * WebSocket client (bench/fanout/raw-ws.ts) that never assemble, copy or parse a
 * frame. A welcome can hold a whole room (about 2 MB at 15,000 users), so it is
 * recognised by its first bytes, like every other frame type; each client counts
 * its frames and bytes, and a window takes the difference between two moments.
 */
import { performance } from 'node:perf_hooks'
import { round } from '../lib/proc.js'
import { connectTo, type RawWebSocket } from '../fanout/raw-ws.js'
import { bump, errorCode, openMany, settleOnce, spreadAddress, startsWith } from '../fanout/shared.js'
import type { SetupReport } from '../fanout/protocol.js'
import type { ClientsConfig, ClientsResult, Spread, Traffic } from './protocol.js'

export const WELCOME = Buffer.from('{"type":"welcome"')
export const ERROR = Buffer.from('{"type":"error"')
export const PRESENCE = Buffer.from('{"type":"presence"')
export const PONG = Buffer.from('{"type":"pong"')

/** A frame's `type`, from its first bytes (every server frame starts with it); `binary` for compact positions. */
export function frameType (prefix: Buffer): string {
  return /^\{"type":"([a-z]+)"/.exec(prefix.toString('latin1'))?.[1] ?? 'binary'
}

export class Counted {
  frames = 0
  bytes = 0
  /** performance.now() of the welcome's arrival (whole), and its size. */
  welcomeAt = 0
  welcomeBytes = 0
  open = true
  /** Set once this process closes the client itself: that close is not counted. */
  closing = false
  constructor (readonly index: number, readonly socket: RawWebSocket) {}

  send (text: string): void {
    this.socket.send(text)
  }

  close (): void {
    this.closing = true
    this.socket.close(1000)
  }
}

export interface CountingOptions {
  baseUrl: string
  index: number
  address: string
  /** The `register` message, as sent. */
  register: string
  /** For the connect and the welcome together. */
  timeoutMs: number
  /** Where closes after the welcome are counted, by code. */
  closes: Record<string, number>
  /** Every frame, the welcome included, after it was counted. */
  onFrame?: (client: Counted, bytes: number, prefix: Buffer) => void
}

/** Connects, registers and resolves on the welcome; fails on an error frame, a close or the timeout. */
export async function openCounting (options: CountingOptions): Promise<Counted> {
  const deadline = performance.now() + options.timeoutMs
  const socket = await connectTo(options.baseUrl, '/ws', options.address, options.timeoutMs)
  return await new Promise((resolve, reject) => {
    const client = new Counted(options.index, socket)
    const once = settleOnce(Math.max(1, deadline - performance.now()), () => { client.closing = true; socket.terminate() }, resolve, reject)
    socket.collect = false
    socket.handlers = {
      frame: (bytes, prefix) => {
        client.frames++
        client.bytes += bytes
        options.onFrame?.(client, bytes, prefix)
        if (once.settled) return
        if (startsWith(prefix, WELCOME)) {
          client.welcomeAt = performance.now()
          client.welcomeBytes = bytes
          once.succeed(client)
        } else if (startsWith(prefix, ERROR)) {
          once.fail(`register: ${errorCode(prefix)}`)
        }
      },
      close: (code) => {
        client.open = false
        if (!once.settled) once.fail(`closed ${code}`)
        else if (!client.closing) bump(options.closes, String(code))
      }
    }
    socket.start()
    socket.send(options.register)
  })
}

export function spread (values: number[]): Spread {
  if (values.length === 0) return { mean: 0, max: 0 }
  let sum = 0
  let max = -Infinity
  for (const value of values) {
    sum += value
    if (value > max) max = value
  }
  return { mean: round(sum / values.length, 1), max: round(max, 1) }
}

export function traffic (frames: number, bytes: number, ms: number): Traffic {
  const seconds = Math.max(ms, 1) / 1000
  return { frames, bytes, framesPerSecond: round(frames / seconds, 1), bytesPerSecond: Math.round(bytes / seconds) }
}

/** What a set of clients received between `begin` and `end`: per client, and in all. */
export class Window {
  private started = 0
  private marks = new Map<Counted, [number, number]>()

  begin (clients: Iterable<Counted>): void {
    this.started = performance.now()
    this.marks = new Map([...clients].map((client) => [client, [client.frames, client.bytes]]))
  }

  end (): { ms: number, frames: number[], bytes: number[], traffic: Traffic } {
    const ms = performance.now() - this.started
    const frames: number[] = []
    const bytes: number[] = []
    for (const [client, [frames0, bytes0]] of this.marks) {
      frames.push(client.frames - frames0)
      bytes.push(client.bytes - bytes0)
    }
    const sum = (values: number[]): number => values.reduce((a, b) => a + b, 0)
    return { ms: round(ms, 1), frames, bytes, traffic: traffic(sum(frames), sum(bytes), ms) }
  }
}

/** Per-client rates over `ms`. */
export const perSecond = (values: number[], ms: number): number[] => values.map((value) => (value * 1000) / Math.max(ms, 1))

/** Connect and welcome of one client during setup. */
export const CONNECT_TIMEOUT_MS = 10_000

/** A scenario process's clients (one role per process): what bench/scenarios/clients.ts drives. */
export interface Role {
  /** Clients connected now. */
  readonly clients: number
  setup: () => Promise<SetupReport>
  /** `at`: epoch ms the runner gave (restart: when the restarted server answered /health). */
  start: (at: number) => void
  windowStart: () => void
  /** The window's result; null for roles without one. */
  windowEnd: () => Promise<ClientsResult | null>
  stop: () => void
}

/** Sends a result to the runner, with this process's figures since the last start or window start. */
export type Report = (result: ClientsResult) => void

/** The JSON `register` of a client. */
export function registerMessage (name: string, room: string, index: number, state?: Record<string, string>): string {
  return JSON.stringify({ type: 'register', name, room, position: { x: index % 1000, y: Math.floor(index / 1000), z: 0 }, ...(state !== undefined && { state }) })
}

/** Client `index` of a role: registered as `<name><index>` into the role's room, from a spread source address. */
export async function roomClient (config: ClientsConfig, index: number, name: string, timeoutMs: number, closes: Record<string, number>, onFrame?: CountingOptions['onFrame'], state?: Record<string, string>): Promise<Counted> {
  return await openCounting({
    baseUrl: config.baseUrl,
    index,
    address: spreadAddress(index, config.sourceAddresses),
    register: registerMessage(`${name}${index}`, config.room, index, state),
    timeoutMs,
    closes,
    onFrame
  })
}

/** Clients 0 to `count - 1` of a role, opened during setup. */
export async function openAll (config: ClientsConfig, count: number, name: string, closes: Record<string, number>, onFrame?: CountingOptions['onFrame'], state?: Record<string, string>): Promise<{ opened: Counted[], report: SetupReport }> {
  return await openMany(0, count, config.concurrency, config.setupTimeoutMs, (index) => roomClient(config, index, name, CONNECT_TIMEOUT_MS, closes, onFrame, state))
}
