/**
 * A room's members as one JSON array, for `welcome` and `snapshot`, in one
 * encoding, kept as UTF-8 bytes as the room changes instead of being built
 * again: an arrival appends its entry, a change or departure makes the next use
 * write a new array (copying the entries that did not change). Every welcome and
 * snapshot gets views of the same bytes, which nothing ever writes over: an
 * arrival writes past what was handed out, a change writes a new buffer. So a
 * room that people keep joining costs one serialization per arrival, and the
 * welcomes queued for slow sockets share one copy of the room, not one each.
 */
import type { LiveUser } from './user.js'

const OPEN = 0x5b
const COMMA = 0x2c
const CLOSE = Uint8Array.of(0x5d)
/** A listing grows at least this much at a time. */
const MIN_CAPACITY = 256
/**
 * How long a listing nobody uses is kept. Building one again serializes the
 * whole room and allocates it anew, so a room people join every few seconds
 * keeps its listing; an idle room lets go of its bytes.
 */
export const LISTING_KEPT_UNUSED_MS = 10_000
const encoder = new TextEncoder()

export class MemberListing {
  /** Where each member's entry is in `log` ([start, end) bytes), in the order they came; -1 while unwritten or once they left. */
  private starts: number[] = []
  private ends: number[] = []
  private readonly position = new Map<string, number>()
  /** Entries to serialize before the next use: arrivals, and members that changed. */
  private readonly dirty = new Map<number, LiveUser>()
  private holes = 0
  private built = false
  /** `[` and the entries, comma-separated, without the closing `]`; bytes up to `length` are handed out and never written again. */
  private log = new Uint8Array(0)
  private length = 0
  /** Entries before this index are in `log`; later ones are arrivals, appended at the next use. */
  private logged = 0
  /** An entry in `log` changed or left: the next use writes a new log. */
  private rewrite = false
  /** Used since the last `endTick`. */
  private used = false
  /** When a tick last ended with it used (ms). */
  private usedAt = 0

  constructor (private readonly withSids: boolean) {}

  added (user: LiveUser): void {
    if (!this.built) return
    const at = this.starts.length
    this.position.set(user.id, at)
    this.starts.push(-1)
    this.ends.push(-1)
    this.dirty.set(at, user)
  }

  changed (user: LiveUser): void {
    const at = this.position.get(user.id)
    if (!this.built || at === undefined) return
    this.dirty.set(at, user)
    if (at < this.logged) this.rewrite = true
  }

  removed (user: LiveUser): void {
    const at = this.position.get(user.id)
    if (!this.built || at === undefined) return
    this.position.delete(user.id)
    this.dirty.delete(at)
    if (at < this.logged) this.rewrite = true
    this.starts[at] = -1
    // Mostly holes: cheaper to build again than to skip them.
    if (++this.holes > this.starts.length / 2) this.reset()
  }

  /** A tick ended at `now`: a listing unused for LISTING_KEPT_UNUSED_MS is let go of; returns whether this one still holds anything. */
  endTick (now: number): boolean {
    if (this.used) this.usedAt = now
    else if (now - this.usedAt >= LISTING_KEPT_UNUSED_MS) this.reset()
    this.used = false
    return this.built
  }

  /** Forgets everything: the next use builds the array from the members. */
  reset (): void {
    this.starts = []
    this.ends = []
    this.position.clear()
    this.dirty.clear()
    this.holes = 0
    this.built = false
    this.log = new Uint8Array(0)
    this.length = 0
    this.logged = 0
    this.rewrite = false
  }

  /**
   * The members but `exceptId` as a JSON array, in UTF-8 parts to be sent in
   * order: views of the shared bytes, valid for as long as anyone holds them.
   */
  others (members: Iterable<LiveUser>, exceptId: string): Uint8Array[] {
    this.used = true
    if (!this.built) this.build(members)
    if (this.rewrite) this.rewriteLog()
    else if (this.dirty.size > 0 || this.length === 0) this.appendArrivals()
    const log = this.log.subarray(0, this.length)
    const at = this.position.get(exceptId)
    if (at === undefined) return [log, CLOSE]
    const start = this.starts[at] ?? -1
    const end = this.ends[at] ?? -1
    // Cut the entry with one of the commas beside it.
    if (log[end] === COMMA) return [log.subarray(0, start), log.subarray(end + 1), CLOSE]
    if (log[start - 1] === COMMA) return [log.subarray(0, start - 1), CLOSE]
    return [log.subarray(0, 1), CLOSE]
  }

  private build (members: Iterable<LiveUser>): void {
    this.built = true
    for (const member of members) this.added(member)
  }

  /** Only arrivals since the last use: written past what was handed out. */
  private appendArrivals (): void {
    if (this.length === 0) this.writeByte(OPEN)
    for (let at = this.logged; at < this.starts.length; at++) {
      const user = this.dirty.get(at)
      if (user !== undefined) this.writeEntry(at, user)
    }
    this.dirty.clear()
    this.logged = this.starts.length
  }

  /** A new buffer: unchanged entries copied from the old one, the others serialized. */
  private rewriteLog (): void {
    const old = this.log
    this.log = new Uint8Array(Math.max(MIN_CAPACITY, Math.ceil(this.length * 1.25)))
    this.length = 0
    this.writeByte(OPEN)
    for (let at = 0; at < this.starts.length; at++) {
      const user = this.dirty.get(at)
      if (user !== undefined) {
        this.writeEntry(at, user)
      } else if ((this.starts[at] ?? -1) >= 0) {
        this.writeBytes(at, old.subarray(this.starts[at], this.ends[at]))
      }
    }
    this.dirty.clear()
    this.logged = this.starts.length
    this.rewrite = false
  }

  private writeEntry (at: number, user: LiveUser): void {
    const json = JSON.stringify(user.toWire(this.withSids))
    this.separate(at, json.length * 3)
    this.length += encoder.encodeInto(json, this.log.subarray(this.length)).written
    this.ends[at] = this.length
  }

  private writeBytes (at: number, bytes: Uint8Array): void {
    this.separate(at, bytes.length)
    this.log.set(bytes, this.length)
    this.length += bytes.length
    this.ends[at] = this.length
  }

  /** Room for an entry of up to `bytes` and its comma; marks where it starts. */
  private separate (at: number, bytes: number): void {
    this.reserve(bytes + 1)
    if (this.length > 1) this.log[this.length++] = COMMA
    this.starts[at] = this.length
  }

  private writeByte (byte: number): void {
    this.reserve(1)
    this.log[this.length++] = byte
  }

  /** A bigger buffer when `bytes` more do not fit: the old one stays as it is for the views handed out. */
  private reserve (bytes: number): void {
    if (this.length + bytes <= this.log.length) return
    const grown = new Uint8Array(Math.max(MIN_CAPACITY, this.log.length * 2, this.length + bytes))
    grown.set(this.log.subarray(0, this.length))
    this.log = grown
  }
}
