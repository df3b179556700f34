import { createHash } from 'node:crypto'
import t from 'tap'
import { hashSecret, newSecret, sameHash } from '../../src/core/sessions/secrets.js'

t.test('newSecret is 32 random bytes as base64url', async (t) => {
  const secret = newSecret()
  t.match(secret, /^[A-Za-z0-9_-]{43}$/, '43 base64url characters, no padding')
  t.equal(Buffer.from(secret, 'base64url').length, 32)
  t.equal(Buffer.from(secret, 'base64url').toString('base64url'), secret, 'canonical encoding')
})

t.test('newSecret never repeats', async (t) => {
  const secrets = new Set(Array.from({ length: 2000 }, () => newSecret()))
  t.equal(secrets.size, 2000)
})

t.test('newSecret looks random (every base64url symbol shows up, none dominates)', async (t) => {
  const counts = new Map<string, number>()
  for (let i = 0; i < 1000; i++) for (const c of newSecret()) counts.set(c, (counts.get(c) ?? 0) + 1)
  t.equal(counts.size, 64)
  // 43 000 symbols over 64: about 670 each; a broken generator would be far off.
  t.ok(Math.max(...counts.values()) < 1500)
})

t.test('hashSecret is a deterministic SHA-256 that hides the secret', async (t) => {
  const secret = newSecret()
  const hash = hashSecret(secret)
  t.equal(hashSecret(secret), hash, 'deterministic')
  t.equal(hash, createHash('sha256').update(secret).digest('base64url'))
  t.not(hash, secret)
  t.notOk(hash.includes(secret))
  t.not(hashSecret(newSecret()), hash, 'another secret, another hash')
  t.not(hashSecret(`${secret} `), hash)
  t.equal(hashSecret('').length, 43, 'any string hashes, even empty')
  t.equal(hashSecret('😀'.repeat(10_000)).length, 43)
})

t.test('sameHash', async (t) => {
  const a = hashSecret('a')
  const b = hashSecret('b')
  t.ok(sameHash(a, a))
  t.ok(sameHash(a, hashSecret('a')))
  t.notOk(sameHash(a, b))
  t.notOk(sameHash(a, a.slice(0, -1)), 'different lengths: false, no throw')
  t.notOk(sameHash(a, `${a}x`))
  t.notOk(sameHash('', a))
  t.ok(sameHash('', ''))
  t.notOk(sameHash('é', 'e\u0301'), 'byte-wise comparison')
})
