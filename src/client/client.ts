/**
 * The Shoal client: connects, registers or resumes with its stored secret,
 * reconnects after drops, mirrors its room, and coalesces outgoing movement to
 * the server's tick. Works with the browser's WebSocket or with `ws` in Node.js.
 */
import { EventEmitter } from 'eventemitter3'
import type {
  ClientErrorT, ClientMessage, ClientMessageOf, CsvMessageT, CustomClientMessage, EncodingT, PositionT, ReplyMessageT, RequestIdT,
  ServerMessageT, StateT, PresenceUpdateT, UserT, WelcomeMessageT
} from '../../schemas/protocol.js'
import { CloseCode } from '../protocol/close-codes.js'
import { decodeCompactPositions } from '../protocol/compact.js'
import { clientFrame } from '../protocol/frames.js'
import { SERVER_SENDER } from '../protocol/senders.js'
import { backoffDelay, type BackoffOptions } from './backoff.js'
import { RoomMirror } from './mirror.js'

/**
 * The subset of the WebSocket API the client uses; the browser's WebSocket and
 * `ws`'s both fit. Handlers are only ever assigned, so their event parameter is
 * `never` here: any handler type is accepted, and the client states what it reads.
 */
export interface WebSocketLike {
  readonly readyState: number
  /** Set to 'arraybuffer' for compact frames (browsers default to Blob). */
  binaryType: string
  send(data: string): void
  close(code?: number, reason?: string): void
  onopen: ((event: never) => void) | null
  onclose: ((event: never) => void) | null
  onmessage: ((event: never) => void) | null
  onerror: ((event: never) => void) | null
}

export type WebSocketConstructor = new (url: string) => WebSocketLike

/** Where the secret is kept between visits; `sessionStorage` and `localStorage` fit as they are. */
export interface SecretStorage {
  getItem(key: string): string | null
  setItem(key: string, value: string): void
  removeItem(key: string): void
}

/** Timer functions, injectable so tests can drive backoff and coalescing. */
export interface Timers {
  setTimeout(callback: () => void, ms: number): unknown
  clearTimeout(handle: unknown): void
  now(): number
}

export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'closed'

/** A server `error`, or `connection` for what happened to the socket. */
export type ShoalError = ClientErrorT

/**
 * The host's own message types, for `request`: each type's fields and the result
 * its handler returns. A host that defines them with TypeBox writes
 * `{ chat: { request: Static<typeof Chat>, result: { at: number } } }`.
 */
export type ShoalMessages = Record<string, { request: object, result: unknown }>

/** What a `Messages` parameter must be: for each of its types, a request and a result (an interface fits, too). */
export type MessageMap<M> = { [K in keyof M]: { request: object, result: unknown } }

/**
 * Why a `request` failed, or why the client stopped before its first welcome
 * (`ready`): the server's error (its code and message), or `connection` / `timeout`.
 */
export class ShoalClientError extends Error {
  override name = 'ShoalClientError'
  constructor (readonly code: string, message: string, readonly ref?: string) {
    super(message)
  }
}

export interface ShoalClientEvents<Push = unknown> {
  /** The socket opened (before `welcome`). */
  open: []
  welcome: [message: WelcomeMessageT]
  /** The room copy was replaced by a `snapshot` (after `join`, `sync` or a detected gap). */
  snapshot: [room: string, users: UserT[]]
  join: [user: UserT]
  leave: [user: UserT]
  /** Another user changed; or our own user, as the server has it now (the server may set our state or info itself). */
  update: [user: UserT, changes: PresenceUpdateT]
  positions: [moved: Array<{ user: UserT, position: PositionT }>, serverTime: number]
  data: [from: string, payload: unknown]
  /** `data` the server itself sent (`app.shoal.sendToUser`, `sendToRoom`): also told as `data` from `server`. */
  message: [payload: Push]
  /** A CSV data feed of the room (a Shoal extension): its current version, at welcome, after `join` and on every change. */
  csv: [feed: CsvMessageT]
  error: [error: ShoalError]
  state: [state: ConnectionState]
  /** Round-trip time of a ping, in ms. */
  rtt: [ms: number]
}

