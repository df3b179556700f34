import t from 'tap'
import { AddressLimiter, MessageLimiter, type Admission } from '../../src/core/transport/rate-limit.js'

const START = 1_700_000_000_000 // a whole second
const limits = { messagesPerSecond: 60, messageBurst: 120 }

function admitMany (limiter: MessageLimiter, count: number, now: number): Admission[] {
  return Array.from({ length: count }, () => limiter.admit(now))
}

const counts = (results: Admission[]): Record<string, number> => {
  const out: Record<string, number> = {}
  for (const r of results) out[r] = (out[r] ?? 0) + 1
  return out
}

/** Spends every token at `now` and then one more message (which is dropped); returns that last admission. */
function overflow (limiter: MessageLimiter, now: number): Admission {
  for (let i = 0; i < 1000; i++) {
    const result = limiter.admit(now)
    if (result !== 'ok') return result
  }
  throw new Error('never dropped')
}

t.test('MessageLimiter', async (t) => {
  t.test('a burst of messageBurst is admitted, then one drop-notify, then silent drops', async (t) => {
    const limiter = new MessageLimiter(limits, START)
    const results = admitMany(limiter, 130, START)
    t.strictSame(results.slice(0, 120), Array(120).fill('ok'))
    t.equal(results[120], 'drop-notify')
    t.strictSame(results.slice(121), Array(9).fill('drop'))
  })

  t.test('drops are notified at most once per second', async (t) => {
    const limiter = new MessageLimiter({ messagesPerSecond: 1, messageBurst: 1 }, START)
    t.equal(limiter.admit(START), 'ok')
    t.equal(limiter.admit(START + 1), 'drop-notify')
    t.equal(limiter.admit(START + 500), 'drop')
    t.equal(limiter.admit(START + 999), 'drop')
    t.equal(limiter.admit(START + 1000), 'ok', 'a token refilled after a second')
    t.equal(limiter.admit(START + 1001), 'drop-notify', 'first drop of the new second is notified')
    t.equal(limiter.admit(START + 1002), 'drop')
  })

  t.test('tokens refill at messagesPerSecond, up to the burst', async (t) => {
    const limiter = new MessageLimiter(limits, START)
    admitMany(limiter, 120, START)
    t.equal(limiter.admit(START), 'drop-notify')
    // 500 ms at 60 per second is 30 messages.
    t.strictSame(counts(admitMany(limiter, 31, START + 500)), { ok: 30, drop: 1 })
    // A long pause refills the bucket to the burst, not beyond.
    t.strictSame(counts(admitMany(limiter, 125, START + 60_000)), { ok: 120, 'drop-notify': 1, drop: 4 })
  })

  t.test('a steady 60 per second is never dropped', async (t) => {
    const limiter = new MessageLimiter(limits, START)
    const results: Admission[] = []
    for (let i = 0; i < 60 * 30; i++) results.push(limiter.admit(START + Math.round(i * 1000 / 60)))
    t.strictSame(counts(results), { ok: 1800 })
  })

  t.test('drops in each of 10 consecutive seconds close the connection', async (t) => {
    const limiter = new MessageLimiter(limits, START)
    for (let second = 0; second < 9; second++) {
      t.equal(overflow(limiter, START + second * 1000), 'drop-notify', `second ${second + 1}`)
    }
    t.equal(overflow(limiter, START + 9000), 'close', 'the tenth second')
  })

  t.test('a second without drops breaks the streak', async (t) => {
    const limiter = new MessageLimiter(limits, START)
    for (let second = 0; second < 9; second++) overflow(limiter, START + second * 1000)
    // Second 9: quiet (a few messages, all admitted).
    t.strictSame(counts(admitMany(limiter, 5, START + 9000)), { ok: 5 })
    for (let second = 10; second < 19; second++) {
      t.equal(overflow(limiter, START + second * 1000), 'drop-notify', `second ${second}: streak of ${second - 9}`)
    }
    t.equal(overflow(limiter, START + 19_000), 'close', 'ten consecutive seconds again')
  })

  t.test('a second with no messages at all breaks the streak too', async (t) => {
    const limiter = new MessageLimiter(limits, START)
    for (let second = 0; second < 5; second++) overflow(limiter, START + second * 1000)
    for (let second = 6; second < 15; second++) {
      t.not(overflow(limiter, START + second * 1000), 'close', `second ${second}`)
    }
  })

  t.test('seconds are counted by the clock, many drops in one second count once', async (t) => {
    const limiter = new MessageLimiter(limits, START)
    for (let second = 0; second < 9; second++) {
      overflow(limiter, START + second * 1000)
      admitMany(limiter, 50, START + second * 1000 + 999)
    }
    t.equal(overflow(limiter, START + 9000), 'close')
  })
})

