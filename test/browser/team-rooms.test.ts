/**
 * The team-rooms example in Chromium, as its users meet it: a login form, the
 * hall with everyone, a chat line from one person on another's page, a team room
 * of one's own, and a viewer whose chat is refused on the page.
 */
import t from 'tap'
import type { Browser, Page } from 'playwright-core'
import { buildApp } from '../../examples/team-rooms/app.js'
import { browserTestsRun, CHROMIUM, launchChromium } from './chromium.js'

/** Logs in on a fresh page (its own browser context: its own cookie) and waits for the room. */
async function logIn (browser: Browser, base: string, name: string, team: 'red' | 'blue', role: 'player' | 'viewer' = 'player'): Promise<Page> {
  const page = await (await browser.newContext()).newPage()
  await page.goto(base)
  await page.fill('#login [name=name]', name)
  await page.selectOption('#login [name=team]', team)
  await page.selectOption('#login [name=role]', role)
  await page.click('#login button')
  await page.waitForSelector('#room:not([hidden])')
  await page.waitForFunction(() => document.getElementById('status')?.textContent === 'open')
  return page
}

if (!browserTestsRun) {
  t.plan(0, `browser test needs ${CHROMIUM} (apt-get install -y chromium); .ci/run installs it`)
} else {
  t.test('log in, see each other in the hall, chat, and keep to your team', async (t) => {
    const browser = await launchChromium(t)
    const app = await buildApp()
    const base = await app.listen({ port: 0, host: '127.0.0.1' })
    // The pages' keep-alive connections would hold app.close: the browser goes first (closing it twice is harmless).
    t.teardown(async () => {
      await browser.close()
      await app.close()
    })
    const ann = await logIn(browser, base, 'Ann', 'red')
    const bob = await logIn(browser, base, 'Bob', 'blue')
    await ann.waitForFunction(() => [...document.querySelectorAll('#people li')].some((li) => li.textContent?.startsWith('Bob')))
    t.equal(await ann.locator('#room-name').textContent(), 'hall')
    t.equal(await ann.locator('#people li.blue').first().textContent(), 'Bob (player)', 'Ann sees Bob, of the blue team')

    await bob.fill('#say [name=text]', 'hello hall')
    await bob.press('#say [name=text]', 'Enter')
    await ann.waitForFunction(() => document.getElementById('chat')?.textContent?.includes('Bob: hello hall') === true)
    t.pass('Bob\'s line reaches Ann\'s page')

    await bob.click('#team-room')
    await bob.waitForFunction(() => document.getElementById('room-name')?.textContent === 'team-blue')
    t.pass('Bob enters his team\'s room')
    await ann.waitForFunction(() => ![...document.querySelectorAll('#people li')].some((li) => li.textContent?.startsWith('Bob')))
    t.pass('and leaves Ann\'s hall')

    const vic = await logIn(browser, base, 'Vic', 'red', 'viewer')
    await vic.fill('#say [name=text]', 'may I?')
    await vic.press('#say [name=text]', 'Enter')
    await vic.waitForFunction(() => document.getElementById('error')?.textContent === 'forbidden: viewers watch only')
    t.pass('a viewer\'s chat is refused, and the page says why')
    t.notOk((await ann.locator('#chat').textContent())?.includes('may I?'), 'and nobody heard it')
  })
}