/** The fields of `register` a client chooses. */
export type RegisterFields = Omit<ClientMessageOf<'register'>, 'type' | 'encoding'>

export interface ShoalClientOptions {
  /**
   * ws:// or wss:// URL of the server's WebSocket endpoint, or a function called
   * before each attempt (sync or async), e.g. to put a fresh token in it.
   */
  url: string | (() => string | Promise<string>)
  /** WebSocket class: the global one in browsers; pass `ws`'s in Node.js. */
  WebSocket?: WebSocketConstructor
  /**
   * Where the secret is kept: sessionStorage in browsers (a reload keeps the user, a new
   * tab is a new one), memory elsewhere. Pass localStorage for one user across tabs
   * (the newest tab then takes the session over and the others close with 4001).
   */
  storage?: SecretStorage
  /** Storage key of the secret (default `shoal:secret`). */
  storageKey?: string
  /** Fields of the first `register` (a resumed session keeps its own). */
  register?: RegisterFields
  /** Outgoing updates per second when the server does not say (default 20). */
  tickHz?: number
  backoff?: BackoffOptions
  /** Interval of RTT pings in ms (default 5000; 0 turns them off). */
  pingIntervalMs?: number
  timers?: Timers
  random?: () => number
  /** Connect at once (default true). */
  autoConnect?: boolean
  /**
   * How the server should send `positions`: 'json' (the default) or 'compact'
   * (binary, 32-bit floats: about a third of the bytes). Events look the same either way.
   */
  encoding?: EncodingT
  /**
   * Credentials for the server's `authenticate` (a Shoal extension), sent in each
   * register and reconnect: a JSON value, or a function called before each attempt
   * (so an expiring token can be refreshed).
   */
  auth?: unknown
  /** How long `request` waits for its reply, in ms (default 10000). */
  requestTimeoutMs?: number
}

interface PendingRequest {
  resolve: (result: unknown) => void
  reject: (error: ShoalClientError) => void
  timer: unknown
}

const OPEN = 1

const defaultTimers: Timers = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
  now: () => performance.now()
}

function memoryStorage (): SecretStorage {
  const values = new Map<string, string>()
  return {
    getItem: (key) => values.get(key) ?? null,
    setItem: (key, value) => { values.set(key, value) },
    removeItem: (key) => { values.delete(key) }
  }
}

/**
 * sessionStorage in browsers: it survives a reload but not a new tab, so a reload
 * keeps the user and a second tab is a second user (with localStorage a second tab
 * would resume the first one's session and take it over). Memory elsewhere.
 */
function defaultStorage (key: string): SecretStorage {
  try {
    const { sessionStorage, localStorage } = globalThis as { sessionStorage?: SecretStorage, localStorage?: SecretStorage }
    if (sessionStorage !== undefined) {
      // Earlier versions kept the secret in localStorage: the first tab after the upgrade resumes that user, once.
      const earlier = localStorage?.getItem(key) ?? null
      if (earlier !== null && sessionStorage.getItem(key) === null) {
        sessionStorage.setItem(key, earlier)
        localStorage?.removeItem(key)
      }
      return sessionStorage
    }
  } catch {
    // Access to web storage can throw (privacy settings, sandboxed frames).
  }
  return memoryStorage()
}

/** The error of a close after which the client stops (no retry), or null when it should come back. */
function finalClose (code: number, attemptError: string | null): ShoalError | null {
  // ws in Node.js reports the HTTP status of a refused upgrade; authorize's 401 and 403 are final.
  const status = /Unexpected server response: (\d+)/.exec(attemptError ?? '')?.[1]
  if (status === '401' || status === '403') return { code: status === '401' ? 'unauthorized' : 'forbidden', message: `the server refused the connection (HTTP ${status})` }
  switch (code) {
    case CloseCode.replaced: return { code: 'connection', message: 'replaced: this user connected elsewhere' }
    case CloseCode.unauthorized: return { code: 'unauthorized', message: 'the server refused this client\'s credentials' }
    case CloseCode.forbidden: return { code: 'forbidden', message: 'the server refused this client\'s credentials' }
    case CloseCode.ended: return { code: 'connection', message: 'the server ended this session' }
    default: return null
  }
}

