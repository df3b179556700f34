/**
 * Shutdown: the drain of an embedded instance, and the standalone server's
 * answer to SIGTERM and SIGINT as a real process (and to bad settings).
 */
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import net from 'node:net'
import t from 'tap'
import shoal, { MemorySessionStore } from '../../index.js'
import { FAST, joinedClient, listen, startServer, testApp, TestClient } from '../helpers.js'
import { requestJson } from '../http.js'
import { freePort, startProcess, waitReady } from '../process.js'
import { until, within } from '../wait.js'

async function health (url: string): Promise<{ status: number, body: unknown }> {
  const { status, json } = await requestJson<unknown>(`${url}/health`)
  return { status, body: json }
}

/** The HTTP status of a WebSocket upgrade attempt (101 when it succeeds). */
async function upgradeStatus (wsUrl: string): Promise<number> {
  try {
    const client = await TestClient.connect(wsUrl)
    client.close()
    return 101
  } catch (err) {
    const match = /^HTTP (\d+)$/.exec((err as Error).message)
    if (match === null) throw err
    return Number(match[1])
  }
}

interface SilentSocket {
  /** Bytes received after the handshake (the server's frames, never answered). */
  readonly received: () => Buffer
  readonly closed: Promise<void>
  destroy: () => void
}

/**
 * A WebSocket client that completes the handshake and then never answers
 * anything, not even a close frame: the drain has to give up on it.
 */
async function silentSocket (host: string, port: number, path: string): Promise<SilentSocket> {
  const socket = net.connect(port, host)
  await once(socket, 'connect')
  socket.write([
    `GET ${path} HTTP/1.1`, `Host: ${host}:${port}`, 'Upgrade: websocket', 'Connection: Upgrade',
    `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`, 'Sec-WebSocket-Version: 13', '', ''
  ].join('\r\n'))
  let buffer = Buffer.alloc(0)
  let headDone = false
  const closed = new Promise<void>((resolve) => { socket.once('close', () => resolve()) })
  socket.on('error', () => {})
  await new Promise<void>((resolve, reject) => {
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk])
      if (headDone) return
      const end = buffer.indexOf('\r\n\r\n')
      if (end < 0) return
      const head = buffer.subarray(0, end).toString()
      buffer = buffer.subarray(end + 4)
      headDone = true
      if (head.startsWith('HTTP/1.1 101')) resolve()
      else reject(new Error(`handshake refused: ${head.split('\r\n')[0] ?? ''}`))
    })
    socket.once('close', () => reject(new Error('closed during the handshake')))
  })
  return { received: () => buffer, closed, destroy: () => socket.destroy() }
}

/** The status code of the first close frame among unmasked server frames, if any. */
function closeCode (frames: Buffer): number | undefined {
  let at = 0
  while (at + 2 <= frames.length) {
    const opcode = (frames[at] ?? 0) & 0x0f
    let length = (frames[at + 1] ?? 0) & 0x7f
    let offset = at + 2
    if (length === 126) { length = frames.readUInt16BE(offset); offset += 2 } else if (length === 127) { length = Number(frames.readBigUInt64BE(offset)); offset += 8 }
    if (opcode === 0x8) return length >= 2 ? frames.readUInt16BE(offset) : 1005
    at = offset + length
  }
  return undefined
}

