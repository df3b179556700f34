/**
 * The lint rules that keep tests from leaving connections open: a test file may not
 * call the global fetch (a body left unread holds its connection) nor make its own
 * Fastify (whose close() would wait on keep-alive clients); the helpers may.
 */
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const root = fileURLToPath(new URL('../../', import.meta.url))

const FETCH = 'export const status = async (url: string): Promise<number> => (await fetch(url)).status\n'
const FASTIFY = "import fastify from 'fastify'\n\nexport const app = fastify()\n"
const GLOBAL_FETCH = 'export const status = async (url: string): Promise<number> => (await globalThis.fetch(url)).status\n'
const NAMED_FASTIFY = "import { fastify } from 'fastify'\n\nexport const app = fastify()\n"
const CASES: Array<[path: string, code: string]> = [
  ['test/integration/new.test.ts', FETCH],
  ['test/integration/new.test.ts', GLOBAL_FETCH],
  ['test/integration/new.test.ts', NAMED_FASTIFY],
  ['test/http.ts', FETCH],
  ['test/integration/new.test.ts', FASTIFY],
  ['test/helpers.ts', FASTIFY],
  ['src/server/new.ts', FASTIFY]
]

/**
 * The rule ids ESLint reports for each case, linted as if it were that file. ESLint
 * runs in a plain node process of its own: it loads its config itself, which tsx's
 * loader in this one would get in the way of.
 */
function rulesFired (): Array<Array<string | null>> {
  const script = `
    const { ESLint } = await import('eslint')
    const eslint = new ESLint({ cwd: process.cwd() })
    const out = []
    for (const [path, code] of ${JSON.stringify(CASES)}) {
      const [result] = await eslint.lintText(code, { filePath: path })
      out.push(result.messages.map((message) => message.ruleId))
    }
    console.log(JSON.stringify(out))`
  const output = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: root, encoding: 'utf8', timeout: 60_000 })
  return JSON.parse(output) as Array<Array<string | null>> // the script prints that shape
}

t.test('test files may not call the global fetch nor make their own Fastify; the helpers may', async (t) => {
  const [fetchInTest, globalFetchInTest, namedFastifyInTest, fetchInHelper, fastifyInTest, fastifyInHelper, fastifyInSource] = rulesFired()
  t.same(fetchInTest, ['no-restricted-globals'], 'fetch in a test file')
  t.same(globalFetchInTest, ['no-restricted-properties'], 'globalThis.fetch in a test file')
  t.same(namedFastifyInTest, ['no-restricted-imports'], 'fastify by its named export in a test file')
  t.same(fetchInHelper, [], 'test/http.ts, which reads every body, may fetch')
  t.same(fastifyInTest, ['no-restricted-imports'], 'Fastify in a test file')
  t.same(fastifyInHelper, [], 'testApp() in test/helpers.ts may make one')
  t.same(fastifyInSource, [], 'and so may the code under test')
})
