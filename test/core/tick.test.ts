import t from 'tap'
import { within } from '../wait.js'
import { TickScheduler } from '../../src/core/tick.js'

t.test('tick runs every step once, in the order they were added', async (t) => {
  const ran: string[] = []
  const scheduler = new TickScheduler(20)
  scheduler.add('flush', 'expire-grace', () => { ran.push('expire-grace') })
  scheduler.add('flush', 'flush', () => { ran.push('flush') })
  scheduler.add('flush', 'persist', () => { ran.push('persist') })
  scheduler.tick()
  t.strictSame(ran, ['expire-grace', 'flush', 'persist'])
  scheduler.tick()
  t.strictSame(ran, ['expire-grace', 'flush', 'persist', 'expire-grace', 'flush', 'persist'])
})

t.test('a throwing step is reported with its name and the later steps still run', async (t) => {
  const ran: string[] = []
  const errors: Array<[string, unknown]> = []
  const boom = new Error('boom')
  const scheduler = new TickScheduler(20, { onError: (step, err) => { errors.push([step, err]) } })
  scheduler.add('flush', 'first', () => { ran.push('first') })
  scheduler.add('flush', 'broken', () => { throw boom })
  scheduler.add('flush', 'last', () => { ran.push('last') })
  t.doesNotThrow(() => scheduler.tick())
  t.strictSame(ran, ['first', 'last'])
  t.equal(errors.length, 1)
  t.equal(errors[0]?.[0], 'broken')
  t.equal(errors[0]?.[1], boom)

  scheduler.tick()
  t.strictSame(ran, ['first', 'last', 'first', 'last'], 'later ticks run too')
  t.equal(errors.length, 2)
})

t.test('a throwing step without an onError hook does not stop the tick', async (t) => {
  const ran: string[] = []
  const scheduler = new TickScheduler(20)
  scheduler.add('flush', 'broken', () => { throw new Error('boom') })
  scheduler.add('flush', 'last', () => { ran.push('last') })
  t.doesNotThrow(() => scheduler.tick())
  t.strictSame(ran, ['last'])
})

t.test('observe gets the tick duration in seconds', async (t) => {
  const durations: number[] = []
  const scheduler = new TickScheduler(20, { observe: (seconds) => { durations.push(seconds) } })
  scheduler.add('flush', 'busy', () => {
    const until = process.hrtime.bigint() + 5_000_000n
    while (process.hrtime.bigint() < until) { /* spin 5 ms */ }
  })
  scheduler.tick()
  t.equal(durations.length, 1)
  const [seconds] = durations
  t.ok(seconds !== undefined && seconds >= 0.005, `at least 5 ms (${seconds})`)
  t.ok(seconds !== undefined && seconds < 5, 'in seconds, not milliseconds or nanoseconds')
})

t.test('observe is called even when a step throws', async (t) => {
  let observed = 0
  const scheduler = new TickScheduler(20, { observe: () => { observed++ }, onError: () => {} })
  scheduler.add('flush', 'broken', () => { throw new Error('boom') })
  scheduler.tick()
  t.equal(observed, 1)
})

t.test('start runs ticks on a timer until stop; starting twice does not double the timer', async (t) => {
  const scheduler = new TickScheduler(200)
  let ticks = 0
  let reached: () => void = () => {}
  const twoTicks = new Promise<void>((resolve) => { reached = resolve })
  scheduler.add('flush', 'count', () => { if (++ticks === 2) reached() })
  scheduler.start()
  scheduler.start()
  t.teardown(() => scheduler.stop())
  await within('two ticks of the timer at 200 Hz', twoTicks)
  scheduler.stop()
  const stoppedAt = ticks
  // Node runs timers in order of expiry: an interval (every 5 ms) that outlived stop()
  // would fire before a timeout of two intervals set after it.
  await new Promise((resolve) => setTimeout(resolve, 2 * 1000 / 200))
  t.equal(ticks, stoppedAt, 'no tick after stop')
  scheduler.stop()
  t.pass('stopping twice is harmless')
})

t.test('steps run by phase, whichever was added first: expire, persist, flush, publish', async (t) => {
  const ran: string[] = []
  const scheduler = new TickScheduler(20)
  scheduler.add('publish', 'cluster', () => { ran.push('cluster') })
  scheduler.add('flush', 'rooms', () => { ran.push('rooms') })
  scheduler.add('persist', 'sessions', () => { ran.push('sessions') })
  scheduler.add('expire', 'grace', () => { ran.push('grace') })
  scheduler.add('publish', 'orphans', () => { ran.push('orphans') })
  t.strictSame(scheduler.order, ['grace', 'sessions', 'rooms', 'cluster', 'orphans'])
  scheduler.tick()
  t.strictSame(ran, ['grace', 'sessions', 'rooms', 'cluster', 'orphans'])
})
