/** The folder of Shoal's own package.json, whether running from source or from dist/, in the repository or installed. */
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export function packageRoot (): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir)
    if (parent === dir) throw new Error('shoal: cannot find its package root (the folder of its package.json)')
    dir = parent
  }
  return dir
}
