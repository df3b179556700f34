/**
 * The standalone server as the README configures it, as a real process: the
 * METRICS_TOKEN, ALLOWED_ORIGINS, TRUST_PROXY and ADMIN_TOKEN variables reach the plugin.
 */
import { join } from 'node:path'
import t from 'tap'
import { TestClient } from '../helpers.js'
import { request, statusOf } from '../http.js'
import { freePort, QUIET_ENV, startProcess, tempDataDir, waitReady, type ServerProcess } from '../process.js'
import { until } from '../wait.js'

/** The human lines the server writes to stderr at start. */
const startLines = (proc: ServerProcess): string[] => proc.output().stderr.split('\n').filter((line) => line.startsWith('shoal: '))

/** The start line, once it is there: it and the health answer travel on different pipes. */
async function waitForStartLines (proc: ServerProcess): Promise<string[]> {
  await until('the start line on stderr', () => startLines(proc).length > 0, { describe: () => proc.output().stderr })
  return startLines(proc)
}

t.test('METRICS_TOKEN guards /metrics, ALLOWED_ORIGINS refuses other origins, TRUST_PROXY picks the client from X-Forwarded-For', async (t) => {
  const port = await freePort()
  const proc = startProcess({
    ...QUIET_ENV,
    PORT: String(port),
    CSV_FEEDS: '',
    METRICS_TOKEN: 'scrape-me',
    ALLOWED_ORIGINS: 'https://app.example',
    TRUST_PROXY: '127.0.0.1',
    REGISTER_LIMIT: '1'
  })
  const url = `http://127.0.0.1:${port}`
  await waitReady(t, proc, url)
  const wsUrl = `ws://127.0.0.1:${port}/ws`

  t.equal(await statusOf(`${url}/metrics`), 401, 'no token: 401')
  t.equal(await statusOf(`${url}/metrics`, { headers: { Authorization: 'Bearer scrape-me' } }), 200)

  await t.rejects(TestClient.connect(wsUrl, { headers: { Origin: 'https://evil.example' } }), /HTTP 403/)
  const fromApp = await TestClient.connect(wsUrl, { headers: { Origin: 'https://app.example', 'X-Forwarded-For': '9.9.9.9, 10.1.1.1' } })
  t.teardown(() => fromApp.close())
  t.equal((await fromApp.register()).resumed, false)
  const sameClient = await TestClient.connect(wsUrl, { headers: { 'X-Forwarded-For': '8.8.8.8, 10.1.1.1' } })
  t.teardown(() => sameClient.close())
  sameClient.send({ type: 'register' })
  t.equal((await sameClient.next('error')).code, 'rate_limited', 'the same client behind the proxy, whatever it forged, shares the budget of 1')
})

t.test('at start, one human line on stderr says where the demo and the WebSocket are, and what keeps the sessions, even at LOG_LEVEL=warn', async (t) => {
  const port = await freePort()
  const dataDir = tempDataDir()
  const proc = startProcess({ ...QUIET_ENV, DEMO: 'true', PORT: String(port), CSV_FEEDS: '', DATA_DIR: dataDir })
  const url = `http://127.0.0.1:${port}`
  await waitReady(t, proc, url)
  t.same(await waitForStartLines(proc), [`shoal: demo at ${url}/ · WebSocket ws://127.0.0.1:${port}/ws · sessions in ${join(dataDir, 'sessions.db')} · single node`])
})

t.test('ADMIN_TOKEN turns /admin on: the start line names it, a browser is asked for the token, Bearer and Basic both let in', async (t) => {
  const port = await freePort()
  const proc = startProcess({ ...QUIET_ENV, DEMO: 'false', PORT: String(port), CSV_FEEDS: '', ADMIN_TOKEN: 'ops-token' })
  const url = `http://127.0.0.1:${port}`
  await waitReady(t, proc, url)
  const refused = await request(`${url}/admin`)
  t.equal(refused.status, 401)
  t.match(refused.headers.get('www-authenticate'), /^Basic realm=/)
  t.equal(await statusOf(`${url}/admin`, { headers: { Authorization: 'Bearer ops-token' } }), 200)
  const basic = `Basic ${Buffer.from('anyone:ops-token').toString('base64')}`
  t.equal(await statusOf(`${url}/admin/assets/admin.js`, { headers: { Authorization: basic } }), 200, 'its bundle is served')
  t.match((await waitForStartLines(proc))[0], `no demo (DEMO=false) · admin at ${url}/admin ·`)
})
