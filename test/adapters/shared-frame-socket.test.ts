/**
 * SharedFrameSocket over real sockets: bytes framed once and written to several
 * clients arrive as the messages they are (text or binary, at every length
 * encoding of the frame header), in order with what ws's own `send` sends.
 */
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { WebSocket, WebSocketServer } from 'ws'
import { SharedFrameSocket } from '../../src/adapters/shared-frame-socket.js'
import { until } from '../wait.js'

interface Received { text: string, binary: boolean }

async function serverWith (clients: number, perMessageDeflate = false): Promise<{ sockets: SharedFrameSocket[], inboxes: Received[][], close: () => Promise<void> }> {
  // @types/ws wants ws's class with its statics, which the subclass inherits.
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate, WebSocket: SharedFrameSocket as unknown as typeof WebSocket })
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  const sockets: SharedFrameSocket[] = []
  server.on('connection', (socket: SharedFrameSocket) => sockets.push(socket))
  const peers = await Promise.all(Array.from({ length: clients }, async () => {
    const peer = new WebSocket(`ws://127.0.0.1:${port}`)
    await once(peer, 'open')
    return peer
  }))
  await until(`the server's side of all ${clients} sockets`, () => sockets.length === clients, { describe: () => sockets.length })
  const inboxes = peers.map((peer) => {
    const inbox: Received[] = []
    peer.on('message', (data: Buffer, binary: boolean) => inbox.push({ text: data.toString(), binary }))
    return inbox
  })
  const close = async (): Promise<void> => {
    for (const peer of peers) peer.terminate()
    await new Promise((resolve) => server.close(resolve))
  }
  return { sockets, inboxes, close }
}

/** What each socket writes to its TCP connection, as written. */
function tapWrites (socket: SharedFrameSocket): unknown[] {
  const tcp = (socket as unknown as { _socket: { write: (chunk: unknown, ...rest: unknown[]) => boolean } })._socket
  const written: unknown[] = []
  const write = tcp.write.bind(tcp)
  tcp.write = (chunk, ...rest) => { written.push(chunk); return write(chunk, ...rest) }
  return written
}

t.test('the same bytes, framed once, reach every socket whole and in order with plain sends', async (t) => {
  const { sockets, inboxes, close } = await serverWith(3)
  t.teardown(close)
  const short = Buffer.from('{"type":"presence"}')
  const medium = Buffer.from(JSON.stringify({ type: 'positions', pad: 'é'.repeat(300) }))
  const long = Buffer.from('x'.repeat(70_000))
  const binary = Uint8Array.from({ length: 200 }, (_, i) => i)
  for (const socket of sockets) {
    socket.send('first')
    socket.sendShared(short, false)
    socket.sendShared(medium, false)
    socket.sendShared(long.subarray(0, 65_536 + 10), false)
    socket.sendShared(binary, true)
    socket.send('last')
  }
  await until('six messages on each of the three sockets', () => inboxes.every((inbox) => inbox.length === 6), { describe: () => inboxes.map((inbox) => inbox.length) })
  const expected: Received[] = [
    { text: 'first', binary: false },
    { text: short.toString(), binary: false },
    { text: medium.toString(), binary: false },
    { text: 'x'.repeat(65_546), binary: false },
    { text: Buffer.from(binary).toString(), binary: true },
    { text: 'last', binary: false }
  ]
  for (const inbox of inboxes) t.strictSame(inbox, expected)
})

t.test('bytes sent as text to one socket and as binary to another arrive as each was sent', async (t) => {
  const { sockets: [a, b], inboxes: [toA, toB], close } = await serverWith(2)
  t.teardown(close)
  if (a === undefined || b === undefined || toA === undefined || toB === undefined) throw new Error('fixture')
  const bytes = Buffer.from('same bytes')
  a.sendShared(bytes, false)
  b.sendShared(bytes, true)
  a.sendShared(bytes, false)
  await until('two messages to A and one to B', () => toA.length === 2 && toB.length === 1, { describe: () => [toA.length, toB.length] })
  t.strictSame(toA, [{ text: 'same bytes', binary: false }, { text: 'same bytes', binary: false }])
  t.strictSame(toB, [{ text: 'same bytes', binary: true }])
})

