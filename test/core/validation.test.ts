import { isDeepStrictEqual } from 'node:util'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import fc from 'fast-check'
import t from 'tap'
import { UpdateMessage } from '../../schemas/protocol.js'
import { dottedPath, parseFrame, positionUpdate, type ProtocolError } from '../../src/core/validation.js'
import type { TapTest } from './fakes.js'

const uuid = (n: number): string => `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`

function accepted (t: TapTest, message: unknown, label?: string): void {
  const text = typeof message === 'string' ? message : JSON.stringify(message)
  const result = parseFrame(text)
  if (result.ok) t.strictSame(result.message, JSON.parse(text), label ?? text.slice(0, 100))
  else t.fail(`${label ?? text.slice(0, 100)}: rejected with ${result.error.message}`)
}

function rejected (message: unknown): ProtocolError {
  const text = typeof message === 'string' ? message : JSON.stringify(message)
  const result = parseFrame(text)
  if (result.ok) throw new Error(`accepted: ${text.slice(0, 200)}`)
  return result.error
}

/** Asserts an `invalid_message` naming `path` at the start of the message, with `ref` the message type. */
function invalidAt (t: TapTest, message: unknown, path: string, ref?: string): void {
  const text = typeof message === 'string' ? message : JSON.stringify(message)
  const error = rejected(text)
  const label = `${text.slice(0, 80)} → ${path}`
  t.equal(error.code, 'invalid_message', label)
  t.ok(error.message.startsWith(`${path}:`), `${label}: message "${error.message}" names the field`)
  const type = (JSON.parse(text) as { type: string }).type
  t.equal(error.ref, ref ?? type, `${label}: ref`)
}

t.test('envelope', async (t) => {
  t.test('text that is not JSON gets bad_json', async (t) => {
    for (const text of ['', '{', 'hello', '{"type":"ping",}', "{'type':'ping'}", 'undefined']) {
      t.equal(rejected(text).code, 'bad_json', JSON.stringify(text))
    }
  })

  t.test('JSON that is not an object gets invalid_message', async (t) => {
    for (const text of ['[]', '[{"type":"ping"}]', 'null', '1', '"ping"', 'true']) {
      t.equal(rejected(text).code, 'invalid_message', text)
    }
  })

  t.test('an object without a string type gets invalid_message naming type', async (t) => {
    for (const text of ['{}', '{"type":1}', '{"type":null}', '{"type":["ping"]}', '{"type":{}}', '{"Type":"ping"}']) {
      const error = rejected(text)
      t.equal(error.code, 'invalid_message', text)
      t.match(error.message, /^type\b/, text)
    }
  })

  t.test('an unknown type gets unknown_type, including prototype member names', async (t) => {
    for (const type of ['nope', 'Register', 'PING', '', '__proto__', 'constructor', 'toString', 'hasOwnProperty', 'welcome', 'pong']) {
      const error = rejected({ type })
      t.equal(error.code, 'unknown_type', JSON.stringify(type))
    }
  })

  t.test('a huge unknown type is not echoed whole', async (t) => {
    const error = rejected({ type: 'x'.repeat(10_000) })
    t.equal(error.code, 'unknown_type')
    t.ok(error.message.length < 200)
  })
})

t.test('register', async (t) => {
  accepted(t, { type: 'register' })
  accepted(t, { type: 'register', name: 'Ann', room: 'r1', state: { color: 'red', n: 1, on: false, gone: null }, position: { x: 1, y: -2, z: 3.5 } })
  accepted(t, { type: 'register', position: { x: 1, y: 2 } }, 'z is optional')
  accepted(t, { type: 'register', position: { x: 1e9, y: -1e9, z: 0 } }, 'limits are inclusive')
  accepted(t, { type: 'register', room: '__proto__' }, '__proto__ is an ordinary room name')
  accepted(t, { type: 'register', state: {} })

  invalidAt(t, { type: 'register', extra: 1 }, 'extra')
  invalidAt(t, '{"type":"register","__proto__":{"x":1}}', '__proto__')
  invalidAt(t, { type: 'register', name: 5 }, 'name')
  invalidAt(t, { type: 'register', room: 5 }, 'room')
  invalidAt(t, { type: 'register', position: { x: 1 } }, 'position.y')
  invalidAt(t, { type: 'register', position: { x: 'a', y: 1 } }, 'position.x')
  invalidAt(t, { type: 'register', position: [1, 2] }, 'position')
  invalidAt(t, { type: 'register', state: [] }, 'state')
  invalidAt(t, { type: 'register', state: 'red' }, 'state')
})

