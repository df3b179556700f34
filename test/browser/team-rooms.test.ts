/**
 * The team-rooms example in Chromium, as its users meet it: a login form, the
 * hall with everyone, a chat line from one person on another's page, a team room
 * of one's own, and a viewer whose chat is refused on the page. Each step waits
 * for the page's own signal (`<html data-state data-room>`), then asserts what it shows.
 */
import t from 'tap'
import type { Browser, Page } from 'playwright-core'
import { buildApp } from '../../examples/team-rooms/app.js'
import { browserTestsRun, CHROMIUM, launchChromium, waited, waitForState } from './chromium.js'

/** A subtest, as t.test gives it. */
type Test = Parameters<Parameters<typeof t.test>[0]>[0]

/** The names shown in a page's people list. */
const people = async (page: Page): Promise<string[]> => await page.locator('#people li').allTextContents()

/** Logs in on a fresh page (its own browser context: its own cookie) and waits for the page to be in the hall. */
async function logIn (t: Test, browser: Browser, base: string, name: string, team: 'red' | 'blue', role: 'player' | 'viewer' = 'player'): Promise<Page> {
  const page = await (await browser.newContext()).newPage()
  await page.goto(base)
  await waitForState(page, 'login', `${name}'s login form`)
  await page.fill('#login [name=name]', name)
  await page.selectOption('#login [name=team]', team)
  await page.selectOption('#login [name=role]', role)
  // The form posts /login, then reloads the page: wait for that reload, then for the room it draws.
  await waited(page, `${name}'s page to reload after logging in`, async (timeout) => {
    await Promise.all([page.waitForEvent('load', { timeout }), page.click('#login button', { timeout })])
  })
  await waitForState(page, 'in-room', `${name} in the hall`, 'hall')
  t.equal(await page.locator('#status').textContent(), 'open', `${name}'s page is connected`)
  t.equal(await page.locator('#room-name').textContent(), 'hall', `${name} is in the hall`)
  t.ok((await people(page)).includes(`${name} (${role})`), `${name} is on their own list`)
  return page
}

if (!browserTestsRun) {
  t.plan(0, `browser test needs ${CHROMIUM} (apt-get install -y chromium); .ci/run installs it`)
} else {
  t.test('log in, see each other in the hall, chat, and keep to your team', async (t) => {
    const browser = await launchChromium(t)
    // forceCloseConnections: the pages' keep-alive connections never hold app.close.
    const app = await buildApp({ forceCloseConnections: true })
    const base = await app.listen({ port: 0, host: '127.0.0.1' })
    t.teardown(async () => { await app.close() })
    const ann = await logIn(t, browser, base, 'Ann', 'red')
    const bob = await logIn(t, browser, base, 'Bob', 'blue')
    await waited(ann, 'Bob on Ann\'s list', async (timeout) => {
      await ann.waitForFunction(() => [...document.querySelectorAll('#people li')].some((li) => li.textContent?.startsWith('Bob')), undefined, { timeout })
    })
    t.equal(await ann.locator('#room-name').textContent(), 'hall', 'Ann stays in the hall')
    t.equal(await ann.locator('#people li.blue').first().textContent(), 'Bob (player)', 'Ann sees Bob, of the blue team')

    await bob.fill('#say [name=text]', 'hello hall')
    await bob.press('#say [name=text]', 'Enter')
    await waited(ann, 'a chat line on Ann\'s page', async (timeout) => { await ann.locator('#chat div').first().waitFor({ timeout }) })
    t.strictSame(await ann.locator('#chat div').allTextContents(), ['Bob: hello hall'], 'Bob\'s line reaches Ann\'s page')

    await bob.click('#team-room')
    await waitForState(bob, 'in-room', 'Bob in his team\'s room', 'team-blue')
    t.equal(await bob.locator('#room-name').textContent(), 'team-blue', 'Bob enters his team\'s room')
    t.strictSame(await people(bob), ['Bob (player)'], 'where he is alone')
    await waited(ann, 'Bob to leave Ann\'s list', async (timeout) => {
      await ann.waitForFunction(() => ![...document.querySelectorAll('#people li')].some((li) => li.textContent?.startsWith('Bob')), undefined, { timeout })
    })
    t.strictSame(await people(ann), ['Ann (player)'], 'and leaves Ann\'s hall')

    const vic = await logIn(t, browser, base, 'Vic', 'red', 'viewer')
    await vic.fill('#say [name=text]', 'may I?')
    await vic.press('#say [name=text]', 'Enter')
    await waited(vic, 'an error on Vic\'s page', async (timeout) => { await vic.locator('#error:not(:empty)').waitFor({ timeout }) })
    t.equal(await vic.locator('#error').textContent(), 'forbidden: viewers watch only', 'a viewer\'s chat is refused, and the page says why')
    t.notOk((await ann.locator('#chat').textContent())?.includes('may I?'), 'and nobody heard it')
  })
}
