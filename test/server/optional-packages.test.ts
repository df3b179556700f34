/**
 * better-sqlite3 and ioredis are optional: `import shoal` and an app that keeps
 * sessions in memory need neither, and the standalone server names the one it
 * misses. Their absence is made real with a module-resolution hook that refuses
 * them, as a machine without them would (Node's own ERR_MODULE_NOT_FOUND).
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import t from 'tap'

const root = new URL('../../', import.meta.url)
const dir = mkdtempSync(join(tmpdir(), 'shoal-optional-'))
writeFileSync(join(dir, 'hooks.mjs'), `
const absent = new Set(['better-sqlite3', 'ioredis'])
export async function resolve (specifier, context, next) {
  if (!absent.has(specifier)) return next(specifier, context)
  const err = new Error(\`Cannot find package '\${specifier}' imported from \${context.parentURL}\`)
  err.code = 'ERR_MODULE_NOT_FOUND'
  throw err
}`)
writeFileSync(join(dir, 'absent.mjs'), `import { register } from 'node:module'\nregister(${JSON.stringify(pathToFileURL(join(dir, 'hooks.mjs')).href)})\n`)

/** Runs `args` in node with the two packages absent, from the checkout. */
const withoutPackages = (args: string[], env: NodeJS.ProcessEnv = {}) => spawnSync(process.execPath, ['--import', join(dir, 'absent.mjs'), '--import', 'tsx', ...args], {
  cwd: root, encoding: 'utf8', timeout: 30_000, env: { ...process.env, ...env }
})

t.test('import shoal and register it without better-sqlite3 and ioredis', async (t) => {
  const script = `
    const missing = await import('better-sqlite3').then(() => 'present', (err) => err.code)
    const { default: Fastify } = await import('fastify')
    const { default: shoal, MemorySessionStore } = await import(${JSON.stringify(new URL('index.ts', root).href)})
    const app = Fastify()
    await app.register(shoal, { demo: false, sessionStore: new MemorySessionStore() })
    await app.ready()
    console.log(JSON.stringify({ missing, registered: app.hasDecorator('shoal') }))
    await app.close()`
  const run = withoutPackages(['--input-type=module', '-e', script])
  t.equal(run.status, 0, run.stderr.slice(0, 500))
  t.same(JSON.parse(run.stdout.trim().split('\n').pop() ?? '{}'), { missing: 'ERR_MODULE_NOT_FOUND', registered: true }, 'the packages are really absent, and shoal works')
})

t.test('the standalone server names the package it needs', async (t) => {
  const sqlite = withoutPackages([new URL('src/server/main.ts', root).pathname], { REDIS_URL: '', PORT: '0', HOST: '127.0.0.1', DATA_DIR: mkdtempSync(join(tmpdir(), 'shoal-data-')), LOG_LEVEL: 'warn' })
  t.equal(sqlite.status, 1)
  t.match(sqlite.stderr, /shoal: keeping sessions in a SQLite file \(no REDIS_URL\) needs the package better-sqlite3, which is not installed: npm install better-sqlite3/)
  const redis = withoutPackages([new URL('src/server/main.ts', root).pathname], { PORT: '0', HOST: '127.0.0.1', REDIS_URL: 'redis://127.0.0.1:6379', LOG_LEVEL: 'warn' })
  t.equal(redis.status, 1)
  t.match(redis.stderr, /needs the package ioredis, which is not installed: npm install ioredis/)
})
