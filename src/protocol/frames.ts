/**
 * Frame builders: every text frame the server sends, and the client's messages,
 * are made here. No Node imports: the browser client shares this file.
 *
 * Fan-out frames are built from parts serialized once per tick (a payload, a
 * position entry), so no builder re-serializes what the caller already has.
 */
import type { ClientMessage, PresenceUpdateT, ServerMessageT, SnapshotMessageT, UserT, WelcomeMessageT } from '../../schemas/protocol.js'

/** Any server message whose parts are not pre-serialized (welcome, snapshot, error, pong, csv). */
export function serverFrame (message: ServerMessageT): string {
  return JSON.stringify(message)
}

/** A message from the client to the server. */
export function clientFrame (message: ClientMessage): string {
  return JSON.stringify(message)
}

/** `data` from `from` (a user id, or `server`); `payloadJson` is already serialized. */
export function dataFrame (from: string, payloadJson: string): string {
  return `{"type":"data","from":${JSON.stringify(from)},"payload":${payloadJson}}`
}

/** A presence diff, or null when it has nothing in it; empty lists are left out. */
export function presenceFrame (room: string, joined: readonly UserT[], left: readonly string[], updated: readonly PresenceUpdateT[]): string | null {
  if (joined.length + left.length + updated.length === 0) return null
  return JSON.stringify({
    type: 'presence',
    room,
    joined: joined.length > 0 ? joined : undefined,
    left: left.length > 0 ? left : undefined,
    updated: updated.length > 0 ? updated : undefined
  })
}

/** One `positions` entry, `[id, x, y, z]`, serialized once per user per tick. */
export function positionEntry (id: string, x: number, y: number, z: number): string {
  return JSON.stringify([id, x, y, z])
}

/** A `positions` frame of entries made by `positionEntry`. */
export function positionsFrame (t: number, entries: readonly string[]): string {
  return `{"type":"positions","t":${t},"p":[${entries.join(',')}]}`
}

/** `welcome`, with `usersJson` (the room's others, serialized once per tick) in place of `users`. */
export function welcomeFrame (welcome: Omit<WelcomeMessageT, 'users'>, usersJson: string): string {
  const { type, protocol, id, secret, room, resumed, you, ...rest } = welcome
  const head = JSON.stringify({ type, protocol, id, secret, room, resumed, you })
  return `${head.slice(0, -1)},"users":${usersJson},${JSON.stringify(rest).slice(1)}`
}

/** `snapshot`, with `usersJson` in place of `users`. */
export function snapshotFrame (room: SnapshotMessageT['room'], usersJson: string): string {
  return `{"type":"snapshot","room":${JSON.stringify(room)},"users":${usersJson}}`
}
