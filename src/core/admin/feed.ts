/**
 * The operator's feed: every interval one overview, serialized once for every
 * page that watches, and each watched room's users, serialized once per room,
 * as server-sent events. Its cost is per interval, not per message a client
 * sends; a page that does not keep up misses snapshots instead of queueing them.
 */
import type { OperatorView } from './operator-view.js'

/** One page's stream. */
export interface FeedSink {
  write(chunk: string): void
  end(): void
  /** Bytes written and not yet taken by the page. */
  readonly backlog: number
}

export interface AdminFeedOptions {
  /** Pages that may watch at once; one more is refused. */
  maxWatchers: number
  /** A page with more than this unread is skipped until it catches up. */
  maxBacklogBytes: number
  /** A snapshot that failed (reading the metrics threw). */
  onError: (err: unknown) => void
}

/** One server-sent event (the JSON has no newline, so it is one `data` line). */
export const serverSentEvent = (event: string, json: string): string => `event: ${event}\ndata: ${json}\n\n`

export class AdminFeed {
  /** Each page, with the room it watches (null: the overview only). */
  private readonly watchers = new Map<FeedSink, string | null>()
  /** The snapshot being taken: a call meanwhile waits for it rather than taking another. */
  private publishing: Promise<void> | null = null
  /** The last overview sent, for a page that comes between two snapshots. */
  private latest: string | null = null

  constructor (private readonly view: OperatorView, private readonly options: AdminFeedOptions) {}

  get watcherCount (): number { return this.watchers.size }

  /** As many pages watch as may: another would be refused. */
  get full (): boolean { return this.watchers.size >= this.options.maxWatchers }

  /** Adds a page (with the room it watches), which gets a snapshot at once; returns how to remove it. */
  watch (sink: FeedSink, room: string | null): () => void {
    if (this.full) throw new Error(`admin feed: ${this.options.maxWatchers} pages watch already`)
    const first = this.watchers.size === 0
    this.watchers.set(sink, room)
    // With others watching, the last overview is at most an interval old; alone, this page starts the snapshots anew.
    if (first || this.latest === null) {
      this.publish().catch(this.options.onError)
    } else {
      sink.write(this.latest)
      if (room !== null) sink.write(this.roomEvent(room, new Map()))
    }
    return () => { this.watchers.delete(sink) }
  }

  /** Ends every page's stream (at shutdown: an open stream would hold the server open). */
  close (): void {
    for (const sink of this.watchers.keys()) sink.end()
    this.watchers.clear()
  }

  /** Sends every page the current snapshot (the one being taken, when a call comes meanwhile). */
  async publish (): Promise<void> {
    if (this.watchers.size === 0) return
    this.publishing ??= this.snapshot().finally(() => { this.publishing = null })
    await this.publishing
  }

  private async snapshot (): Promise<void> {
    const overview = serverSentEvent('overview', JSON.stringify(await this.view.overview()))
    this.latest = overview
    const rooms = new Map<string, string>()
    for (const [sink, room] of this.watchers) {
      if (sink.backlog > this.options.maxBacklogBytes) continue
      sink.write(overview)
      if (room !== null) sink.write(this.roomEvent(room, rooms))
    }
  }

  private roomEvent (room: string, made: Map<string, string>): string {
    let event = made.get(room)
    if (event === undefined) {
      event = serverSentEvent('room', JSON.stringify(this.view.room(room)))
      made.set(room, event)
    }
    return event
  }
}
