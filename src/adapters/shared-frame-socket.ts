/**
 * ws's WebSocket, plus a way to send bytes that many sockets get: the WebSocket
 * frame (header and payload, in one buffer) is built at the first socket and the
 * same buffer written to every other, as Socket.IO does for its broadcasts
 * (`wsPreEncodedFrame`). ws's own `send` builds a header per socket, corks the
 * socket and writes header and payload as two chunks; across a room of 15,000
 * that per-socket garbage outlives the broadcast loop and is promoted to the old
 * generation. Server frames are not masked, so every socket can take the same
 * bytes. With permessage-deflate negotiated it is ws's own send again.
 */
import * as ws from 'ws'
import { WebSocket, type ServerOptions } from 'ws'

/** ws's frame builder: exported by ws (lib/sender.js), not declared by @types/ws. */
const { Sender } = ws as unknown as {
  Sender?: { frame?: (data: Buffer, options: { fin: boolean, opcode: number, mask: boolean, readOnly: boolean, rsv1: boolean }) => Buffer[] }
}
const buildFrame = Sender?.frame

/** The parts of ws's internals this uses: the sender every `send` goes through, and the negotiated extensions. */
interface Internals {
  _sender?: { sendFrame?: (list: Buffer[]) => void, _state?: number, _queue?: unknown[] } | null
  _extensions?: Record<string, unknown>
}

/** ws's sender writes at once in its default state; compressing or reading a Blob, it queues. */
const SENDER_WRITES_AT_ONCE = 0

const TEXT = 0x1
const BINARY = 0x2

/** Each payload's frame, for as long as someone holds the payload. */
const frames = new WeakMap<Uint8Array, { opcode: number, frame: Buffer }>()

function frameOf (bytes: Uint8Array, opcode: number, build: NonNullable<typeof buildFrame>): Buffer {
  const known = frames.get(bytes)
  if (known?.opcode === opcode) return known.frame
  const payload = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const frame = Buffer.concat(build(payload, { fin: true, opcode, mask: false, readOnly: false, rsv1: false }))
  frames.set(bytes, { opcode, frame })
  return frame
}

export class SharedFrameSocket extends WebSocket {
  /**
   * Sends `bytes` as one message (text unless `binary`), framed once for every socket
   * it is sent to. The frame is kept for as long as `bytes` is: they must not change once sent.
   */
  sendShared (bytes: Uint8Array, binary: boolean): void {
    const { _sender: sender, _extensions: extensions } = this as Internals
    // Anything else goes through ws's own send, which keeps order with what it queued:
    // a socket not open, compression negotiated (each socket deflates its own),
    // a sender busy with earlier sends, or a ws whose internals moved on.
    if (this.readyState !== WebSocket.OPEN || buildFrame === undefined || extensions?.['permessage-deflate'] !== undefined ||
      sender?.sendFrame === undefined || sender._state !== SENDER_WRITES_AT_ONCE || (sender._queue?.length ?? 0) > 0) {
      this.send(bytes, { binary })
      return
    }
    sender.sendFrame([frameOf(bytes, binary ? BINARY : TEXT, buildFrame)])
  }
}

/** The ws server options of Shoal's sockets: this socket class, without compression. */
export const sharedFrameOptions: Pick<ServerOptions, 'WebSocket' | 'perMessageDeflate'> = {
  // @types/ws wants ws's class with its statics, which the subclass inherits.
  WebSocket: SharedFrameSocket as unknown as ServerOptions['WebSocket'],
  perMessageDeflate: false
}