t.test('in-process drain', async (t) => {
  t.test('health 503 at once, clients closed with 1012, upgrades refused with 503, then close resolves', async (t) => {
    const server = await startServer({ drainTimeoutMs: 2000 })
    let closed = false
    t.teardown(async () => { if (!closed) await server.close() })
    const a = await joinedClient(server, { name: 'Ann', room: 'd1' })
    const b = await joinedClient(server, { name: 'Bob', room: 'd2' })
    const guest = await TestClient.connect(server.wsUrl)
    t.match(await health(server.url), { status: 200, body: { status: 'ok' } })
    t.equal(server.app.shoal.stats.draining, false)

    const draining = server.app.shoal.drain()
    t.equal(server.app.shoal.stats.draining, true, 'draining from the first moment')
    t.equal(server.app.shoal.drain(), draining, 'drain is idempotent')
    const during = await health(server.url)
    t.equal(during.status, 503)
    t.same(during.body, { status: 'draining' })

    for (const [who, client] of [['Ann', a.client], ['Bob', b.client], ['the guest', guest]] as const) {
      t.equal((await within(`${who}'s socket to close in the drain`, client.closed)).code, 1012, 'closed with 1012 (service restart)')
    }
    t.equal(await upgradeStatus(server.wsUrl), 503, 'a new upgrade is refused with 503')
    await within('the drain to finish', draining)
    t.equal(server.app.shoal.stats.connections, 0)

    // Still draining after the drain finished, until the server is gone.
    t.same((await health(server.url)).body, { status: 'draining' })
    t.equal(await upgradeStatus(server.wsUrl), 503)

    await within('app.close() to resolve', server.close())
    closed = true
    t.equal(server.app.server.listening, false, 'app.close() resolved: the server listens no more')
  })

  t.test('app.close() alone drains: clients get 1012 and close resolves', async (t) => {
    const server = await startServer()
    const a = await joinedClient(server, { name: 'Ann' })
    const b = await joinedClient(server, { name: 'Bob' })
    const closing = server.close().then(() => 'closed')
    // Bounded wait: if close() hangs on the open sockets, let the clients go so the test ends.
    const outcome = await within('app.close() to resolve with the clients connected', closing, { timeoutMs: 3000 }).catch((err: Error) => err.message)
    const draining = server.app.shoal.stats.draining
    if (outcome !== 'closed') { a.client.close(); b.client.close(); await closing }
    t.equal(outcome, 'closed', 'app.close() resolves while clients are connected')
    t.equal(draining, true, 'app.close() started the drain')
    t.equal((await within('Ann\'s socket to close', a.client.closed)).code, 1012, 'clients are closed with 1012')
    t.equal((await within('Bob\'s socket to close', b.client.closed)).code, 1012, 'clients are closed with 1012')
  })

  t.test('a client that never answers the close is dropped after drainTimeoutMs', async (t) => {
    const drainTimeoutMs = 300
    const server = await startServer({ drainTimeoutMs })
    t.teardown(server.close)
    const { hostname, port, pathname } = new URL(server.wsUrl)
    const silent = await silentSocket(hostname, Number(port), pathname)
    t.teardown(silent.destroy)
    const polite = await joinedClient(server, { name: 'Ann' })
    await until('the silent socket and Ann to count as connections', () => server.app.shoal.stats.connections === 2, { describe: () => server.app.shoal.stats })
    t.equal(server.app.shoal.stats.connections, 2, 'both connected')

    const started = Date.now()
    await within('the drain to give up on the silent client', server.app.shoal.drain())
    const took = Date.now() - started
    t.equal((await within('Ann\'s socket to close', polite.client.closed)).code, 1012)
    t.ok(took >= drainTimeoutMs - 30, `the drain waited for the silent client (${took} ms)`)
    t.ok(took < drainTimeoutMs + 1500, `and gave up on it in time (${took} ms)`)
    await within('the silent socket to be dropped', silent.closed)
    t.equal(closeCode(silent.received()), 1012, 'the silent client was sent a 1012 close frame first')
    await until('no connection to be left', () => server.app.shoal.stats.connections === 0, { describe: () => server.app.shoal.stats })
    t.equal(server.app.shoal.stats.connections, 0, 'no connection is left')
  })

  t.test('sessions are flushed to the store: a new instance resumes them', async (t) => {
    const store = new MemorySessionStore()
    // tickHz 1: a change made just before the drain is saved by the drain, not by a tick.
    const first = await startServer({ sessionStore: store, tickHz: 1, graceMs: 60_000 })
    const a = await joinedClient(first, { name: 'Ann', room: 'keep', state: { hat: 'red' } })
    a.client.send({ type: 'update', state: { hat: 'blue', level: 3 }, name: 'Annie' })
    a.client.send({ type: 'sync' })
    await a.client.next('snapshot')
    await first.app.shoal.drain()
    await first.close()
    t.equal(store.size, 1, 'the session is in the store')

    // The store outlives the instance; closing it is a no-op for the memory store.
    const second = await startServer({ sessionStore: store })
    t.teardown(second.close)
    const client = await TestClient.connect(second.wsUrl)
    const welcome = await client.reconnect(a.welcome.secret)
    t.equal(welcome.resumed, true)
    t.equal(welcome.id, a.welcome.id)
    t.match(welcome.you, { name: 'Annie', room: 'keep', state: { hat: 'blue', level: 3 } })
    client.close()
  })

  t.test('two instances in one app drain independently', async (t) => {
    const app = testApp()
    const apis: Record<string, typeof app.shoal> = {}
    for (const prefix of ['/one', '/two']) {
      await app.register(async (scope) => {
        await scope.register(shoal, { ...FAST })
        apis[prefix] = scope.shoal
      }, { prefix })
    }
    const base = (await listen(app)).replace(/^http:\/\//, '')
    t.teardown(() => app.close())
    const one = await TestClient.connect(`ws://${base}/one/ws`)
    const two = await TestClient.connect(`ws://${base}/two/ws`)
    await one.register()
    await two.register()

    const first = apis['/one']
    if (first === undefined) throw new Error('fixture: no instance at /one')
    await within('the instance at /one to drain', first.drain())
    t.equal((await within('the socket of /one to close', one.closed)).code, 1012)
    t.equal((await health(`http://${base}/one`)).status, 503)
    t.match(await health(`http://${base}/two`), { status: 200, body: { status: 'ok', connections: 1 } })
    two.send({ type: 'ping', t: 7 })
    t.equal((await two.next('pong')).t, 7, 'the other instance still serves')
    t.equal(await upgradeStatus(`ws://${base}/two/ws`), 101)
    t.equal(await upgradeStatus(`ws://${base}/one/ws`), 503)
    two.close()
  })
})

t.test('the standalone server process', async (t) => {
  t.test('SIGTERM: drains, closes clients with 1012, exits 0 within 10 s, never logs the secret', async (t) => {
    const port = await freePort()
    const url = `http://127.0.0.1:${port}`
    const wsUrl = `ws://127.0.0.1:${port}/ws`
    const proc = startProcess({ PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'info', DRAIN_TIMEOUT_MS: '3000', TICK_HZ: '50' })
    await waitReady(t, proc, url)

    const a = await TestClient.connect(wsUrl)
    const welcome = await a.register({ name: 'Ann', room: 'proc' })
    const secret = welcome.secret
    // Give the secret every chance to reach a log: a takeover, a schema error and an unknown secret around it.
    const b = await TestClient.connect(wsUrl)
    const resumed = await b.reconnect(secret)
    t.equal(resumed.id, welcome.id)
    t.equal((await within('Ann\'s first socket to close', a.closed)).code, 4001, 'the old socket was replaced')
    const c = await TestClient.connect(wsUrl)
    c.send({ type: 'reconnect', secret, extra: secret })
    t.equal((await c.next('error')).code, 'invalid_message')
    c.send({ type: 'reconnect', secret: `${secret}x` })
    t.equal((await c.next('error')).code, 'invalid_secret')
    c.close()
    // A client that never answers the close keeps the drain open for DRAIN_TIMEOUT_MS.
    const silent = await silentSocket('127.0.0.1', port, '/ws')
    t.teardown(silent.destroy)
    t.match(await health(url), { status: 200, body: { status: 'ok', users: 1 } })

    const signalled = Date.now()
    proc.kill('SIGTERM')
    let during: number | string = 'no answer yet'
    await until('/health to answer 503 during the drain', async () => {
      during = await health(url).then(({ status }) => status, (err: Error) => err.message)
      return during === 503
    }, { timeoutMs: 2500, describe: () => during })
    t.equal(during, 503, '/health answers 503 during the drain')
    t.same((await health(url).catch(() => ({ body: 'gone' }))).body, { status: 'draining' })
    const refused = await upgradeStatus(wsUrl).catch((err: Error) => err.message)
    t.equal(refused, 503, 'new upgrades are refused with 503 during the drain')
    t.equal((await within('the client to be closed in the drain', b.closed)).code, 1012, 'the client is closed with 1012')

    const exit = await within('the server to exit after SIGTERM', proc.exited, { timeoutMs: 20_000 })
    t.equal(exit.code, 0, 'exit code 0')
    t.ok(exit.at - signalled < 10_000, `exited within 10 s (${exit.at - signalled} ms)`)
    await within('the silent socket to be closed', silent.closed)
    t.equal(closeCode(silent.received()), 1012)

    const { stdout, stderr } = proc.output()
    const lines = stdout.split('\n').filter((line) => line.trim() !== '')
    t.ok(lines.length > 0, 'the server logged')
    t.ok(lines.every((line) => { try { JSON.parse(line); return true } catch { return false } }), 'stdout is pino JSON lines')
    t.match(stdout, /shutting down/)
    t.match(stdout, /SIGTERM/)
    t.notOk(stdout.includes(secret), 'stdout never contains the secret')
    t.notOk(stderr.includes(secret), 'stderr never contains the secret')
  })

  t.test('SIGINT with LOG_LEVEL=trace: exits 0, still never logs the secret', async (t) => {
    const port = await freePort()
    const url = `http://127.0.0.1:${port}`
    const proc = startProcess({ PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'trace' })
    await waitReady(t, proc, url)
    const client = await TestClient.connect(`ws://127.0.0.1:${port}/ws`)
    const { secret } = await client.register({ name: 'Ann' })
    client.close()
    await within('the first socket to close', client.closed)
    const again = await TestClient.connect(`ws://127.0.0.1:${port}/ws`)
    t.equal((await again.reconnect(secret)).resumed, true)
    again.send({ type: 'leave' })
    t.equal((await within('the socket to close after leave', again.closed)).code, 1000)

    const signalled = Date.now()
    proc.kill('SIGINT')
    const exit = await within('the server to exit after SIGINT', proc.exited, { timeoutMs: 20_000 })
    t.equal(exit.code, 0)
    t.ok(exit.at - signalled < 10_000, `exited within 10 s (${exit.at - signalled} ms)`)
    const { stdout, stderr } = proc.output()
    t.match(stdout, /SIGINT/)
    t.notOk(stdout.includes(secret), 'stdout never contains the secret')
    t.notOk(stderr.includes(secret), 'stderr never contains the secret')
  })

  t.test('bad environment variables: exit non-zero naming the variable', async (t) => {
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ TICK_HZ: 'abc' }, /TICK_HZ/],
      [{ GRACE_MS: '-1' }, /GRACE_MS/],
      [{ WS_PATH: 'ws' }, /WS_PATH/],
      [{ DEMO: 'maybe' }, /DEMO/],
      [{ PORT: 'eighty' }, /PORT/],
      [{ LOG_LEVEL: 'loud' }, /LOG_LEVEL/]
    ]
    await Promise.all(cases.map(async ([env, expected]) => {
      const proc = startProcess({ PORT: '0', HOST: '127.0.0.1', ...env })
      t.teardown(() => proc.kill('SIGKILL'))
      const label = JSON.stringify(env)
      const exit = await within(`${label}: the process to exit`, proc.exited, { timeoutMs: 20_000 })
      t.equal(exit.signal, null, `${label}: the process exits (of itself)`)
      t.not(exit.code, 0, `${label}: exit code is not 0`)
      t.match(proc.output().stderr, expected, `${label}: stderr names the variable`)
    }))
  })
})
