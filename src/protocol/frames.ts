/**
 * Frame builders: every text frame the server sends, and the client's messages,
 * are made here. No Node imports: the browser client shares this file.
 *
 * Fan-out frames are built from parts serialized once per tick (a payload, a
 * position entry), so no builder re-serializes what the caller already has.
 */
import type { ClientMessage, CustomClientMessage, PresenceUpdateT, ServerMessageT, SnapshotMessageT, WelcomeMessageT } from '../../schemas/protocol.js'

/** Any server message whose parts are not pre-serialized (welcome, snapshot, error, pong, csv). */
export function serverFrame (message: ServerMessageT): string {
  return JSON.stringify(message)
}

/** A message from the client to the server (one of the contract's, or of a type the host registered). */
export function clientFrame (message: ClientMessage | CustomClientMessage): string {
  return JSON.stringify(message)
}

/** The result of a host message type's handler (`resultJson` already serialized), for the client's request `id`. */
export function replyFrame (ref: string, id: number | string, resultJson: string): string {
  return `{"type":"reply","ref":${JSON.stringify(ref)},"id":${JSON.stringify(id)},"result":${resultJson}}`
}

/** `data` from `from` (a user id, or `server`); `payloadJson` is already serialized. */
export function dataFrame (from: string, payloadJson: string): string {
  return `{"type":"data","from":${JSON.stringify(from)},"payload":${payloadJson}}`
}

/**
 * A presence diff, or null when it has nothing in it; empty lists are left out.
 * `joined` holds User entries already serialized, once per diff for every frame
 * made of it (the room's, and each newcomer's without itself).
 */
export function presenceFrame (room: string, joined: readonly string[], left: readonly string[], updated: readonly PresenceUpdateT[]): string | null {
  if (joined.length + left.length + updated.length === 0) return null
  let frame = `{"type":"presence","room":${JSON.stringify(room)}`
  if (joined.length > 0) frame += `,"joined":[${joined.join(',')}]`
  if (left.length > 0) frame += `,"left":${JSON.stringify(left)}`
  if (updated.length > 0) frame += `,"updated":${JSON.stringify(updated)}`
  return `${frame}}`
}

/** One `positions` entry, `[id, x, y, z]`, serialized once per user per tick. */
export function positionEntry (id: string, x: number, y: number, z: number): string {
  return JSON.stringify([id, x, y, z])
}

/** A `positions` frame of the first `count` entries made by `positionEntry`. */
export function positionsFrame (t: number, entries: readonly string[], count = entries.length): string {
  let frame = `{"type":"positions","t":${t},"p":[`
  for (let i = 0; i < count; i++) frame += i === 0 ? entries[i] : `,${entries[i] ?? ''}`
  return `${frame}]}`
}

/**
 * One text message as UTF-8 parts, in order. A small one is a single part (one
 * frame); a big one keeps the room's listing, shared by every welcome and
 * snapshot, as parts of its own and goes as fragments of one message (RFC 6455
 * section 5.4), so the listing is never copied per recipient.
 */
export type TextParts = readonly Uint8Array[]

/** Below this, a message's parts are joined into one frame. */
const FRAGMENT_FROM_BYTES = 64 * 1024
/** Parts smaller than this are joined with their neighbours rather than sent as fragments of their own. */
const SMALL_PART_BYTES = 4096
const encoder = new TextEncoder()

/** `welcome`; its `users` (the room's others) come as the parts of a JSON array, shared by every welcome. */
export function welcomeFrame (welcome: Omit<WelcomeMessageT, 'users'>, users: TextParts): TextParts {
  const { type, protocol, id, secret, room, resumed, you, ...rest } = welcome
  const head = JSON.stringify({ type, protocol, id, secret, room, resumed, you })
  return textParts(`${head.slice(0, -1)},"users":`, users, `,${JSON.stringify(rest).slice(1)}`)
}

/** `snapshot`; its `users` come as the parts of a JSON array, as for `welcome`. */
export function snapshotFrame (room: SnapshotMessageT['room'], users: TextParts): TextParts {
  return textParts(`{"type":"snapshot","room":${JSON.stringify(room)},"users":`, users, '}')
}

/** `head`, `middle` and `tail` as the parts of one message: joined when small, the small ones merged into their neighbours when big. */
function textParts (head: string, middle: TextParts, tail: string): TextParts {
  const all = [encoder.encode(head), ...middle, encoder.encode(tail)]
  let total = 0
  for (const part of all) total += part.length
  if (total < FRAGMENT_FROM_BYTES) return [concat(all, total)]
  const parts: Uint8Array[] = []
  let small: Uint8Array[] = []
  const flush = (): void => {
    if (small.length > 0) parts.push(small.length === 1 ? small[0] as Uint8Array : concat(small))
    small = []
  }
  for (const part of all) {
    if (part.length >= SMALL_PART_BYTES) {
      flush()
      parts.push(part)
    } else if (part.length > 0) {
      small.push(part)
    }
  }
  flush()
  return parts
}

function concat (parts: readonly Uint8Array[], total = parts.reduce((sum, part) => sum + part.length, 0)): Uint8Array {
  const joined = new Uint8Array(total)
  let at = 0
  for (const part of parts) {
    joined.set(part, at)
    at += part.length
  }
  return joined
}
