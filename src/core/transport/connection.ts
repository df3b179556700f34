/**
 * One client connection as the core sees it: the peer a user speaks through,
 * its message limiter, and an ordered queue for its inbound messages.
 */
import type { IdentityT } from '../../../schemas/identity.js'
import type { EncodingT } from '../../../schemas/protocol.js'
import type { MessageLimiter, TokenBucket } from './rate-limit.js'
import { isTextParts, type LiveUser, type OutboundFrame, type Peer } from '../presence/user.js'

/** The part of a WebSocket (ws's API) that a connection uses. */
export interface Socket {
  readonly readyState: number
  readonly bufferedAmount: number
  send(data: string | Uint8Array, options: { binary: boolean, fin?: boolean }): void
  /** Sends bytes that many sockets get, framed once for all of them (SharedFrameSocket); without it, `send`. */
  sendShared?: (bytes: Uint8Array, binary: boolean) => void
  /** Sends text or bytes only this socket gets as one frame in one write (SharedFrameSocket); without it, `send`. */
  sendOwn?: (data: Uint8Array | string, binary: boolean) => void
  close(code: number, reason: string): void
  terminate(): void
  ping(): void
}

const OPEN = 1

/** What the transport knows of a socket's upgrade: the identity `authorize` gave, and the request, kept only for `authenticate`. */
export interface Upgrade {
  readonly identity: IdentityT | null
  readonly request?: unknown
}

/** The upgrade of an anonymous socket: one object for all of them. */
export const ANONYMOUS: Upgrade = Object.freeze({ identity: null })

export class Connection implements Peer {
  user: LiveUser | null = null
  /** Answered the last heartbeat ping. */
  alive = true
  /** Set once the socket has closed; late results of async handlers are then dropped. */
  closed = false
  encoding: EncodingT = 'json'
  /** The budget of join and sync, made at the first of them (most connections never send one). */
  snapshots: TokenBucket | null = null
  /** What the upgrade said of the client (the identity from `authorize`); set by the engine at open. */
  upgrade: Upgrade = ANONYMOUS
  /** Messages of host types whose handler has not answered yet. */
  pendingRequests = 0

  /** Open for traffic: a socket that is closing takes no more messages either way. */
  get isOpen (): boolean { return this.socket.readyState === OPEN }
  private tail: Promise<void> | null = null

  constructor (
    readonly socket: Socket,
    /** Remote address, for the per-address limits. */
    readonly address: string,
    /** When the socket opened (ms): it must register or reconnect within registerTimeoutMs. */
    readonly openedAt: number,
    readonly limiter: MessageLimiter,
    private readonly onTaskError: (err: unknown) => void
  ) {}

  get bufferedAmount (): number { return this.socket.bufferedAmount }

  send (frame: OutboundFrame, binary: boolean, shared = false): void {
    if (this.socket.readyState !== OPEN) return
    if (shared && frame instanceof Uint8Array && this.socket.sendShared !== undefined) {
      this.socket.sendShared(frame, binary)
      return
    }
    if (!shared && !isTextParts(frame) && this.socket.sendOwn !== undefined) {
      this.socket.sendOwn(frame, binary)
      return
    }
    if (!isTextParts(frame)) {
      this.socket.send(frame, { binary })
      return
    }
    // One text message: the first part opens it, the others continue it, the last ends it.
    const last = frame.length - 1
    for (let i = 0; i <= last; i++) this.socket.send(frame[i] as Uint8Array, { binary: false, fin: i === last })
  }

  close (code: number, reason: string): void {
    if (this.socket.readyState === OPEN) this.socket.close(code, reason)
  }

  /**
   * Runs `task` after every earlier task of this connection has finished, so that
   * a message sent right after `reconnect` sees the resumed user.
   */
  serially (task: () => void | Promise<void>): void {
    if (this.tail === null) {
      let result: void | Promise<void>
      try {
        result = task()
      } catch (err) {
        this.onTaskError(err)
        return
      }
      if (result instanceof Promise) this.track(result)
    } else {
      this.track(this.tail.then(task))
    }
  }

  private track (work: Promise<void>): void {
    const tail: Promise<void> = work.catch(this.onTaskError).then(() => {
      if (this.tail === tail) this.tail = null
    })
    this.tail = tail
  }
}
