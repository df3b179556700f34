/** Debian's chromium for the browser tests: where it is, how it starts, and the bundles its pages load. */
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { chromium, type Browser } from 'playwright-core'

export const CHROMIUM = '/usr/bin/chromium'
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']
const root = fileURLToPath(new URL('../..', import.meta.url))

/** Browser tests run where chromium is, and always under CI (where .ci/run installs it), never silently skipped there. */
export const browserTestsRun = existsSync(CHROMIUM) || process.env.CI === 'true'

/** Builds the web bundles (the demo and the client library), then starts chromium, closed when the test ends. */
export async function launchChromium (t: { teardown: (fn: () => unknown) => void }): Promise<Browser> {
  execFileSync('npm', ['run', '--silent', 'build:web'], { cwd: root, stdio: 'ignore' })
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS })
  t.teardown(async () => { await browser.close() })
  return browser
}
