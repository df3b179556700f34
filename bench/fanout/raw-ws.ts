/**
 * A minimal RFC 6455 WebSocket client for the load generator's counting clients:
 * a plain TCP socket, the HTTP/1.1 upgrade (with the Sec-WebSocket-Accept check),
 * masked text frames out, and an incremental frame parser in. Server data messages,
 * text (opcode 1) and binary (opcode 2, e.g. Shoal's compact `positions`) alike,
 * are counted (messages and payload bytes) without being copied, joined or decoded,
 * unless the client asks for the next text messages whole (during the handshake of
 * the application protocol, e.g. until Shoal's `welcome`). Reads go through
 * `onread` into one buffer shared by all sockets (no allocation per read, no
 * stream machinery). Pings get their pong, a close frame gets its close reply.
 *
 * Why not `ws` for these: on this 2-core machine the generator has one core for
 * thousands of clients; `ws`'s receiver (a Writable stream per socket, a Buffer per
 * frame, concatenation of frames split over TCP reads, an event per message) costs
 * about as much per frame as the server's send does, so with `ws` everywhere the
 * generator saturates before the baselines do. The server sees exactly the same
 * traffic either way. Observers and churn clients still use `ws` (and
 * socket.io-client): they are few, or their cost is the connection itself.
 */
import { createHash, randomBytes } from 'node:crypto'
import { connect, type Socket } from 'node:net'

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'
/** How much of each message's start the `frame` handler sees: enough for a Shoal frame's type and an error's code. */
export const PREFIX_BYTES = 64

/** Every socket's reads land here, one read at a time (the callbacks are synchronous). */
const readBuffer = Buffer.allocUnsafe(256 * 1024)

/** Masking keys come from a pool of random bytes refilled 4 KiB at a time. */
let pool = randomBytes(4096)
let poolOffset = 0
function maskKey (): Buffer {
  if (poolOffset + 4 > pool.length) {
    pool = randomBytes(4096)
    poolOffset = 0
  }
  poolOffset += 4
  return pool.subarray(poolOffset - 4, poolOffset)
}

/** Connects to `path` on a `ws://host:port` base URL, from `localAddress`. */
export async function connectTo (baseUrl: string, path: string, localAddress: string, timeoutMs: number): Promise<RawWebSocket> {
  const url = new URL(baseUrl)
  return await RawWebSocket.connect({ host: url.hostname, port: Number(url.port), path, localAddress, timeoutMs })
}

export interface RawWsOptions {
  host: string
  port: number
  path: string
  localAddress?: string
  timeoutMs: number
}

export interface RawWsHandlers {
  /** A text message, delivered whole, while `collect` is on (binary messages are not). */
  text?: (text: string) => void
  /** Every complete data message, text or binary: its payload length and its first (up to PREFIX_BYTES) bytes, collected or not. */
  frame?: (bytes: number, prefix: Buffer, binary: boolean) => void
  ping?: () => void
  close?: (code: number) => void
}

/** One WebSocket connection; `collect` decides whether data messages are assembled as text. */
export class RawWebSocket {
  collect = true
  open = false
  handlers: RawWsHandlers = {}
  private readonly socket: Socket
  // Frame parser state.
  private header = Buffer.alloc(14)
  private headerLength = 0
  /** The frame being read: a control opcode (≥ 8), or a data frame's (0 for a continuation). */
  private frameOpcode = 0
  /** The data message being read: 1 text, 2 binary; its continuation frames (and control frames between them) keep it. */
  private messageOpcode = 0
  private fin = false
  private remaining = 0
  private messageBytes = 0
  private readonly prefix = Buffer.alloc(PREFIX_BYTES)
  private prefixLength = 0
  private parts: Buffer[] = []
  private control: Buffer[] = []
  private closed = false
  /** Data that arrived before `start()`: the handlers are not set yet. */
  private pending: Buffer[] | null = []

  private constructor (socket: Socket) {
    this.socket = socket
  }

