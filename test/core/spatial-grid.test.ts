import { spawnSync } from 'node:child_process'
import t from 'tap'
import { SpatialGrid } from '../../src/core/presence/spatial-grid.js'
import type { TapTest } from './fakes.js'

interface Point { name: string, x: number, y: number }

/** A small seeded PRNG (mulberry32), so every run checks the same points. */
function random (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let r = Math.imul(a ^ (a >>> 15), 1 | a)
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296
  }
}

function near<T> (grid: SpatialGrid<T>, x: number, y: number, radius: number): T[] {
  const cells: Array<readonly T[]> = []
  grid.cellsNear(x, y, radius, cells)
  return cells.flatMap((cell) => [...cell])
}

const names = (points: Point[]): string[] => points.map((p) => p.name).sort()

/** The cell index range a query may look at, on one axis. */
const cellRange = (center: number, radius: number, cellSize: number): [number, number] =>
  [Math.floor((center - radius) / cellSize), Math.floor((center + radius) / cellSize)]

/** Checks `near` against brute force: every point within the radius is found, every point found is from an overlapping cell, none twice. */
function checkQuery (t: TapTest, grid: SpatialGrid<Point>, points: Point[], cellSize: number, x: number, y: number, radius: number): void {
  const found = near(grid, x, y, radius)
  const foundSet = new Set(found)
  const label = `near(${x}, ${y}, ${radius})`
  t.equal(foundSet.size, found.length, `${label}: no item twice`)
  const missing = points.filter((p) => Math.hypot(p.x - x, p.y - y) <= radius && !foundSet.has(p))
  t.strictSame(names(missing), [], `${label}: every item within the radius`)
  const [minX, maxX] = cellRange(x, radius, cellSize)
  const [minY, maxY] = cellRange(y, radius, cellSize)
  const outside = found.filter((p) => {
    const cx = Math.floor(p.x / cellSize)
    const cy = Math.floor(p.y / cellSize)
    return cx < minX || cx > maxX || cy < minY || cy > maxY ||
      Math.abs(p.x - x) > radius + cellSize || Math.abs(p.y - y) > radius + cellSize
  })
  t.strictSame(names(outside), [], `${label}: only items from overlapping cells`)
  const inOverlappingCells = points.filter((p) => {
    const cx = Math.floor(p.x / cellSize)
    const cy = Math.floor(p.y / cellSize)
    return cx >= minX && cx <= maxX && cy >= minY && cy <= maxY
  })
  t.strictSame(names(found), names(inOverlappingCells), `${label}: exactly the items of the overlapping cells`)
}

t.test('the cell size must be positive', async (t) => {
  for (const size of [0, -1, Number.NaN]) {
    t.throws(() => new SpatialGrid(size), RangeError, `cell size ${size}`)
  }
  t.doesNotThrow(() => new SpatialGrid(0.5))
})

t.test('set, move and delete', async (t) => {
  const grid = new SpatialGrid<string>(10)
  t.equal(grid.size, 0)
  t.strictSame(near(grid, 0, 0, 100), [], 'an empty grid finds nothing')

  grid.set('a', 5, 5)
  grid.set('b', 25, 5)
  t.equal(grid.size, 2)
  t.strictSame(near(grid, 5, 5, 1), ['a'])
  t.strictSame(near(grid, 25, 5, 1), ['b'])
  t.strictSame(near(grid, 15, 5, 10).sort(), ['a', 'b'])

  grid.set('a', 55, 55)
  t.equal(grid.size, 2, 'moving does not add an item')
  t.strictSame(near(grid, 5, 5, 1), [], 'not at its old place')
  t.strictSame(near(grid, 55, 55, 1), ['a'], 'at its new place')
  t.strictSame(near(grid, 0, 0, 1000).sort(), ['a', 'b'], 'once each in a query covering both')

  grid.delete('a')
  t.equal(grid.size, 1)
  t.strictSame(near(grid, 55, 55, 1), [])
  grid.delete('a')
  grid.delete('never added')
  t.equal(grid.size, 1, 'deleting an absent item changes nothing')

  grid.set('a', 5, 5)
  t.equal(grid.size, 2, 'a deleted item can come back')
  t.strictSame(near(grid, 5, 5, 1).sort(), ['a'])
  grid.delete('a')
  grid.delete('b')
  t.equal(grid.size, 0)
  t.strictSame(near(grid, 0, 0, 1000), [])
})

