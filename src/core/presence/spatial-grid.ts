/**
 * A spatial hash grid on the x-y plane: items live in square cells, and a query
 * looks only at the cells a circle overlaps, so finding neighbours costs the
 * number of nearby items, not the number of items in the room. Cells are plain
 * arrays (an item leaves by swapping with the last), so a query walks arrays,
 * not set iterators.
 */
interface Place<T> {
  cx: number
  cy: number
  cell: T[]
  /** Where the item is in `cell`. */
  index: number
}

export class SpatialGrid<T> {
  /** Cells by column, then row: number keys, so a query builds no strings. */
  private readonly columns = new Map<number, Map<number, T[]>>()
  private readonly places = new Map<T, Place<T>>()

  constructor (private readonly cellSize: number) {
    if (!(cellSize > 0)) throw new RangeError('cell size must be positive')
  }

  get size (): number { return this.places.size }

  /** Puts `item` at (x, y), moving it if it was elsewhere. */
  set (item: T, x: number, y: number): void {
    const cx = Math.floor(x / this.cellSize)
    const cy = Math.floor(y / this.cellSize)
    const place = this.places.get(item)
    if (place !== undefined) {
      if (place.cx === cx && place.cy === cy) return
      this.leave(place)
    }
    let column = this.columns.get(cx)
    if (column === undefined) {
      column = new Map()
      this.columns.set(cx, column)
    }
    let cell = column.get(cy)
    if (cell === undefined) {
      cell = []
      column.set(cy, cell)
    }
    if (place === undefined) {
      this.places.set(item, { cx, cy, cell, index: cell.length })
    } else {
      place.cx = cx
      place.cy = cy
      place.cell = cell
      place.index = cell.length
    }
    cell.push(item)
  }

  delete (item: T): void {
    const place = this.places.get(item)
    if (place === undefined) return
    this.leave(place)
    this.places.delete(item)
  }

  /**
   * Fills `out` with the non-empty cells overlapping the circle of `radius` around
   * (x, y): a superset of the items within it, each item in exactly one cell.
   * `out` is the caller's, reused across queries so that none allocates; the
   * cells are the grid's own, to read before the next change.
   */
  cellsNear (x: number, y: number, radius: number, out: Array<readonly T[]>): void {
    out.length = 0
    const minX = Math.floor((x - radius) / this.cellSize)
    const minY = Math.floor((y - radius) / this.cellSize)
    const spanX = Math.floor((x + radius) / this.cellSize) - minX
    const spanY = Math.floor((y + radius) / this.cellSize) - minY
    // Small counters, not cell numbers: past 2^53 a cell number + 1 is the same number.
    for (let i = 0; i <= spanX; i++) {
      const column = this.columns.get(minX + i)
      if (column === undefined) continue
      for (let j = 0; j <= spanY; j++) {
        const cell = column.get(minY + j)
        if (cell !== undefined) out.push(cell)
      }
    }
  }

  /** Takes the item out of its cell: the cell's last item takes its index; an empty cell goes. */
  private leave (place: Place<T>): void {
    const cell = place.cell
    const last = cell.pop() as T
    if (place.index < cell.length) {
      cell[place.index] = last
      const moved = this.places.get(last)
      if (moved !== undefined) moved.index = place.index
    }
    if (cell.length > 0) return
    const column = this.columns.get(place.cx)
    column?.delete(place.cy)
    if (column?.size === 0) this.columns.delete(place.cx)
  }
}