  /** Connects and completes the upgrade; rejects on any failure or after `timeoutMs`. */
  static async connect (options: RawWsOptions): Promise<RawWebSocket> {
    return await new Promise((resolve, reject) => {
      // Reads land in one buffer shared by every socket (`onread`): no allocation, no stream, no 'data' event per read.
      let sink: (chunk: Buffer) => void = () => {}
      const socket = connect({
        host: options.host,
        port: options.port,
        localAddress: options.localAddress,
        onread: { buffer: readBuffer, callback: (bytes) => { sink(readBuffer.subarray(0, bytes)); return true } }
      })
      socket.setNoDelay(true)
      const key = randomBytes(16).toString('base64')
      const accept = createHash('sha1').update(key + GUID).digest('base64')
      let head: Buffer = Buffer.alloc(0)
      let done = false
      const fail = (why: string): void => {
        if (done) return
        done = true
        clearTimeout(timer)
        socket.destroy()
        reject(new Error(why))
      }
      const timer = setTimeout(() => fail('timeout'), options.timeoutMs)
      socket.once('error', (err) => fail((err as { code?: string }).code ?? err.message))
      socket.once('close', () => fail('closed during upgrade'))
      socket.once('connect', () => {
        socket.write(`GET ${options.path} HTTP/1.1\r\nHost: ${options.host}:${options.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`)
      })
      const onHead = (chunk: Buffer): void => {
        head = Buffer.concat([head, chunk]) // a copy: `chunk` is the shared read buffer
        const end = head.indexOf('\r\n\r\n')
        if (end === -1) {
          if (head.length > 16_384) fail('upgrade response too long')
          return
        }
        const response = head.subarray(0, end).toString('latin1')
        const status = /^HTTP\/1\.1 (\d{3})/.exec(response)?.[1]
        if (status !== '101') return fail(`http ${status ?? '?'}`)
        if (!new RegExp(`^sec-websocket-accept:\\s*${accept.replace(/[+/=]/g, '\\$&')}\\s*$`, 'im').test(response)) return fail('bad Sec-WebSocket-Accept')
        done = true
        clearTimeout(timer)
        socket.removeAllListeners('close')
        socket.removeAllListeners('error')
        const ws = new RawWebSocket(socket)
        ws.open = true
        const rest = head.subarray(end + 4)
        if (rest.length > 0) ws.pending?.push(rest)
        sink = (data) => {
          if (ws.pending === null) ws.onData(data)
          else ws.pending.push(Buffer.from(data))
        }
        socket.on('error', () => {})
        socket.on('close', () => ws.onSocketClose())
        resolve(ws)
      }
      sink = onHead
    })
  }

  /** Starts reading frames; call it once `handlers` are set (data that came earlier is replayed). */
  start (): void {
    const pending = this.pending ?? []
    this.pending = null
    for (const data of pending) this.onData(data)
  }

  /** Sends one masked text frame. */
  send (text: string): void {
    if (!this.open) return
    const payload = Buffer.from(text)
    const length = payload.length
    const headerLength = length < 126 ? 6 : length < 65_536 ? 8 : 14
    const frame = Buffer.allocUnsafe(headerLength + length)
    frame[0] = 0x81
    if (length < 126) {
      frame[1] = 0x80 | length
    } else if (length < 65_536) {
      frame[1] = 0x80 | 126
      frame.writeUInt16BE(length, 2)
    } else {
      frame[1] = 0x80 | 127
      frame.writeBigUInt64BE(BigInt(length), 2)
    }
    this.writeMasked(frame, headerLength, payload)
  }

  /** Starts the closing handshake (or just ends the socket if it is not open). */
  close (code = 1000): void {
    if (this.open) {
      this.open = false
      this.sendControl(0x8, Buffer.from([code >> 8, code & 0xff]))
      setTimeout(() => this.socket.destroy(), 1000).unref()
    } else {
      this.socket.destroy()
    }
  }

  terminate (): void {
    this.open = false
    this.socket.destroy()
  }

