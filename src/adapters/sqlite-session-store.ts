/**
 * Sessions in a SQLite file (better-sqlite3), so identities survive a restart.
 * One row per session; a tick's batch is one transaction. WAL with
 * `synchronous = NORMAL`: a committed batch survives the process being killed,
 * which is what a restart needs, at a fraction of the cost of a full sync.
 */
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import Database from 'better-sqlite3'
import { SessionRecord, type SessionRecordT } from '../../schemas/session.js'
import type { SessionStore } from '../core/sessions/session-store.js'
import { checkedReader } from './checked.js'

const sessionRecord = checkedReader(SessionRecord)

/** The file could not be used as a session database; the message names it. */
export class SessionDatabaseError extends Error {
  constructor (readonly file: string, cause: unknown) {
    super(`session database ${file}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause })
    this.name = 'SessionDatabaseError'
  }
}

/**
 * better-sqlite3 is installed but its compiled addon does not load: installed
 * with `--ignore-scripts`, built for another Node.js, or never built because no
 * prebuilt binary was reachable. Not the file's fault, so not a SessionDatabaseError.
 */
export class SqliteAddonError extends Error {
  constructor (cause: unknown) {
    const reason = (cause instanceof Error ? cause.message : String(cause)).split('\n')[0]
    super(`better-sqlite3 is installed but its native addon does not load (${reason}): run npm rebuild better-sqlite3, which needs python3, make and a C++ compiler where no prebuilt binary is reachable`, { cause })
    this.name = 'SqliteAddonError'
  }
}

export interface SqliteSessionStoreOptions {
  /** Where better-sqlite3's `better_sqlite3.node` is, for an app bundled without node_modules; better-sqlite3's own option. */
  nativeBinding?: string
}

interface Row {
  secret_hash: string
  id: string
  name: string
  room: string
  x: number
  y: number
  z: number
  state: string
  listening_to: string
  last_seen: number
  /** JSON `{userId, info?}` of a user the host identified, `{info}` of an anonymous one with info; null otherwise (version 2). */
  identity: string | null
}

const SCHEMA_VERSION = 2

export class SqliteSessionStore implements SessionStore {
  private readonly db: Database.Database
  private readonly selectOne: Database.Statement<[string], Row>
  private readonly upsert: Database.Statement<Row>
  private readonly deleteOne: Database.Statement<[string]>
  private readonly deleteExpired: Database.Statement<[number]>
  private readonly saveBatch: (records: readonly SessionRecordT[]) => void

  /**
   * Opens (or creates) the database at `file`, creating its directory. Throws a
   * SessionDatabaseError naming the file when it cannot be read and written as
   * one: a corrupt file, a file that is not a database, no permission; a
   * SqliteAddonError when better-sqlite3 itself cannot run.
   */
  constructor (readonly file: string, options: SqliteSessionStoreOptions = {}) {
    try {
      mkdirSync(dirname(file), { recursive: true })
    } catch (err) {
      throw new SessionDatabaseError(file, err)
    }
    try {
      this.db = new Database(file, options.nativeBinding === undefined ? {} : { nativeBinding: options.nativeBinding })
    } catch (err) {
      // SQLite's own errors are about the file; anything else failed before SQLite ran.
      throw err instanceof Database.SqliteError ? new SessionDatabaseError(file, err) : new SqliteAddonError(err)
    }
    try {
      this.db.pragma('journal_mode = WAL')
      this.db.pragma('synchronous = NORMAL')
      this.migrate()
      // Reads alone would accept a read-only file; a write now fails at start, not at the first save.
      this.db.pragma(`user_version = ${SCHEMA_VERSION}`)
      const check = this.db.pragma('quick_check', { simple: true })
      if (check !== 'ok') throw new Error(`integrity check failed: ${String(check)}`)
      this.selectOne = this.db.prepare('SELECT * FROM sessions WHERE secret_hash = ?')
      this.upsert = this.db.prepare(`
        INSERT INTO sessions (secret_hash, id, name, room, x, y, z, state, listening_to, last_seen, identity)
        VALUES (@secret_hash, @id, @name, @room, @x, @y, @z, @state, @listening_to, @last_seen, @identity)
        ON CONFLICT (secret_hash) DO UPDATE SET
          id = excluded.id, name = excluded.name, room = excluded.room,
          x = excluded.x, y = excluded.y, z = excluded.z,
          state = excluded.state, listening_to = excluded.listening_to, last_seen = excluded.last_seen,
          identity = excluded.identity`)
      this.deleteOne = this.db.prepare('DELETE FROM sessions WHERE secret_hash = ?')
      this.deleteExpired = this.db.prepare('DELETE FROM sessions WHERE last_seen <= ?')
      this.saveBatch = this.db.transaction((records: readonly SessionRecordT[]) => {
        for (const record of records) this.upsert.run(toRow(record))
      })
    } catch (err) {
      this.db.close()
      throw new SessionDatabaseError(file, err)
    }
  }

  /** How many sessions the file holds. */
  get size (): number {
    return (this.db.prepare('SELECT count(*) AS n FROM sessions').get() as { n: number }).n
  }

  async load (secretHash: string): Promise<SessionRecordT | undefined> {
    const row = this.selectOne.get(secretHash)
    // A row that does not make a session (a hand edit, a newer writer) cannot be resumed: as if there were none.
    return row === undefined ? undefined : toRecord(row)
  }

  async save (records: readonly SessionRecordT[]): Promise<void> {
    if (records.length > 0) this.saveBatch(records)
  }

  async delete (secretHash: string): Promise<void> {
    this.deleteOne.run(secretHash)
  }

  async sweep (cutoff: number): Promise<number> {
    return this.deleteExpired.run(cutoff).changes
  }

  async close (): Promise<void> {
    if (this.db.open) this.db.close()
  }

  private migrate (): void {
    const version = this.db.pragma('user_version', { simple: true }) as number
    if (version > SCHEMA_VERSION) throw new Error(`schema version ${version} is newer than this Shoal (${SCHEMA_VERSION})`)
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS sessions (
        secret_hash TEXT PRIMARY KEY,
        id TEXT NOT NULL,
        name TEXT NOT NULL,
        room TEXT NOT NULL,
        x REAL NOT NULL,
        y REAL NOT NULL,
        z REAL NOT NULL,
        state TEXT NOT NULL,
        listening_to TEXT NOT NULL,
        last_seen INTEGER NOT NULL,
        identity TEXT
      ) WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS sessions_last_seen ON sessions (last_seen);`)
    // A version 1 file (no identities yet) keeps its sessions, all anonymous.
    const columns = this.db.prepare('SELECT name FROM pragma_table_info(\'sessions\')').all() as Array<{ name: string }>
    if (!columns.some((column) => column.name === 'identity')) this.db.exec('ALTER TABLE sessions ADD COLUMN identity TEXT')
  }
}

