/**
 * HTTP from tests. Each reply's body is read to its end before the test sees it: a body
 * left unread keeps its keep-alive connection busy, and the server's close() would wait
 * on it. Lint keeps the global `fetch` out of the other test files.
 */

export interface Reply {
  status: number
  headers: Headers
  /** The whole body, as text. */
  body: string
}

/** How long one request may take, its body included, before it fails naming the request. */
const REQUEST_TIMEOUT_MS = 10_000

/** One request, its body read in full. */
export async function request (url: string | URL, init: RequestInit = {}): Promise<Reply> {
  const timeout = AbortSignal.timeout(REQUEST_TIMEOUT_MS)
  const signal = init.signal == null ? timeout : AbortSignal.any([init.signal, timeout])
  try {
    const response = await fetch(url, { ...init, signal })
    return { status: response.status, headers: response.headers, body: await response.text() }
  } catch (err) {
    if (!timeout.aborted) throw err
    throw new Error(`waited ${REQUEST_TIMEOUT_MS} ms for ${init.method ?? 'GET'} ${String(url)} and its body`, { cause: err })
  }
}

/** The status of one request (its body read and dropped). */
export async function statusOf (url: string | URL, init: RequestInit = {}): Promise<number> {
  return (await request(url, init)).status
}

/** One request whose body is JSON, parsed. */
export async function requestJson<T> (url: string | URL, init: RequestInit = {}): Promise<Reply & { json: T }> {
  const reply = await request(url, init)
  return { ...reply, json: JSON.parse(reply.body) as T } // the test asserts on its shape
}

/**
 * A response whose body the test reads as it comes (server-sent events). It is
 * cancelled when the test ends, so its connection never outlives the test.
 */
export async function openStream (t: { teardown: (fn: () => unknown) => void }, url: string | URL, init: RequestInit = {}): Promise<Response> {
  const controller = new AbortController()
  t.teardown(() => controller.abort())
  return await fetch(url, { ...init, signal: controller.signal })
}
