// The operator's page in a real browser (Debian's chromium driven by
// playwright-core), logged in as a browser does after the Basic challenge: it
// sees a room appear and its count change, disconnects a user from the page,
// and sends the room a server message. A photograph of it goes to test-output/.
import { mkdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import type { Page } from 'playwright-core'
import { adminToken } from '../../index.js'
import { harness } from '../helpers.js'
import { browserTestsRun, CHROMIUM, launchChromium } from './chromium.js'

const outputDir = fileURLToPath(new URL('../../test-output/', import.meta.url))
const TOKEN = 'operator-secret'

/** The members cell of a room's row, once the page shows it. */
const membersOf = (page: Page, room: string) => page.locator(`#rooms tr[data-room="${room}"] td:nth-child(2)`)

if (!browserTestsRun) {
  t.plan(0, `browser test needs ${CHROMIUM} (apt-get install -y chromium); .ci/run installs it`)
} else {
  t.test('the admin page: a room appears, its count changes, a user is disconnected from the page', async (t) => {
    const { server, join } = await harness(t, { demo: false, admin: adminToken(TOKEN, { intervalMs: 250 }) })
    const browser = await launchChromium(t)

    const stranger = await browser.newPage()
    const refused = await stranger.request.get(`${server.url}/admin`)
    t.equal(refused.status(), 401, 'without credentials the browser gets 401')
    t.match(refused.headers()['www-authenticate'], /^Basic/, 'and is asked for them')

    const context = await browser.newContext({ httpCredentials: { username: 'ops', password: TOKEN } })
    const page = await context.newPage()
    const problems: string[] = []
    page.on('pageerror', (err) => problems.push(err.message))
    page.on('dialog', (dialog) => { dialog.accept().catch(() => {}) })
    t.equal((await page.goto(`${server.url}/admin`))?.status(), 200)
    await page.locator('#feed-state[data-state="live"]').waitFor()
    t.equal(await page.locator('#rooms-none').isVisible(), true, 'no rooms yet')

    const ann = await join({ name: 'Ann', room: 'plaza' })
    await membersOf(page, 'plaza').filter({ hasText: /^1$/ }).waitFor()
    t.pass('the room appears with one member')
    const bob = await join({ name: 'Bob', room: 'plaza' })
    await membersOf(page, 'plaza').filter({ hasText: /^2$/ }).waitFor()
    t.equal(await page.locator('#users-connected').textContent(), '2')

    bob.client.send({ type: 'updatelisteningto', listeningTo: [ann.welcome.id] })
    await page.locator('#rooms tr[data-room="plaza"]').click()
    const bobRow = page.locator(`#room-users tr[data-user="${bob.welcome.id}"]`)
    await bobRow.locator('td:nth-child(5)', { hasText: 'Ann' }).waitFor()
    t.match(await bobRow.textContent(), /Bob.*connected/)
    t.pass('whom he listens to, by name')
    t.match(page.url(), /\?room=plaza$/, 'the chosen room is in the address, for a reload')

    await page.locator('#send-payload').fill('{"notice":"closing in 5 minutes"}')
    await page.locator('#send button').click()
    await page.locator('#send-result', { hasText: 'sent to 2 users' }).waitFor()
    t.same((await ann.client.next('data', (m) => m.from === 'server')).payload, { notice: 'closing in 5 minutes' })

    await bobRow.locator('button.disconnect').click()
    t.same(await bob.client.closed, { code: 1000, reason: 'disconnected by the server' }, 'Bob is disconnected')
    await membersOf(page, 'plaza').filter({ hasText: /^1$/ }).waitFor()
    await bobRow.waitFor({ state: 'detached' })
    t.equal(server.app.shoal.user(bob.welcome.id), undefined, 'his session ended')
    t.equal(await page.locator(`#room-users tr[data-user="${ann.welcome.id}"]`).count(), 1, 'Ann stays')
    await page.locator('#chart-in canvas').first().waitFor()
    t.pass('the charts are drawn')

    mkdirSync(outputDir, { recursive: true })
    await page.screenshot({ path: `${outputDir}admin.png`, fullPage: true })
    t.same(problems, [], 'no script errors on the page')
  })
}