  private writeMasked (frame: Buffer, headerLength: number, payload: Buffer): void {
    const mask = maskKey()
    mask.copy(frame, headerLength - 4)
    for (let i = 0; i < payload.length; i++) frame[headerLength + i] = (payload[i] ?? 0) ^ (mask[i & 3] ?? 0)
    this.socket.write(frame)
  }

  private sendControl (opcode: number, payload: Buffer): void {
    const frame = Buffer.allocUnsafe(6 + payload.length)
    frame[0] = 0x80 | opcode
    frame[1] = 0x80 | payload.length
    this.writeMasked(frame, 6, payload)
  }

  private onSocketClose (): void {
    if (this.closed) return
    this.closed = true
    this.open = false
    this.handlers.close?.(1006)
  }

  private onData (data: Buffer): void {
    let i = 0
    while (i < data.length) {
      if (this.remaining > 0) {
        const take = Math.min(this.remaining, data.length - i)
        // Copies where a part is kept: `data` is the shared read buffer, overwritten by the next read.
        if (this.frameOpcode >= 0x8) this.control.push(Buffer.from(data.subarray(i, i + take)))
        else {
          if (this.collect) this.parts.push(Buffer.from(data.subarray(i, i + take)))
          if (this.prefixLength < PREFIX_BYTES) this.prefixLength += data.copy(this.prefix, this.prefixLength, i, i + Math.min(take, PREFIX_BYTES - this.prefixLength))
          this.messageBytes += take
        }
        this.remaining -= take
        i += take
        if (this.remaining === 0) this.endFrame()
        continue
      }
      // Header: 2 bytes, then 0, 2 or 8 bytes of extended length (server frames carry no mask).
      this.header[this.headerLength++] = data[i++] ?? 0
      if (this.headerLength < 2) continue
      const short = (this.header[1] ?? 0) & 0x7f
      const needed = 2 + (short === 126 ? 2 : short === 127 ? 8 : 0) + (((this.header[1] ?? 0) & 0x80) !== 0 ? 4 : 0)
      if (this.headerLength < needed) continue
      const byte0 = this.header[0] ?? 0
      const opcode = byte0 & 0x0f
      this.fin = (byte0 & 0x80) !== 0
      this.frameOpcode = opcode
      if (opcode === 0x1 || opcode === 0x2) this.messageOpcode = opcode
      this.remaining = short === 126 ? this.header.readUInt16BE(2) : short === 127 ? Number(this.header.readBigUInt64BE(2)) : short
      this.headerLength = 0
      if (this.remaining === 0) this.endFrame()
    }
  }

  private endFrame (): void {
    const opcode = this.frameOpcode
    if (opcode >= 0x8) {
      const payload = this.control.length === 1 ? this.control[0] ?? Buffer.alloc(0) : Buffer.concat(this.control)
      this.control = []
      this.frameOpcode = 0
      if (opcode === 0x9) {
        this.handlers.ping?.()
        if (this.open) this.sendControl(0xa, payload)
      } else if (opcode === 0x8) {
        const code = payload.length >= 2 ? payload.readUInt16BE(0) : 1005
        if (this.open) this.sendControl(0x8, payload.subarray(0, 2))
        this.open = false
        if (!this.closed) {
          this.closed = true
          this.handlers.close?.(code)
        }
        this.socket.end()
      }
      return
    }
    if (!this.fin) return // a fragmented message continues
    const bytes = this.messageBytes
    const prefixLength = this.prefixLength
    const binary = this.messageOpcode === 0x2
    this.messageBytes = 0
    this.prefixLength = 0
    this.handlers.frame?.(bytes, this.prefix.subarray(0, prefixLength), binary)
    if (this.collect) {
      const parts = this.parts
      this.parts = []
      if (!binary) this.handlers.text?.(parts.length === 1 ? (parts[0] ?? Buffer.alloc(0)).toString() : Buffer.concat(parts).toString())
    }
  }
}