t.test('unknown fields are rejected at any depth, naming the dotted path', async (t) => {
  invalidAt(t, { type: 'register', position: { x: 1, y: 2, w: 3 } }, 'position.w')
  invalidAt(t, { type: 'update', position: { x: 1, y: 2, z: 3, w: 4 } }, 'position.w')
  invalidAt(t, { type: 'ping', t: 1, extra: true }, 'extra')
  invalidAt(t, { type: 'sync', room: 'a' }, 'room')
  invalidAt(t, { type: 'leave', now: true }, 'now')
  invalidAt(t, { type: 'join', room: 'a', force: true }, 'force')
  invalidAt(t, { type: 'data', payload: 1, to: 'x' }, 'to')
  invalidAt(t, { type: 'reconnect', secret: 's', id: 'x' }, 'id')
  invalidAt(t, { type: 'updatelisteningto', listeningTo: [], add: [] }, 'add')
})

t.test('names: 1 to 64 code points after trim', async (t) => {
  accepted(t, { type: 'register', name: 'a' })
  accepted(t, { type: 'register', name: '  padded  ' })
  accepted(t, { type: 'register', name: 'n'.repeat(64) })
  accepted(t, { type: 'register', name: `   ${'n'.repeat(64)}   ` }, 'surrounding spaces do not count')
  accepted(t, { type: 'register', name: '😀'.repeat(64) }, '64 emoji (128 UTF-16 units) are 64 code points')
  accepted(t, { type: 'update', name: '😀'.repeat(64) })
  invalidAt(t, { type: 'register', name: '' }, 'name')
  invalidAt(t, { type: 'register', name: '   ' }, 'name')
  invalidAt(t, { type: 'register', name: '\t\n\u00a0\u3000' }, 'name')
  invalidAt(t, { type: 'register', name: 'n'.repeat(65) }, 'name')
  invalidAt(t, { type: 'register', name: '😀'.repeat(65) }, 'name')
  invalidAt(t, { type: 'update', name: '   ' }, 'name')
  invalidAt(t, { type: 'update', name: '😀'.repeat(65) }, 'name')
})

t.test('rooms match ^[A-Za-z0-9_.:-]{1,64}$', async (t) => {
  for (const room of ['lobby', 'a', 'A-b_c.d:e', '0', 'r'.repeat(64), 'constructor']) {
    accepted(t, { type: 'join', room })
    accepted(t, { type: 'register', room })
  }
  for (const room of ['', 'r'.repeat(65), 'a b', 'a/b', 'é', 'a\n', 'room!', ' lobby']) {
    invalidAt(t, { type: 'join', room }, 'room')
    invalidAt(t, { type: 'register', room }, 'room')
  }
  invalidAt(t, { type: 'join' }, 'room')
  invalidAt(t, { type: 'join', room: null }, 'room')
})

t.test('coordinates are finite with absolute value at most 1e9', async (t) => {
  for (const type of ['register', 'update']) {
    invalidAt(t, { type, position: { x: 1e9 + 1, y: 0 } }, 'position.x')
    invalidAt(t, { type, position: { x: 0, y: -1e9 - 1 } }, 'position.y')
    invalidAt(t, { type, position: { x: 0, y: 0, z: 1e10 } }, 'position.z')
    invalidAt(t, `{"type":"${type}","position":{"x":1e999,"y":0}}`, 'position.x')
    invalidAt(t, `{"type":"${type}","position":{"x":0,"y":-1e999}}`, 'position.y')
    invalidAt(t, `{"type":"${type}","position":{"x":0,"y":0,"z":1e999}}`, 'position.z')
    invalidAt(t, { type, position: { x: null, y: 0 } }, 'position.x')
    invalidAt(t, { type, position: { x: '1', y: 0 } }, 'position.x')
    invalidAt(t, { type, position: { x: 0, y: 0, z: null } }, 'position.z')
  }
})

t.test('reconnect accepts any string secret', async (t) => {
  for (const secret of ['', 'garbage', 'x'.repeat(20_000), '😀', '{"not":"json"}', 'A'.repeat(43)]) {
    accepted(t, { type: 'reconnect', secret }, `secret of ${secret.length} chars`)
  }
  invalidAt(t, { type: 'reconnect' }, 'secret')
  invalidAt(t, { type: 'reconnect', secret: 5 }, 'secret')
  invalidAt(t, { type: 'reconnect', secret: null }, 'secret')
  invalidAt(t, { type: 'reconnect', secret: ['s'] }, 'secret')
})

