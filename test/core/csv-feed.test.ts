/**
 * CSV feeds: parsing and limits (pure), then a feed on a real file in a temp
 * directory: versions, the last good version kept through invalid edits, a
 * replace by rename noticed by the watcher, and the status `GET /csv` shows.
 */
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import t from 'tap'
import { ManualClock } from '../../src/core/clock.js'
import { CsvFeed, CsvFeeds, CsvProblem, parseCsv, type CsvLimits } from '../../src/core/feeds/csv-feed.js'

const LIMITS: CsvLimits = { maxRows: 5, maxBytes: 1000 }
const parse = (text: string, limits = LIMITS): ReturnType<typeof parseCsv> => parseCsv(Buffer.from(text), limits)

/** The CsvProblem that parsing `text` throws. */
function problem (text: string | Buffer, limits = LIMITS): CsvProblem {
  try {
    parseCsv(typeof text === 'string' ? Buffer.from(text) : text, limits)
  } catch (err) {
    if (err instanceof CsvProblem) return err
    throw err
  }
  throw new Error(`no problem with ${JSON.stringify(text)}`)
}

t.test('parseCsv', async (t) => {
  t.strictSame(parse('name,x,y\nA,1,2\n"B, the second",3,"4"\n'), { columns: ['name', 'x', 'y'], rows: [['A', '1', '2'], ['B, the second', '3', '4']] }, 'quoted fields with commas')
  t.strictSame(parse('\uFEFFa,b\r\n1,"two\nlines"\r\n\r\n'), { columns: ['a', 'b'], rows: [['1', 'two\nlines']] }, 'BOM, CRLF, a quoted newline, empty lines skipped')
  t.strictSame(parse(' name , x \n'), { columns: ['name', 'x'], rows: [] }, 'a header alone is a valid, empty table; names are trimmed')

  t.match(problem(''), { message: 'the file has no header row', line: 1 })
  t.match(problem('a,b\n1,2,3\n'), { line: 2, message: /Invalid Record Length: expect 2, got 3 on line 2/ }, 'a ragged row, with its line')
  t.match(problem('a,b\n1,2\n3,"x"y\n'), { line: 3, message: /Invalid Closing Quote/ }, 'bad quoting, with its line')
  t.match(problem('a,b\n1,"never closed\n'), { line: 2, message: /Quote Not Closed/ })
  t.match(problem('a,,b\n'), { line: 1, message: 'header: column 2 has no name' })
  t.match(problem('a,b,a\n'), { line: 1, message: 'header: column "a" appears twice' })
  t.match(problem('a\n1\n2\n3\n4\n5\n6\n7\n8\n'), { line: 7, message: 'more than 5 rows' }, 'over the row limit')
  t.strictSame(parse('a\n1\n2\n3\n4\n5\n').rows.length, 5, 'exactly at the row limit is fine')
  t.match(problem(Buffer.alloc(1001, 'a')), { line: null, message: 'the file is 1001 bytes, more than the limit of 1000' }, 'over the byte limit, before parsing')
})

function tempFile (text: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'shoal-csv-')), 'feed.csv')
  writeFileSync(file, text)
  return file
}

/** A feed on `file` whose events the test can await. */
function feedOn (file: string, clock = new ManualClock()) {
  const updates: number[] = []
  const failures: CsvProblem[] = []
  let wake: (() => void) | null = null
  const feed = new CsvFeed({ name: 'f', file }, LIMITS, clock, {
    updated: (f) => { updates.push(f.version); wake?.() },
    failed: (_f, p) => { failures.push(p); wake?.() }
  })
  /** Resolves at the next event (update or failure), rejects after 10 s naming what it waited for. */
  const next = async (what = 'the feed\'s next update or failure'): Promise<void> => await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`waited 10 s for ${what}; updates so far ${JSON.stringify(updates)}, failures ${JSON.stringify(failures)}`)), 10_000)
    wake = () => { clearTimeout(timer); wake = null; resolve() }
  })
  return { feed, updates, failures, next, clock }
}

