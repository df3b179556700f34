/** Interpolator: remote positions drawn `delayMs` in the past, between the samples around that moment. */
import t from 'tap'
import { Interpolator } from '../../src/client/interpolation.js'

const A = { x: 0, y: 10, z: -4 }
const B = { x: 10, y: 20, z: 4 }

t.test('nothing known: undefined', async (t) => {
  const interp = new Interpolator(100)
  t.equal(interp.sample('a', 1000), undefined)
})

t.test('before the first sample returns the first', async (t) => {
  const interp = new Interpolator(100)
  interp.push('a', A, 1000)
  interp.push('a', B, 1100)
  t.same(interp.sample('a', 0), A)
  t.same(interp.sample('a', 1000), A, 'target (now - delay) before the first sample')
  t.same(interp.sample('a', 1100), A, 'target exactly at the first sample')
})

t.test('a single sample is returned whatever the time', async (t) => {
  const interp = new Interpolator(100)
  interp.push('a', A, 1000)
  t.same(interp.sample('a', 500), A)
  t.same(interp.sample('a', 5000), A)
})

t.test('halfway between two samples, after the delay, returns the midpoint', async (t) => {
  const interp = new Interpolator(100)
  interp.push('a', A, 1000)
  interp.push('a', B, 1100)
  t.same(interp.sample('a', 1150), { x: 5, y: 15, z: 0 })
  t.same(interp.sample('a', 1125), { x: 2.5, y: 12.5, z: -2 }, 'a quarter of the way')
})

t.test('interpolates between the two samples around the target among many', async (t) => {
  const interp = new Interpolator(50)
  interp.push('a', { x: 0, y: 0, z: 0 }, 0)
  interp.push('a', { x: 10, y: 0, z: 0 }, 100)
  interp.push('a', { x: 10, y: 30, z: 0 }, 200)
  interp.push('a', { x: 0, y: 30, z: 0 }, 300)
  t.same(interp.sample('a', 50 + 150), { x: 10, y: 15, z: 0 })
  t.same(interp.sample('a', 50 + 250), { x: 5, y: 30, z: 0 })
  t.same(interp.sample('a', 50 + 100), { x: 10, y: 0, z: 0 }, 'exactly on a sample')
})

t.test('after the last sample returns the last', async (t) => {
  const interp = new Interpolator(100)
  interp.push('a', A, 1000)
  interp.push('a', B, 1100)
  t.same(interp.sample('a', 1200), B, 'target exactly at the last sample')
  t.same(interp.sample('a', 99_999), B)
})

t.test('samples are copies', async (t) => {
  const interp = new Interpolator(0)
  const point = { x: 1, y: 2, z: 3 }
  interp.push('a', point, 0)
  point.x = 100
  const drawn = interp.sample('a', 10)
  t.same(drawn, { x: 1, y: 2, z: 3 })
  if (drawn !== undefined) drawn.y = 100
  t.same(interp.sample('a', 10), { x: 1, y: 2, z: 3 }, 'changing a result changes nothing')
})

t.test('users are independent; forget drops one', async (t) => {
  const interp = new Interpolator(100)
  interp.push('a', A, 1000)
  interp.push('b', B, 1000)
  interp.forget('a')
  t.equal(interp.sample('a', 2000), undefined)
  t.same(interp.sample('b', 2000), B)
  interp.forget('nobody')
  interp.push('a', B, 3000)
  t.same(interp.sample('a', 0), B, 'a forgotten user starts afresh')
})

t.test('the buffer keeps only the last `keep` samples', async (t) => {
  const interp = new Interpolator(0, 3)
  for (let i = 0; i < 5; i++) interp.push('a', { x: i, y: 0, z: 0 }, i * 100)
  t.same(interp.sample('a', 0), { x: 2, y: 0, z: 0 }, 'the oldest kept sample is the third pushed')
  t.same(interp.sample('a', 150), { x: 2, y: 0, z: 0 }, 'older samples are gone: no interpolation towards them')
  t.same(interp.sample('a', 250), { x: 2.5, y: 0, z: 0 })
  t.same(interp.sample('a', 1000), { x: 4, y: 0, z: 0 })
})

t.test('default buffer of 8 samples', async (t) => {
  const interp = new Interpolator()
  for (let i = 0; i < 20; i++) interp.push('a', { x: i, y: 0, z: 0 }, i * 10)
  t.same(interp.sample('a', 0), { x: 12, y: 0, z: 0 })
})
