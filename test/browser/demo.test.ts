// The demo page in a real browser (Debian's chromium driven by playwright-core):
// two pages in one room see each other move, a reload keeps the user, the
// landmarks of a CSV feed appear and move when the file is edited, and the pages
// are photographed for people to look at. A page is looked at once it says it is in
// its room (`<html data-state="in-room">`); what it then shows is asserted.
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import type { Page } from 'playwright-core'
import type {} from '../../public/src/demo-api.js'
import { joinedClient, startServer } from '../helpers.js'
import { browserTestsRun, CHROMIUM, launchChromium, signalOf, WAIT_MS, waited, waitForState } from './chromium.js'

const root = fileURLToPath(new URL('../..', import.meta.url))
const outputDir = fileURLToPath(new URL('../../test-output/', import.meta.url))

interface DemoView {
  state: string
  id: string | null
  users: Array<{ id: string, name: string, x: number, y: number, listeningTo: string[] }>
  log: Array<{ event: string, id?: string }>
}

async function view (page: Page): Promise<DemoView> {
  return await page.evaluate(() => {
    const { client, log } = window.shoalDemo
    return {
      state: client.state,
      id: client.id,
      users: [...client.users.values()].map((u) => ({ id: u.id, name: u.name, x: u.position.x, y: u.position.y, listeningTo: u.listeningTo })),
      log
    }
  })
}

/** Waits for what the page's client has to pass `test` (what other users did: the page has no signal for that). */
async function waitFor (page: Page, test: (view: DemoView) => boolean, what: string): Promise<DemoView> {
  const deadline = Date.now() + WAIT_MS
  for (;;) {
    const current = await view(page).catch(() => null)
    if (current !== null && test(current)) return current
    if (Date.now() > deadline) throw new Error(`waited ${WAIT_MS} ms for ${what}; the page's ${await signalOf(page)}, its view ${JSON.stringify(current)}`)
    await page.waitForTimeout(25)
  }
}

/** Waits for the page to say it is in its room (socket open, welcomed, users drawn), and returns what it has. */
async function inRoom (page: Page, what: string): Promise<DemoView> {
  await waitForState(page, 'in-room', what)
  return await view(page)
}

/** The README's ten-line browser client, exactly as printed there. */
function readmeClient (): string {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
  const section = readme.slice(readme.indexOf('### A browser client in ten lines'))
  const match = /```html\n([\s\S]*?)```/.exec(section)
  if (match === null) throw new Error('README has no html block under "A browser client in ten lines"')
  return match[1] as string
}

