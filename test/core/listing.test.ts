/** MemberListing against the obvious construction, over random arrivals, changes, departures and tick ends. */
import fc from 'fast-check'
import t from 'tap'
import { LISTING_KEPT_UNUSED_MS, MemberListing } from '../../src/core/presence/listing.js'
import type { LiveUser } from '../../src/core/presence/user.js'
import { makeUser, textOf } from './fakes.js'

type Op = { kind: 'add' } | { kind: 'change', who: number } | { kind: 'remove', who: number } | { kind: 'read', who: number } | { kind: 'tick', ms: number }

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.constant({ kind: 'add' as const }),
  fc.record({ kind: fc.constant('change' as const), who: fc.nat(40) }),
  fc.record({ kind: fc.constant('remove' as const), who: fc.nat(40) }),
  fc.record({ kind: fc.constant('read' as const), who: fc.nat(40) }),
  // Ticks now and then long enough apart for an unused listing to be let go of.
  fc.record({ kind: fc.constant('tick' as const), ms: fc.oneof(fc.constant(50), fc.constant(LISTING_KEPT_UNUSED_MS)) })
)

t.test('others is always the members but the one asking, in order, as they are now, and what it handed out never changes', async (t) => {
  fc.assert(fc.property(fc.array(op, { maxLength: 120 }), fc.boolean(), (ops, withSids) => {
    const members = new Map<string, LiveUser>()
    const listing = new MemberListing(withSids)
    let made = 0
    let now = 0
    const pick = (who: number): LiveUser | undefined => [...members.values()][who % Math.max(1, members.size)]
    const expected = (exceptId: string): string => JSON.stringify([...members.values()].filter((m) => m.id !== exceptId).map((m) => m.toWire(withSids)))
    // Every read so far, with its text then: views of bytes that later arrivals and changes must not write over.
    const handedOut: Array<{ parts: Uint8Array[], text: string }> = []
    const read = (exceptId: string): boolean => {
      const parts = listing.others(members.values(), exceptId)
      const text = textOf(parts)
      handedOut.push({ parts, text })
      return text === expected(exceptId)
    }
    for (const step of ops) {
      if (step.kind === 'add') {
        const user = makeUser({ name: `u${made}` })
        user.sid = ++made
        members.set(user.id, user)
        listing.added(user)
      } else if (step.kind === 'tick') {
        now += step.ms
        listing.endTick(now)
      } else {
        const user = pick(step.who)
        if (user === undefined) continue
        if (step.kind === 'change') {
          user.name = `${user.name}'`
          listing.changed(user)
        } else if (step.kind === 'remove') {
          members.delete(user.id)
          listing.removed(user)
        }
        const asker = step.kind === 'read' ? user.id : 'nobody'
        if (!read(asker)) return false
      }
    }
    const first = pick(0)
    return read(first?.id ?? 'nobody') && handedOut.every(({ parts, text }) => textOf(parts) === text)
  }), { numRuns: 300 })
  t.pass('300 random histories')
})

t.test('a listing nobody uses is kept for a while, then let go of', async (t) => {
  const listing = new MemberListing(false)
  const user = makeUser()
  t.equal(textOf(listing.others([user], 'x')), JSON.stringify([user.toWire()]))
  t.equal(listing.endTick(1000), true, 'used this tick: kept')
  t.equal(listing.endTick(1000 + LISTING_KEPT_UNUSED_MS - 1), true, 'unused, but not for long: kept')
  t.equal(listing.endTick(1000 + LISTING_KEPT_UNUSED_MS), false, `unused for ${LISTING_KEPT_UNUSED_MS} ms: let go`)
})