export class ShoalClient<Messages extends MessageMap<Messages> = ShoalMessages, Push = unknown> extends EventEmitter<ShoalClientEvents<Push>> {
  state: ConnectionState = 'connecting'
  /** Our own user as last confirmed by the server, with our latest local position. */
  me: UserT | null = null
  /** Round-trip time of the last ping, in ms. */
  rtt: number | null = null

  private readonly mirror = new RoomMirror()
  private readonly csvFeeds = new Map<string, CsvMessageT>()
  /** join() was sent: the next snapshot is of another room, whose feeds replace these. */
  private joining = false
  private readonly options: ShoalClientOptions
  private readonly storage: SecretStorage
  private readonly storageKey: string
  private readonly timers: Timers
  private readonly random: () => number
  private readonly WebSocketClass: WebSocketConstructor
  private socket: WebSocketLike | null = null
  private welcomed = false
  /** leave() was called: a welcome that still arrives ends that session at once. */
  private ended = false
  private attempt = 0
  private retryTimer: unknown = null
  private pingTimer: unknown = null
  private flushTimer: unknown = null
  private lastUpdateAt = Number.NEGATIVE_INFINITY
  private tickMs: number
  private syncPending = false
  /**
   * Resolves with the first welcome; rejects with a ShoalClientError when the client
   * stops before one (a refusal of its credentials, `close()`, `leave()`).
   */
  readonly ready: Promise<WelcomeMessageT>
  private settleReady: { resolve: (welcome: WelcomeMessageT) => void, reject: (error: ShoalClientError) => void } | null = null
  /** The server refused this attempt's credentials (its `error` frame, before the 4401/4403 close). */
  private refusal: ShoalError | null = null
  /** Why this attempt's socket failed, as its WebSocket said (ws: "Unexpected server response: 401"). */
  private attemptError: string | null = null
  /** The url function of this attempt has not answered yet. */
  private resolvingUrl = false
  /** The `auth` of this socket's attempt, for a `register` after `invalid_secret` on it. */
  private authField: { auth?: unknown } = {}
  /** Requests awaiting their reply, by id. */
  private readonly requests = new Map<number, PendingRequest>()
  private nextRequestId = 1
  /** Latest unsent outgoing values; only the newest survive an offline period. */
  private pending: { position?: PositionT, state?: StateT, name?: string, listeningTo?: string[] } = {}

  constructor (options: ShoalClientOptions) {
    super()
    this.options = options
    this.storageKey = options.storageKey ?? 'shoal:secret'
    this.storage = options.storage ?? defaultStorage(this.storageKey)
    this.timers = options.timers ?? defaultTimers
    this.random = options.random ?? Math.random
    this.tickMs = 1000 / (options.tickHz ?? 20)
    const WebSocketClass = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket
    if (WebSocketClass === undefined) throw new Error('shoal client: no WebSocket available; pass options.WebSocket')
    this.WebSocketClass = WebSocketClass
    this.ready = new Promise((resolve, reject) => { this.settleReady = { resolve, reject } })
    // An app that never awaits `ready` must not see an unhandled rejection.
    this.ready.catch(() => {})
    if (options.autoConnect !== false) this.connect()
  }

  /** The other users of the room, by id. */
  get users (): ReadonlyMap<string, UserT> { return this.mirror.users }
  get room (): string { return this.mirror.room }
  get id (): string | null { return this.me?.id ?? null }
  /** The room's CSV data feeds by name, at their latest version. */
  get feeds (): ReadonlyMap<string, CsvMessageT> { return this.csvFeeds }

  connect (): void {
    if (this.socket !== null || this.resolvingUrl) return
    this.timers.clearTimeout(this.retryTimer)
    this.retryTimer = null
    const url = this.options.url
    // A string that is not a URL throws here, as WebSocket's constructor does: a bug to fix, not an outage.
    if (typeof url === 'string') return this.open(url, false)
    this.resolvingUrl = true
    Promise.resolve().then(url).then((value) => {
      this.resolvingUrl = false
      if (this.state !== 'closed') this.open(value, true)
    }, (err: unknown) => {
      this.resolvingUrl = false
      this.attemptFailed(`url: ${err instanceof Error ? err.message : String(err)}`, CloseCode.retry)
    })
  }

