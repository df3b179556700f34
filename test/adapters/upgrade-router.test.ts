/**
 * The UpgradeRouter on a real HTTP server and real sockets: Shoal's paths are
 * routed as claimed upgrades and hidden from every other upgrade listener,
 * whether it was there before or came after; other paths go to those listeners,
 * or, with none, are answered as plain HTTP; giving the paths back restores them.
 */
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import t from 'tap'
import { UpgradeRouter } from '../../src/adapters/upgrade-router.js'

/** An answer, and whether it told the client not to reuse the connection. */
interface Answer { status: number, body: string, connection: string | undefined }

/** The subtest type (the last overload of t.test takes only the callback). */
type Test = Parameters<Parameters<typeof t.test>[0]>[0]

/** Sends an upgrade request and reads the (non-101) answer. */
async function upgradeTo (server: Server, path: string): Promise<Answer> {
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('not listening')
  return await new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: address.port, path, headers: { connection: 'Upgrade', upgrade: 'test' } })
    req.on('response', (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { body += chunk })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, connection: res.headers.connection }))
    })
    req.on('error', reject)
    req.end()
  })
}

/** A listener of another library's: answers 200 "other" and records the paths it saw. */
function otherListener (seen: string[]) {
  return function other (req: IncomingMessage, socket: Duplex): void {
    seen.push(req.url ?? '')
    socket.end('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nother')
  }
}

/** A server whose router answers a claimed upgrade 418 "claimed" straight on its socket, and plain HTTP 404 "plain". */
async function routedServer (t: Test): Promise<{ server: Server, router: UpgradeRouter }> {
  const server = createServer((_req, res) => { res.end() })
  const route = (req: IncomingMessage, res: ServerResponse): void => {
    const upgrade = router.take(req)
    if (upgrade !== undefined) upgrade.socket.end('HTTP/1.1 418 Claimed\r\nContent-Length: 7\r\nConnection: close\r\n\r\nclaimed')
    else res.writeHead(404, { 'content-length': '5' }).end('plain')
  }
  const router = UpgradeRouter.of(server, route)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  // As testApp() does: every connection ends with the server, so the teardown waits on no client.
  t.teardown(async () => { server.closeAllConnections(); await new Promise((resolve) => server.close(resolve)) })
  return { server, router }
}

t.test('a listener there before the claim never sees the claimed path, and gets every other', async (t) => {
  const { server, router } = await routedServer(t)
  const seen: string[] = []
  server.on('upgrade', otherListener(seen))
  router.claim('/ws')
  t.same(await upgradeTo(server, '/ws'), { status: 418, body: 'claimed', connection: 'close' })
  t.same(await upgradeTo(server, '/ws?token=x'), { status: 418, body: 'claimed', connection: 'close' }, 'the query is not part of the path')
  t.same(await upgradeTo(server, '/elsewhere'), { status: 200, body: 'other', connection: 'close' })
  t.same(seen, ['/elsewhere'])
})

t.test('a listener added after the claim is filtered too', async (t) => {
  const { server, router } = await routedServer(t)
  router.claim('/ws')
  const seen: string[] = []
  server.on('upgrade', otherListener(seen))
  await new Promise((resolve) => process.nextTick(resolve))
  t.same(await upgradeTo(server, '/ws'), { status: 418, body: 'claimed', connection: 'close' })
  t.same(await upgradeTo(server, '/other'), { status: 200, body: 'other', connection: 'close' })
  t.same(seen, ['/other'])
})

t.test('with no other listener, another path is routed as plain HTTP, and its connection ends', async (t) => {
  const { server, router } = await routedServer(t)
  router.claim('/ws')
  t.same(await upgradeTo(server, '/elsewhere'), { status: 404, body: 'plain', connection: 'close' })
  t.same(await upgradeTo(server, '/ws'), { status: 418, body: 'claimed', connection: 'close' })
})

t.test('the other library can still remove its listener by its own reference; then others go as plain HTTP', async (t) => {
  const { server, router } = await routedServer(t)
  const seen: string[] = []
  const other = otherListener(seen)
  server.on('upgrade', other)
  router.claim('/ws')
  server.removeListener('upgrade', other)
  t.equal(server.listenerCount('upgrade'), 1, 'only the router is left')
  t.same(await upgradeTo(server, '/elsewhere'), { status: 404, body: 'plain', connection: 'close' })
  t.same(seen, [])
})

t.test('giving back the last path restores the other listeners as they were', async (t) => {
  const { server, router } = await routedServer(t)
  const seen: string[] = []
  const other = otherListener(seen)
  server.on('upgrade', other)
  const releaseOne = router.claim('/one')
  const releaseTwo = router.claim('/two')
  releaseOne()
  t.same(await upgradeTo(server, '/one'), { status: 200, body: 'other', connection: 'close' }, 'a path given back is no longer claimed')
  t.same(await upgradeTo(server, '/two'), { status: 418, body: 'claimed', connection: 'close' })
  releaseTwo()
  t.same(server.rawListeners('upgrade'), [other], 'the original listener, unwrapped, and nothing else')
  t.same(await upgradeTo(server, '/two'), { status: 200, body: 'other', connection: 'close' })
  t.not(UpgradeRouter.of(server, () => {}), router, 'the next claim starts a new router')
})

t.test('one router per server, shared by every instance on it', async (t) => {
  const { server, router } = await routedServer(t)
  t.equal(UpgradeRouter.of(server, () => {}), router)
})
