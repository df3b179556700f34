/**
 * ws's WebSocket, plus a way to send bytes that many sockets get: the WebSocket
 * frame (header and payload, in one buffer) is built at the first socket and the
 * same buffer written to every other, as Socket.IO does for its broadcasts
 * (`wsPreEncodedFrame`). ws's own `send` builds a header per socket, corks the
 * socket and writes header and payload as two chunks; across a room of 15,000
 * that per-socket garbage outlives the broadcast loop and is promoted to the old
 * generation. Server frames are not masked, so every socket can take the same
 * bytes. A frame only one socket gets is built the same way, header and payload
 * in one buffer, so that it is one write. With permessage-deflate negotiated it
 * is ws's own send again.
 */
import { WebSocket, type ServerOptions } from 'ws'

/** The parts of ws's internals this uses: the sender every `send` goes through, and the negotiated extensions. */
interface Internals {
  _sender?: { sendFrame?: (list: Buffer[]) => void, _state?: number, _queue?: unknown[] } | null
  _extensions?: Record<string, unknown>
}
type FastSender = { sendFrame: (list: Buffer[]) => void }

/** ws's sender writes at once in its default state; compressing or reading a Blob, it queues. */
const SENDER_WRITES_AT_ONCE = 0

const TEXT = 0x1
const BINARY = 0x2
const FIN = 0x80

/**
 * A whole WebSocket frame (RFC 6455 section 5.2) in one buffer: FIN, no
 * extension bits, no mask (a server's frames are not masked). Text is encoded
 * straight into the frame.
 */
export function framed (payload: Uint8Array | string, binary: boolean): Buffer {
  const length = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.byteLength
  const header = length < 126 ? 2 : length < 65536 ? 4 : 10
  const frame = Buffer.allocUnsafe(header + length)
  frame[0] = FIN | (binary ? BINARY : TEXT)
  if (header === 2) {
    frame[1] = length
  } else if (header === 4) {
    frame[1] = 126
    frame.writeUInt16BE(length, 2)
  } else {
    frame[1] = 127
    frame.writeUInt32BE(Math.floor(length / 2 ** 32), 2)
    frame.writeUInt32BE(length >>> 0, 6)
  }
  if (typeof payload === 'string') frame.write(payload, header, 'utf8')
  else frame.set(payload, header)
  return frame
}

/** Each shared payload's frame, for as long as someone holds the payload. */
const frames = new WeakMap<Uint8Array, { binary: boolean, frame: Buffer }>()

function frameOf (bytes: Uint8Array, binary: boolean): Buffer {
  const known = frames.get(bytes)
  if (known?.binary === binary) return known.frame
  const frame = framed(bytes, binary)
  frames.set(bytes, { binary, frame })
  return frame
}

export class SharedFrameSocket extends WebSocket {
  /**
   * Sends `bytes` as one message (text unless `binary`), framed once for every socket
   * it is sent to. The frame is kept for as long as `bytes` is: they must not change once sent.
   */
  sendShared (bytes: Uint8Array, binary: boolean): void {
    const sender = this.writingAtOnce()
    if (sender === null) this.send(bytes, { binary })
    else sender.sendFrame([frameOf(bytes, binary)])
  }

  /**
   * Sends `data` (text, or bytes), this socket's alone, as one message: header and
   * payload in one buffer and one write, where ws's own `send` encodes text to a
   * buffer of its own and corks the socket to write header and payload apart.
   */
  sendOwn (data: Uint8Array | string, binary: boolean): void {
    const sender = this.writingAtOnce()
    if (sender === null) this.send(data, { binary })
    else sender.sendFrame([framed(data, binary)])
  }

  /**
   * ws's sender when a frame may be written to it directly. Anything else goes
   * through ws's own send, which keeps order with what it queued: a socket not
   * open, compression negotiated (each socket deflates its own), a sender busy
   * with earlier sends, or a ws whose internals moved on.
   */
  private writingAtOnce (): FastSender | null {
    const { _sender: sender, _extensions: extensions } = this as Internals
    if (this.readyState !== WebSocket.OPEN || extensions?.['permessage-deflate'] !== undefined || sender?.sendFrame === undefined ||
      sender._state !== SENDER_WRITES_AT_ONCE || (sender._queue?.length ?? 0) > 0) return null
    return sender as FastSender
  }
}

/** The ws server options of Shoal's sockets: this socket class, without compression. */
export const sharedFrameOptions: Pick<ServerOptions, 'WebSocket' | 'perMessageDeflate'> = {
  // @types/ws wants ws's class with its statics, which the subclass inherits.
  WebSocket: SharedFrameSocket as unknown as ServerOptions['WebSocket'],
  perMessageDeflate: false
}
