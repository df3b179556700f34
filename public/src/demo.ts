/**
 * The demo: a shared 2D space. Every user is a labelled dot; move with the mouse
 * or the arrow keys, click someone to listen to them, and say something to your
 * listeners. The `landmarks` CSV feed, when the server has one, is drawn as
 * labelled markers that follow edits of its file. Bundled by esbuild into
 * public/build/demo.js.
 */
import { Interpolator, ShoalClient, type CsvMessageT, type UserT } from '../../src/client/index.js'
import type { DemoApi, Landmark } from './demo-api.js'

/** The space is WORLD_W × WORLD_H units, scaled to fit the canvas. */
const WORLD_W = 1000
const WORLD_H = 640
const DOT_RADIUS = 12
const BUBBLE_MS = 4000
const KEY_STEP = 15

const params = new URLSearchParams(location.search)
const wantedRoom = params.get('room') ?? 'lobby'
const hue = Math.floor(Math.random() * 360)

const client = new ShoalClient({
  url: new URL('./ws', location.href.replace(/^http/, 'ws')).href,
  register: {
    room: wantedRoom,
    state: { color: `hsl(${hue} 70% 50%)` },
    position: { x: 100 + Math.random() * (WORLD_W - 200), y: 100 + Math.random() * (WORLD_H - 200) }
  }
})

const interpolator = new Interpolator(100)
const bubbles = new Map<string, { text: string, until: number }>()
/** What the page saw, for people debugging and for the browser test. */
const log: DemoApi['log'] = []

const element = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T
const canvas = element<HTMLCanvasElement>('space')
const context = canvas.getContext('2d') as CanvasRenderingContext2D
const nameInput = element<HTMLInputElement>('name')
const sayForm = element<HTMLFormElement>('say')
const sayInput = element<HTMLInputElement>('say-text')

element('room').textContent = wantedRoom

/**
 * `<html data-state>`, the page's own signal, what tests and anyone automating the page wait on:
 * connecting (also while reconnecting, or joining the room of the address), in-room (open, welcomed
 * in the room of the address, and its users drawn), closed.
 */
const pageState = (state: 'connecting' | 'in-room' | 'closed'): void => { document.documentElement.dataset.state = state }

client.on('state', (state) => {
  element('state').textContent = state
  element('state').dataset.state = state
  // 'open' comes just before the welcome, which says in-room once it is drawn.
  if (state !== 'open') pageState(state === 'closed' ? 'closed' : 'connecting')
})
client.on('rtt', (ms) => { element('rtt').textContent = `${Math.round(ms)} ms` })
client.on('welcome', (welcome) => {
  log.push({ event: 'welcome', id: welcome.id })
  if (document.activeElement !== nameInput) nameInput.value = welcome.you.name
  if (welcome.room !== wantedRoom) client.join(wantedRoom)
  for (const user of welcome.users) interpolator.push(user.id, user.position, performance.now())
})
client.on('snapshot', (_room, users) => {
  for (const user of users) interpolator.push(user.id, user.position, performance.now())
})
client.on('join', (user) => {
  log.push({ event: 'join', id: user.id })
  interpolator.push(user.id, user.position, performance.now())
})
client.on('leave', (user) => {
  log.push({ event: 'leave', id: user.id })
  interpolator.forget(user.id)
})
client.on('positions', (moved) => {
  const now = performance.now()
  for (const { user, position } of moved) interpolator.push(user.id, position, now)
})
client.on('data', (from, payload) => {
  log.push({ event: 'data', id: from })
  const text = typeof payload === 'object' && payload !== null && 'text' in payload ? String((payload as { text: unknown }).text) : JSON.stringify(payload)
  bubbles.set(from, { text: text.slice(0, 140), until: performance.now() + BUBBLE_MS })
})
client.on('error', (error) => { log.push({ event: `error:${error.code}` }) })

/** Markers from the `landmarks` feed; rows whose x or y is not a number are left out. */
let landmarks: Landmark[] = []
function toLandmarks (feed: CsvMessageT): Landmark[] {
  const column = (name: string): number => feed.columns.indexOf(name)
  const [name, x, y, description] = [column('name'), column('x'), column('y'), column('description')]
  if (name < 0 || x < 0 || y < 0) return []
  return feed.rows
    .map((row) => ({ name: row[name] ?? '', x: Number(row[x]), y: Number(row[y]), description: description < 0 ? '' : row[description] ?? '' }))
    .filter((mark) => Number.isFinite(mark.x) && Number.isFinite(mark.y))
}
client.on('csv', (feed) => {
  if (feed.name !== 'landmarks') return
  landmarks = toLandmarks(feed)
  log.push({ event: `csv:${feed.name}:${feed.version}` })
})
client.on('welcome', () => { landmarks = [] })

/** The room of the address is drawn at once (not at the next animation frame, which a tab behind others waits for). */
function arrived (room: string): void {
  if (room !== wantedRoom) return pageState('connecting')
  paint()
  pageState('in-room')
}
client.on('welcome', (welcome) => { arrived(welcome.room) })
client.on('snapshot', (room) => { arrived(room) })

// ---- input -----------------------------------------------------------------

function toWorld (event: MouseEvent): { x: number, y: number } {
  const rect = canvas.getBoundingClientRect()
  return { x: (event.clientX - rect.left) / rect.width * WORLD_W, y: (event.clientY - rect.top) / rect.height * WORLD_H }
}

/** The other user whose dot is under the pointer, if any. */
function userAt (at: { x: number, y: number }): UserT | undefined {
  return [...client.users.values()].find((user) => {
    const shown = interpolator.sample(user.id, performance.now()) ?? user.position
    return Math.hypot(shown.x - at.x, shown.y - at.y) <= DOT_RADIUS * 1.5
  })
}