if (!browserTestsRun) {
  t.plan(0, `browser test needs ${CHROMIUM} (apt-get install -y chromium); .ci/run installs it`)
} else {
  t.test('two pages in one room, in chromium', async (t) => {
    const server = await startServer({ tickHz: 20, graceMs: 5000 })
    const browser = await launchChromium(t)
    t.teardown(server.close)
    // Two browser contexts: two people, each with their own storage.
    const pageA = await (await browser.newContext({ viewport: { width: 1100, height: 800 } })).newPage()
    const pageB = await (await browser.newContext({ viewport: { width: 1100, height: 800 } })).newPage()
    const roomUrl = `${server.url}/?room=browser-test`
    await pageA.goto(roomUrl)
    const a = await inRoom(pageA, 'page A in its room')
    t.equal(a.state, 'open', 'page A is connected')
    t.type(a.id, 'string', 'with an id')
    await pageB.goto(roomUrl)
    const b = await inRoom(pageB, 'page B in its room')
    t.equal(b.state, 'open', 'page B is connected')
    t.ok(b.users.some((u) => u.id === a.id), 'page B sees A from its welcome on')
    await waitFor(pageA, (v) => v.users.some((u) => u.id === b.id), 'page A to see B')

    // Moving the mouse on A moves A's dot on B: canvas pixels map to world units (1000 wide).
    const canvas = await pageA.locator('#space').boundingBox()
    if (canvas === null) throw new Error('no canvas on page A')
    const world = (px: number, py: number) => ({ x: px / canvas.width * 1000, y: py / canvas.height * 640 })
    await pageA.mouse.move(canvas.x + canvas.width * 0.25, canvas.y + canvas.height * 0.5)
    const target = world(canvas.width * 0.25, canvas.height * 0.5)
    const moved = await waitFor(pageB, (v) => {
      const seen = v.users.find((u) => u.id === a.id)
      return seen !== undefined && Math.abs(seen.x - target.x) < 1 && Math.abs(seen.y - target.y) < 1
    }, "A's new position on page B")
    t.ok(moved.users.some((u) => u.id === a.id), "B's mirror has A at the mouse position")

    // Reloading A keeps its id (secret from sessionStorage) and B never sees A leave.
    await pageA.reload()
    const reloaded = await inRoom(pageA, 'page A back in its room after the reload')
    t.equal(reloaded.state, 'open', 'page A is connected again')
    t.equal(reloaded.id, a.id, 'A keeps its id across a reload')
    const afterReload = await waitFor(pageB, (v) => v.users.some((u) => u.id === a.id), 'B still to have A')
    t.notOk(afterReload.log.some((entry) => entry.event === 'leave' && entry.id === a.id), 'B never saw A leave')

    // B listens to A by clicking A's dot; A says something; B shows it.
    await pageA.mouse.move(canvas.x + canvas.width * 0.3, canvas.y + canvas.height * 0.4)
    const spot = world(canvas.width * 0.3, canvas.height * 0.4)
    await waitFor(pageB, (v) => v.users.some((u) => u.id === a.id && Math.abs(u.x - spot.x) < 1), 'A at its new spot on B')
    await waited(pageB, "A's dot drawn at its new spot on page B", async (timeout) => {
      await pageB.waitForFunction(([id, x, y]) => {
        const drawn = window.shoalDemo.drawnAt(id as string)
        return drawn !== undefined && Math.abs(drawn.x - (x as number)) < 1 && Math.abs(drawn.y - (y as number)) < 1
      }, [a.id, spot.x, spot.y], { timeout })
    })
    const canvasB = await pageB.locator('#space').boundingBox()
    if (canvasB === null) throw new Error('no canvas on page B')
    const aOnB = { x: canvasB.x + spot.x / 1000 * canvasB.width, y: canvasB.y + spot.y / 640 * canvasB.height }
    // Approach from the right, as a person would: B's dot follows the pointer until it is over A's dot.
    await pageB.mouse.move(aOnB.x + 80, aOnB.y, { steps: 4 })
    await pageB.mouse.move(aOnB.x, aOnB.y, { steps: 8 })
    await pageB.mouse.click(aOnB.x, aOnB.y)
    await waitFor(pageA, (v) => v.users.some((u) => u.id === b.id && u.listeningTo.includes(a.id ?? '')), 'A to see that B listens to it')
    await pageA.fill('#say-text', 'hello from A')
    await pageA.press('#say-text', 'Enter')
    await waitFor(pageB, (v) => v.log.some((entry) => entry.event === 'data' && entry.id === a.id), "B to receive A's message")
    // B steps back, so the picture shows both dots, the listening line and the bubble.
    await pageB.mouse.move(canvasB.x + canvasB.width * 0.6, canvasB.y + canvasB.height * 0.65, { steps: 5 })
    // Two animation frames, so the bubble is on the canvas before the picture.
    await pageB.evaluate(async () => await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve))))
    mkdirSync(outputDir, { recursive: true })
    const path = `${outputDir}demo-page-b.png`
    await pageB.screenshot({ path })
    t.ok(existsSync(path), `screenshot written to ${path}`)
    t.equal(await pageB.locator('#count').textContent(), '2', 'page B shows two users')
    t.equal(await pageB.locator('#state').textContent(), 'open', 'page B shows its connection state')
  })

  t.test('two tabs of one browser are two users; a reload keeps the tab\'s user', async (t) => {
    const server = await startServer({ tickHz: 20, graceMs: 5000 })
    const browser = await launchChromium(t)
    t.teardown(server.close)
    // One context: the tabs share localStorage and cookies, as two tabs of one browser do.
    const context = await browser.newContext({ viewport: { width: 1100, height: 800 } })
    const tabA = await context.newPage()
    const tabB = await context.newPage()
    const roomUrl = `${server.url}/?room=two-tabs`
    await tabA.goto(roomUrl)
    const a = await inRoom(tabA, 'tab A in its room')
    t.equal(a.state, 'open', 'tab A is connected')
    t.type(a.id, 'string', 'with an id')
    await tabB.goto(roomUrl)
    const b = await inRoom(tabB, 'tab B in its room')
    t.equal(b.state, 'open', 'tab B is connected')
    t.ok(b.users.some((u) => u.id === a.id), 'tab B sees A from its welcome on')
    t.not(b.id, a.id, 'the second tab is another user')
    await waitFor(tabA, (v) => v.users.some((u) => u.id === b.id), 'tab A to see B')
    // A tab draws only while it is in front (animation frames pause behind): look at each in turn, as a person would.
    // Waited for a while, then read: the assertion shows what the tab shows instead.
    const shown = async (tab: typeof tabA, selector: string, text: string): Promise<string | null> => {
      await tab.bringToFront()
      await tab.waitForFunction(([sel, want]) => document.querySelector(sel as string)?.textContent === want, [selector, text], { timeout: WAIT_MS }).catch(() => {})
      return await tab.locator(selector).textContent()
    }
    t.equal(await shown(tabA, '#count', '2'), '2', 'tab A shows 2 here')
    t.equal(await shown(tabB, '#count', '2'), '2', 'tab B shows 2 here')
    t.equal(await shown(tabA, '#state', 'open'), 'open', 'tab A stays open')

    await tabA.reload()
    const reloaded = await inRoom(tabA, 'tab A back in its room after its reload')
    t.equal(reloaded.state, 'open', 'tab A is connected again')
    t.equal(reloaded.id, a.id, 'the reloaded tab keeps its user')
    t.equal(await shown(tabB, '#state', 'open'), 'open', 'and the other tab stays open')
    t.equal((await waitFor(tabB, (v) => v.users.some((u) => u.id === a.id), 'B still to have A')).id, b.id)
  })

  t.test('the landmarks feed: markers appear, and move when the CSV file is edited', async (t) => {
    const file = join(mkdtempSync(join(tmpdir(), 'shoal-landmarks-')), 'landmarks.csv')
    copyFileSync(join(root, 'data', 'landmarks.csv'), file)
    const server = await startServer({ tickHz: 20, csvFeeds: [{ name: 'landmarks', file }] })
    const browser = await launchChromium(t)
    t.teardown(server.close)
    const page = await (await browser.newContext({ viewport: { width: 1100, height: 800 } })).newPage()
    await page.goto(`${server.url}/?room=landmarks-test`)
    /** The colour drawn at world point (x, y) of the canvas, as [r, g, b]. */
    const pixel = async (x: number, y: number): Promise<number[]> => await page.evaluate(([wx, wy]) => {
      const canvas = document.getElementById('space') as HTMLCanvasElement
      const scale = canvas.width / 1000
      return [...(canvas.getContext('2d') as CanvasRenderingContext2D).getImageData(Math.round((wx as number) * scale), Math.round((wy as number) * scale), 1, 1).data].slice(0, 3)
    }, [x, y])
    const isMarker = ([r = 0, g = 0, b = 255]: number[]): boolean => r > 180 && g > 110 && g < 180 && b < 90
    const nextFrames = async (): Promise<void> => { await page.evaluate(async () => await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)))) }

    await waitForState(page, 'in-room', 'the page in its room')
    await waited(page, 'the landmarks feed on the page', async (timeout) => {
      await page.waitForFunction(() => window.shoalDemo.landmarks().length > 0, undefined, { timeout })
    })
    const marks = await page.evaluate(() => window.shoalDemo.landmarks())
    t.strictSame(marks.map((m) => m.name), ['Fountain', 'North gate', 'Library', 'Bandstand', 'Café'], 'every row of the sample file is a marker')
    t.match(marks.find((m) => m.name === 'Fountain'), { x: 500, y: 320 }, 'the Fountain is at (500, 320) in the feed')
    await nextFrames()
    t.ok(isMarker(await pixel(500, 320)), 'the Fountain marker is drawn at (500, 320)')

    writeFileSync(file, readFileSync(file, 'utf8').replace('Fountain,500,320', 'Fountain,620,260'))
    await waited(page, 'the Fountain at (620, 260) after the edit', async (timeout) => {
      await page.waitForFunction(() => window.shoalDemo.landmarks().some((m) => m.name === 'Fountain' && m.x === 620 && m.y === 260), undefined, { timeout })
    })
    await nextFrames()
    t.ok(isMarker(await pixel(620, 260)), 'after the edit it is drawn at (620, 260)')
    t.notOk(isMarker(await pixel(500, 320)), 'and no longer at its old place')
    mkdirSync(outputDir, { recursive: true })
    await page.screenshot({ path: `${outputDir}demo-landmarks.png` })
  })

  t.test("the README's ten-line browser client works as printed", async (t) => {
    const server = await startServer({ tickHz: 20 })
    const browser = await launchChromium(t)
    const bob = await joinedClient(server, { name: 'Bob', room: 'atrium' })
    t.teardown(async () => {
      bob.client.close()
      await server.close()
    })
    const page = await browser.newPage()
    await page.goto(`${server.url}/health`)
    // The snippet as a page of the same origin, so its module import and WebSocket URL resolve.
    await page.setContent(readmeClient())
    // The snippet's one signal is its title; it draws its list in the same task as it sets it.
    await waited(page, 'the title "Shoal: open"', async (timeout) => { await page.waitForFunction(() => document.title === 'Shoal: open', undefined, { timeout }) })
    t.equal(await page.locator('#people').textContent(), 'Bob at 0,0', 'the page lists Bob where he is')
    bob.client.send({ type: 'update', position: { x: 12.4, y: 34.6 } })
    await waited(page, 'Bob to move on the page', async (timeout) => {
      await page.waitForFunction(() => document.querySelector('#people')?.textContent !== 'Bob at 0,0', undefined, { timeout })
    })
    t.equal(await page.locator('#people').textContent(), 'Bob at 12,35', 'and where he moves to')
    const ada = await bob.client.next('presence', (m) => (m.joined ?? []).some((u) => u.name === 'Ada'))
    t.equal(ada.room, 'atrium', 'Bob sees Ada join the room the snippet asked for')
    t.equal(await page.locator('#people li').count(), 1, 'the page lists the other user')
  })
}