t.test('moving within a cell keeps one entry', async (t) => {
  const grid = new SpatialGrid<string>(10)
  grid.set('a', 1, 1)
  grid.set('a', 9.5, 0.5)
  grid.set('a', 9.5, 0.5)
  t.equal(grid.size, 1)
  t.strictSame(near(grid, 9.5, 0.5, 0), ['a'])
  t.strictSame(near(grid, 0, 0, 1000), ['a'], 'found once')
  grid.set('a', 10, 0.5)
  t.strictSame(near(grid, 10, 0.5, 0), ['a'], 'on the boundary it belongs to the next cell')
  t.strictSame(near(grid, 5, 5, 0), [], 'and has left the old one')
  grid.delete('a')
  t.equal(grid.size, 0)
})

t.test('distinct items at the same point', async (t) => {
  const grid = new SpatialGrid<{ id: number }>(10)
  const a = { id: 1 }
  const b = { id: 1 }
  grid.set(a, 3, 3)
  grid.set(b, 3, 3)
  t.equal(grid.size, 2)
  t.equal(near(grid, 3, 3, 0).length, 2)
  grid.delete(a)
  t.strictSame(near(grid, 3, 3, 0), [b])
})

t.test('cell boundaries and negative coordinates', async (t) => {
  const grid = new SpatialGrid<Point>(10)
  const points: Point[] = []
  for (let x = -30; x <= 30; x += 5) {
    for (let y = -30; y <= 30; y += 5) {
      const point = { name: `${x},${y}`, x, y }
      points.push(point)
      grid.set(point, x, y)
    }
  }
  for (const p of [{ name: '-0.000001,0', x: -0.000001, y: 0 }, { name: '-10,-9.999999', x: -10, y: -9.999999 }]) {
    points.push(p)
    grid.set(p, p.x, p.y)
  }
  t.equal(grid.size, points.length)
  // Queries centred on boundaries, with radii that reach exactly to other boundaries.
  for (const [x, y, r] of [[0, 0, 10], [0, 0, 0], [-10, -10, 10], [10, -10, 5], [-5, 5, 15], [-0.5, -0.5, 0.5], [-30, 30, 20], [7, -3, 9.5], [-20, -20, 0]] as const) {
    checkQuery(t, grid, points, 10, x, y, r)
  }
  const origin = near(grid, 0, 0, 10).map((p) => p.name)
  t.ok(origin.includes('10,0') && origin.includes('-10,0') && origin.includes('0,-10') && origin.includes('0,10'), 'points exactly at the radius are found')
  t.ok(origin.includes('-0.000001,0'), 'a point just left of 0 is in the negative cell and found')
})

t.test('near matches brute force over random points (seeded)', async (t) => {
  for (const [seed, cellSize] of [[1, 10], [2, 100], [3, 7.5], [4, 1]] as const) {
    const next = random(seed)
    const grid = new SpatialGrid<Point>(cellSize)
    const points: Point[] = []
    const span = cellSize * 20
    for (let i = 0; i < 400; i++) {
      // Some points snapped to cell boundaries, the rest anywhere, negative coordinates included.
      const snap = i % 5 === 0
      const x = snap ? Math.round((next() - 0.5) * 20) * cellSize : (next() - 0.5) * span
      const y = snap ? Math.round((next() - 0.5) * 20) * cellSize : (next() - 0.5) * span
      const point = { name: `p${i}`, x, y }
      points.push(point)
      grid.set(point, x, y)
    }
    // Move a quarter of them, some across cells and some within.
    for (let i = 0; i < points.length; i += 4) {
      const point = points[i]
      if (point === undefined) continue
      point.x += (next() - 0.5) * cellSize * (i % 8 === 0 ? 4 : 0.2)
      point.y += (next() - 0.5) * cellSize * (i % 8 === 0 ? 4 : 0.2)
      grid.set(point, point.x, point.y)
    }
    // Delete some.
    const deleted = points.splice(0, 40)
    for (const point of deleted) grid.delete(point)
    t.equal(grid.size, points.length, `seed ${seed}: size`)

    let mismatches = 0
    for (let q = 0; q < 60; q++) {
      const onBoundary = q % 3 === 0
      const x = onBoundary ? Math.round((next() - 0.5) * 20) * cellSize : (next() - 0.5) * span
      const y = onBoundary ? Math.round((next() - 0.5) * 20) * cellSize : (next() - 0.5) * span
      const radius = q % 4 === 0 ? cellSize : next() * cellSize * 3
      const found = new Set(near(grid, x, y, radius))
      const missing = points.filter((p) => Math.hypot(p.x - x, p.y - y) <= radius && !found.has(p))
      const stray = deleted.filter((p) => found.has(p))
      if (missing.length > 0 || stray.length > 0) mismatches++
      if (q % 10 === 0) checkQuery(t, grid, points, cellSize, x, y, radius)
    }
    t.equal(mismatches, 0, `seed ${seed}, cell ${cellSize}: every query finds every item within its radius and no deleted item`)
  }
})

