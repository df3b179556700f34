/**
 * A room's members as one JSON array, for `welcome` and `snapshot`, in one
 * encoding. It is kept as the room changes instead of being built again: an
 * arrival appends its entry, a change serializes that member's entry again, a
 * departure leaves a hole. The array text is joined once per change and shared
 * by every welcome and snapshot until the next one, so a room that people keep
 * joining costs one serialization per arrival, not one per member per welcome.
 */
import type { LiveUser } from './user.js'

const COMMA = 44

export class MemberListing {
  /** Each member's serialized entry, in the order they came; '' where one left. */
  private parts: string[] = []
  private readonly position = new Map<string, number>()
  /** Members whose entry must be serialized again before the next use. */
  private readonly dirty = new Set<LiveUser>()
  private holes = 0
  private built = false
  private json: string | null = null
  /** How many parts `json` holds; those after it are arrivals, appended to the text without joining it again. */
  private joinedParts = 0
  /** A part was replaced or emptied since `json` was made: it must be joined again. */
  private rejoin = false
  /** Where each part starts in `json`. */
  private readonly offsets: number[] = []
  /** Used since the last `endTick`. */
  private used = false

  constructor (private readonly withSids: boolean) {}

  added (user: LiveUser): void {
    if (!this.built) return
    this.position.set(user.id, this.parts.length)
    this.parts.push('')
    this.dirty.add(user)
  }

  changed (user: LiveUser): void {
    if (!this.built || !this.position.has(user.id)) return
    this.dirty.add(user)
    this.rejoin = true
  }

  removed (user: LiveUser): void {
    const at = this.position.get(user.id)
    if (!this.built || at === undefined) return
    this.parts[at] = ''
    this.position.delete(user.id)
    this.dirty.delete(user)
    this.rejoin = true
    // Mostly holes: cheaper to build again than to skip them.
    if (++this.holes > this.parts.length / 2) this.reset()
  }

  /** The tick ended: a listing nobody used during it is let go of; returns whether this one still holds anything. */
  endTick (): boolean {
    if (!this.used) this.reset()
    this.used = false
    return this.built
  }

  /** Forgets everything: the next use builds the array from the members. */
  reset (): void {
    this.parts = []
    this.position.clear()
    this.dirty.clear()
    this.holes = 0
    this.built = false
    this.json = null
    this.joinedParts = 0
    this.rejoin = false
  }

  /** The members but `exceptId` as a JSON array. */
  othersJson (members: Iterable<LiveUser>, exceptId: string): string {
    this.used = true
    if (!this.built) this.build(members)
    for (const user of this.dirty) {
      const at = this.position.get(user.id)
      if (at !== undefined) this.parts[at] = JSON.stringify(user.toWire(this.withSids))
    }
    this.dirty.clear()
    const json = this.json === null || this.rejoin ? this.join() : this.joinedParts < this.parts.length ? this.append(this.json) : this.json
    const at = this.position.get(exceptId)
    if (at === undefined) return json
    const start = this.offsets[at] ?? 0
    const end = start + (this.parts[at] ?? '').length
    // Cut the entry with one of the commas beside it.
    if (json.charCodeAt(end) === COMMA) return json.slice(0, start) + json.slice(end + 1)
    if (json.charCodeAt(start - 1) === COMMA) return json.slice(0, start - 1) + json.slice(end)
    return '[]'
  }

  private build (members: Iterable<LiveUser>): void {
    this.built = true
    for (const member of members) this.added(member)
  }

  private join (): string {
    let length = 1
    for (let i = 0; i < this.parts.length; i++) {
      const part = this.parts[i] ?? ''
      if (part === '') continue
      if (length > 1) length++
      this.offsets[i] = length
      length += part.length
    }
    const live = this.holes === 0 ? this.parts : this.parts.filter((part) => part !== '')
    return this.made(`[${live.join(',')}]`)
  }

  /** Only arrivals since the last text: extend it rather than join every part again. */
  private append (json: string): string {
    let text = json.slice(0, -1)
    for (let i = this.joinedParts; i < this.parts.length; i++) {
      const part = this.parts[i] ?? ''
      if (part === '') continue
      if (text.length > 1) text += ','
      this.offsets[i] = text.length
      text += part
    }
    return this.made(`${text}]`)
  }

  private made (json: string): string {
    this.json = json
    this.joinedParts = this.parts.length
    this.rejoin = false
    return json
  }
}
