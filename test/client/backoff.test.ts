/**
 * Reconnect backoff: the delay schedule itself, then the delays a real client
 * asks its (fake) timers for across failures, after a welcome, after 1012, and
 * none after 4001, leave() or close().
 */
import t from 'tap'
import { backoffDelay } from '../../src/client/backoff.js'
import { ShoalClient } from '../../src/client/client.js'
import type { ShoalClientOptions } from '../../src/client/index.js'
import {
  FakeTimers, MemoryStorage, NodeWebSocket, dropConnection, freePort, once, socketClosed, startServerOn
} from './support.js'

t.test('backoffDelay', async (t) => {
  t.test('default schedule: equal jitter between half the step and the step', async (t) => {
    const steps = [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]
    steps.forEach((step, attempt) => {
      t.equal(backoffDelay(attempt, () => 0), step / 2, `attempt ${attempt}, random 0: half the step`)
      t.equal(backoffDelay(attempt, () => 1), step, `attempt ${attempt}, random 1: the whole step`)
      t.equal(backoffDelay(attempt, () => 0.5), step * 0.75, `attempt ${attempt}, random 0.5`)
    })
  })

  t.test('doubles from initialMs and is capped at maxMs', async (t) => {
    const options = { initialMs: 100, maxMs: 1000 }
    const upper = [0, 1, 2, 3, 4, 5, 6].map((attempt) => backoffDelay(attempt, () => 1, options))
    t.same(upper, [100, 200, 400, 800, 1000, 1000, 1000])
    const lower = [0, 1, 2, 3, 4, 5, 6].map((attempt) => backoffDelay(attempt, () => 0, options))
    t.same(lower, [50, 100, 200, 400, 500, 500, 500])
  })

  t.test('every delay lies within [step/2, step] for any random value', async (t) => {
    for (let attempt = 0; attempt < 12; attempt++) {
      const step = Math.min(30_000, 500 * 2 ** attempt)
      for (const r of [0, 0.1, 0.33, 0.5, 0.9, 0.999, 1]) {
        const delay = backoffDelay(attempt, () => r)
        if (delay < step / 2 || delay > step) t.fail(`attempt ${attempt}, random ${r}: ${delay} outside [${step / 2}, ${step}]`)
      }
    }
    t.pass('all within bounds')
  })

  t.test('huge attempt numbers stay at the cap (no overflow to Infinity or NaN)', async (t) => {
    t.equal(backoffDelay(1000, () => 1), 30_000)
    t.equal(backoffDelay(Number.MAX_SAFE_INTEGER, () => 0), 15_000)
  })
})

const BACKOFF = { initialMs: 100, maxMs: 1000 }

/** Random values handed out in turn, so every delay is known. */
function sequence (values: number[]): () => number {
  let i = 0
  return () => values[i++ % values.length] as number
}

function clientOptions (url: string, timers: FakeTimers, extra: Partial<ShoalClientOptions> = {}): ShoalClientOptions {
  return { url, WebSocket: NodeWebSocket, timers, backoff: BACKOFF, pingIntervalMs: 0, storage: new MemoryStorage(), ...extra }
}