t.test('a feed: versions, the last good version kept, recovery, status', async (t) => {
  const file = tempFile('name,x\nA,1\n')
  const { feed, updates, failures, clock } = feedOn(file)
  feed.load()
  t.strictSame(updates, [1], 'the first valid load is version 1')
  t.strictSame(feed.table, { columns: ['name', 'x'], rows: [['A', '1']] })
  t.equal(feed.updatedAt, clock.now())

  feed.load()
  t.strictSame(updates, [1], 'the same content again is not a new version')

  writeFileSync(file, 'name,x\nA,1\nB,2,extra\n')
  clock.advance(1000)
  feed.load()
  t.equal(feed.version, 1, 'an invalid file does not replace the last good version')
  t.strictSame(feed.table.rows, [['A', '1']], 'the old rows are still served')
  t.match(feed.lastError, { line: 3, at: clock.now(), message: /Invalid Record Length/ })
  t.equal(failures.length, 1, 'reported once')
  feed.load()
  t.equal(failures.length, 1, 'the same problem again is not reported again')

  const status = feed.status()
  t.match(status, { name: 'f', room: null, size: 'name,x\nA,1\nB,2,extra\n'.length, version: 1, rows: 1, columns: 2, lastError: { line: 3 } }, 'status: the file as it is now, the version as it is served')
  t.equal(status.file, relative(process.cwd(), file), 'the file relative to the working directory')
  t.type(status.modifiedAt, 'number')

  writeFileSync(file, 'name,x,y\nA,1,1\nB,2,2\n')
  feed.load()
  t.strictSame(updates, [1, 2], 'a valid edit is the next version')
  t.equal(feed.lastError, null, 'and clears the error')

  rmSync(file)
  feed.load()
  t.match(feed.lastError, { message: /cannot read the file/ }, 'a deleted file is an error')
  t.equal(feed.version, 2, 'and the last good version stays')
  t.match(feed.status(), { size: null, modifiedAt: null, rows: 2 })
})

t.test('the watcher: an edit in place and a replace by rename both become new versions', async (t) => {
  const file = tempFile('name,x\nA,1\n')
  const { feed, updates, next } = feedOn(file, new ManualClock())
  feed.load()
  feed.watch()
  t.teardown(() => feed.close())

  let event = next('the watcher\'s version after an edit in place')
  writeFileSync(file, 'name,x\nA,2\n')
  await event
  t.strictSame(updates, [1, 2], 'an edit in place')
  t.strictSame(feed.table.rows, [['A', '2']])

  event = next('the watcher\'s version after a rename over the file')
  const replacement = `${file}.tmp`
  writeFileSync(replacement, 'name,x\nA,3\nB,4\n')
  renameSync(replacement, file)
  await event
  t.strictSame(feed.table.rows, [['A', '3'], ['B', '4']], 'a new file renamed over the old one, as editors and mv do')

  event = next('the watcher\'s failure on an invalid edit')
  writeFileSync(file, 'name,x\nA,"5\n')
  await event
  t.strictSame(feed.table.rows, [['A', '3'], ['B', '4']], 'an invalid edit is seen, and changes nothing')
  t.match(feed.lastError, { message: /Quote Not Closed/ })

  event = next('the watcher\'s version after the fix')
  writeFileSync(file, 'name,x\nA,6\n')
  await event
  t.equal(feed.lastError, null)
  t.strictSame(feed.table.rows, [['A', '6']], 'and a fix after it is the next version')
})

t.test('CsvFeeds: frames for a room; a room feed goes to its room, a general one to every room', async (t) => {
  const general = tempFile('a\n1\n')
  const hall = tempFile('b\n2\n')
  const sent: Array<[string, string]> = []
  const feeds = new CsvFeeds([{ name: 'general', file: general }, { name: 'hall', file: hall, room: 'hall' }], LIMITS, new ManualClock(5), {
    toRoom: (room, frame) => sent.push([room, frame]),
    toEveryRoom: (frame) => sent.push(['*', frame])
  }, () => {})
  feeds.start()
  t.teardown(() => feeds.close())
  t.strictSame(sent.map(([room, frame]) => [room, JSON.parse(frame).name]), [['*', 'general'], ['hall', 'hall']], 'each first version goes where it belongs')
  t.strictSame(JSON.parse(sent[0]?.[1] ?? ''), { type: 'csv', name: 'general', columns: ['a'], rows: [['1']], version: 1, updatedAt: 5 }, 'the frame')
  t.strictSame(feeds.framesFor('lobby').map((f) => JSON.parse(f).name), ['general'], 'lobby clients get the general feed')
  t.strictSame(feeds.framesFor('hall').map((f) => JSON.parse(f).name), ['general', 'hall'], 'hall clients get both')
  t.throws(() => new CsvFeeds([{ name: 'x', file: general }, { name: 'x', file: hall }], LIMITS, new ManualClock(), { toRoom () {}, toEveryRoom () {} }, () => {}), /used twice/)
})
