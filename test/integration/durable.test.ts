/**
 * Durable sessions, as users meet them: the standalone server keeps sessions in
 * SQLite under DATA_DIR, so after a restart (graceful or SIGKILL) a client that
 * comes back with its secret is resumed with everything it had. Real processes,
 * real sockets, a real database file.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import type { WelcomeMessageT } from '../../schemas/protocol.js'
import { TestClient } from '../helpers.js'
import { freePort, QUIET_ENV, startProcess, tempDataDir, waitReady, type ServerProcess } from '../process.js'
import { within } from '../wait.js'

const TEST_ENV = { ...QUIET_ENV, TICK_HZ: '50', DRAIN_TIMEOUT_MS: '200' }

interface Started { proc: ServerProcess, wsUrl: string }

async function start (t: Tap, dataDir: string, port: number): Promise<Started> {
  const proc = startProcess({ ...TEST_ENV, PORT: String(port), DATA_DIR: dataDir })
  await waitReady(t, proc, `http://127.0.0.1:${port}`)
  return { proc, wsUrl: `ws://127.0.0.1:${port}/ws` }
}

type Tap = Parameters<Parameters<typeof t.test>[0]>[0]

/** What a resumed user must have kept: everything but the connection itself. */
function kept (welcome: WelcomeMessageT): unknown {
  const { name, room, position, state, listeningTo } = welcome.you
  return { id: welcome.id, name, room, position, state, listeningTo }
}

/**
 * Registers Ann and Bob; Ann changes everything a session keeps, and Bob sees
 * her last move (so the tick that carries it, and its store write, have run).
 */
async function annWithHistory (wsUrl: string): Promise<{ ann: TestClient, bob: TestClient, annWelcome: WelcomeMessageT, bobWelcome: WelcomeMessageT }> {
  const ann = await TestClient.connect(wsUrl)
  const annWelcome = await ann.register({ name: 'Ann', room: 'atrium', state: { color: 'teal', level: 3 }, position: { x: 1, y: 2 } })
  const bob = await TestClient.connect(wsUrl)
  const bobWelcome = await bob.register({ name: 'Bob', room: 'atrium' })
  ann.send({ type: 'updatelisteningto', listeningTo: [bobWelcome.id] })
  ann.send({ type: 'update', name: 'Ann B.', state: { level: 4, color: null, hat: true } })
  ann.send({ type: 'update', position: { x: 10.5, y: -20.25, z: 3 } })
  await bob.next('positions', (m) => m.p.some(([id, x]) => id === annWelcome.id && x === 10.5))
  return { ann, bob, annWelcome, bobWelcome }
}

t.test('after a graceful restart a returning client is resumed with everything, and nothing is lost', async (t) => {
  const dataDir = tempDataDir()
  const port = await freePort()
  const first = await start(t, dataDir, port)
  const { ann, bob, annWelcome, bobWelcome } = await annWithHistory(first.wsUrl)
  t.ok(existsSync(join(dataDir, 'sessions.db')), 'the database file is in DATA_DIR')

  first.proc.kill('SIGTERM')
  t.equal((await within('the first server to exit after SIGTERM', first.proc.exited)).code, 0, 'a clean exit')
  t.equal((await within('Ann\'s socket to close', ann.closed)).code, 1012, 'clients were told the server restarts')
  await within('Bob\'s socket to close', bob.closed)

  const second = await start(t, dataDir, port)
  const annBack = await TestClient.connect(second.wsUrl)
  const resumed = await annBack.reconnect(annWelcome.secret)
  t.equal(resumed.resumed, true, 'resumed: true')
  t.strictSame(kept(resumed), {
    id: annWelcome.id,
    name: 'Ann B.',
    room: 'atrium',
    position: { x: 10.5, y: -20.25, z: 3 },
    state: { level: 4, hat: true },
    listeningTo: [bobWelcome.id]
  }, 'id, name, room, last position, state and listening set all came back')
  t.equal(resumed.you.connected, true)

  const bobBack = await TestClient.connect(second.wsUrl)
  const bobResumed = await bobBack.reconnect(bobWelcome.secret)
  t.equal(bobResumed.id, bobWelcome.id, 'every session survived, not only the last one written')
  t.ok(bobResumed.users.some((u) => u.id === annWelcome.id && u.name === 'Ann B.'), 'and the room is whole again')

  const stranger = await TestClient.connect(second.wsUrl)
  stranger.send({ type: 'reconnect', secret: 'not-a-secret' })
  t.equal((await stranger.next('error')).code, 'invalid_secret', 'an unknown secret is still refused')
  for (const client of [annBack, bobBack, stranger]) client.close()
  second.proc.kill('SIGTERM')
  await within('the second server to exit after SIGTERM', second.proc.exited)
})

