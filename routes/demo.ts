/** The demo page from public/ at the prefix root, and the client library as one ES module (each on its own option). */
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import fastifyStatic from '@fastify/static'
import { packageRoot } from '../src/server/package-root.js'

const CLIENT_BUNDLE = '/build/shoal-client.js'

/** What is served of public/: never the TypeScript sources, the tsconfig or anything else beside them. */
function published (demo: boolean, clientBundle: boolean): (pathName: string) => boolean {
  return (pathName) => (clientBundle && pathName === CLIENT_BUNDLE) ||
    (demo && (pathName === '/' || pathName === '/index.html' || pathName === '/build/demo.js'))
}

export default async function demoRoute (app: FastifyInstance): Promise<void> {
  const { demo, clientBundle } = app.shoalConfig
  // decorateReply: false, so a host app that registered @fastify/static itself is not disturbed.
  await app.register(fastifyStatic, { root: join(packageRoot(), 'public'), decorateReply: false, allowedPath: published(demo, clientBundle) })
}
