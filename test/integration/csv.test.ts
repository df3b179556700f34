/**
 * CSV feeds over real sockets and HTTP: current versions after welcome and after
 * join, live updates only to the feed's room, invalid edits kept out, `GET /csv`
 * and `GET /csv/:name`, and option errors at registration.
 */
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import t from 'tap'
import shoal from '../../index.js'
import type { FeedStatusT } from '../../schemas/http.js'
import { ManualClock } from '../../src/core/clock.js'
import { FAST, harness, testApp } from '../helpers.js'
import { requestJson } from '../http.js'
import { until } from '../wait.js'

function files (): { dir: string, landmarks: string, hall: string } {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-csv-'))
  const landmarks = join(dir, 'landmarks.csv')
  const hall = join(dir, 'hall.csv')
  writeFileSync(landmarks, 'name,x,y\nFountain,500,320\n')
  writeFileSync(hall, 'seat,taken\nA1,no\n')
  return { dir, landmarks, hall }
}

t.test('feeds reach the right rooms: at welcome, after join, and on every valid change', async (t) => {
  const f = files()
  const h = await harness(t, { ...FAST, csvFeeds: [{ name: 'landmarks', file: f.landmarks }, { name: 'seats', file: f.hall, room: 'hall' }] })
  const inHall = await h.join({ name: 'h', room: 'hall' })
  const inLobby = await h.join({ name: 'l', room: 'lobby' })

  const hallFeeds = [await inHall.client.next('csv'), await inHall.client.next('csv')]
  t.strictSame(hallFeeds.map((m) => m.name).sort(), ['landmarks', 'seats'], 'a hall client gets both feeds right after welcome')
  t.match(hallFeeds.find((m) => m.name === 'seats'), { type: 'csv', columns: ['seat', 'taken'], rows: [['A1', 'no']], version: 1 })
  const lobbyFeed = await inLobby.client.next('csv')
  t.match(lobbyFeed, { name: 'landmarks', columns: ['name', 'x', 'y'], rows: [['Fountain', '500', '320']], version: 1 }, 'a lobby client gets the general feed')
  t.type(lobbyFeed.updatedAt, 'number')
  t.strictSame(await inLobby.client.drainType('csv'), [], 'and not the hall\'s')

  writeFileSync(f.hall, 'seat,taken\nA1,yes\nA2,no\n')
  const update = await inHall.client.next('csv', (m) => m.name === 'seats' && m.version === 2)
  t.strictSame(update.rows, [['A1', 'yes'], ['A2', 'no']], 'an edit reaches the feed\'s room')
  await h.tick()
  t.strictSame(await inLobby.client.drainType('csv'), [], 'and only that room')

  const tmp = join(f.dir, 'landmarks.csv.new')
  writeFileSync(tmp, 'name,x,y\nFountain,510,330\nGate,500,60\n')
  renameSync(tmp, f.landmarks)
  const moved = await inLobby.client.next('csv', (m) => m.name === 'landmarks' && m.version === 2)
  t.strictSame(moved.rows, [['Fountain', '510', '330'], ['Gate', '500', '60']], 'a replace by rename reaches every room')
  await inHall.client.next('csv', (m) => m.name === 'landmarks' && m.version === 2)

  inLobby.client.send({ type: 'join', room: 'hall' })
  await inLobby.client.next('snapshot')
  const afterJoin = [await inLobby.client.next('csv'), await inLobby.client.next('csv')]
  t.strictSame(afterJoin.map((m) => `${m.name}@${m.version}`).sort(), ['landmarks@2', 'seats@2'], 'after join: the new room\'s feeds at their current versions')

  inLobby.client.send({ type: 'join', room: 'hall' })
  t.equal((await inLobby.client.next('snapshot')).room, 'hall')
  t.strictSame(await inLobby.client.drainType('csv'), [], 'joining the room one is in replies with the snapshot only (the contract\'s join row)')
})

