/**
 * The operator's page: the instance's live figures from the admin feed
 * (server-sent events at `<base>/feed`), its rooms, one room's users, and two
 * actions (disconnect a user, send a server message to the room). Bundled by
 * esbuild into public/build/admin.js; served only to those `admin.authorize` lets in.
 */
import type { AdminOverviewT, AdminRoomT, AdminUserT } from '../../schemas/admin.js'
import { LiveChart } from './admin-chart.js'

const base = document.documentElement.dataset.base ?? '/admin'
const RETRY_MS = 3000

const element = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const found = document.getElementById(id)
  if (found === null) throw new Error(`admin page: no #${id}`)
  return found as T
}
const tableBody = (id: string): HTMLTableSectionElement => {
  const body = element<HTMLTableElement>(id).tBodies[0]
  if (body === undefined) throw new Error(`admin page: #${id} has no tbody`)
  return body
}
const text = (id: string, value: string | number): void => { element(id).textContent = String(value) }
const figure = (value: number): string => value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2)
const bytes = (perSecond: number): string => perSecond >= 1e6 ? `${figure(perSecond / 1e6)} MB/s` : perSecond >= 1e3 ? `${figure(perSecond / 1e3)} kB/s` : `${figure(perSecond)} B/s`

/** A table row of cells (text only: names and states are users' own, never HTML). */
function row (cells: Array<string | number>, numeric: number[] = []): HTMLTableRowElement {
  const tr = document.createElement('tr')
  cells.forEach((cell, index) => {
    const td = tr.insertCell()
    td.textContent = String(cell)
    if (numeric.includes(index)) td.className = 'num'
  })
  return tr
}

const charts = {
  in: new LiveChart(element('chart-in')),
  out: new LiveChart(element('chart-out')),
  tick: new LiveChart(element('chart-tick'), { budget: '#9ca3af' })
}
/**
 * `<html data-state>`, the page's own signal, what tests and anyone automating the page wait on:
 * connecting (its feed, also anew for each room chosen), live (this feed's first overview is drawn),
 * reconnecting, closed; and `data-room`, the room whose users are drawn, once they are.
 */
const pageState = (state: 'connecting' | 'live' | 'reconnecting' | 'closed'): void => { document.documentElement.dataset.state = state }
let selectedRoom: string | null = new URLSearchParams(location.search).get('room')
/** The node this page is of: only its users can be disconnected here. */
let thisNode = ''

function showOverview (overview: AdminOverviewT): void {
  thisNode = overview.node
  text('node', overview.node)
  text('at', new Date(overview.at).toLocaleTimeString())
  element('draining').hidden = !overview.draining
  text('connections', overview.connections)
  text('users-connected', overview.users.connected)
  text('users-in-grace', overview.users.inGrace)
  text('room-count', overview.rooms.total)
  const { tick, slowReaders } = overview
  text('ticks', figure(tick.perSecond))
  text('tick-ms', `${figure(tick.meanMs)} / ${figure(tick.maxMs)}`)
  text('tick-budget', `${figure(tick.budgetMs)} ms`)
  text('slow-skipped', figure(slowReaders.skippedPerSecond))
  text('slow-closed', slowReaders.closedTotal)
  const seconds = overview.at / 1000
  charts.in.push(seconds, overview.messagesIn.perSecond)
  charts.out.push(seconds, overview.messagesOut.perSecond)
  charts.tick.push(seconds, { mean: tick.meanMs, max: tick.maxMs, budget: tick.budgetMs })
  showErrors(overview.errors)
  showCluster(overview.cluster)
  showRooms(overview.rooms)
}

function showErrors (errors: AdminOverviewT['errors']): void {
  const codes = Object.keys(errors.total).sort()
  tableBody('errors').replaceChildren(...codes.map((code) => row([code, figure(errors.perSecond[code] ?? 0), errors.total[code] ?? 0], [1, 2])))
  element('errors-none').hidden = codes.length > 0
}

function showCluster (cluster: AdminOverviewT['cluster']): void {
  const bus = element('bus-state')
  element('cluster-none').hidden = cluster !== null
  element('cluster-detail').hidden = cluster === null
  bus.hidden = cluster === null
  if (cluster === null) return
  bus.dataset.state = cluster.bus
  bus.textContent = `bus ${cluster.bus}`
  text('cluster-bus', cluster.bus)
  text('cluster-rooms', cluster.servedRooms)
  text('cluster-replicas', cluster.replicas)
  text('cluster-out', bytes(cluster.publishedBytesPerSecond))
  text('cluster-in', bytes(cluster.receivedBytesPerSecond))
  tableBody('cluster-nodes').replaceChildren(...cluster.nodes.map((node, index) => row([index === 0 ? `${node} (this node)` : node])))
}

