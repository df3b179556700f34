// The operator's page in a real browser (Debian's chromium driven by
// playwright-core), logged in as a browser does after the Basic challenge: it
// sees a room appear and its count change, disconnects a user from the page,
// and sends the room a server message. A photograph of it goes to test-output/.
// The page says when it has drawn its feed (`<html data-state="live">`) and a
// room's users (`data-room`); what changes with what users do is waited for, then asserted.
import { mkdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import type { Page } from 'playwright-core'
import { adminToken } from '../../index.js'
import { harness } from '../helpers.js'
import { browserTestsRun, CHROMIUM, launchChromium, waited, waitForState } from './chromium.js'

const outputDir = fileURLToPath(new URL('../../test-output/', import.meta.url))
const TOKEN = 'operator-secret'

/** The members cell of a room's row, once the page shows it. */
const membersOf = (page: Page, room: string) => page.locator(`#rooms tr[data-room="${room}"] td:nth-child(2)`)

/** Waits for a room's members cell to show something other than `before`, and returns what it shows. */
async function membersChange (page: Page, room: string, before: string): Promise<string | null> {
  const cell = membersOf(page, room)
  await waited(page, `${room}'s members to change from ${before}`, async (timeout) => {
    await cell.filter({ hasNotText: new RegExp(`^${before}$`) }).waitFor({ timeout })
  })
  return await cell.textContent()
}

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
    await waitForState(page, 'live', 'the first overview of the feed drawn')
    t.equal(await page.locator('#feed-state').textContent(), 'live', 'the feed is live')
    t.equal(await page.locator('#room-count').textContent(), '0', 'the overview counts no rooms')
    t.equal(await page.locator('#rooms-none').isVisible(), true, 'no rooms yet')

    const ann = await join({ name: 'Ann', room: 'plaza' })
    await waited(page, 'the room plaza listed', async (timeout) => { await membersOf(page, 'plaza').waitFor({ timeout }) })
    t.equal(await membersOf(page, 'plaza').textContent(), '1', 'the room appears with one member')
    const bob = await join({ name: 'Bob', room: 'plaza' })
    t.equal(await membersChange(page, 'plaza', '1'), '2', 'and two once Bob joins')
    t.equal(await page.locator('#users-connected').textContent(), '2', 'two users connected')

    bob.client.send({ type: 'updatelisteningto', listeningTo: [ann.welcome.id] })
    await page.locator('#rooms tr[data-room="plaza"]').click()
    await waitForState(page, 'live', "plaza's users drawn", 'plaza')
    t.equal(await page.locator('#room-name').textContent(), 'plaza', 'the room chosen is shown')
    const bobRow = page.locator(`#room-users tr[data-user="${bob.welcome.id}"]`)
    const listening = bobRow.locator('td:nth-child(5)')
    await waited(page, 'Bob to listen to someone on the page', async (timeout) => { await listening.filter({ hasNotText: /^–$/ }).waitFor({ timeout }) })
    t.equal(await listening.textContent(), 'Ann', 'whom he listens to, by name')
    t.match(await bobRow.textContent(), /Bob.*connected/)
    t.match(page.url(), /\?room=plaza$/, 'the chosen room is in the address, for a reload')

    await page.locator('#send-payload').fill('{"notice":"closing in 5 minutes"}')
    await page.locator('#send button').click()
    await waited(page, 'the result of sending', async (timeout) => { await page.locator('#send-result:not(:empty)').waitFor({ timeout }) })
    t.equal(await page.locator('#send-result').textContent(), 'sent to 2 users', 'the page says who got it')
    t.same((await ann.client.next('data', (m) => m.from === 'server')).payload, { notice: 'closing in 5 minutes' })

    await bobRow.locator('button.disconnect').click()
    t.same(await bob.client.whenClosed(), { code: 1000, reason: 'disconnected by the server' }, 'Bob is disconnected')
    t.equal(await membersChange(page, 'plaza', '2'), '1', 'the room is down to one member')
    await waited(page, "Bob's row to go", async (timeout) => { await bobRow.waitFor({ state: 'detached', timeout }) })
    t.equal(server.app.shoal.user(bob.welcome.id), undefined, 'his session ended')
    t.equal(await page.locator(`#room-users tr[data-user="${ann.welcome.id}"]`).count(), 1, 'Ann stays')
    for (const chart of ['in', 'out', 'tick']) t.equal(await page.locator(`#chart-${chart} canvas`).count(), 1, `the ${chart} chart is drawn`)

    mkdirSync(outputDir, { recursive: true })
    await page.screenshot({ path: `${outputDir}admin.png`, fullPage: true })
    t.same(problems, [], 'no script errors on the page')
  })
}
