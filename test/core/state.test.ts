import t from 'tap'
import type { StateT } from '../../schemas/protocol.js'
import { emptyState, mergeState, normalizeListening, sameMembers, sameState, type State } from '../../src/core/presence/state.js'
import { stateOf } from './fakes.js'

const bytes = (value: unknown): number => Buffer.byteLength(JSON.stringify(value))

function merged (base: State, patch: StateT): State {
  const result = mergeState(base, patch)
  if ('error' in result) throw new Error(`unexpected error: ${result.error}`)
  return result.state
}

function rejected (base: State, patch: StateT): string {
  const result = mergeState(base, patch)
  if (!('error' in result)) throw new Error(`expected a rejection, got ${JSON.stringify(result.state)}`)
  return result.error
}

/** A state of `count` keys k0..k{count-1}. */
function keys (count: number, value: string | number | boolean = 1): Record<string, string | number | boolean> {
  const state: Record<string, string | number | boolean> = {}
  for (let i = 0; i < count; i++) state[`k${i}`] = value
  return state
}

/** A state of string values (each at most 256 chars) that serializes to exactly `size` bytes. */
function stateOfBytes (size: number, char = 'x'): Record<string, string> {
  const state: Record<string, string> = {}
  let i = 0
  while (bytes(state) + 200 * Buffer.byteLength(char) + 16 < size) state[`s${i++}`] = char.repeat(200)
  state.last = ''
  const missing = size - bytes(state)
  state.last = 'y'.repeat(missing)
  if (bytes(state) !== size || missing > 256) throw new Error('fixture broken')
  return state
}

t.test('mergeState', async (t) => {
  t.test('merges keys over the base and removes keys set to null', async (t) => {
    const base = stateOf({ color: 'red', size: 3, on: true })
    const result = merged(base, { size: 4, on: null, mood: 'ok' })
    t.strictSame({ ...result }, { color: 'red', size: 4, mood: 'ok' })
  })

  t.test('never modifies the base, whether the update is accepted or rejected', async (t) => {
    const base = stateOf({ a: 1, b: 'two' })
    merged(base, { a: 2, b: null, c: true })
    t.strictSame({ ...base }, { a: 1, b: 'two' })
    rejected(base, keys(40))
    t.strictSame({ ...base }, { a: 1, b: 'two' })
  })

  t.test('removing a key that does not exist is harmless', async (t) => {
    t.strictSame({ ...merged(stateOf({ a: 1 }), { missing: null }) }, { a: 1 })
  })

  t.test('falsy values are values, not removals', async (t) => {
    t.strictSame({ ...merged(stateOf({ a: 1, b: 1, c: 1 }), { a: 0, b: '', c: false }) }, { a: 0, b: '', c: false })
  })

  t.test('accepts exactly 32 keys and rejects a 33rd, naming state', async (t) => {
    t.equal(Object.keys(merged(emptyState(), keys(32))).length, 32)
    const full = merged(emptyState(), keys(32))
    const error = rejected(full, { extra: 1 })
    t.match(error, /^state\b/)
    t.match(error, /32/)
    t.equal(rejected(emptyState(), keys(33)).length > 0, true)
  })

  t.test('the key limit applies to the merged result, not to the patch', async (t) => {
    const base = merged(emptyState(), keys(20))
    rejected(base, { ...Object.fromEntries(Array.from({ length: 13 }, (_, i) => [`n${i}`, 1])) })
    // Overwriting existing keys does not add keys.
    t.equal(Object.keys(merged(base, keys(20, 'v'))).length, 20)
    // Adding one and removing one at the same time stays within the limit.
    const full = merged(emptyState(), keys(32))
    const swapped = merged(full, { k0: null, extra: 1 })
    t.equal(Object.keys(swapped).length, 32)
    t.equal(swapped.extra, 1)
    t.notOk(Object.hasOwn(swapped, 'k0'))
  })

  t.test('null values do not count toward the key limit (register drops them)', async (t) => {
    const patch: StateT = { ...keys(32), dropped: null, alsoDropped: null }
    const result = merged(emptyState(), patch)
    t.equal(Object.keys(result).length, 32)
    t.notOk(Object.hasOwn(result, 'dropped'))
  })

  t.test('accepts exactly 2048 bytes serialized and rejects 2049, naming state', async (t) => {
    const exact = stateOfBytes(2048)
    t.equal(bytes(merged(emptyState(), exact)), 2048)
    const over = stateOfBytes(2049)
    const error = rejected(emptyState(), over)
    t.match(error, /^state\b/)
    t.match(error, /2048/)
  })

  t.test('the size limit counts UTF-8 bytes, not characters', async (t) => {
    // 'é' is two bytes in UTF-8: this state is well under 2048 characters but over 2048 bytes.
    const state = { a: 'é'.repeat(256), b: 'é'.repeat(256), c: 'é'.repeat(256), d: 'é'.repeat(256), e: 'é'.repeat(10) }
    t.ok(JSON.stringify(state).length < 2048)
    t.ok(bytes(state) > 2048)
    rejected(emptyState(), state)
  })

  t.test('the size limit applies to the merged result and null values do not count', async (t) => {
    const base = merged(emptyState(), stateOfBytes(2048))
    rejected(base, { z: 1 })
    // A removal in the same update makes room for the addition.
    const firstKey = Object.keys(base)[0] as string
    const result = merged(base, { [firstKey]: null, z: 1 })
    t.ok(bytes(result) <= 2048)
    t.equal(result.z, 1)
    // A null for a key that is not there adds nothing, however long its name.
    t.equal(bytes(merged(base, { ['n'.repeat(32)]: null })), 2048)
  })

  t.test('an update that would break a limit is rejected whole', async (t) => {
    const base = merged(emptyState(), keys(31))
    const result = mergeState(base, { k0: 'changed', x: 1, y: 2 })
    t.ok('error' in result)
    t.notOk('state' in result)
    t.equal(base.k0, 1)
  })

  t.test('__proto__, constructor and toString are ordinary keys and nothing reaches a prototype', async (t) => {
    const patch = JSON.parse('{"__proto__":"proto","constructor":1,"toString":true,"polluted":"own"}') as StateT
    const result = merged(emptyState(), patch)
    t.strictSame(Object.keys(result).sort(), ['__proto__', 'constructor', 'polluted', 'toString'])
    t.equal(Object.getOwnPropertyDescriptor(result, '__proto__')?.value, 'proto')
    t.equal(result.constructor, 1)
    t.equal(result.toString, true)
    const wire = JSON.parse(JSON.stringify(result)) as Record<string, unknown>
    t.equal(Object.getOwnPropertyDescriptor(wire, '__proto__')?.value, 'proto', 'serialized as an own key')
    t.match(JSON.stringify(result), /"__proto__":"proto"/)
    t.equal(({} as Record<string, unknown>).polluted, undefined)
    t.equal(Object.prototype.toString.call([]), '[object Array]')

    // Removing them works like any other key.
    const removed = merged(result, JSON.parse('{"__proto__":null,"constructor":null}') as StateT)
    t.strictSame(Object.keys(removed).sort(), ['polluted', 'toString'])
  })

  t.test('an object under __proto__ in a patch cannot pollute Object.prototype', async (t) => {
    const patch = JSON.parse('{"__proto__":{"polluted":"yes"}}') as StateT
    const result = mergeState(emptyState(), patch)
    t.equal(({} as Record<string, unknown>).polluted, undefined)
    if ('state' in result) t.equal((result.state as Record<string, unknown>).polluted, undefined)
  })

  t.test('keys of Object.prototype in the base are not mistaken for existing keys', async (t) => {
    // 32 keys named after Object.prototype members and friends still count as 32 own keys.
    const names = ['constructor', 'toString', 'valueOf', 'hasOwnProperty', '__proto__', 'isPrototypeOf']
    const patch: StateT = {}
    for (const name of names) Object.defineProperty(patch, name, { value: 1, enumerable: true, writable: true, configurable: true })
    const result = merged(emptyState(), patch)
    t.equal(Object.keys(result).length, names.length)
    t.equal(Object.getPrototypeOf(result), null)
  })
})

