/**
 * The compact encoding of `positions` (a Shoal extension, asked for with
 * `encoding: "compact"` at register or reconnect): one binary WebSocket message,
 * little-endian, with short numeric ids (`sid`, unique in the server process)
 * in place of user ids and 32-bit floats in place of JSON numbers.
 *
 *   u8  kind (1 = positions)
 *   f64 t (server time, ms)
 *   then per entry, 16 bytes: u32 sid, f32 x, f32 y, f32 z
 *
 * Plain TypeScript over DataView, so the server and the browser client share it.
 */

export const COMPACT_POSITIONS = 1
export const COMPACT_HEADER_BYTES = 9
export const COMPACT_ENTRY_BYTES = 16

/** What the encoder needs of a user: its short id and where it is. */
export interface CompactMover {
  readonly sid: number
  readonly position: { readonly x: number, readonly y: number, readonly z: number }
}

export type CompactEntry = [sid: number, x: number, y: number, z: number]

/** A compact `positions` frame of the first `count` movers. */
export function encodeCompactPositions (t: number, movers: readonly CompactMover[], count = movers.length): Uint8Array {
  const bytes = new Uint8Array(COMPACT_HEADER_BYTES + count * COMPACT_ENTRY_BYTES)
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  view.setUint8(0, COMPACT_POSITIONS)
  view.setFloat64(1, t, true)
  let offset = COMPACT_HEADER_BYTES
  for (let i = 0; i < count; i++) {
    const { sid, position } = movers[i] as CompactMover
    view.setUint32(offset, sid, true)
    view.setFloat32(offset + 4, position.x, true)
    view.setFloat32(offset + 8, position.y, true)
    view.setFloat32(offset + 12, position.z, true)
    offset += COMPACT_ENTRY_BYTES
  }
  return bytes
}

/** The frame's time and entries, or null when the bytes are not a compact `positions` frame. */
export function decodeCompactPositions (bytes: Uint8Array): { t: number, entries: CompactEntry[] } | null {
  const body = bytes.byteLength - COMPACT_HEADER_BYTES
  if (body < 0 || body % COMPACT_ENTRY_BYTES !== 0) return null
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (view.getUint8(0) !== COMPACT_POSITIONS) return null
  const entries: CompactEntry[] = []
  for (let offset = COMPACT_HEADER_BYTES; offset < bytes.byteLength; offset += COMPACT_ENTRY_BYTES) {
    entries.push([
      view.getUint32(offset, true),
      view.getFloat32(offset + 4, true),
      view.getFloat32(offset + 8, true),
      view.getFloat32(offset + 12, true)
    ])
  }
  return { t: view.getFloat64(1, true), entries }
}
