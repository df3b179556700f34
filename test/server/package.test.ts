/**
 * The package as a host app meets it: `npm pack`, then a fresh app pinned to the
 * oldest fastify 5 installs the tarball, compiles under strict TypeScript (library
 * types checked too) and runs, with one copy of fastify and neither optional
 * package installed. Packages come from npm's cache where it has them, else from
 * the registry.
 */
import { execFileSync } from 'node:child_process'
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const root = fileURLToPath(new URL('../../', import.meta.url))
const versionOf = (name: string): string => (JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version
const run = (command: string, args: string[], cwd: string): string => execFileSync(command, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 150_000 })

const HOST_APP = `
import Fastify from 'fastify'
import shoal, { adminToken, type ShoalOptions } from 'shoal'
import { ShoalClient } from 'shoal/client'
import WebSocket from 'ws'

const options: ShoalOptions = { demo: false, canJoin: (identity, room) => room === 'lobby' || identity !== null, admin: adminToken('ops') }
const app = Fastify()
await app.register(shoal, options)
const joined: string[] = []
app.shoal.on('join', ({ user, room }) => { joined.push(user.name + ' ' + room) })
const address = await app.listen({ port: 0, host: '127.0.0.1' })
const client = new ShoalClient({ url: address.replace('http', 'ws') + '/ws', register: { name: 'Ann' }, pingIntervalMs: 0, WebSocket })
const welcome = await client.ready
const admin = await Promise.all(['/admin', '/admin/assets/admin.js', '/admin/assets/admin.css'].map(async (path) => (await fetch(address + path, { headers: { authorization: 'Bearer ops' } })).status))
// @ts-expect-error -- Shoal's internal decorators are not part of the host's types
console.log(typeof app.shoalConfig)
console.log(JSON.stringify({ welcomed: welcome.you.name, joined, users: app.shoal.stats.users, admin }))
client.close()
await app.close()
`

// Packing (a full build), installing and a strict compile take longer than tap's default per file.
t.setTimeout(240_000)

t.test('a fresh app on fastify 5.0.0 installs the tarball, compiles strictly and runs', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-pack-'))
  // Packed from a copy: its prepack build must not rewrite dist/ and public/build/ under the other tests.
  const copy = join(dir, 'shoal')
  const skipped = new Set(['node_modules', 'dist', '.git', 'results', 'test-output', '.tap'])
  cpSync(root, copy, { recursive: true, filter: (source) => !skipped.has(source.slice(source.lastIndexOf('/') + 1)) })
  symlinkSync(join(root, 'node_modules'), join(copy, 'node_modules'))
  run('npm', ['pack', '--pack-destination', dir, '--silent'], copy)
  const tarball = readdirSync(dir).find((name) => name.endsWith('.tgz'))
  if (tarball === undefined) throw new Error('npm pack wrote no tarball')
  const app = join(dir, 'app')
  run('mkdir', [app], dir)
  writeFileSync(join(app, 'package.json'), JSON.stringify({
    name: 'host-app',
    private: true,
    type: 'module',
    dependencies: { fastify: '5.0.0', shoal: `file:../${tarball}`, ws: versionOf('ws') },
    devDependencies: { typescript: versionOf('typescript'), '@types/node': versionOf('@types/node') }
  }))
  writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, skipLibCheck: false, outDir: 'dist' },
    include: ['index.ts']
  }))
  writeFileSync(join(app, 'index.ts'), HOST_APP)
  run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], app)

  const tree = JSON.parse(run('npm', ['ls', 'fastify', '--all', '--json'], app)) as { dependencies: Record<string, { version: string, dependencies?: Record<string, { version: string }> }> }
  t.equal(tree.dependencies.fastify?.version, '5.0.0', 'the host\'s fastify')
  const nested = JSON.stringify(tree.dependencies.shoal?.dependencies ?? {})
  t.notMatch(nested, /"version":"(?!5\.0\.0")/, 'shoal brings no fastify of its own')
  t.notOk(existsSync(join(app, 'node_modules', 'better-sqlite3')), 'better-sqlite3 is not installed')
  t.notOk(existsSync(join(app, 'node_modules', 'ioredis')), 'nor ioredis')
  t.notOk(existsSync(join(app, 'node_modules', 'shoal', 'public', 'src')), 'the demo\'s sources are not shipped')
  t.ok(existsSync(join(app, 'node_modules', 'shoal', 'data', 'landmarks.csv')), 'the sample feed is')

  run(join(app, 'node_modules', '.bin', 'tsc'), ['-p', '.'], app)
  const output = run(process.execPath, ['dist/index.js'], app).trim().split('\n').pop() ?? ''
  t.same(JSON.parse(output), { welcomed: 'Ann', joined: ['Ann lobby'], users: 1, admin: [200, 200, 200] }, 'the app runs: a client joins through it, the admin page and its bundle are served from the package (and app.shoalConfig is not in its types)')
})
