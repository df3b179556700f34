/** The HTTP side of an instance: /health, /metrics and the demo client. */
import t from 'tap'
import { joinedClient, startServer, TestClient } from '../helpers.js'
import { request, requestJson, statusOf } from '../http.js'
import { until, valueWhere } from '../wait.js'

interface Health { status: string, uptime?: number, connections?: number, users?: number, rooms?: number }

async function getHealth (url: string): Promise<{ status: number, body: Health }> {
  const res = await requestJson<Health>(`${url}/health`)
  return { status: res.status, body: res.json }
}

async function getMetrics (url: string): Promise<string> {
  const res = await request(`${url}/metrics`)
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`)
  return res.body
}

/** Waits until /health's body satisfies `check`; returns that body. */
async function healthWhen (url: string, what: string, check: (body: Health) => boolean): Promise<Health> {
  return await valueWhere(what, async () => (await getHealth(url)).body, check)
}

/** The `src` of every script element of a page. */
function scriptSources (html: string): string[] {
  return [...html.matchAll(/<script\b[^>]*\bsrc=["']([^"']+)["']/gi)].map((match) => match[1] ?? '')
}

/** The value of one sample line (`name{labels} value`), or undefined when absent. */
function sample (text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1))
  }
  return undefined
}

t.test('GET /health', async (t) => {
  const server = await startServer({ graceMs: 0 })
  t.teardown(server.close)

  t.test('answers ok with uptime and zero counts when idle', async (t) => {
    const res = await requestJson<Health>(`${server.url}/health`)
    t.equal(res.status, 200)
    t.match(res.headers.get('content-type'), /^application\/json/)
    const body = res.json
    t.equal(body.status, 'ok')
    t.type(body.uptime, 'number')
    t.ok((body.uptime ?? -1) >= 0, 'uptime is not negative')
    t.same({ connections: body.connections, users: body.users, rooms: body.rooms }, { connections: 0, users: 0, rooms: 0 })
  })

  t.test('counts follow real clients', async (t) => {
    const a = await joinedClient(server, { name: 'Ann', room: 'h1' })
    const b = await joinedClient(server, { name: 'Bob', room: 'h2' })
    let health = await getHealth(server.url)
    t.equal(health.status, 200)
    t.match(health.body, { status: 'ok', connections: 2, users: 2, rooms: 2 })

    // A guest connection counts as a connection, not as a user.
    const guest = await TestClient.connect(server.wsUrl)
    await healthWhen(server.url, 'the guest counted as a connection', (body) => body.connections === 3)
    health = await getHealth(server.url)
    t.match(health.body, { connections: 3, users: 2, rooms: 2 })

    // Bob joins Ann's room: one room left.
    b.client.send({ type: 'join', room: 'h1' })
    await b.client.next('snapshot')
    health = await getHealth(server.url)
    t.match(health.body, { connections: 3, users: 2, rooms: 1 })

    // Ann leaves for good; the guest closes.
    a.client.send({ type: 'leave' })
    t.equal((await a.client.whenClosed()).code, 1000)
    guest.close()
    await guest.whenClosed()
    t.match(await healthWhen(server.url, 'counts to drop after leave and close',
      (body) => body.connections === 1 && body.users === 1 && body.rooms === 1),
    { connections: 1, users: 1, rooms: 1 }, 'counts drop after leave and close')

    // Bob's socket drops without leave; with graceMs 0 he is removed at the next tick.
    b.client.close()
    await b.client.whenClosed()
    t.match(await healthWhen(server.url, 'counts to return to zero',
      (body) => body.connections === 0 && body.users === 0 && body.rooms === 0),
    { connections: 0, users: 0, rooms: 0 }, 'counts return to zero')
  })
})

t.test('GET /metrics', async (t) => {
  const server = await startServer()
  t.teardown(server.close)
  const a = await joinedClient(server, { name: 'Ann', room: 'm1' })
  const b = await joinedClient(server, { name: 'Bob', room: 'm2' })
  t.teardown(() => { a.client.close(); b.client.close() })

  a.client.send('{not json')
  const error = await a.client.next('error')
  t.equal(error.code, 'bad_json')
  a.client.send('{"also": not json')
  await a.client.next('error', (m) => m.code === 'bad_json')

  const res = await request(`${server.url}/metrics`)
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /^text\/plain/)
  t.match(res.headers.get('content-type'), /version=0\.0\.4/)

  // Wait until at least one tick has been observed, so the histogram has a count.
  let text = ''
  await until('a tick to be observed in shoal_tick_duration_seconds', async () => {
    text = await getMetrics(server.url)
    return (sample(text, 'shoal_tick_duration_seconds_count') ?? 0) > 0
  }, { describe: () => sample(text, 'shoal_tick_duration_seconds_count') })
  t.ok((sample(text, 'shoal_tick_duration_seconds_count') ?? 0) > 0, 'ticks are observed')

  for (const family of ['shoal_connections', 'shoal_users', 'shoal_rooms', 'shoal_messages_in_total', 'shoal_messages_out_total',
    'shoal_errors_total', 'shoal_frames_skipped_total', 'shoal_tick_duration_seconds']) {
    t.match(text, new RegExp(`^# HELP ${family} `, 'm'), `${family} has HELP`)
    t.match(text, new RegExp(`^# TYPE ${family} `, 'm'), `${family} has TYPE`)
  }
  t.match(text, /^# TYPE shoal_connections gauge$/m)
  t.match(text, /^# TYPE shoal_messages_in_total counter$/m)
  t.match(text, /^# TYPE shoal_tick_duration_seconds histogram$/m)

  t.equal(sample(text, 'shoal_connections'), 2, 'shoal_connections follows clients')
  t.equal(sample(text, 'shoal_users'), 2, 'shoal_users follows clients')
  t.equal(sample(text, 'shoal_rooms'), 2, 'shoal_rooms follows clients')
  t.equal(sample(text, 'shoal_messages_in_total{type="register"}'), 2)
  t.equal(sample(text, 'shoal_messages_out_total{type="welcome"}'), 2)
  t.equal(sample(text, 'shoal_errors_total{code="bad_json"}'), 2)
  t.equal(sample(text, 'shoal_frames_skipped_total'), 0)

  // The histogram: every bucket, +Inf, sum and count.
  for (const le of ['0.0001', '0.00025', '0.0005', '0.001', '0.0025', '0.005', '0.01', '0.025', '0.05', '0.1', '+Inf']) {
    t.type(sample(text, `shoal_tick_duration_seconds_bucket{le="${le}"}`), 'number', `bucket le=${le}`)
  }
  const count = sample(text, 'shoal_tick_duration_seconds_count') ?? 0
  t.equal(sample(text, 'shoal_tick_duration_seconds_bucket{le="+Inf"}'), count, '+Inf bucket equals count')
  t.type(sample(text, 'shoal_tick_duration_seconds_sum'), 'number')

  // Counters move with traffic.
  a.client.send({ type: 'ping', t: 1 })
  await a.client.next('pong')
  b.client.send({ type: 'bogus' })
  await b.client.next('error', (m) => m.code === 'unknown_type')
  text = await getMetrics(server.url)
  t.equal(sample(text, 'shoal_messages_in_total{type="ping"}'), 1)
  t.equal(sample(text, 'shoal_messages_out_total{type="pong"}'), 1)
  t.equal(sample(text, 'shoal_errors_total{code="unknown_type"}'), 1)
  t.equal(sample(text, 'shoal_errors_total{code="bad_json"}'), 2)
})

t.test('the demo client is served at /', async (t) => {
  const server = await startServer()
  t.teardown(server.close)

  const page = await request(`${server.url}/`)
  t.equal(page.status, 200)
  t.match(page.headers.get('content-type'), /^text\/html/)
  const html = page.body
  t.match(html, /<html/i)
  t.equal(await statusOf(`${server.url}/index.html`), 200)

  // The client script(s) the page loads (the demo's app.js, wherever the page points) are served too.
  const scripts = scriptSources(html)
  t.ok(scripts.length > 0, 'the page loads a script')
  for (const src of scripts) {
    const script = await request(new URL(src, `${server.url}/`))
    t.equal(script.status, 200, `${src} is served`)
    t.match(script.headers.get('content-type'), /javascript/, `${src} is JavaScript`)
    t.ok(script.body.length > 0, `${src} is not empty`)
  }

  t.equal(await statusOf(`${server.url}/no-such-file.js`), 404)
})

t.test('demo: false serves no demo, but health and the socket still work', async (t) => {
  const server = await startServer({ demo: false })
  t.teardown(server.close)
  // The page's script names come from an instance that serves the demo.
  const withDemo = await startServer()
  t.teardown(withDemo.close)
  const demoUrl = withDemo.url
  t.equal(await statusOf(`${server.url}/`), 404)
  t.equal(await statusOf(`${server.url}/index.html`), 404)
  for (const src of scriptSources((await request(`${demoUrl}/`)).body)) {
    t.equal(await statusOf(new URL(src, `${server.url}/`)), 404, `${src} is not served`)
  }
  t.equal((await getHealth(server.url)).status, 200)
  t.equal(await statusOf(`${server.url}/metrics`), 200)
  const { client, welcome } = await joinedClient(server)
  t.equal(welcome.protocol, 1)
  client.close()
})

t.test('the static handler serves the page and its bundles only: no sources, tsconfig or source maps', async (t) => {
  for (const prefix of ['', '/realtime']) {
    const server = await startServer({ prefix })
    t.teardown(() => server.close())
    const status = async (path: string): Promise<number> => await statusOf(`${server.url}${path}`)
    for (const path of ['/', '/index.html', '/build/demo.js', '/build/shoal-client.js']) t.equal(await status(path), 200, `${prefix}${path}`)
    for (const path of ['/build/demo.js.map', '/src/demo.ts', '/src/demo-api.ts', '/tsconfig.json', '/build/', '/src/']) {
      t.equal(await status(path), 404, `${prefix}${path} is not served`)
    }
  }
})

t.test('the client bundle and the demo each on their own option', async (t) => {
  const cases: Array<[Partial<{ demo: boolean, clientBundle: boolean }>, Record<string, number>]> = [
    [{ demo: false, clientBundle: true }, { '/build/shoal-client.js': 200, '/': 404, '/build/demo.js': 404 }],
    [{ clientBundle: false }, { '/build/shoal-client.js': 404, '/': 200, '/build/demo.js': 200 }],
    // Unset, the bundle follows the demo.
    [{ demo: false }, { '/build/shoal-client.js': 404, '/': 404 }]
  ]
  for (const [options, expected] of cases) {
    const server = await startServer(options)
    t.teardown(() => server.close())
    for (const [path, status] of Object.entries(expected)) {
      t.equal(await statusOf(`${server.url}${path}`), status, `${JSON.stringify(options)}: ${path} answers ${status}`)
    }
  }
})
