/** The demo client from public/, at the prefix root. */
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance } from 'fastify'
import fastifyStatic from '@fastify/static'

/** public/ of this package, whether running from source or from dist/. */
function publicDir (): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir)
    if (parent === dir) throw new Error('shoal: cannot find the package root holding public/')
    dir = parent
  }
  return join(dir, 'public')
}

/** The page and its bundles; not the TypeScript sources, the tsconfig or the source maps beside them. */
function isPublished (pathName: string): boolean {
  return pathName === '/' || pathName === '/index.html' || /^\/build\/[\w-]+\.js$/.test(pathName)
}

export default async function demoRoute (app: FastifyInstance): Promise<void> {
  // decorateReply: false, so a host app that registered @fastify/static itself is not disturbed.
  await app.register(fastifyStatic, { root: publicDir(), decorateReply: false, allowedPath: isPublished })
}