t.test('an invalid file keeps the last good version; GET /csv reports it; GET /csv/:name serves the rows', async (t) => {
  const f = files()
  const h = await harness(t, { ...FAST, csvFeeds: [{ name: 'landmarks', file: f.landmarks }, { name: 'seats', file: f.hall, room: 'hall' }], csvMaxRows: 3 })
  const client = await h.join({ name: 'c', room: 'hall' })
  await client.client.next('csv')
  await client.client.next('csv')

  type Status = Array<Record<string, unknown>>
  /** GET /csv, polled until `feed` reports an error (the watcher reacts within milliseconds). */
  const statusWithError = async (feed: string): Promise<Status> => {
    let status: Status = []
    await until(`GET /csv to report an error for the feed ${feed}`, async () => {
      status = (await requestJson<Status>(`${h.server.url}/csv`)).json
      return (status.find((s) => s.name === feed)?.lastError ?? null) !== null
    }, { describe: () => status })
    return status
  }
  writeFileSync(f.landmarks, 'name,x,y\nFountain,500\n')
  const status = await statusWithError('landmarks')
  const landmarks = status.find((s) => s.name === 'landmarks')
  t.match(landmarks, {
    name: 'landmarks',
    file: relative(process.cwd(), f.landmarks),
    room: null,
    size: 'name,x,y\nFountain,500\n'.length,
    version: 1,
    rows: 1,
    columns: 3,
    lastError: { line: 2, message: /Invalid Record Length/ }
  }, 'GET /csv: the file as it is now, the version still served, the error with its line')
  t.type(landmarks?.modifiedAt, 'number')
  t.match(status.find((s) => s.name === 'seats'), { room: 'hall', version: 1, rows: 1, columns: 2, lastError: null })

  const rows = (await requestJson(`${h.server.url}/csv/landmarks`)).json
  t.match(rows, { name: 'landmarks', version: 1, columns: ['name', 'x', 'y'], rows: [['Fountain', '500', '320']] }, 'GET /csv/:name: the last good rows')
  await h.tick()
  t.strictSame(await client.client.drainType('csv'), [], 'clients got nothing from the invalid file')

  writeFileSync(f.hall, 'seat,taken\n1,a\n2,b\n3,c\n4,d\n')
  const seats = (await statusWithError('seats')).find((s) => s.name === 'seats')
  t.match(seats, { version: 1, lastError: { message: 'more than 3 rows' } }, 'over csvMaxRows: refused')

  const missing = await requestJson(`${h.server.url}/csv/nope`)
  t.equal(missing.status, 404)
  t.match(missing.json, { error: 'no csv feed named "nope"' })
})

t.test('a bad csvFeeds option fails registration with an error naming it', async (t) => {
  for (const [csvFeeds, expected] of [
    [[{ name: 'a', file: 'x.csv' }, { name: 'a', file: 'y.csv' }], /option csvFeeds: the name "a" is used twice/],
    [[{ name: 'has space', file: 'x.csv' }], /option csvFeeds\[0\]\.name: /],
    [[{ name: 'ok', file: 'x.csv', colour: 'red' }], /option csvFeeds\[0\]/]
  ] as const) {
    const app = testApp()
    // @ts-expect-error deliberately wrong options
    await t.rejects(app.register(shoal, { demo: false, csvFeeds }).ready(), expected)
    await app.close()
  }
})

t.test('an invalid edit is logged once, as one error naming the file and the line', async (t) => {
  const f = files()
  const lines: Array<Record<string, unknown>> = []
  const stream = { write: (line: string) => { lines.push(JSON.parse(line) as Record<string, unknown>) } }
  // The feed stamps each failed read with the clock (lastError.at): a manual clock tells one read from the next.
  const clock = new ManualClock()
  const app = testApp({ logger: { level: 'warn', stream } })
  await app.register(shoal, { ...FAST, demo: false, clock, csvFeeds: [{ name: 'landmarks', file: f.landmarks }] })
  await app.ready()
  t.teardown(() => app.close())
  const errors = (): Array<Record<string, unknown>> => lines.filter((line) => line.level === 50)
  const lastError = async (): Promise<FeedStatusT['lastError'] | undefined> =>
    ((await app.inject({ method: 'GET', url: '/csv' })).json() as FeedStatusT[]).find((s) => s.name === 'landmarks')?.lastError

  writeFileSync(f.landmarks, 'name,x,y\nFountain,500,320\nGate,"60\n')
  await until('the broken edit to be logged as an error', () => errors().length > 0, { describe: () => lines })
  // More events for the same broken content (editors save in several steps) must not log again.
  const reread = clock.advance(1000)
  writeFileSync(f.landmarks, 'name,x,y\nFountain,500,320\nGate,"60\n')
  let seen: FeedStatusT['lastError'] | undefined
  await until('the same broken content to be read again (lastError.at at the advanced clock)', async () => (seen = await lastError())?.at === reread, { describe: () => seen })
  // A marker: a different problem, through the same watcher and logger. A second report of
  // the repeated content would have been logged before it.
  writeFileSync(f.landmarks, 'name,x,y\nFountain,500\n')
  await until('the marker edit (line 2) to be logged', () => errors().some((line) => line.line === 2), { describe: () => lines })
  const beforeMarker = errors().slice(0, -1)
  t.match(errors().at(-1), { feed: 'landmarks', line: 2 }, 'the marker is the last error line')
  t.equal(beforeMarker.length, 1, 'one error line')
  t.match(beforeMarker[0], { feed: 'landmarks', file: f.landmarks, line: 3, msg: `csv feed landmarks: ${f.landmarks} line 3: Quote Not Closed: the parsing is finished with an opening quote at line 3; still serving version 1` })
})