t.test('huge coordinates (1e9)', async (t) => {
  const grid = new SpatialGrid<Point>(100)
  const points: Point[] = [
    { name: 'ne', x: 1e9, y: 1e9 },
    { name: 'ne-near', x: 1e9 - 60, y: 1e9 - 80 },
    { name: 'sw', x: -1e9, y: -1e9 },
    { name: 'se', x: 1e9, y: -1e9 },
    { name: 'nw', x: -1e9, y: 1e9 },
    { name: 'origin', x: 0, y: 0 }
  ]
  for (const p of points) grid.set(p, p.x, p.y)
  t.equal(grid.size, points.length)
  t.strictSame(near(grid, 1e9, 1e9, 100).map((p) => p.name).sort(), ['ne', 'ne-near'])
  t.strictSame(near(grid, -1e9, -1e9, 150).map((p) => p.name), ['sw'])
  t.strictSame(near(grid, 1e9, -1e9, 0).map((p) => p.name), ['se'])
  t.strictSame(near(grid, -1e9 + 50, 1e9 - 50, 100).map((p) => p.name), ['nw'])
  t.strictSame(near(grid, 5e8, 5e8, 1000), [])
  for (const [x, y, r] of [[1e9, 1e9, 100], [1e9 - 30, 1e9 - 30, 250], [-1e9, -1e9, 110], [0, 0, 100]] as const) {
    checkQuery(t, grid, points, 100, x, y, r)
  }

  const next = random(42)
  const edge: Point[] = []
  const big = new SpatialGrid<Point>(100)
  for (let i = 0; i < 200; i++) {
    const sign = i % 2 === 0 ? 1 : -1
    const p = { name: `e${i}`, x: sign * (1e9 - next() * 1000), y: -sign * (1e9 - next() * 1000) }
    edge.push(p)
    big.set(p, p.x, p.y)
  }
  for (let q = 0; q < 20; q++) {
    const sign = q % 2 === 0 ? 1 : -1
    checkQuery(t, big, edge, 100, sign * (1e9 - next() * 1000), -sign * (1e9 - next() * 1000), 110)
  }

  // A cell as large as the largest radius the settings allow.
  const wide = new SpatialGrid<Point>(1e9)
  for (const p of points) wide.set(p, p.x, p.y)
  checkQuery(t, wide, points, 1e9, 0, 0, 1.1e9)
  checkQuery(t, wide, points, 1e9, 1e9, -1e9, 1.1e9)
  t.strictSame(near(wide, 0, 0, 1.1e9).map((p) => p.name).sort(), names(points), 'a query spanning every cell finds everything')
})

t.test('cell indices beyond 2^53 (a tiny cell size at 1e9) do not hang near', async (t) => {
  // The settings accept any positive interestRadius, and positions go up to 1e9:
  // with a cell of 1e-8 the cell index is 1e17, where `cx++` no longer changes cx.
  // Run in a child process so that a hang fails this test instead of the suite.
  const grid = new URL('../../src/core/presence/spatial-grid.ts', import.meta.url).href
  const script = `
    const { SpatialGrid } = await import(${JSON.stringify(grid)})
    const g = new SpatialGrid(1e-8)
    g.set('a', 1e9, 0)
    g.set('b', -1e9, 5)
    const near = (x, y, r) => { const cells = []; g.cellsNear(x, y, r, cells); return cells.flatMap((c) => [...c]) }
    console.log(JSON.stringify([near(1e9, 0, 1.1e-8), near(-1e9, 5, 1.1e-8)]))
  `
  const run = spawnSync(process.execPath, ['--import=tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 10_000, killSignal: 'SIGKILL' })
  t.equal(run.signal, null, 'cellsNear returns (the child was not killed after 10 s)')
  t.strictSame(run.stdout.trim() === '' ? null : JSON.parse(run.stdout), [['a'], ['b']], 'and finds the items')
})
