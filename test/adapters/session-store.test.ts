/**
 * The session store contract, run against both stores (memory and a real SQLite
 * file), then what only the SQLite store has: the file outlives the process, and
 * a file it cannot use is a clear error naming it.
 */
import { spawnSync } from 'node:child_process'
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type { SessionRecordT } from '../../schemas/session.js'
import { MemorySessionStore, type SessionStore } from '../../src/core/sessions/session-store.js'
import { SessionDatabaseError, SqliteAddonError, SqliteSessionStore } from '../../src/adapters/sqlite-session-store.js'

const tempFile = (): string => join(mkdtempSync(join(tmpdir(), 'shoal-store-')), 'sessions.db')

function record (n: number, fields: Partial<SessionRecordT> = {}): SessionRecordT {
  return {
    secretHash: `hash-${n}`,
    id: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`,
    name: `user ${n} ✓`,
    room: 'lobby',
    position: { x: n + 0.5, y: -n, z: 1e-7 },
    state: { mood: 'ok', level: n, away: false },
    listeningTo: [`00000000-0000-4000-8000-${String(n + 1).padStart(12, '0')}`],
    lastSeen: 1000 + n,
    ...fields
  }
}

/** What opening `file` throws (null when it opens). */
function openError (file: string): Error | null {
  try {
    new SqliteSessionStore(file).close().catch(() => {})
    return null
  } catch (err) {
    return err as Error
  }
}

const stores: Array<[string, () => SessionStore]> = [
  ['memory', () => new MemorySessionStore()],
  ['sqlite', () => new SqliteSessionStore(tempFile())]
]

for (const [kind, make] of stores) {
  t.test(`${kind} store: the SessionStore contract`, async (t) => {
    const store = make()
    t.teardown(() => store.close())

    t.equal(await store.load('nobody'), undefined, 'an unknown hash loads nothing')
    await store.save([record(1), record(2)])
    t.strictSame(await store.load('hash-1'), record(1), 'a saved record loads back whole: position, state, listening set, last seen')
    t.strictSame(await store.load('hash-2'), record(2))

    await store.save([record(1, { name: 'renamed', room: 'hall', position: { x: 9, y: 8, z: 7 }, state: {}, listeningTo: [], lastSeen: 5000 })])
    t.strictSame(await store.load('hash-1'), record(1, { name: 'renamed', room: 'hall', position: { x: 9, y: 8, z: 7 }, state: {}, listeningTo: [], lastSeen: 5000 }), 'a later save replaces it')

    await store.save([record(3, { name: 'first' }), record(3, { name: 'second' })])
    t.equal((await store.load('hash-3'))?.name, 'second', 'within a batch, the later record wins')

    await store.save([])
    await store.delete('hash-2')
    t.equal(await store.load('hash-2'), undefined, 'deleted')
    await store.delete('hash-2')
    t.pass('deleting twice is fine')

    const save = store.save([record(4)])
    const remove = store.delete('hash-4')
    await Promise.all([save, remove])
    t.equal(await store.load('hash-4'), undefined, 'a delete called after a save wins')

    await store.save([record(10, { lastSeen: 100 }), record(11, { lastSeen: 200 }), record(12, { lastSeen: 201 })])
    t.equal(await store.sweep(200), 2, 'sweep deletes everything last seen at or before the cutoff')
    t.equal(await store.load('hash-10'), undefined)
    t.equal(await store.load('hash-11'), undefined)
    t.ok(await store.load('hash-12'), 'and keeps what is newer')
    t.equal(await store.sweep(200), 0, 'nothing left to sweep')

    const identified = record(20, { userId: 'account-7', info: { role: 'admin', tags: ['a', 'b'], nested: { n: 1 } } })
    await store.save([identified, record(21, { info: { badge: 'gold' } })])
    t.strictSame(await store.load('hash-20'), identified, 'the account id and info of an identified user load back')
    t.strictSame(await store.load('hash-21'), record(21, { info: { badge: 'gold' } }), 'info without an account')
  })
}

t.test('sqlite store: a file of schema version 1 keeps its sessions, as anonymous ones', async (t) => {
  const file = tempFile()
  const Database = (await import('better-sqlite3')).default
  const old = new Database(file)
  old.exec(`CREATE TABLE sessions (
    secret_hash TEXT PRIMARY KEY, id TEXT NOT NULL, name TEXT NOT NULL, room TEXT NOT NULL,
    x REAL NOT NULL, y REAL NOT NULL, z REAL NOT NULL, state TEXT NOT NULL, listening_to TEXT NOT NULL, last_seen INTEGER NOT NULL
  ) WITHOUT ROWID; PRAGMA user_version = 1;`)
  const r = record(1)
  old.prepare('INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').run(r.secretHash, r.id, r.name, r.room, r.position.x, r.position.y, r.position.z, JSON.stringify(r.state), JSON.stringify(r.listeningTo), r.lastSeen)
  old.close()
  const store = new SqliteSessionStore(file)
  t.teardown(() => store.close())
  t.strictSame(await store.load('hash-1'), r)
  await store.save([record(2, { userId: 'u2' })])
  t.equal((await store.load('hash-2'))?.userId, 'u2', 'and takes identities from now on')
})

t.test('sqlite store: sessions outlive the store object (a restart), and a batch is one transaction', async (t) => {
  const file = tempFile()
  const first = new SqliteSessionStore(file)
  const many = Array.from({ length: 500 }, (_, i) => record(i))
  await first.save(many)
  await first.close()
  const second = new SqliteSessionStore(file)
  t.teardown(() => second.close())
  t.equal(second.size, 500, 'every record of the batch is in the file')
  t.strictSame(await second.load('hash-321'), record(321))

  // A record that SQLite rejects (NOT NULL) in the middle of a batch: none of the batch lands.
  const broken = { ...record(1000), name: null } as unknown as SessionRecordT
  await t.rejects(second.save([record(999), broken, record(1001)]))
  t.equal(await second.load('hash-999'), undefined, 'the batch was rolled back as a whole')
  t.equal(second.size, 500)
})

t.test('sqlite store: a file it cannot use is an error naming the file', async (t) => {
  const notADatabase = tempFile()
  writeFileSync(notADatabase, 'this is not a SQLite database, just some text that is long enough to have a header'.repeat(20))
  const notADatabaseError = openError(notADatabase)
  t.type(notADatabaseError, SessionDatabaseError, 'not a database')
  t.equal((notADatabaseError as SessionDatabaseError).file, notADatabase)
  t.match(notADatabaseError?.message, `session database ${notADatabase}: file is not a database`, 'the message names the file and the reason')

  const truncated = tempFile()
  const valid = new SqliteSessionStore(truncated)
  await valid.save(Array.from({ length: 200 }, (_, i) => record(i)))
  await valid.close()
  const bytes = readFileSync(truncated)
  // Keep the header, scribble over the pages after it.
  writeFileSync(truncated, Buffer.concat([bytes.subarray(0, 100), Buffer.alloc(Math.max(0, bytes.length - 100), 0xab)]))
  const corrupt = openError(truncated)
  t.type(corrupt, SessionDatabaseError, 'corrupt pages')
  t.ok(corrupt?.message.startsWith(`session database ${truncated}: `), String(corrupt?.message))

  const directoryAsFile = mkdtempSync(join(tmpdir(), 'shoal-store-'))
  const directory = openError(directoryAsFile)
  t.type(directory, SessionDatabaseError, 'a directory where the file should be')
  t.ok(directory?.message.includes(directoryAsFile), String(directory?.message))

  if (process.getuid?.() !== 0) {
    const readOnlyDir = mkdtempSync(join(tmpdir(), 'shoal-store-'))
    chmodSync(readOnlyDir, 0o500)
    t.throws(() => new SqliteSessionStore(join(readOnlyDir, 'sessions.db')), SessionDatabaseError, 'a directory it may not write')
  }
  const readOnlyFile = tempFile()
  await new SqliteSessionStore(readOnlyFile).close()
  chmodSync(readOnlyFile, 0o400)
  // Root ignores file modes through CAP_DAC_OVERRIDE: as root, the read-only case runs
  // without that capability (still root, so it reads the checkout wherever it lives).
  const asRoot = process.getuid?.() === 0
  if (!asRoot) {
    t.throws(() => new SqliteSessionStore(readOnlyFile), SessionDatabaseError, 'a read-only file fails at start, not at the first save')
  } else {
    const script = `
      const { SqliteSessionStore } = await import(${JSON.stringify(new URL('../../src/adapters/sqlite-session-store.ts', import.meta.url).href)})
      try { new SqliteSessionStore(${JSON.stringify(readOnlyFile)}); console.log('opened') } catch (err) { console.log(err.name + ': ' + err.message) }`
    const run = spawnSync('setpriv', ['--bounding-set=-dac_override,-dac_read_search', '--inh-caps=-dac_override,-dac_read_search', '--', process.execPath, '--import=tsx', '--input-type=module', '-e', script], { encoding: 'utf8', cwd: process.cwd() })
    t.match(run.stdout, new RegExp(`^SessionDatabaseError: session database ${readOnlyFile}: `), `a read-only file fails at start, not at the first save (${run.stderr.slice(0, 200)})`)
  }
})

t.test('sqlite store: better-sqlite3 without a loadable addon is an error of its own, saying how to mend it', async (t) => {
  const notAnAddon = join(mkdtempSync(join(tmpdir(), 'shoal-addon-')), 'better_sqlite3.node')
  writeFileSync(notAnAddon, 'not a shared object')
  const cases: Array<[string, string]> = [['no addon file', join(tmpdir(), 'shoal-no-such-dir', 'better_sqlite3.node')], ['a file that is not an addon', notAnAddon]]
  for (const [what, nativeBinding] of cases) {
    const file = tempFile()
    let error: unknown
    try {
      new SqliteSessionStore(file, { nativeBinding }).close().catch(() => {})
    } catch (err) {
      error = err
    }
    t.type(error, SqliteAddonError, what)
    t.notOk(error instanceof SessionDatabaseError, `${what}: not blamed on the session file`)
    t.match((error as Error).message, /^better-sqlite3 is installed but its native addon does not load \(.+\): run npm rebuild better-sqlite3/, what)
    t.notMatch((error as Error).message, /\n/, `${what}: one line`)
  }
})
