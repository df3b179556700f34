import t from 'tap'
import { ManualClock } from '../../src/core/clock.js'
import { QuietLog } from '../../src/core/quiet-log.js'

function recording () {
  const lines: Array<[string, object, string]> = []
  const log = {
    debug: (fields: object, message: string) => { lines.push(['debug', fields, message]) },
    warn: (fields: object, message: string) => { lines.push(['warn', fields, message]) },
    error: (fields: object, message: string) => { lines.push(['error', fields, message]) }
  }
  return { lines, log }
}

t.test('a repeated line is written once per interval, then with how many were held back', async (t) => {
  const clock = new ManualClock()
  const { lines, log } = recording()
  const quiet = new QuietLog(log, clock, 10_000)
  for (let tick = 0; tick < 200; tick++) {
    quiet.error({ tick }, 'saving sessions failed')
    clock.advance(50)
  }
  t.strictSame(lines, [['error', { tick: 0 }, 'saving sessions failed']], 'ten seconds of failures: one line')
  quiet.error({ tick: 200 }, 'saving sessions failed')
  t.strictSame(lines[1], ['error', { tick: 200, repeated: 199 }, 'saving sessions failed'])
})

t.test('different lines do not hold each other back; debug is never held back', async (t) => {
  const clock = new ManualClock()
  const { lines, log } = recording()
  const quiet = new QuietLog(log, clock)
  quiet.warn({}, 'cluster bus operation failed')
  quiet.warn({}, 'ignored an invalid cluster message')
  quiet.warn({}, 'cluster bus operation failed')
  quiet.debug({}, 'user registered')
  quiet.debug({}, 'user registered')
  t.strictSame(lines.map(([level, , message]) => `${level} ${message}`), [
    'warn cluster bus operation failed', 'warn ignored an invalid cluster message', 'debug user registered', 'debug user registered'
  ])
})

t.test('flush writes what was held back, so a burst that stopped still says how many', async (t) => {
  const clock = new ManualClock()
  const { lines, log } = recording()
  const quiet = new QuietLog(log, clock)
  for (let i = 0; i < 4; i++) quiet.warn({ i }, 'cluster bus operation failed')
  quiet.flush()
  t.strictSame(lines, [['warn', { i: 0 }, 'cluster bus operation failed'], ['warn', { repeated: 3 }, 'cluster bus operation failed']])
})