t.test('after SIGKILL, at most the last tick is lost: a change the room has seen is kept', async (t) => {
  const dataDir = tempDataDir()
  const port = await freePort()
  const first = await start(t, dataDir, port)
  const { ann, bob, annWelcome } = await annWithHistory(first.wsUrl)

  first.proc.kill('SIGKILL')
  t.equal((await within('the first server to die of SIGKILL', first.proc.exited)).signal, 'SIGKILL')
  await within('Ann\'s socket to close', ann.closed)
  await within('Bob\'s socket to close', bob.closed)

  const second = await start(t, dataDir, port)
  const annBack = await TestClient.connect(second.wsUrl)
  const resumed = await annBack.reconnect(annWelcome.secret)
  t.equal(resumed.resumed, true)
  t.strictSame(resumed.you.position, { x: 10.5, y: -20.25, z: 3 }, 'the last broadcast position')
  t.strictSame(resumed.you.state, { level: 4, hat: true }, 'and state')
  t.equal(resumed.you.name, 'Ann B.')
  annBack.close()
  second.proc.kill('SIGTERM')
  await within('the second server to exit after SIGTERM', second.proc.exited)
})

t.test('a database file the server cannot use stops it at start with an error naming the file', async (t) => {
  const corruptDir = tempDataDir()
  const file = join(corruptDir, 'sessions.db')
  writeFileSync(file, 'definitely not SQLite\n'.repeat(100))
  const corrupt = startProcess({ ...TEST_ENV, PORT: '0', DATA_DIR: corruptDir })
  t.teardown(() => corrupt.kill('SIGKILL'))
  // As long as a start may take (waitReady's 20 s).
  const exit = await within('the server with a corrupt database file to exit', corrupt.exited, { timeoutMs: 20_000 })
  t.equal(exit.code, 1, 'exits with 1')
  t.match(corrupt.output().stderr, `shoal: session database ${file}: file is not a database`, 'says which file and why')

  const blocked = tempDataDir()
  const notADirectory = join(blocked, 'data')
  writeFileSync(notADirectory, 'a file where DATA_DIR should be')
  const unwritable = startProcess({ ...TEST_ENV, PORT: '0', DATA_DIR: notADirectory })
  t.teardown(() => unwritable.kill('SIGKILL'))
  t.equal((await within('the server with a DATA_DIR that is a file to exit', unwritable.exited, { timeoutMs: 20_000 })).code, 1, 'a DATA_DIR that cannot hold the file: exits with 1')
  t.match(unwritable.output().stderr, `shoal: session database ${join(notADirectory, 'sessions.db')}: `, 'naming the file')

  const fresh = join(tempDataDir(), 'nested', 'dir')
  mkdirSync(join(fresh, '..'), { recursive: true })
  const port = await freePort()
  const started = await start(t, fresh, port)
  t.ok(existsSync(join(fresh, 'sessions.db')), 'a DATA_DIR that does not exist yet is created')
  started.proc.kill('SIGTERM')
  t.equal((await within('the server in a new DATA_DIR to exit after SIGTERM', started.proc.exited)).code, 0)
})