t.test('the frame is built once: every socket writes the very same buffer, in one write', async (t) => {
  const { sockets, inboxes, close } = await serverWith(3)
  t.teardown(close)
  const writes = sockets.map(tapWrites)
  const bytes = Buffer.from('{"type":"positions","t":1,"p":[]}')
  for (const socket of sockets) socket.sendShared(bytes, false)
  await until('one message on each socket', () => inboxes.every((inbox) => inbox.length === 1), { describe: () => inboxes.map((inbox) => inbox.length) })
  t.strictSame(writes.map((written) => written.length), [1, 1, 1], 'header and payload in one write')
  const [first] = writes[0] ?? []
  t.ok(first instanceof Buffer && writes.every(([chunk]) => chunk === first), 'the same buffer for every socket')
})

t.test('with permessage-deflate negotiated, shared bytes go through ws\'s own send, in order', async (t) => {
  const { sockets: [socket], inboxes: [inbox], close } = await serverWith(1, true)
  t.teardown(close)
  if (socket === undefined || inbox === undefined) throw new Error('fixture')
  t.match(socket.extensions, /permessage-deflate/, 'compression negotiated')
  socket.send('first '.repeat(100))
  socket.sendShared(Buffer.from('shared'), false)
  socket.send('last')
  await until('three messages', () => inbox.length === 3, { describe: () => inbox.length })
  t.strictSame(inbox.map((message) => message.text), ['first '.repeat(100), 'shared', 'last'])
})

t.test('a frame of one socket\'s own is one write, at every length encoding, in order with plain and shared sends', async (t) => {
  const { sockets: [socket], inboxes: [inbox], close } = await serverWith(1)
  t.teardown(close)
  if (socket === undefined || inbox === undefined) throw new Error('fixture')
  const writes = tapWrites(socket)
  // Payload lengths at each boundary of the header's length field (7 bits, 16 bits, 64 bits).
  const lengths = [0, 1, 125, 126, 65_535, 65_536, 70_000]
  const payloads = lengths.map((length, i) => Buffer.alloc(length, 0x61 + i))
  socket.send('first')
  const before = writes.length
  for (const [i, payload] of payloads.entries()) socket.sendOwn(payload, i % 2 === 1)
  t.equal(writes.length - before, lengths.length, 'one write per frame, header and payload together')
  // Text is encoded into the frame: its length is its UTF-8 length (62 × 2 bytes crosses 125), not its string length.
  const texts = ['{"type":"positions"}', 'é'.repeat(62), 'ü'.repeat(40_000)]
  for (const text of texts) socket.sendOwn(text, false)
  socket.sendShared(Buffer.from('shared'), false)
  socket.send('last')
  await until('every message sent', () => inbox.length === lengths.length + texts.length + 3, { describe: () => inbox.length })
  t.strictSame(inbox, [
    { text: 'first', binary: false },
    ...payloads.map((payload, i) => ({ text: payload.toString(), binary: i % 2 === 1 })),
    ...texts.map((text) => ({ text, binary: false })),
    { text: 'shared', binary: false },
    { text: 'last', binary: false }
  ], 'every message whole, as text or binary as sent, in order')
})

t.test('a frame of its own sent while ws is busy goes through ws\'s own send, in order', async (t) => {
  const { sockets: [socket], inboxes: [inbox], close } = await serverWith(1, true)
  t.teardown(close)
  if (socket === undefined || inbox === undefined) throw new Error('fixture')
  // With compression, ws queues each send behind the deflate of the one before.
  socket.send('first '.repeat(100))
  socket.sendOwn(Buffer.from('own'), false)
  socket.sendOwn(Uint8Array.of(1, 2, 3), true)
  socket.send('last')
  await until('four messages', () => inbox.length === 4, { describe: () => inbox.length })
  t.strictSame(inbox, [
    { text: 'first '.repeat(100), binary: false },
    { text: 'own', binary: false },
    { text: Buffer.from([1, 2, 3]).toString(), binary: true },
    { text: 'last', binary: false }
  ])
})
