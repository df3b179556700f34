// Minimal client: connects, registers or resumes with the stored secret, and mirrors
// who is in the room. The full client library and demo come later.
const room = new URLSearchParams(location.search).get('room') || 'lobby'
const storageKey = `shoal:secret:${room}`
const users = new Map()
let me = null

const $ = (id) => document.getElementById(id)
$('room').textContent = room

function render () {
  const count = users.size + (me ? 1 : 0)
  $('count').textContent = String(count)
  $('count-label').textContent = count === 1 ? 'user' : 'users'
  const list = $('users')
  list.replaceChildren(...[me, ...users.values()].filter(Boolean).map((user) => {
    const item = document.createElement('li')
    item.textContent = user.id === me?.id ? `${user.name} (you)` : user.name
    if (!user.connected) item.className = 'away'
    return item
  }))
}

function setStatus (state) {
  $('status').textContent = state
  $('status').dataset.state = state
}

let attempt = 0

function connect () {
  const socket = new WebSocket(new URL('./ws', location.href.replace(/^http/, 'ws')))
  socket.addEventListener('open', () => {
    setStatus('open')
    const secret = localStorage.getItem(storageKey)
    socket.send(JSON.stringify(secret ? { type: 'reconnect', secret } : { type: 'register', room }))
  })
  socket.addEventListener('message', (event) => {
    const message = JSON.parse(event.data)
    switch (message.type) {
      case 'welcome':
        attempt = 0
        localStorage.setItem(storageKey, message.secret)
        me = message.you
        users.clear()
        for (const user of message.users) users.set(user.id, user)
        if (message.room !== room) socket.send(JSON.stringify({ type: 'join', room }))
        break
      case 'snapshot':
        users.clear()
        for (const user of message.users) users.set(user.id, user)
        break
      case 'presence':
        for (const id of message.left ?? []) users.delete(id)
        for (const user of message.joined ?? []) if (user.id !== me?.id) users.set(user.id, user)
        for (const change of message.updated ?? []) {
          const user = users.get(change.id)
          if (user) Object.assign(user, change)
        }
        break
      case 'error':
        if (message.code === 'invalid_secret') {
          localStorage.removeItem(storageKey)
          socket.send(JSON.stringify({ type: 'register', room }))
        }
        break
    }
    render()
  })
  socket.addEventListener('close', (event) => {
    setStatus('closed')
    if (event.code === 4001 || event.code === 1000) return
    const delay = event.code === 1012 ? 0 : Math.min(30000, 500 * 2 ** attempt) * (0.5 + Math.random() / 2)
    attempt++
    setTimeout(connect, delay)
  })
}

connect()
