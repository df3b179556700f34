/**
 * Debian's chromium for the browser tests: where it is, how it starts, the bundles its pages load,
 * and how a test waits on a page: for the page's own signal, `<html data-state>` (and `data-room`),
 * each wait with a generous timeout that, when it passes, says what was waited for and where the page got to.
 */
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { chromium, errors, type Browser, type Page } from 'playwright-core'

export const CHROMIUM = '/usr/bin/chromium'
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']
const root = fileURLToPath(new URL('../..', import.meta.url))

/** How long a browser test waits for any one thing: generous on a loaded machine, well inside tap's 60 s a file. */
export const WAIT_MS = 15_000

/** Browser tests run where chromium is, and always under CI (where .ci/run installs it), never silently skipped there. */
export const browserTestsRun = existsSync(CHROMIUM) || process.env.CI === 'true'

/** Builds the web bundles (the demo and the client library), then starts chromium, closed when the test ends. */
export async function launchChromium (t: { teardown: (fn: () => unknown) => void }): Promise<Browser> {
  execFileSync('npm', ['run', '--silent', 'build:web'], { cwd: root, stdio: 'ignore' })
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS })
  t.teardown(async () => { await browser.close() })
  return browser
}

/** The page's own signal as it is now, for a message: `data-state="…" data-room="…"`. */
export async function signalOf (page: Page): Promise<string> {
  return await page.evaluate(() => {
    const { state, room } = document.documentElement.dataset
    return `data-state=${JSON.stringify(state ?? null)}${room === undefined ? '' : ` data-room=${JSON.stringify(room)}`}`
  }).catch((err: unknown) => `unreadable (${err instanceof Error ? err.message.split('\n')[0] : String(err)})`)
}

/**
 * One playwright wait, given `timeout` (WAIT_MS) for its own: when it times out, the error
 * says what was waited for and the page's signal then (`waited 15000 ms for …; the page's
 * data-state="login"`), rather than playwright's selector.
 */
export async function waited<T> (page: Page, what: string, wait: (timeout: number) => Promise<T>, timeout = WAIT_MS): Promise<T> {
  try {
    return await wait(timeout)
  } catch (err) {
    if (!(err instanceof errors.TimeoutError)) throw err
    throw new Error(`waited ${timeout} ms for ${what}; the page's ${await signalOf(page)}`, { cause: err })
  }
}

/** Waits for `<html data-state="state">` (and `data-room="room"` when given): what the page says once it is there. */
export async function waitForState (page: Page, state: string, what: string, room?: string): Promise<void> {
  const selector = `html[data-state="${state}"]${room === undefined ? '' : `[data-room="${room}"]`}`
  await waited(page, what, async (timeout) => { await page.waitForSelector(selector, { state: 'attached', timeout }) })
}
