/**
 * CSV data feeds: a file parsed with csv-parse (header row required, limits on
 * rows and bytes), watched for changes (also a replace by rename, as editors and
 * `mv` do), and published as a new version only when it is valid. An invalid
 * file never replaces the last good version: its error (with the line) is kept
 * for `GET /csv` and reported once per change.
 */
import { readFileSync, statSync, watch, type FSWatcher } from 'node:fs'
import { basename, dirname, relative } from 'node:path'
import { CsvError, parse } from 'csv-parse/sync'
import type { FeedRowsT, FeedStatusT } from '../../../schemas/http.js'
import type { CsvFeedConfigT } from '../../../schemas/options.js'
import type { CsvMessageT } from '../../../schemas/protocol.js'
import { serverFrame } from '../../protocol/frames.js'
import type { Clock } from '../clock.js'

export interface CsvLimits {
  /** Most data rows a file may have (the header not counted). */
  maxRows: number
  /** Largest file in bytes. */
  maxBytes: number
}

export type CsvTable = Pick<FeedRowsT, 'columns' | 'rows'>

/** Why a file was refused, and where (1-based line), when the parser knows. */
export class CsvProblem extends Error {
  constructor (message: string, readonly line: number | null = null) {
    super(message)
    this.name = 'CsvProblem'
  }
}

/** Parses CSV text: a header row, then rows of exactly as many fields. Throws a CsvProblem. */
export function parseCsv (bytes: Buffer, limits: CsvLimits): CsvTable {
  if (bytes.byteLength > limits.maxBytes) throw new CsvProblem(`the file is ${bytes.byteLength} bytes, more than the limit of ${limits.maxBytes}`)
  let records: string[][]
  try {
    // to_line stops the parser just past the limit, so a huge file is not parsed whole to be refused.
    records = parse(bytes, { bom: true, skip_empty_lines: true, to_line: limits.maxRows + 2 }) as string[][]
  } catch (err) {
    if (err instanceof CsvError) throw new CsvProblem(err.message, (err as CsvError & { lines?: number }).lines ?? null)
    throw err
  }
  const [header, ...rows] = records
  if (header === undefined) throw new CsvProblem('the file has no header row', 1)
  const columns = header.map((name) => name.trim())
  const blank = columns.findIndex((name) => name === '')
  if (blank >= 0) throw new CsvProblem(`header: column ${blank + 1} has no name`, 1)
  const duplicate = columns.find((name, i) => columns.indexOf(name) !== i)
  if (duplicate !== undefined) throw new CsvProblem(`header: column "${duplicate}" appears twice`, 1)
  if (rows.length > limits.maxRows) throw new CsvProblem(`more than ${limits.maxRows} rows`, limits.maxRows + 2)
  return { columns, rows }
}

export interface CsvFeedEvents {
  /** A new valid version. */
  updated: (feed: CsvFeed) => void
  /** The file changed and cannot be used; the last good version stays. */
  failed: (feed: CsvFeed, problem: CsvProblem) => void
}

/** After a change, wait this long for more: an editor's save is often several events. */
const SETTLE_MS = 30

export class CsvFeed {
  /** 0 until the file is first valid. */
  version = 0
  updatedAt: number | null = null
  table: CsvTable = { columns: [], rows: [] }
  lastError: FeedStatusT['lastError'] = null
  private text: string | null = null
  private watcher: FSWatcher | null = null
  private timer: NodeJS.Timeout | null = null

  constructor (
    readonly config: CsvFeedConfigT,
    private readonly limits: CsvLimits,
    private readonly clock: Clock,
    private readonly events: CsvFeedEvents
  ) {}

  get name (): string { return this.config.name }

  /** Reads and parses the file now; a valid file with new content becomes the next version. */
  load (): void {
    let bytes: Buffer
    try {
      bytes = readFileSync(this.config.file)
    } catch (err) {
      return this.fail(new CsvProblem(`cannot read the file: ${(err as Error).message}`))
    }
    let table: CsvTable
    try {
      table = parseCsv(bytes, this.limits)
    } catch (err) {
      if (err instanceof CsvProblem) return this.fail(err)
      throw err
    }
    this.lastError = null
    const text = JSON.stringify(table)
    if (text === this.text) return
    this.text = text
    this.table = table
    this.version++
    this.updatedAt = this.clock.now()
    this.events.updated(this)
  }