  /** One attempt: a socket to `url`; a URL from the url function that WebSocket refuses is a failed attempt. */
  private open (url: string, fromFunction: boolean): void {
    let socket: WebSocketLike
    try {
      socket = new this.WebSocketClass(url)
    } catch (err) {
      if (!fromFunction) throw err
      return this.attemptFailed(err instanceof Error ? err.message : String(err), CloseCode.retry)
    }
    socket.binaryType = 'arraybuffer'
    this.socket = socket
    this.attemptError = null
    this.refusal = null
    socket.onopen = () => {
      this.emit('open')
      const auth = this.options.auth
      // A value goes at once; a function is called for each attempt, and may be async (a token refresh).
      if (typeof auth !== 'function') return this.hello(socket, auth)
      Promise.resolve().then(() => (auth as () => unknown)()).then((value) => { this.hello(socket, value) }, (err: unknown) => {
        this.emit('error', { code: 'connection', message: `auth: ${err instanceof Error ? err.message : String(err)}` })
        socket.close(CloseCode.retry)
      })
    }
    socket.onmessage = (event: { data: unknown }) => {
      if (typeof event.data !== 'string') return this.receiveBinary(event.data)
      let message: ServerMessageT
      try {
        message = JSON.parse(event.data) as ServerMessageT
      } catch {
        return
      }
      this.receive(message)
    }
    // ws (Node.js) says why an upgrade failed, its HTTP status included; browsers say nothing.
    socket.onerror = (event: { message?: unknown }) => { if (this.socket === socket && typeof event.message === 'string') this.attemptError = event.message }
    socket.onclose = (event: { code: number, reason?: unknown }) => this.onSocketClosed(socket, event.code, typeof event.reason === 'string' ? event.reason : '')
  }

  /** Moves our user; sent at most once per server tick, the latest position wins. */
  move (position: { x: number, y: number, z?: number }): void {
    const next = { x: position.x, y: position.y, z: position.z ?? 0 }
    this.pending.position = next
    if (this.me !== null) this.me.position = next
    this.scheduleFlush()
  }

  /** Merges `patch` into our state (null removes a key); coalesced like `move`. */
  setState (patch: StateT): void {
    this.pending.state = { ...this.pending.state, ...patch }
    if (this.me !== null) {
      const state = { ...this.me.state }
      for (const [key, value] of Object.entries(patch)) {
        if (value === null) delete state[key]
        else state[key] = value
      }
      this.me.state = state
    }
    this.scheduleFlush()
  }

  setName (name: string): void {
    this.pending.name = name
    if (this.me !== null) this.me.name = name.trim()
    this.scheduleFlush()
  }

  /** Replaces the set of users we listen to (their `data` reaches us). */
  listenTo (ids: string[]): void {
    this.pending.listeningTo = [...ids]
    this.scheduleFlush()
  }

  /** Sends `payload` to our listeners; false when not connected (data is not queued). */
  send (payload: unknown): boolean {
    return this.welcomed && this.sendNow({ type: 'data', payload })
  }

  /**
   * Sends a message of one of the host's own types and resolves with its handler's
   * result. Rejects with a ShoalClientError: the server's error (`invalid_message`,
   * `unknown_type`, a code of the host's), `timeout`, or `connection` when not
   * connected or when the connection drops before the reply.
   */
  request<K extends keyof Messages & string> (type: K, fields: Messages[K]['request'], options: { timeoutMs?: number } = {}): Promise<Messages[K]['result']> {
    return new Promise((resolve, reject) => {
      const id = this.nextRequestId++
      const message: CustomClientMessage = { ...fields, type, id }
      if (!this.welcomed || !this.sendNow(message)) {
        reject(new ShoalClientError('connection', 'not connected', type))
        return
      }
      const timeoutMs = options.timeoutMs ?? this.options.requestTimeoutMs ?? 10_000
      const timer = this.timers.setTimeout(() => {
        this.requests.delete(id)
        reject(new ShoalClientError('timeout', `no reply to ${type} within ${timeoutMs} ms`, type))
      }, timeoutMs)
      this.requests.set(id, { resolve: resolve as (result: unknown) => void, reject, timer })
    })
  }