t.test('update needs at least one of position, state, name', async (t) => {
  accepted(t, { type: 'update', position: { x: 1, y: 2 } })
  accepted(t, { type: 'update', state: { a: 1 } })
  accepted(t, { type: 'update', state: { a: null } })
  accepted(t, { type: 'update', name: 'Bob' })
  accepted(t, { type: 'update', name: 'Bob', state: {}, position: { x: 0, y: 0, z: 0 } })
  const error = rejected({ type: 'update' })
  t.equal(error.code, 'invalid_message')
  t.equal(error.ref, 'update')
  t.match(error.message, /position/)
  t.match(error.message, /state/)
  t.match(error.message, /name/)
})

t.test('state values: string up to 256 chars, number, boolean or null; flat', async (t) => {
  accepted(t, { type: 'update', state: { s: 'x'.repeat(256), n: -1.5, b: true, z: null, e: '' } })
  accepted(t, '{"type":"update","state":{"__proto__":1,"constructor":"c","toString":true}}', 'prototype member names are ordinary keys')
  accepted(t, { type: 'update', state: { ['k'.repeat(32)]: 1, A_9: 2 } })
  for (const type of ['register', 'update']) {
    invalidAt(t, { type, state: { color: 'x'.repeat(257) } }, 'state.color')
    invalidAt(t, { type, state: { color: {} } }, 'state.color')
    invalidAt(t, { type, state: { color: [] } }, 'state.color')
    invalidAt(t, { type, state: { color: ['red'] } }, 'state.color')
    invalidAt(t, { type, state: { color: { r: 1 } } }, 'state.color')
    invalidAt(t, `{"type":"${type}","state":{"big":1e999}}`, 'state.big')
    invalidAt(t, '{"type":"' + type + '","state":{"__proto__":{"polluted":true}}}', 'state.__proto__')
    // Keys must match ^[A-Za-z0-9_]{1,32}$.
    invalidAt(t, { type, state: { 'bad-key': 1 } }, 'state.bad-key')
    invalidAt(t, { type, state: { ['k'.repeat(33)]: 1 } }, `state.${'k'.repeat(33)}`)
    invalidAt(t, { type, state: { '': 1 } }, 'state.')
  }
  t.equal(({} as Record<string, unknown>).polluted, undefined)
})

t.test('a state key that looks like a number is still named with a dot', async (t) => {
  // "123" is a valid state key; the error must name state.123 (an object key), not state[123] (an array index).
  invalidAt(t, { type: 'update', state: { 123: {} } }, 'state.123')
})

t.test('updatelisteningto: at most 256 UUIDs', async (t) => {
  accepted(t, { type: 'updatelisteningto', listeningTo: [] })
  accepted(t, { type: 'updatelisteningto', listeningTo: [uuid(1), uuid(1), uuid(2).toUpperCase()] }, 'duplicates and upper case are schema-valid')
  accepted(t, { type: 'updatelisteningto', listeningTo: Array.from({ length: 256 }, (_, i) => uuid(i)) })
  invalidAt(t, { type: 'updatelisteningto', listeningTo: Array.from({ length: 257 }, (_, i) => uuid(i)) }, 'listeningTo')
  invalidAt(t, { type: 'updatelisteningto', listeningTo: [uuid(0), uuid(1), uuid(2), 'not-a-uuid'] }, 'listeningTo[3]')
  invalidAt(t, { type: 'updatelisteningto', listeningTo: [uuid(0), 7] }, 'listeningTo[1]')
  invalidAt(t, { type: 'updatelisteningto', listeningTo: [`${uuid(0)}x`] }, 'listeningTo[0]')
  invalidAt(t, { type: 'updatelisteningto', listeningTo: [` ${uuid(0)}`] }, 'listeningTo[0]')
  invalidAt(t, { type: 'updatelisteningto', listeningTo: uuid(0) }, 'listeningTo')
  invalidAt(t, { type: 'updatelisteningto' }, 'listeningTo')
})

t.test('data: payload is required and may be any JSON, null included', async (t) => {
  for (const payload of [null, 0, false, '', 'text', [1, 'two', null], { nested: { deep: [true] } }]) {
    accepted(t, { type: 'data', payload })
  }
  invalidAt(t, { type: 'data' }, 'payload')
})

