/**
 * A big room's welcome over a real socket: one text message sent in fragments
 * (RFC 6455 section 5.4), which a WebSocket library hands over whole. The raw
 * client reads the frames themselves, as a client library sees them.
 */
import { randomBytes } from 'node:crypto'
import { connect, type Socket } from 'node:net'
import t from 'tap'
import type { WelcomeMessageT } from '../../schemas/protocol.js'
import { harness } from '../helpers.js'
import { within } from '../wait.js'

interface RawFrame { fin: boolean, opcode: number, payload: Buffer }

/** Frames as they come off the socket after the upgrade's response (server frames are never masked). */
class FrameReader {
  private buffered = Buffer.alloc(0)
  private upgraded = false
  private readonly frames: RawFrame[] = []
  private wake: (() => void) | null = null

  constructor (socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffered = Buffer.concat([this.buffered, chunk])
      this.parse()
      this.wake?.()
    })
  }

  private parse (): void {
    if (!this.upgraded) {
      const end = this.buffered.indexOf('\r\n\r\n')
      if (end < 0) return
      if (!this.buffered.subarray(0, end).toString().startsWith('HTTP/1.1 101')) throw new Error(this.buffered.toString())
      this.upgraded = true
      this.buffered = this.buffered.subarray(end + 4)
    }
    for (;;) {
      if (this.buffered.length < 2) return
      const short = (this.buffered[1] as number) & 0x7f
      const headerLength = short === 126 ? 4 : short === 127 ? 10 : 2
      if (this.buffered.length < headerLength) return
      const length = short === 126 ? this.buffered.readUInt16BE(2) : short === 127 ? Number(this.buffered.readBigUInt64BE(2)) : short
      if (this.buffered.length < headerLength + length) return
      const byte0 = this.buffered[0] as number
      this.frames.push({ fin: (byte0 & 0x80) !== 0, opcode: byte0 & 0x0f, payload: this.buffered.subarray(headerLength, headerLength + length) })
      this.buffered = this.buffered.subarray(headerLength + length)
    }
  }

  /** The frames of the next whole data message. */
  async message (): Promise<RawFrame[]> {
    for (;;) {
      const last = this.frames.findIndex((frame) => frame.opcode < 8 && frame.fin)
      if (last >= 0) return this.frames.splice(0, last + 1).filter((frame) => frame.opcode < 8)
      await new Promise<void>((resolve) => { this.wake = resolve })
    }
  }
}

/** A client frame: masked, as the protocol requires of clients. */
function maskedText (text: string): Buffer {
  const payload = Buffer.from(text)
  const mask = randomBytes(4)
  const header = payload.length < 126 ? Buffer.from([0x81, 0x80 | payload.length]) : Buffer.from([0x81, 0x80 | 126, payload.length >> 8, payload.length & 0xff])
  return Buffer.concat([header, mask, payload.map((byte, i) => byte ^ (mask[i % 4] as number))])
}

t.test('a welcome bigger than one frame is one text message in fragments; a WebSocket client gets it whole', async (t) => {
  const { server, join } = await harness(t, { registerLimit: 100 })
  const state = Object.fromEntries(Array.from({ length: 7 }, (_, i) => [`k${i}`, 'x'.repeat(250)]))
  for (let i = 0; i < 40; i++) await join({ name: `m${i}`, room: 'big', state })

  const { welcome } = await join({ name: 'library', room: 'big' })
  t.equal(welcome.users.length, 40, 'ws hands over the whole message')
  t.strictSame(welcome.users.map((user) => user.state), Array(40).fill(state))

  const url = new URL(server.wsUrl)
  const socket = connect(Number(url.port), url.hostname)
  t.teardown(() => socket.destroy())
  const reader = new FrameReader(socket)
  socket.write(`GET ${url.pathname} HTTP/1.1\r\nHost: ${url.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`)
  socket.write(maskedText(JSON.stringify({ type: 'register', name: 'raw', room: 'big' })))
  const frames = await within('the raw client\'s welcome (a whole message of frames)', reader.message())
  t.ok(frames.length > 1, `${frames.length} fragments`)
  t.strictSame(frames.map((frame) => frame.opcode), [1, ...Array(frames.length - 1).fill(0)], 'a text frame, then continuation frames')
  t.strictSame(frames.map((frame) => frame.fin), [...Array(frames.length - 1).fill(false), true], 'only the last ends the message')
  const raw = JSON.parse(Buffer.concat(frames.map((frame) => frame.payload)).toString()) as WelcomeMessageT
  t.equal(raw.type, 'welcome')
  t.equal(raw.users.length, 41, 'the members and the other newcomer')
})