t.test('sameState', async (t) => {
  t.ok(sameState(stateOf({ a: 1, b: 'x' }), stateOf({ b: 'x', a: 1 })), 'key order does not matter')
  t.ok(sameState(emptyState(), emptyState()))
  t.notOk(sameState(stateOf({ a: 1 }), stateOf({ a: 2 })), 'different value')
  t.notOk(sameState(stateOf({ a: 1 }), stateOf({ a: '1' })), 'different type')
  t.notOk(sameState(stateOf({ a: true }), stateOf({ a: 1 })), 'true is not 1')
  t.notOk(sameState(stateOf({ a: 1 }), stateOf({ b: 1 })), 'different key, same count')
  t.notOk(sameState(stateOf({ a: 1 }), stateOf({ a: 1, b: 2 })), 'extra key')
  t.notOk(sameState(stateOf({ a: 1, b: 2 }), stateOf({ a: 1 })), 'missing key')
  t.notOk(sameState(stateOf({ toString: 'x' }), stateOf({ other: 'x' })), 'prototype keys are not own keys')
})

t.test('normalizeListening', async (t) => {
  const self = 'dddddddd-1111-4111-8111-eeeeeeeeeeee'
  const a = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa'
  const b = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb'
  const c = 'cccccccc-cccc-4ccc-8ccc-cccccccccccc'

  t.strictSame(normalizeListening([], self), [])
  t.strictSame(normalizeListening([a.toUpperCase()], self), [a], 'lower-cased')
  t.strictSame(normalizeListening([self, a], self), [a], 'own id dropped')
  t.strictSame(normalizeListening([self.toUpperCase(), a], self), [a], 'own id dropped whatever its case')
  t.strictSame(normalizeListening([a, b, a.toUpperCase(), b, a], self), [a, b], 'duplicates collapse, also across case')
  t.strictSame(normalizeListening([c, a, b, c], self), [c, a, b], 'first-occurrence order kept')
  const input = [b, a]
  normalizeListening(input, self)
  t.strictSame(input, [b, a], 'input untouched')
})

t.test('sameMembers', async (t) => {
  t.ok(sameMembers([], []))
  t.ok(sameMembers(['a', 'b', 'c'], ['c', 'a', 'b']), 'order does not matter')
  t.notOk(sameMembers(['a', 'b'], ['a', 'c']), 'same size, different members')
  t.notOk(sameMembers(['a'], ['a', 'b']), 'subset')
  t.notOk(sameMembers(['a', 'b'], ['a']), 'superset')
  t.notOk(sameMembers(['a'], []))
})