t.test('ping: t is an optional number', async (t) => {
  accepted(t, { type: 'ping' })
  accepted(t, { type: 'ping', t: 123.5 })
  accepted(t, { type: 'ping', t: -1 })
  invalidAt(t, { type: 'ping', t: '1' }, 't')
  invalidAt(t, { type: 'ping', t: null }, 't')
})

t.test('sync and leave take no fields', async (t) => {
  accepted(t, { type: 'sync' })
  accepted(t, { type: 'leave' })
  invalidAt(t, { type: 'sync', x: 1 }, 'x')
  invalidAt(t, { type: 'leave', x: 1 }, 'x')
})

t.test('parseFrame never throws on hostile input', async (t) => {
  const nested = '{"type":"data","payload":' + '['.repeat(5000) + ']'.repeat(5000) + '}'
  for (const text of [nested, '{"type":"register","state":' + JSON.stringify(Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`k${i}`, i]))) + '}']) {
    t.doesNotThrow(() => parseFrame(text))
  }
})

t.test('dottedPath', async (t) => {
  t.equal(dottedPath(''), '')
  t.equal(dottedPath('/name'), 'name')
  t.equal(dottedPath('/position/x'), 'position.x')
  t.equal(dottedPath('/state/color'), 'state.color')
  t.equal(dottedPath('/listeningTo/3', { listeningTo: ['a', 'b', 'c', 'd'] }), 'listeningTo[3]')
  t.equal(dottedPath('/a/0/b', { a: [{ b: 1 }] }), 'a[0].b')
  t.equal(dottedPath('/a/10/20', { a: Array(11).fill(Array(21).fill(0)) }), 'a[10][20]')
  t.equal(dottedPath('/state/123', { state: { 123: {} } }), 'state.123', 'a numeric object key is not an index')
  t.equal(dottedPath('/state/a~1b'), 'state.a/b', 'JSON pointer ~1 unescaped')
  t.equal(dottedPath('/state/a~0b'), 'state.a~b', 'JSON pointer ~0 unescaped')
  t.equal(dottedPath('/state/~01'), 'state.~1', '~01 is ~1, not /')
})

t.test('the fast path of position updates accepts exactly what the schema accepts, as JSON.parse reads it', async (t) => {
  const check = TypeCompiler.Compile(UpdateMessage)
  // JSON numbers of every form: integers, fractions, exponents, -0, beyond the bounds, long enough to be Infinity.
  const number = fc.oneof(
    fc.double({ noNaN: true, noDefaultInfinity: true }).map((value) => JSON.stringify(value)),
    fc.integer({ min: -2e9, max: 2e9 }).map(String),
    fc.constantFrom('0', '-0', '1e9', '-1e9', '1000000000.0001', '1E+3', '2.5e-3', '1e999', '-1e999', '0.1e1', '00', '1.', '.5', '+1', '0x10')
  )
  const frame = fc.record({ x: number, y: number, z: fc.option(number) })
    .map(({ x, y, z }) => `{"type":"update","position":{"x":${x},"y":${y}${z === null ? '' : `,"z":${z}`}}}`)
  fc.assert(fc.property(frame, (text) => {
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch {
      parsed = undefined
    }
    const valid = parsed !== undefined && check.Check(parsed)
    const fast = positionUpdate(text)
    if (valid !== (fast !== null)) return false
    const result = parseFrame(text)
    if (result.ok !== valid) return false
    return !valid || (isDeepStrictEqual(fast, parsed) && isDeepStrictEqual(result.ok && result.message, parsed))
  }), { numRuns: 5000 })
  t.pass('5,000 frames agree')

  t.equal(positionUpdate('{"type":"update","position":{"x":1,"y":2},"state":{}}'), null, 'any other field takes the general path')
  t.equal(positionUpdate('{"type":"update","position":{"x":1,"y":2,"x":3}}'), null, 'so does a duplicate key')
  t.equal(positionUpdate('{ "type":"update","position":{"x":1,"y":2}}'), null, 'and whitespace')
  t.strictSame(positionUpdate('{"type":"update","position":{"x":-0,"y":2.5e2}}'), { type: 'update', position: { x: -0, y: 250 } })
  invalidAt(t, '{"type":"update","position":{"x":1e10,"y":0}}', 'position.x')
  invalidAt(t, '{"type":"update","position":{"x":0,"y":0,"z":-1e999}}', 'position.z')
})