  /**
   * Watches the file's directory rather than the file: a replace by rename gives
   * the name a new inode, which a watch on the old one would never report.
   */
  watch (): void {
    if (this.watcher !== null) return
    const name = basename(this.config.file)
    try {
      this.watcher = watch(dirname(this.config.file), (_event, changed) => {
        if (changed === null || changed.toString() === name) this.schedule()
      })
      this.watcher.on('error', () => { this.schedule() })
    } catch (err) {
      this.fail(new CsvProblem(`cannot watch the file's directory: ${(err as Error).message}`))
    }
  }

  close (): void {
    this.watcher?.close()
    this.watcher = null
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
  }

  status (): FeedStatusT {
    let size: number | null = null
    let modifiedAt: number | null = null
    try {
      const stats = statSync(this.config.file)
      size = stats.size
      modifiedAt = stats.mtimeMs
    } catch {
      // Reported as unknown; the error, if any, is in lastError.
    }
    return {
      name: this.name,
      // Relative to the working directory: the machine's layout is not the public's business.
      file: relative(process.cwd(), this.config.file),
      room: this.config.room ?? null,
      size,
      modifiedAt,
      version: this.version,
      updatedAt: this.updatedAt,
      rows: this.table.rows.length,
      columns: this.table.columns.length,
      lastError: this.lastError
    }
  }

  private schedule (): void {
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = setTimeout(() => {
      this.timer = null
      this.load()
    }, SETTLE_MS)
  }

  private fail (problem: CsvProblem): void {
    // One report per distinct problem: a file that stays broken is not logged on every event.
    const repeated = this.lastError?.message === problem.message && this.lastError.line === problem.line
    this.lastError = { message: problem.message, line: problem.line, at: this.clock.now() }
    if (!repeated) this.events.failed(this, problem)
  }
}

/** Where feed frames go: one room's connected clients, or every room's. */
export interface CsvDelivery {
  toRoom: (room: string, frame: string) => void
  toEveryRoom: (frame: string) => void
}

/** The feeds of one instance: loaded at start, watched, and sent to the rooms they are for. */
export class CsvFeeds {
  readonly feeds = new Map<string, CsvFeed>()

  constructor (
    configs: readonly CsvFeedConfigT[],
    limits: CsvLimits,
    clock: Clock,
    private readonly delivery: CsvDelivery,
    failed: CsvFeedEvents['failed']
  ) {
    for (const config of configs) {
      if (this.feeds.has(config.name)) throw new Error(`csvFeeds: the name "${config.name}" is used twice`)
      this.feeds.set(config.name, new CsvFeed(config, limits, clock, {
        updated: (feed) => this.publish(feed),
        failed
      }))
    }
  }

  start (): void {
    for (const feed of this.feeds.values()) {
      feed.load()
      feed.watch()
    }
  }

  close (): void {
    for (const feed of this.feeds.values()) feed.close()
  }

  /** The feeds a client of `room` gets, at their current (valid) version, as frames. */
  framesFor (room: string): string[] {
    const frames: string[] = []
    for (const feed of this.feeds.values()) {
      if (feed.version > 0 && (feed.config.room === undefined || feed.config.room === room)) frames.push(csvFrame(feed))
    }
    return frames
  }

  private publish (feed: CsvFeed): void {
    const frame = csvFrame(feed)
    if (feed.config.room === undefined) this.delivery.toEveryRoom(frame)
    else this.delivery.toRoom(feed.config.room, frame)
  }
}

function csvFrame (feed: CsvFeed): string {
  const message: CsvMessageT = { type: 'csv', name: feed.name, columns: feed.table.columns, rows: feed.table.rows, version: feed.version, updatedAt: feed.updatedAt ?? 0 }
  return serverFrame(message)
}