t.test('reconnect delays follow the schedule across failures, and reset after a welcome', async (t) => {
  const port = await freePort()
  const randoms = [0, 1, 0.5, 0.25, 0.75, 0, 1, 0.5]
  const timers = new FakeTimers()
  const client = new ShoalClient(clientOptions(`ws://127.0.0.1:${port}/ws`, timers, { random: sequence(randoms) }))
  t.teardown(() => client.close())
  const states: string[] = []
  client.on('state', (state) => states.push(state))

  // Nothing listens: every attempt fails and asks for the next delay.
  const failures = 7
  for (let attempt = 0; attempt < failures; attempt++) {
    await timers.waitForRequests(attempt + 1)
    t.equal(timers.requests[attempt], backoffDelay(attempt, () => randoms[attempt] as number, BACKOFF), `delay before attempt ${attempt + 1}`)
    t.equal(timers.pending.size, 1, 'one retry pending')
    t.equal(client.state, 'reconnecting')
    if (attempt < failures - 1) timers.fireAll()
  }
  t.same(timers.requests, [50, 200, 300, 500, 875, 500, 1000], 'the schedule: doubling steps with jitter, capped at 1000')
  t.same(states, ['reconnecting'], 'connecting -> reconnecting, and it stays there')

  // Now a server comes up on that port; the next attempt succeeds.
  const server = await startServerOn(port)
  t.teardown(server.close)
  const welcomed = once(client, 'welcome')
  timers.fireAll()
  await welcomed
  t.equal(client.state, 'open')
  t.equal(timers.pending.size, 0, 'nothing pending once open')

  // A drop after the welcome starts over at the first step.
  const before = timers.requests.length
  dropConnection(client)
  await timers.waitForRequests(before + 1)
  const r = randoms[before % randoms.length] as number
  t.equal(timers.requests[before], backoffDelay(0, () => r, BACKOFF), 'back to the first step after a successful welcome')
  t.equal(client.state, 'reconnecting')
})

t.test('a close with 1012 (server restarting) retries at once', async (t) => {
  const server = await startServerOn(0)
  const timers = new FakeTimers()
  const client = new ShoalClient(clientOptions(server.wsUrl, timers, { random: () => 1 }))
  t.teardown(() => client.close())
  await once(client, 'welcome')
  const closed = socketClosed(client)
  await server.close()
  t.equal(await closed, 1012, 'the server closed the socket with 1012')
  t.same(timers.requests, [0], 'the retry is scheduled with no delay')
  t.equal(client.state, 'reconnecting')
})

t.test('a close with 4001 (replaced) is final: no retry', async (t) => {
  const server = await startServerOn(0)
  t.teardown(server.close)
  const storage = new MemoryStorage()
  const timers = new FakeTimers()
  const first = new ShoalClient(clientOptions(server.wsUrl, timers, { storage }))
  t.teardown(() => first.close())
  await once(first, 'welcome')
  const errored = once(first, 'error')
  const closed = socketClosed(first)
  const second = new ShoalClient(clientOptions(server.wsUrl, new FakeTimers(), { storage }))
  t.teardown(() => second.close())
  t.equal(await closed, 4001)
  const [error] = await errored
  t.equal(error.code, 'connection')
  t.equal(first.state, 'closed')
  t.same(timers.requests, [], 'no retry was scheduled')
  t.equal(timers.pending.size, 0)
})

t.test('no retry after leave()', async (t) => {
  const server = await startServerOn(0)
  t.teardown(server.close)
  const timers = new FakeTimers()
  const client = new ShoalClient(clientOptions(server.wsUrl, timers))
  await once(client, 'welcome')
  const closed = socketClosed(client)
  client.leave()
  t.equal(await closed, 1000, 'the server closed the socket after leave')
  t.equal(client.state, 'closed')
  t.same(timers.requests, [], 'no retry was scheduled')
})

t.test('no retry after close()', async (t) => {
  const server = await startServerOn(0)
  t.teardown(server.close)
  const timers = new FakeTimers()
  const client = new ShoalClient(clientOptions(server.wsUrl, timers))
  await once(client, 'welcome')
  const closed = socketClosed(client)
  client.close()
  await closed
  t.equal(client.state, 'closed')
  t.same(timers.requests, [], 'no retry was scheduled')
})

t.test('close() while waiting to retry cancels the retry', async (t) => {
  const port = await freePort()
  const timers = new FakeTimers()
  const client = new ShoalClient(clientOptions(`ws://127.0.0.1:${port}/ws`, timers, { random: () => 0 }))
  await timers.waitForRequests(1)
  t.equal(timers.pending.size, 1)
  client.close()
  t.equal(client.state, 'closed')
  t.equal(timers.pending.size, 0, 'the pending retry was cleared')
})
