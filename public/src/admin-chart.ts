/**
 * A live line chart (uPlot) of a few named series over the last WINDOW
 * snapshots. A series appears the first time its label does (a message type
 * first seen, say), so the chart is made anew when the set of labels changes.
 */
import UPlot from 'uplot'
import 'uplot/dist/uPlot.min.css'

const WINDOW = 120
const HEIGHT = 180
const COLORS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#ca8a04', '#db2777', '#4b5563', '#65a30d']

export class LiveChart {
  private readonly times: number[] = []
  private readonly series = new Map<string, number[]>()
  private plot: UPlot | null = null

  constructor (private readonly container: HTMLElement, private readonly fixed: Record<string, string> = {}) {}

  /** Adds one snapshot's values (seconds since the epoch); a label missing from it reads 0. */
  push (at: number, values: Record<string, number>): void {
    let changed = false
    for (const label of Object.keys(values)) {
      if (this.series.has(label)) continue
      this.series.set(label, this.times.map(() => 0))
      changed = true
    }
    this.times.push(at)
    for (const [label, points] of this.series) points.push(values[label] ?? 0)
    if (this.times.length > WINDOW) {
      this.times.shift()
      for (const points of this.series.values()) points.shift()
    }
    const data: UPlot.AlignedData = [this.times, ...this.series.values()]
    if (changed || this.plot === null) this.make(data)
    else this.plot.setData(data)
  }

  private make (data: UPlot.AlignedData): void {
    this.plot?.destroy()
    const labels = [...this.series.keys()]
    this.plot = new UPlot({
      width: Math.max(300, this.container.clientWidth),
      height: HEIGHT,
      scales: { y: { range: (_plot, _min, max) => [0, max > 0 ? max * 1.1 : 1] } },
      series: [{}, ...labels.map((label, index) => ({ label, stroke: this.fixed[label] ?? COLORS[index % COLORS.length], width: 1.5, points: { show: false } }))]
    }, data, this.container)
  }
}