t.test('AddressLimiter', async (t) => {
  t.test('30 attempts within 60 seconds are allowed, the 31st is refused', async (t) => {
    const limiter = new AddressLimiter(30, 60_000)
    const results = Array.from({ length: 31 }, (_, i) => limiter.admit('1.2.3.4', START + i * 1000))
    t.strictSame(results.slice(0, 30), Array(30).fill(true))
    t.equal(results[30], false)
  })

  t.test('the window slides: an attempt is allowed again once the oldest ones are 60 seconds old', async (t) => {
    const early = new AddressLimiter(30, 60_000)
    for (let i = 0; i < 30; i++) early.admit('a', START + i * 100)
    t.equal(early.admit('a', START + 59_999), false, 'the first attempt is still in the window')

    const limiter = new AddressLimiter(30, 60_000)
    for (let i = 0; i < 30; i++) limiter.admit('a', START + i * 100)
    t.equal(limiter.admit('a', START + 60_000), true, 'the first attempt left the window')
    t.equal(limiter.admit('a', START + 60_000), false, 'that attempt took the freed place')
    t.equal(limiter.admit('a', START + 60_100), false, 'the refused one counts: still 30 in the window')
    t.equal(limiter.admit('a', START + 60_300), true, 'three more have left')
  })

  t.test('refused attempts count too', async (t) => {
    const limiter = new AddressLimiter(30, 60_000)
    for (let i = 0; i < 30; i++) t.equal(limiter.admit('a', START), true)
    for (let i = 0; i < 30; i++) t.equal(limiter.admit('a', START + 30_000), false)
    // The first 30 have left the window, but the 30 refused ones have not.
    t.equal(limiter.admit('a', START + 60_000), false)
    t.equal(limiter.admit('a', START + 89_999), false)
    t.equal(limiter.admit('a', START + 90_000), true)
  })

  t.test('a flood keeps the address refused for as long as it lasts', async (t) => {
    const limiter = new AddressLimiter(30, 60_000)
    let allowed = 0
    for (let i = 0; i < 10_000; i++) if (limiter.admit('a', START + i * 100)) allowed++
    // One attempt every 100 ms is 600 per window: only the first 30 get through.
    t.equal(allowed, 30)
  })

  t.test('addresses are independent', async (t) => {
    const limiter = new AddressLimiter(30, 60_000)
    for (let i = 0; i < 40; i++) limiter.admit('a', START)
    t.equal(limiter.admit('a', START), false)
    t.equal(limiter.admit('b', START), true)
    t.equal(limiter.admit('::1', START), true)
  })

  t.test('prune forgets addresses quiet for a whole window and keeps the others', async (t) => {
    const limiter = new AddressLimiter(30, 60_000)
    limiter.admit('quiet', START)
    limiter.admit('busy', START)
    limiter.admit('busy', START + 30_000)
    t.equal(limiter.trackedAddresses, 2)
    limiter.prune(START + 59_999)
    t.equal(limiter.trackedAddresses, 2, 'both have an attempt inside the window')
    limiter.prune(START + 60_000)
    t.equal(limiter.trackedAddresses, 1)
    // What is kept still counts.
    for (let i = 0; i < 29; i++) t.equal(limiter.admit('busy', START + 60_000), true)
    t.equal(limiter.admit('busy', START + 60_000), false, 'busy has 30 attempts in the window (one from before the prune)')
    limiter.prune(START + 200_000)
    t.equal(limiter.trackedAddresses, 0)
  })

  t.test('__proto__ is an ordinary address key', async (t) => {
    const limiter = new AddressLimiter(1, 60_000)
    t.equal(limiter.admit('__proto__', START), true)
    t.equal(limiter.admit('__proto__', START), false)
    t.equal(limiter.admit('constructor', START), true)
  })
})
