/** Prometheus metrics of one instance (prom-client), in a registry of its own (nothing global). */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { ServerMessageType } from '../../schemas/protocol.js'
import type { MeterReading } from '../core/admin/operator-view.js'
import type { EngineMeter } from '../core/engine.js'
import type { BroadcastMeter } from '../core/presence/broadcaster.js'

export class ShoalMetrics implements BroadcastMeter, EngineMeter {
  readonly registry = new Registry()
  private readonly messagesIn = new Counter({ name: 'shoal_messages_in_total', help: 'Inbound messages by type (invalid: not a known message).', labelNames: ['type'], registers: [this.registry] })
  private readonly messagesOut = new Counter({ name: 'shoal_messages_out_total', help: 'Outbound messages by type, counted per recipient.', labelNames: ['type'], registers: [this.registry] })
  private readonly errors = new Counter({ name: 'shoal_errors_total', help: 'Error replies by code.', labelNames: ['code'], registers: [this.registry] })
  private readonly skippedFrames = new Counter({ name: 'shoal_frames_skipped_total', help: 'positions frames not sent to clients that read too slowly.', registers: [this.registry] })
  private readonly clusterInvalid = new Counter({ name: 'shoal_cluster_invalid_total', help: 'In a cluster: messages and member records from other nodes skipped as invalid.', registers: [this.registry] })
  private readonly slowClosed = new Counter({ name: 'shoal_slow_readers_closed_total', help: 'Connections closed with 1013 for reading too slowly.', registers: [this.registry] })
  private readonly tickDuration = new Histogram({
    name: 'shoal_tick_duration_seconds',
    help: 'Duration of one broadcast tick.',
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1],
    registers: [this.registry]
  })

  /** The longest tick since the last reading, for the admin feed: the histogram keeps no maximum. */
  private maxTickSeconds = 0

  constructor () {
    collectDefaultMetrics({ register: this.registry })
  }

  received (type: string): void { this.messagesIn.inc({ type }) }
  sent (type: ServerMessageType, frames: number): void { if (frames > 0) this.messagesOut.inc({ type }, frames) }
  error (code: string): void { this.errors.inc({ code }) }
  skipped (frames: number): void { this.skippedFrames.inc(frames) }
  closedSlow (): void { this.slowClosed.inc() }
  invalidFromCluster (): void { this.clusterInvalid.inc() }
  observeTick (seconds: number): void {
    this.tickDuration.observe(seconds)
    if (seconds > this.maxTickSeconds) this.maxTickSeconds = seconds
  }

  /** The totals the admin feed shows; the longest tick starts over. */
  async reading (): Promise<MeterReading> {
    const [messagesIn, messagesOut, errors, skipped, closed, ticks] = await Promise.all([
      byLabel(this.messagesIn, 'type'), byLabel(this.messagesOut, 'type'), byLabel(this.errors, 'code'),
      this.skippedFrames.get(), this.slowClosed.get(), this.tickDuration.get()
    ])
    const series = (suffix: string): number => ticks.values.find((value) => value.metricName === `shoal_tick_duration_seconds${suffix}`)?.value ?? 0
    const maxTickSeconds = this.maxTickSeconds
    this.maxTickSeconds = 0
    return {
      messagesIn,
      messagesOut,
      errors,
      skippedFrames: skipped.values[0]?.value ?? 0,
      slowClosed: closed.values[0]?.value ?? 0,
      ticks: series('_count'),
      tickSeconds: series('_sum'),
      maxTickSeconds
    }
  }

  /** A gauge read at scrape time, so the hot path never updates it. */
  gauge (name: string, help: string, read: () => number): void {
    // eslint-disable-next-line no-new -- registered through `registers`
    new Gauge({ name, help, registers: [this.registry], collect () { this.set(read()) } })
  }

  /** A counter read at scrape time from a total that only grows (kept by whoever counts it, e.g. the cluster bus). */
  counter (name: string, help: string, read: () => number): void {
    // eslint-disable-next-line no-new -- registered through `registers`
    new Counter({ name, help, registers: [this.registry], collect () { this.reset(); this.inc(read()) } })
  }
}

/** A counter's values by one label. */
async function byLabel (counter: Counter, label: string): Promise<Record<string, number>> {
  const totals: Record<string, number> = {}
  for (const { labels, value } of (await counter.get()).values) totals[String(labels[label])] = value
  return totals
}