// Our dot follows the pointer, except over someone else's dot, so that they can be clicked.
canvas.addEventListener('mousemove', (event) => {
  const at = toWorld(event)
  const over = userAt(at) !== undefined
  canvas.style.cursor = over ? 'pointer' : 'crosshair'
  if (!over) client.move(at)
})

canvas.addEventListener('click', (event) => {
  const target = userAt(toWorld(event))
  if (target === undefined || client.me === null) return
  const listening = new Set(client.me.listeningTo)
  if (listening.has(target.id)) listening.delete(target.id)
  else listening.add(target.id)
  client.me.listeningTo = [...listening]
  client.listenTo([...listening])
})

const arrows: Record<string, [number, number]> = { ArrowUp: [0, -1], ArrowDown: [0, 1], ArrowLeft: [-1, 0], ArrowRight: [1, 0] }
window.addEventListener('keydown', (event) => {
  const step = arrows[event.key]
  if (step === undefined || document.activeElement instanceof HTMLInputElement || client.me === null) return
  event.preventDefault()
  const { x, y } = client.me.position
  client.move({ x: clamp(x + step[0] * KEY_STEP, 0, WORLD_W), y: clamp(y + step[1] * KEY_STEP, 0, WORLD_H) })
})

nameInput.addEventListener('change', () => {
  const name = nameInput.value.trim()
  if (name !== '') client.setName(name)
})

sayForm.addEventListener('submit', (event) => {
  event.preventDefault()
  const text = sayInput.value.trim()
  if (text === '' || client.me === null) return
  client.send({ text })
  bubbles.set(client.me.id, { text, until: performance.now() + BUBBLE_MS })
  sayInput.value = ''
})

// ---- drawing ---------------------------------------------------------------

function paint (): void {
  const now = performance.now()
  const scale = canvas.width / WORLD_W
  context.setTransform(scale, 0, 0, scale, 0, 0)
  context.clearRect(0, 0, WORLD_W, WORLD_H)

  const me = client.me
  const everyone: UserT[] = [...client.users.values()]
  if (me !== null) everyone.push(me)
  const where = (user: UserT): { x: number, y: number } =>
    user.id === me?.id ? user.position : interpolator.sample(user.id, now) ?? user.position

  for (const mark of landmarks) drawLandmark(mark)

  // Who listens to whom: a line from the listener to the one it listens to.
  context.lineWidth = 2
  for (const user of everyone) {
    for (const targetId of user.listeningTo) {
      const target = targetId === me?.id ? me : client.users.get(targetId)
      if (target === undefined || target === null) continue
      const from = where(user)
      const to = where(target)
      context.strokeStyle = user.id === me?.id ? 'rgba(30, 80, 200, 0.7)' : 'rgba(120, 120, 120, 0.35)'
      context.beginPath()
      context.moveTo(from.x, from.y)
      context.lineTo(to.x, to.y)
      context.stroke()
    }
  }

  for (const user of everyone) {
    const { x, y } = where(user)
    context.globalAlpha = user.connected ? 1 : 0.35
    context.fillStyle = typeof user.state.color === 'string' ? user.state.color : '#888'
    context.beginPath()
    context.arc(x, y, DOT_RADIUS, 0, Math.PI * 2)
    context.fill()
    if (user.id === me?.id) {
      context.strokeStyle = '#1d2733'
      context.stroke()
    }
    context.fillStyle = '#1d2733'
    context.font = '14px system-ui, sans-serif'
    context.textAlign = 'center'
    context.fillText(user.id === me?.id ? `${user.name} (you)` : user.name, x, y + DOT_RADIUS + 16)
    const bubble = bubbles.get(user.id)
    if (bubble !== undefined && bubble.until > now) drawBubble(bubble.text, x, y - DOT_RADIUS - 10)
    context.globalAlpha = 1
  }

  element('count').textContent = String(everyone.length)
}

function draw (): void {
  paint()
  requestAnimationFrame(draw)
}

function drawLandmark ({ name, x, y, description }: Landmark): void {
  context.fillStyle = 'rgba(200, 140, 20, 0.9)'
  context.beginPath()
  context.moveTo(x, y - 9)
  context.lineTo(x + 9, y)
  context.lineTo(x, y + 9)
  context.lineTo(x - 9, y)
  context.closePath()
  context.fill()
  context.fillStyle = '#6b4a06'
  context.textAlign = 'center'
  context.font = 'bold 13px system-ui, sans-serif'
  context.fillText(name, x, y - 14)
  if (description !== '') {
    context.font = '11px system-ui, sans-serif'
    context.fillText(description, x, y + 22)
  }
}

function drawBubble (text: string, x: number, y: number): void {
  context.font = '13px system-ui, sans-serif'
  const width = context.measureText(text).width + 16
  context.fillStyle = 'rgba(255, 255, 255, 0.95)'
  context.strokeStyle = '#1d2733'
  context.lineWidth = 1
  context.beginPath()
  context.roundRect(x - width / 2, y - 26, width, 22, 8)
  context.fill()
  context.stroke()
  context.fillStyle = '#1d2733'
  context.fillText(text, x, y - 10)
}

function resize (): void {
  const width = Math.min(window.innerWidth - 32, 1200)
  canvas.width = width
  canvas.height = width * WORLD_H / WORLD_W
}

const clamp = (value: number, min: number, max: number): number => Math.max(min, Math.min(max, value))

window.addEventListener('resize', resize)
resize()
requestAnimationFrame(draw)

window.shoalDemo = { client, log, drawnAt: (id) => interpolator.sample(id, performance.now()), landmarks: () => landmarks }
