/** Frame builders that splice pre-serialized parts make the same JSON the plain object would. */
import fc from 'fast-check'
import t from 'tap'
import type { PresenceUpdateT, UserT } from '../../schemas/protocol.js'
import { presenceFrame } from '../../src/protocol/frames.js'

const user = (id: string, name: string): UserT => ({ id, name, room: 'r', position: { x: 1, y: 2, z: 3 }, state: { k: name }, listeningTo: [], connected: true })

t.test('presenceFrame is the diff as JSON, empty lists left out, and null when there is nothing', async (t) => {
  t.equal(presenceFrame('r', [], [], []), null)
  fc.assert(fc.property(
    fc.string(),
    fc.array(fc.tuple(fc.uuid(), fc.string()), { maxLength: 4 }),
    fc.array(fc.uuid(), { maxLength: 3 }),
    fc.array(fc.tuple(fc.uuid(), fc.string()), { maxLength: 3 }),
    (room, joinedPairs, left, updatedPairs) => {
      const joined = joinedPairs.map(([id, name]) => user(id, name))
      const updated: PresenceUpdateT[] = updatedPairs.map(([id, name]) => ({ id, name }))
      const frame = presenceFrame(room, joined.map((entry) => JSON.stringify(entry)), left, updated)
      if (joined.length + left.length + updated.length === 0) return frame === null
      const expected = JSON.stringify({
        type: 'presence',
        room,
        joined: joined.length > 0 ? joined : undefined,
        left: left.length > 0 ? left : undefined,
        updated: updated.length > 0 ? updated : undefined
      })
      return frame === expected
    }
  ), { numRuns: 300 })
  t.pass('300 random diffs')
})
