/**
 * ws's WebSocket, plus a way to send bytes that many sockets get: the WebSocket
 * frame (header and payload, in one buffer) is built at the first socket and the
 * same buffer written to every other, as Socket.IO does for its broadcasts
 * (`wsPreEncodedFrame`). ws's own `send` builds a header per socket, corks the
 * socket and writes header and payload as two chunks; across a room of 15,000
 * that per-socket garbage outlives the broadcast loop and is promoted to the old
 * generation. Server frames are not masked, so every socket can take the same
 * bytes. Used only where Shoal configures ws itself, without permessage-deflate.
 */
import type { WebsocketPluginOptions } from '@fastify/websocket'
import * as ws from 'ws'
import { WebSocket } from 'ws'

/** ws's frame builder: exported by ws (lib/sender.js), not declared by @types/ws. */
const { Sender } = ws as unknown as {
  Sender: { frame (data: Buffer, options: { fin: boolean, opcode: number, mask: boolean, readOnly: boolean, rsv1: boolean }): Buffer[] }
}

/** The part of ws's internals this uses: the sender every `send` goes through, so frames stay in order. */
interface WithSender {
  _sender?: { sendFrame (list: Buffer[]): void } | null
}

const TEXT = 0x1
const BINARY = 0x2

/** Each payload's frame, for as long as someone holds the payload. */
const frames = new WeakMap<Uint8Array, { opcode: number, frame: Buffer }>()

function frameOf (bytes: Uint8Array, opcode: number): Buffer {
  const known = frames.get(bytes)
  if (known?.opcode === opcode) return known.frame
  const payload = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const frame = Buffer.concat(Sender.frame(payload, { fin: true, opcode, mask: false, readOnly: false, rsv1: false }))
  frames.set(bytes, { opcode, frame })
  return frame
}

export class SharedFrameSocket extends WebSocket {
  /** Sends `bytes` as one message (text unless `binary`), framed once for every socket it is sent to. */
  sendShared (bytes: Uint8Array, binary: boolean): void {
    const sender = (this as WithSender)._sender
    // A ws whose internals moved on: its own send, correct if not shared.
    if (sender === undefined || sender === null || typeof sender.sendFrame !== 'function') {
      this.send(bytes, { binary })
      return
    }
    sender.sendFrame([frameOf(bytes, binary ? BINARY : TEXT)])
  }
}

/**
 * What Shoal passes @fastify/websocket's `options` (and what a host that registers
 * it itself may spread into its own): this socket class, without compression.
 */
export const sharedFrameOptions: Pick<NonNullable<WebsocketPluginOptions['options']>, 'WebSocket' | 'perMessageDeflate'> = {
  // @types/ws wants ws's class with its statics, which the subclass inherits.
  WebSocket: SharedFrameSocket as unknown as NonNullable<WebsocketPluginOptions['options']>['WebSocket'],
  perMessageDeflate: false
}
