/**
 * What the demo page exposes on `window.shoalDemo`, for debugging and for the browser test.
 * When to look: `<html data-state="in-room">` (see demo.ts), the page's own signal.
 */
import type { ShoalClient } from '../../src/client/index.js'

export interface DemoApi {
  client: ShoalClient
  /** Events the page saw, in order: welcome, join, leave, data, error:<code>. */
  log: Array<{ event: string, id?: string }>
  /** Where a remote user's dot is drawn now (interpolated). */
  drawnAt: (id: string) => { x: number, y: number } | undefined
  /** The markers drawn from the `landmarks` CSV feed (columns name, x, y, optional description). */
  landmarks: () => Landmark[]
}

export interface Landmark {
  name: string
  x: number
  y: number
  description: string
}

declare global {
  interface Window {
    shoalDemo: DemoApi
  }
}
