/** Fakes shared by the unit tests: a recording peer and a user factory. */
import { randomUUID } from 'node:crypto'
import type t from 'tap'
import type { EncodingT, PositionT, ServerMessageT } from '../../schemas/protocol.js'
import { emptyState, type State } from '../../src/core/presence/state.js'
import { isTextParts, LiveUser, type OutboundFrame, type Peer } from '../../src/core/presence/user.js'

/** The text of a message sent in parts. */
export const textOf = (parts: readonly Uint8Array[]): string => Buffer.concat(parts).toString()

/** How many times `run` calls JSON.stringify: what a step serializes. */
export function serializationsDuring (run: () => void): number {
  const stringify = JSON.stringify
  let count = 0
  JSON.stringify = ((...args: Parameters<typeof JSON.stringify>) => { count++; return stringify(...args) }) as typeof JSON.stringify
  try { run() } finally { JSON.stringify = stringify }
  return count
}

/** A tap test object, as passed to `t.test` callbacks. */
export type TapTest = Parameters<Parameters<typeof t.test>[0]>[0]

export type Frame = ServerMessageT
export type FrameOf<T extends Frame['type']> = Extract<Frame, { type: T }>

/** A client connection that records every frame (text, parsed, binary) and close call. */
export class FakePeer implements Peer {
  user: LiveUser | null = null
  bufferedAmount = 0
  readonly raw: string[] = []
  readonly binary: Uint8Array[] = []
  readonly closes: Array<{ code: number, reason: string }> = []

  constructor (public encoding: EncodingT = 'json') {}

  send (frame: OutboundFrame, binary = frame instanceof Uint8Array): void {
    if (isTextParts(frame)) this.raw.push(textOf(frame))
    else if (binary) this.binary.push(frame as Uint8Array)
    else this.raw.push(typeof frame === 'string' ? frame : Buffer.from(frame).toString())
  }

  close (code: number, reason: string): void {
    this.closes.push({ code, reason })
  }

  get frames (): Frame[] {
    return this.raw.map((text) => JSON.parse(text) as Frame)
  }

  /** Parsed frames of one type. */
  ofType<T extends Frame['type']> (type: T): Array<FrameOf<T>> {
    return this.frames.filter((frame) => frame.type === type) as Array<FrameOf<T>>
  }

  /** Forgets what was received so far. */
  clear (): void {
    this.raw.length = 0
    this.binary.length = 0
  }
}

export interface UserFields {
  id?: string
  secretHash?: string
  name?: string
  room?: string
  position?: PositionT
  state?: Record<string, string | number | boolean>
  listeningTo?: string[]
}

export function stateOf (values: Record<string, string | number | boolean>): State {
  return Object.assign(emptyState(), values)
}

/** A live user, not connected (no peer). */
export function makeUser (fields: UserFields = {}): LiveUser {
  const id = fields.id ?? randomUUID()
  return new LiveUser(
    id,
    fields.secretHash ?? `hash-${id}`,
    fields.name ?? 'user',
    fields.room ?? 'lobby',
    fields.position ?? { x: 0, y: 0, z: 0 },
    stateOf(fields.state ?? {}),
    fields.listeningTo ?? []
  )
}

/** The users' positions as `positions` entries. */
export function positionsOf (users: Iterable<LiveUser>): Array<[string, number, number, number]> {
  return [...users].map((user) => [user.id, user.position.x, user.position.y, user.position.z])
}

/** Attaches a fresh fake peer to `user` (both directions) and returns it. */
export function attach (user: LiveUser, peer: FakePeer = new FakePeer()): FakePeer {
  user.peer = peer
  peer.user = user
  return peer
}

/** A connected user and its peer. */
export function connectedUser (fields: UserFields = {}): { user: LiveUser, peer: FakePeer } {
  const user = makeUser(fields)
  return { user, peer: attach(user) }
}