  join (room: string): void {
    if (this.welcomed && this.sendNow({ type: 'join', room })) this.joining = true
  }

  sync (): void {
    if (this.welcomed && !this.syncPending) {
      this.syncPending = true
      this.sendNow({ type: 'sync' })
    }
  }

  /** Ends the session for good and forgets the secret. */
  leave (): void {
    this.ended = true
    this.storage.removeItem(this.storageKey)
    if (this.welcomed) this.sendNow({ type: 'leave' })
    // Not yet welcomed: the socket stays open until the welcome, which is then ended too.
    else if (this.socket?.readyState !== OPEN) this.socket?.close(CloseCode.ended)
    this.shutDown()
  }

  /** Closes without ending the session: the secret stays and a later client resumes the user. */
  close (): void {
    this.shutDown()
    this.socket?.close(CloseCode.ended)
  }

  private shutDown (why: ShoalError = { code: 'connection', message: 'the client was closed' }): void {
    this.transition('closed')
    this.stopTimers()
    this.failRequests('the client was closed')
    this.settleReady?.reject(new ShoalClientError(why.code, why.message))
    this.settleReady = null
  }

  private receive (message: ServerMessageT): void {
    // After leave() or close() only a late welcome still matters (to end that session).
    if (this.state === 'closed' && message.type !== 'welcome') return
    switch (message.type) {
      case 'welcome': return this.onWelcome(message)
      case 'snapshot':
        this.syncPending = false
        // Another room (our join, or the server moved us): its feeds follow.
        if (this.joining || message.room !== this.mirror.room) this.csvFeeds.clear()
        this.joining = false
        this.mirror.reset(message.room, message.users)
        // A snapshot of another room: our join, or the server moved us.
        if (this.me !== null) this.me.room = message.room
        this.emit('snapshot', message.room, [...this.mirror.users.values()])
        return
      case 'presence': {
        const changes = this.mirror.applyPresence(message)
        for (const user of changes.left) this.emit('leave', user)
        for (const user of changes.joined) this.emit('join', user)
        for (const { user, changes: update } of changes.updated) this.emit('update', user, update)
        this.applyOwnUpdate(message)
        if (changes.gap) this.sync()
        return
      }
      case 'positions': {
        if (this.mirror.applyPositions(message)) this.sync()
        const moved = []
        for (const [id, x, y, z] of message.p) {
          const user = this.mirror.users.get(id)
          if (user !== undefined) moved.push({ user, position: { x, y, z } })
        }
        if (moved.length > 0) this.emit('positions', moved, message.t)
        return
      }
      case 'data':
        this.emit('data', message.from, message.payload)
        if (message.from === SERVER_SENDER) this.emit('message', message.payload as Push)
        return
      case 'reply':
        this.settleRequest(message)
        return
      case 'csv':
        this.csvFeeds.set(message.name, message)
        this.emit('csv', message)
        return
      case 'pong':
        if (message.t !== undefined) {
          this.rtt = this.timers.now() - message.t
          this.emit('rtt', this.rtt)
        }
        return
      case 'error':
        // An error that answers a request rejects it, and is told only there.
        if (typeof message.id === 'number' && this.settleRequest(message)) return
        // A refusal of our credentials: the close that follows ends the client with it, not with a second error.
        if ((message.code === 'unauthorized' || message.code === 'forbidden') && (message.ref === 'register' || message.ref === 'reconnect')) {
          this.refusal = { code: message.code, message: message.message }
        }
        if (message.code === 'invalid_secret' && message.ref === 'reconnect') {
          // The session is gone (expired or ended): start a new one on this socket.
          this.storage.removeItem(this.storageKey)
          this.sendNow(this.registerMessage())
        } else if (message.code === 'rate_limited' && !this.welcomed && (message.ref === 'register' || message.ref === 'reconnect')) {
          // Too many attempts from our address: keep the secret and come back after a backoff.
          this.socket?.close(CloseCode.retry, 'rate limited; retrying after a backoff')
        }
        this.emit('error', message.ref === undefined ? { code: message.code, message: message.message } : { code: message.code, message: message.message, ref: message.ref })
    }
  }

