/** The demo page from public/ at the prefix root, and the client library as one ES module (each on its own option). */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import fastifyStatic from '@fastify/static'
import { packageRoot } from '../src/server/package-root.js'

const CLIENT_BUNDLE = '/build/shoal-client.js'

/** What the demo serves of public/: never the TypeScript sources, the tsconfig or anything else beside them. */
function published (clientBundle: boolean): (pathName: string) => boolean {
  return (pathName) => pathName === '/' || pathName === '/index.html' || pathName === '/build/demo.js' || (clientBundle && pathName === CLIENT_BUNDLE)
}

export default async function demoRoute (app: FastifyInstance): Promise<void> {
  const { demo } = app.shoalConfig
  const clientBundle = app.shoalConfig.clientBundle ?? demo
  const publicDir = join(packageRoot(), 'public')
  if (demo) {
    // decorateReply: false, so a host app that registered @fastify/static itself is not disturbed.
    await app.register(fastifyStatic, { root: publicDir, decorateReply: false, allowedPath: published(clientBundle) })
    return
  }
  // The bundle alone: one route, so that no wildcard answers (or upgrades) every other path.
  app.get(CLIENT_BUNDLE, async (_request, reply) => {
    const bundle = await readFile(join(publicDir, CLIENT_BUNDLE)).catch(() => null)
    if (bundle === null) return await reply.code(404).send({ error: 'the client bundle is not built (npm run build:web)' })
    return await reply.type('text/javascript; charset=utf-8').send(bundle)
  })
}
