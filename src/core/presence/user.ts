/**
 * A live user: one that is in a room, connected or within its grace period. In a
 * cluster, users of other nodes are replicas here: `owner` names their node.
 * Its fields change only through the user store, which tells whoever listens.
 */
import type { IdentityT } from '../../../schemas/identity.js'
import type { EncodingT, InfoT, PositionT, UserT } from '../../../schemas/protocol.js'
import { positionEntry, type TextParts } from '../../protocol/frames.js'
import type { State } from './state.js'

/** What a peer is given to send: text, its UTF-8 bytes, binary bytes (with `binary`), or one text message in parts. */
export type OutboundFrame = string | Uint8Array | TextParts

export const isTextParts = (frame: OutboundFrame): frame is TextParts => Array.isArray(frame)

/** The core's view of a client connection; the transport implements it. */
export interface Peer {
  /** The user this connection speaks for; the user store links it on register, resume and takeover. */
  user: LiveUser | null
  /** How this client wants `positions`; chosen at register or reconnect. */
  readonly encoding: EncodingT
  /**
   * A text frame (a string, or its UTF-8 bytes encoded once for many recipients), a binary one, or a text
   * message in parts (see TextParts). `shared`: the same bytes go to many peers now, so a transport may frame them once.
   */
  send(frame: OutboundFrame, binary: boolean, shared?: boolean): void
  close(code: number, reason: string): void
  /** Bytes queued for this client and not yet written to the network. */
  readonly bufferedAmount: number
}

export class LiveUser {
  peer: Peer | null = null
  /** When the socket went away (ms); meaningful only while `peer` is null. */
  disconnectedAt = 0
  /** Short id for compact `positions`, unique in this process; the user store sets it. */
  sid = 0
  /** The node that has this user's socket; null for this node's own users. */
  owner: string | null = null
  /** A replica's connection state, as its owner last said. */
  remoteConnected = false
  /**
   * What the host said of this user when it connected (null: anonymous). Its
   * `userId` binds the session; a `name` in it is the user's, fixed.
   */
  identity: IdentityT | null = null
  /** Set by the host (the identity's, or `setInfo`); replaced on change, never mutated. */
  info: InfoT | undefined = undefined
  /** The host's `canUpdate` refused this user in its room: update, data and listening are `forbidden`. */
  readOnly = false
  /** The position `entry` was serialized from. */
  private entryOf: PositionT | null = null
  private entry = ''

  constructor (
    readonly id: string,
    /** Empty for replicas: their secrets live with their owner and in the session store. */
    public secretHash: string,
    public name: string,
    public room: string,
    public position: PositionT,
    public state: State,
    public listeningTo: string[]
  ) {}

  get connected (): boolean { return this.peer !== null || this.remoteConnected }

  /**
   * The user's `positions` entry, serialized once per position however many
   * frames carry it: the store gives the user a new position object on every
   * move, so the same object means the same entry.
   */
  get positionEntry (): string {
    if (this.entryOf !== this.position) {
      const { x, y, z } = this.position
      this.entry = positionEntry(this.id, x, y, z)
      this.entryOf = this.position
    }
    return this.entry
  }

  get isLocal (): boolean { return this.owner === null }

  /**
   * The user as clients see it; with its short id for clients of the compact
   * encoding. Its position, state and list are the user's own (the store replaces
   * them, never mutates them): read it now, or `copyUser` it to keep.
   */
  toWire (withSid = false): UserT {
    const wire: UserT = {
      id: this.id,
      name: this.name,
      room: this.room,
      position: this.position,
      state: this.state,
      listeningTo: this.listeningTo,
      connected: this.connected
    }
    if (withSid) wire.sid = this.sid
    if (this.identity !== null) wire.userId = this.identity.userId
    if (this.info !== undefined) wire.info = this.info
    return wire
  }
}

/** A copy that shares nothing with the live user: ordinary objects the holder may keep or change. */
export function copyUser (wire: UserT): UserT {
  const copy = { ...wire, position: { ...wire.position }, state: { ...wire.state }, listeningTo: [...wire.listeningTo] }
  if (wire.info !== undefined) copy.info = structuredClone(wire.info)
  return copy
}
