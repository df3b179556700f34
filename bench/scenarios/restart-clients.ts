/**
 * `restart` clients: N users register, each from a loopback address of its own
 * (setup stays within the default per-address register budget), and stay
 * connected. When the server restarts they behave like Shoal's client library
 * (src/client/client.ts): on close 1012 reconnect at once; on a refused connect
 * (ECONNREFUSED, HTTP 503...) or any other close, retry after `backoffDelay`
 * (src/client/backoff.ts: 500 ms doubling up to 30 s, equal jitter); on
 * `rate_limited` close with 4000 and retry after the backoff, keeping the
 * secret; on a welcome with `resumed: true`, done. `invalid_secret` ends a client
 * (the library would register a new user: the session is lost), as does 4001.
 * Reconnects come from 127.0.0.1 (`one`) or from each client's own address (`many`).
 */
import { backoffDelay } from '../../src/client/backoff.js'
import { CloseCode } from '../../src/protocol/close-codes.js'
import { sleep } from '../lib/proc.js'
import type { SetupReport } from '../fanout/protocol.js'
import { connectTo, type RawWebSocket } from '../fanout/raw-ws.js'
import { bump, openMany, ownAddress, reason, summary } from '../fanout/shared.js'
import { CONNECT_TIMEOUT_MS, registerMessage, type Report, type Role } from './counting.js'
import type { RestartConfig, RestartResult } from './protocol.js'

interface Resumer {
  index: number
  secret: string
  /** The library's backoff step (`attempt`), and connects since the drop. */
  step: number
  attempts: number
  /** Epoch ms of the resumed welcome. */
  resumedAt: number | null
  gaveUp: boolean
}

/** A failed connect: why (the name it is counted under), the close code if the socket closed, and whether to give up. */
class AttemptFailure extends Error {
  constructor (message: string, readonly closeCode: number | null, readonly final = false) {
    super(message)
  }
}

interface WelcomeOrError { type?: string, secret?: string, resumed?: boolean, code?: string }

/** A text frame before the welcome; one that is not JSON counts as an error that is retried. */
function parseReply (text: string): WelcomeOrError {
  try {
    return JSON.parse(text) as WelcomeOrError
  } catch {
    return { type: 'error', code: 'bad frame' }
  }
}

export class RestartClients implements Role {
  private resumers: Resumer[] = []
  private readonly errors: Record<string, number> = {}
  private readonly closes: Record<string, number> = {}
  private readonly sockets = new Set<RawWebSocket>()
  private healthAt: number | null = null
  private deadline = Infinity
  private timer: NodeJS.Timeout | null = null
  private reported = false
  private stopped = false
  /** Clients resumed or given up. */
  private done = 0

  constructor (private readonly config: RestartConfig, private readonly report: Report) {}

  get clients (): number { return this.sockets.size }

  async setup (): Promise<SetupReport> {
    const room = (index: number): string => `${this.config.room}-${Math.floor(index / this.config.roomSize)}`
    const { opened, report } = await openMany(0, this.config.users, this.config.concurrency, this.config.setupTimeoutMs, async (index) => {
      const resumer: Resumer = { index, secret: '', step: 0, attempts: 0, resumedAt: null, gaveUp: false }
      const welcome = await this.attempt(resumer, ownAddress(index), registerMessage(`r${index}`, room(index), index))
      resumer.secret = welcome.secret ?? ''
      return resumer
    })
    this.resumers = opened
    return report
  }

  /** One connect: resolves on the welcome (the socket stays open; its close goes to `dropped`), rejects with an AttemptFailure. */
  private async attempt (resumer: Resumer, address: string, message: string): Promise<WelcomeOrError> {
    const socket = await connectTo(this.config.baseUrl, '/ws', address, CONNECT_TIMEOUT_MS)
    this.sockets.add(socket)
    return await new Promise((resolve, reject) => {
      let welcomed = false
      let failure: AttemptFailure | null = null
      const timer = setTimeout(() => { failure = new AttemptFailure('no welcome', null); socket.terminate() }, CONNECT_TIMEOUT_MS)
      socket.handlers = {
        text: (text) => {
          const reply = parseReply(text)
          if (reply.type === 'welcome') {
            welcomed = true
            clearTimeout(timer)
            socket.collect = false
            socket.handlers.text = undefined
            resolve(reply)
          } else if (reply.type === 'error') {
            failure = new AttemptFailure(reply.code ?? 'error', null, reply.code === 'invalid_secret')
            socket.close(failure.final ? 1000 : CloseCode.retry)
          }
        },
        close: (code) => {
          this.sockets.delete(socket)
          clearTimeout(timer)
          if (welcomed) this.dropped(resumer, code)
          else reject(failure ?? new AttemptFailure(`closed ${code}`, code))
        }
      }
      socket.start()
      socket.send(message)
    })
  }