  /** A compact `positions` frame, turned into the JSON form so that both take one path. */
  private receiveBinary (data: unknown): void {
    let bytes: Uint8Array
    if (data instanceof ArrayBuffer) bytes = new Uint8Array(data)
    else if (ArrayBuffer.isView(data)) bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
    else return
    const frame = decodeCompactPositions(bytes)
    if (frame === null) return
    this.receive({ type: 'positions', t: frame.t, p: frame.entries.map(([sid, x, y, z]) => [this.mirror.idOf(sid), x, y, z]) })
  }

  private registerMessage (): ClientMessageOf<'register'> {
    return { type: 'register', ...this.options.register, ...this.encodingField(), ...this.authField }
  }

  /** The first message on a new socket: reconnect with the stored secret, or register. */
  private hello (socket: WebSocketLike, auth: unknown): void {
    if (this.socket !== socket) return
    this.authField = auth === undefined ? {} : { auth }
    const secret = this.storage.getItem(this.storageKey)
    this.sendNow(secret === null ? this.registerMessage() : { type: 'reconnect', secret, ...this.encodingField(), ...this.authField })
  }

  /**
   * What the room was told of us: the server's word on our name, state and info
   * (the server may set them itself), applied to `me` and told as `update`.
   * Values we have not sent yet stay as we set them.
   */
  private applyOwnUpdate (message: Extract<ServerMessageT, { type: 'presence' }>): void {
    const me = this.me
    const update = message.updated?.find((entry) => entry.id === me?.id)
    if (me === null || update === undefined || message.room !== this.mirror.room) return
    const { name, state, info, listeningTo } = update
    if (name !== undefined && this.pending.name === undefined) me.name = name
    if (state !== undefined && this.pending.state === undefined) me.state = { ...state }
    if (info !== undefined) me.info = structuredClone(info)
    if (listeningTo !== undefined && this.pending.listeningTo === undefined) me.listeningTo = [...listeningTo]
    this.emit('update', me, update)
  }

  /** Resolves or rejects the request a reply or error answers; false when none waits for it. */
  private settleRequest (message: ReplyMessageT | Extract<ServerMessageT, { type: 'error' }>): boolean {
    const id: RequestIdT | undefined = message.id
    const pending = typeof id === 'number' ? this.requests.get(id) : undefined
    if (pending === undefined || typeof id !== 'number') return false
    this.requests.delete(id)
    this.timers.clearTimeout(pending.timer)
    if (message.type === 'reply') pending.resolve(message.result)
    else pending.reject(new ShoalClientError(message.code, message.message, message.ref))
    return true
  }

  /** Every request still waiting fails: the connection that would carry its reply is gone. */
  private failRequests (reason: string): void {
    for (const [id, pending] of this.requests) {
      this.timers.clearTimeout(pending.timer)
      pending.reject(new ShoalClientError('connection', reason))
      this.requests.delete(id)
    }
  }

  /** Only a client that wants compact says so, so a JSON client's messages are exactly the contract's. */
  private encodingField (): { encoding?: EncodingT } {
    return this.options.encoding === 'compact' ? { encoding: 'compact' } : {}
  }

  private onWelcome (message: WelcomeMessageT): void {
    if (this.state === 'closed') {
      // leave() or close() came before the welcome: end that session, or just go.
      if (this.ended) this.sendNow({ type: 'leave' })
      else this.socket?.close(CloseCode.ended)
      return
    }
    this.storage.setItem(this.storageKey, message.secret)
    this.welcomed = true
    this.joining = false
    this.csvFeeds.clear()
    this.attempt = 0
    this.syncPending = false
    // tickHz is a Shoal extension; a server without it leaves the configured pace.
    if (typeof message.tickHz === 'number' && message.tickHz > 0) this.tickMs = 1000 / message.tickHz
    this.me = { ...message.you, position: this.pending.position ?? message.you.position }
    this.mirror.selfId = message.id
    this.mirror.reset(message.room, message.users, message.you)
    this.transition('open')
    this.settleReady?.resolve(message)
    this.settleReady = null
    this.emit('welcome', message)
    this.lastUpdateAt = Number.NEGATIVE_INFINITY
    this.flush()
    this.schedulePing()
  }