function showRooms (rooms: AdminOverviewT['rooms']): void {
  const rows = rooms.listed.map((room) => {
    const tr = row([room.name, room.members, room.connected], [1, 2])
    tr.dataset.room = room.name
    tr.style.cursor = 'pointer'
    if (room.name === selectedRoom) tr.className = 'selected'
    tr.addEventListener('click', () => { selectRoom(room.name) })
    return tr
  })
  tableBody('rooms').replaceChildren(...rows)
  element('rooms-none').hidden = rooms.total > 0
  text('rooms-listed', rooms.total > rooms.listed.length ? `(the ${rooms.listed.length} largest of ${rooms.total})` : '')
}

function showRoom (room: AdminRoomT): void {
  if (room.name !== selectedRoom) return
  element('room').hidden = false
  text('room-name', room.name)
  text('room-total', room.total > room.users.length ? `${room.total} users, the first ${room.users.length} by name` : `${room.total} users`)
  const names = new Map(room.users.map((user) => [user.id, user.name]))
  tableBody('room-users').replaceChildren(...room.users.map((user) => userRow(user, names)))
  document.documentElement.dataset.room = room.name
}

/** A user's row; whom it listens to by name where the room's list has them, else by id. */
function userRow (user: AdminUserT, names: ReadonlyMap<string, string>): HTMLTableRowElement {
  const { x, y, z } = user.position
  const position = z === 0 ? `${figure(x)}, ${figure(y)}` : `${figure(x)}, ${figure(y)}, ${figure(z)}`
  const listening = user.listeningTo.length === 0 ? '–' : user.listeningTo.map((id) => names.get(id) ?? id).join(', ')
  const tr = row([user.name, position, JSON.stringify(user.state), `${user.connection} · ${user.node}`, listening])
  tr.dataset.user = user.id
  tr.title = user.id
  const button = document.createElement('button')
  button.className = 'disconnect'
  button.textContent = 'disconnect'
  if (user.node !== thisNode) {
    // Another node has its session: only that node's page can end it.
    button.disabled = true
    button.title = `its session is on ${user.node}: disconnect it from that node's page`
  }
  button.addEventListener('click', () => { disconnect(user, button).catch(() => { button.textContent = 'failed' }) })
  tr.insertCell().append(button)
  return tr
}

async function post (path: string, body: unknown): Promise<{ ok: boolean, body: Record<string, unknown> }> {
  const response = await fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  const answer = await response.json().catch(() => ({})) as Record<string, unknown>
  return { ok: response.ok, body: answer }
}

async function disconnect (user: AdminUserT, button: HTMLButtonElement): Promise<void> {
  if (!confirm(`Disconnect ${user.name}? Its session ends and its room sees it leave.`)) return
  button.disabled = true
  const { ok, body } = await post(`/users/${encodeURIComponent(user.id)}/disconnect`, {})
  button.textContent = ok ? 'disconnected' : String(body.error ?? body.message ?? 'failed')
}

element('send').addEventListener('submit', (event) => {
  event.preventDefault()
  sendToRoom().catch(() => { text('send-result', 'failed') })
})

async function sendToRoom (): Promise<void> {
  const result = element('send-result')
  if (selectedRoom === null) return
  let payload: unknown
  try {
    payload = JSON.parse(element<HTMLTextAreaElement>('send-payload').value)
  } catch {
    result.className = 'error'
    result.textContent = 'not JSON'
    return
  }
  const { ok, body } = await post(`/rooms/${encodeURIComponent(selectedRoom)}/messages`, { payload })
  result.className = ok ? 'muted' : 'error'
  result.textContent = ok ? `sent to ${String(body.recipients)} users` : String(body.error ?? body.message ?? 'failed')
}

let feed: EventSource | null = null

/** Watches the overview and, when one is chosen, a room: the feed is opened anew for each room. */
function watch (): void {
  feed?.close()
  const state = element('feed-state')
  const source = new EventSource(`${base}/feed${selectedRoom === null ? '' : `?room=${encodeURIComponent(selectedRoom)}`}`)
  feed = source
  pageState('connecting')
  source.addEventListener('open', () => { state.dataset.state = 'live'; state.textContent = 'live' })
  source.addEventListener('overview', (event) => {
    showOverview(JSON.parse(event.data as string) as AdminOverviewT)
    pageState('live')
  })
  source.addEventListener('room', (event) => { showRoom(JSON.parse(event.data as string) as AdminRoomT) })
  source.addEventListener('error', () => {
    // EventSource retries a dropped stream itself; a refused one (401, 429) it gives up on, and so does this page, for a while.
    const closed = source.readyState === EventSource.CLOSED
    state.dataset.state = closed ? 'closed' : 'reconnecting'
    state.textContent = closed ? `closed, retrying in ${RETRY_MS / 1000} s` : 'reconnecting'
    pageState(closed ? 'closed' : 'reconnecting')
    if (closed && feed === source) setTimeout(() => { if (feed === source) watch() }, RETRY_MS)
  })
}

function selectRoom (room: string): void {
  selectedRoom = room
  delete document.documentElement.dataset.room
  history.replaceState(null, '', `?room=${encodeURIComponent(room)}`)
  element('send-result').textContent = ''
  watch()
}

watch()