  /** A welcomed socket closed: before the resume, the client reconnects (at once after 1012). */
  private dropped (resumer: Resumer, code: number): void {
    bump(this.closes, resumer.resumedAt === null ? String(code) : `${code} after the resume`)
    if (this.stopped || resumer.resumedAt !== null || resumer.gaveUp) return
    if (code === CloseCode.replaced) return this.settled(resumer, false)
    this.resume(resumer, code === CloseCode.restarting ? 0 : this.backoff(resumer)).catch((err: unknown) => bump(this.errors, reason(err)))
  }

  private backoff (resumer: Resumer): number {
    return backoffDelay(resumer.step++, Math.random)
  }

  private async resume (resumer: Resumer, firstDelay: number): Promise<void> {
    const address = this.config.addresses === 'one' ? '127.0.0.1' : ownAddress(resumer.index)
    const reconnect = JSON.stringify({ type: 'reconnect', secret: resumer.secret })
    let delay = firstDelay
    while (!this.stopped && !this.reported) {
      if (delay > 0) await sleep(delay)
      if (Date.now() > this.deadline || this.reported) return
      resumer.attempts++
      try {
        const welcome = await this.attempt(resumer, address, reconnect)
        if (welcome.resumed !== true) bump(this.errors, 'welcome without resumed')
        return this.settled(resumer, welcome.resumed === true)
      } catch (err) {
        bump(this.errors, reason(err))
        if (err instanceof AttemptFailure && err.final) return this.settled(resumer, false)
        delay = err instanceof AttemptFailure && err.closeCode === CloseCode.restarting ? 0 : this.backoff(resumer)
      }
    }
  }

  start (at: number): void {
    this.healthAt = at
    this.deadline = at + this.config.deadlineMs
    this.timer = setTimeout(() => this.finish(), Math.max(0, this.deadline - Date.now()))
    this.checkDone()
  }

  /** A client is done: resumed, or gave up for good. */
  private settled (resumer: Resumer, resumed: boolean): void {
    if (resumed) resumer.resumedAt = Date.now()
    else resumer.gaveUp = true
    this.done++
    this.checkDone()
  }

  private checkDone (): void {
    if (this.healthAt !== null && this.done >= this.resumers.length) this.finish()
  }

  private finish (): void {
    if (this.reported) return
    this.reported = true
    if (this.timer !== null) clearTimeout(this.timer)
    this.report(this.result())
  }

  private result (): RestartResult {
    const healthAt = this.healthAt ?? 0
    const resumedAt = this.resumers.flatMap((resumer) => resumer.resumedAt === null ? [] : [resumer.resumedAt])
    const times = resumedAt.map((at) => Math.max(0, at - healthAt))
    return {
      kind: 'restart',
      users: this.resumers.length,
      resumed: resumedAt.length,
      within10s: times.filter((ms) => ms <= 10_000).length,
      within30s: times.filter((ms) => ms <= 30_000).length,
      byDeadline: resumedAt.length,
      resumeMs: summary(times),
      beforeHealth: resumedAt.filter((at) => at < healthAt).length,
      attempts: summary(this.resumers.filter((resumer) => resumer.resumedAt !== null).map((resumer) => resumer.attempts)),
      errors: this.errors,
      closes: this.closes,
      gaveUp: this.resumers.filter((resumer) => resumer.gaveUp).length
    }
  }

  windowStart (): void {}

  async windowEnd (): Promise<null> {
    return null
  }

  stop (): void {
    this.stopped = true
    if (this.timer !== null) clearTimeout(this.timer)
    for (const socket of this.sockets) socket.close(1000)
  }
}