  private onSocketClosed (socket: WebSocketLike, code: number, reason: string): void {
    if (this.socket !== socket) return
    const welcomed = this.welcomed
    this.socket = null
    this.welcomed = false
    this.failRequests('the connection closed before the reply')
    this.syncPending = false
    this.timers.clearTimeout(this.pingTimer)
    this.timers.clearTimeout(this.flushTimer)
    this.flushTimer = null
    if (this.state === 'closed') return
    const final = finalClose(code, this.attemptError)
    if (final !== null) {
      // Coming back would not help: another tab has the user, the credentials were refused, or the session ended.
      if (code === CloseCode.ended) this.storage.removeItem(this.storageKey)
      const refusal = this.refusal
      if (refusal === null || (code !== CloseCode.unauthorized && code !== CloseCode.forbidden)) this.emit('error', final)
      return this.shutDown(refusal ?? final)
    }
    // Our own close after rate_limited was told as that error already.
    if (!welcomed && code !== CloseCode.retry) this.emit('error', { code: 'connection', message: `connection failed: ${this.attemptError ?? (reason !== '' ? `${reason} (${code})` : `closed with ${code}`)}` })
    this.scheduleRetry(code)
  }

  /** An attempt that failed before it had a socket (a URL that could not be made). */
  private attemptFailed (message: string, code: number): void {
    if (this.state === 'closed') return
    this.emit('error', { code: 'connection', message: `connection failed: ${message}` })
    this.scheduleRetry(code)
  }

  private scheduleRetry (code: number): void {
    this.transition('reconnecting')
    // A restarting server asks for an immediate retry, which does not count as a failed attempt.
    const delay = code === CloseCode.restarting ? 0 : backoffDelay(this.attempt++, this.random, this.options.backoff)
    this.retryTimer = this.timers.setTimeout(() => this.connect(), delay)
  }

  private scheduleFlush (): void {
    if (!this.welcomed || this.flushTimer !== null) return
    const wait = this.lastUpdateAt + this.tickMs - this.timers.now()
    if (wait <= 0) this.flush()
    else this.flushTimer = this.timers.setTimeout(() => { this.flushTimer = null; this.flush() }, wait)
  }

  /** Sends everything pending: one `update` (at most one per tick) and the listening set. */
  private flush (): void {
    if (!this.welcomed) return
    const { position, state, name, listeningTo } = this.pending
    if (listeningTo !== undefined) {
      if (!this.sendNow({ type: 'updatelisteningto', listeningTo })) return
      delete this.pending.listeningTo
    }
    if (position === undefined && state === undefined && name === undefined) return
    const update: ClientMessageOf<'update'> = { type: 'update', ...(position !== undefined && { position }), ...(state !== undefined && { state }), ...(name !== undefined && { name }) }
    if (!this.sendNow(update)) return
    this.pending = {}
    this.lastUpdateAt = this.timers.now()
  }

  private schedulePing (): void {
    const interval = this.options.pingIntervalMs ?? 5000
    if (interval <= 0) return
    const ping = (): void => {
      this.sendNow({ type: 'ping', t: this.timers.now() })
      this.pingTimer = this.timers.setTimeout(ping, interval)
    }
    ping()
  }

  private sendNow (message: ClientMessage | CustomClientMessage): boolean {
    const socket = this.socket
    if (socket === null || socket.readyState !== OPEN) return false
    socket.send(clientFrame(message))
    return true
  }

  private stopTimers (): void {
    for (const timer of [this.retryTimer, this.pingTimer, this.flushTimer]) this.timers.clearTimeout(timer)
    this.retryTimer = this.pingTimer = this.flushTimer = null
  }

  private transition (state: ConnectionState): void {
    if (this.state === state) return
    this.state = state
    this.emit('state', state)
  }
}