function toRow (record: SessionRecordT): Row {
  return {
    secret_hash: record.secretHash,
    id: record.id,
    name: record.name,
    room: record.room,
    x: record.position.x,
    y: record.position.y,
    z: record.position.z,
    state: JSON.stringify(record.state),
    listening_to: JSON.stringify(record.listeningTo),
    last_seen: record.lastSeen,
    identity: record.userId === undefined && record.info === undefined ? null : JSON.stringify({ userId: record.userId, info: record.info })
  }
}

function toRecord (row: Row): SessionRecordT | undefined {
  let state: unknown, listeningTo: unknown, identity: { userId?: unknown, info?: unknown } | null
  try {
    state = JSON.parse(row.state)
    listeningTo = JSON.parse(row.listening_to)
    identity = row.identity === null ? null : JSON.parse(row.identity) as { userId?: unknown, info?: unknown } | null
  } catch {
    return undefined
  }
  return sessionRecord.check({
    ...(identity?.userId !== undefined && { userId: identity.userId }),
    ...(identity?.info !== undefined && { info: identity.info }),
    secretHash: row.secret_hash,
    id: row.id,
    name: row.name,
    room: row.room,
    position: { x: row.x, y: row.y, z: row.z },
    state,
    listeningTo,
    lastSeen: row.last_seen
  })
}
