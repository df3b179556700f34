/**
 * A spatial hash grid on the x-y plane: items live in square cells, and a query
 * looks only at the cells a circle overlaps, so finding neighbours costs the
 * number of nearby items, not the number of items in the room.
 */
export class SpatialGrid<T> {
  private readonly cells = new Map<string, Set<T>>()
  private readonly cellOf = new Map<T, string>()

  constructor (private readonly cellSize: number) {
    if (!(cellSize > 0)) throw new RangeError('cell size must be positive')
  }

  get size (): number { return this.cellOf.size }

  /** Puts `item` at (x, y), moving it if it was elsewhere. */
  set (item: T, x: number, y: number): void {
    const key = this.key(Math.floor(x / this.cellSize), Math.floor(y / this.cellSize))
    const current = this.cellOf.get(item)
    if (current === key) return
    if (current !== undefined) this.leave(item, current)
    let cell = this.cells.get(key)
    if (cell === undefined) {
      cell = new Set()
      this.cells.set(key, cell)
    }
    cell.add(item)
    this.cellOf.set(item, key)
  }

  delete (item: T): void {
    const current = this.cellOf.get(item)
    if (current === undefined) return
    this.leave(item, current)
    this.cellOf.delete(item)
  }

  /** Every item in the cells overlapping the circle of `radius` around (x, y): a superset to filter by distance. */
  * near (x: number, y: number, radius: number): Generator<T> {
    const minX = Math.floor((x - radius) / this.cellSize)
    const minY = Math.floor((y - radius) / this.cellSize)
    const spanX = Math.floor((x + radius) / this.cellSize) - minX
    const spanY = Math.floor((y + radius) / this.cellSize) - minY
    // Small counters, not cell numbers: past 2^53 a cell number + 1 is the same number.
    for (let i = 0; i <= spanX; i++) {
      for (let j = 0; j <= spanY; j++) {
        const cell = this.cells.get(this.key(minX + i, minY + j))
        if (cell !== undefined) yield * cell
      }
    }
  }

  private leave (item: T, key: string): void {
    const cell = this.cells.get(key)
    if (cell === undefined) return
    cell.delete(item)
    if (cell.size === 0) this.cells.delete(key)
  }

  private key (cx: number, cy: number): string {
    return `${cx}:${cy}`
  }
}
