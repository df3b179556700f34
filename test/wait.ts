/**
 * Waiting in tests: every wait is on a condition or an event, and its timeout names
 * what it waited for, so a failure says what did not happen rather than "timed out".
 */
/** How often a condition is looked at again. */
const POLL_MS = 10

/** Options of a wait: how long before it fails (generous: a loaded CI machine is slow, a wait that succeeds ends at once). */
export interface WaitOptions { timeoutMs?: number }

/** How long a wait may take before it fails: generous, as a wait that succeeds ends at once. */
export const WAIT_MS = 10_000

/**
 * Resolves once `condition` holds (looked at every 10 ms); rejects after the timeout
 * with `what` and, where `describe` is given, what was there instead.
 */
export async function until (what: string, condition: () => boolean | Promise<boolean>, options: WaitOptions & { describe?: () => unknown } = {}): Promise<void> {
  const timeoutMs = options.timeoutMs ?? WAIT_MS
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await condition()) return
    if (Date.now() >= deadline) {
      const seen = options.describe === undefined ? '' : `; instead: ${JSON.stringify(options.describe())?.slice(0, 500)}`
      throw new Error(`waited ${timeoutMs} ms for ${what}${seen}`)
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS))
  }
}

/** Resolves with the value once `read` returns one that is not undefined. */
export async function valueOf<T> (what: string, read: () => T | undefined | Promise<T | undefined>, options: WaitOptions = {}): Promise<T> {
  let value: T | undefined
  await until(what, async () => (value = await read()) !== undefined, options)
  return value as T // until() returned, so read() gave a value
}

/**
 * Reads until `read` gives a value that `ok` accepts, and returns it. A read that fails
 * is retried (a node in an outage); a failure names `what` and the last value or error read.
 */
export async function valueWhere<T> (what: string, read: () => Promise<T>, ok: (value: T) => boolean, options: WaitOptions = {}): Promise<T> {
  let last: { value: T } | { error: string } | undefined
  await until(what, async () => {
    last = await read().then((value) => ({ value }), (err: Error) => ({ error: err.message }))
    return 'value' in last && ok(last.value)
  }, { ...options, describe: () => last })
  if (last === undefined || !('value' in last)) throw new Error(`no value for ${what}`) // until() returned: ok() accepted a value
  return last.value
}

/** `promise`, or a rejection naming `what` once `timeoutMs` passes. */
export async function within<T> (what: string, promise: Promise<T>, options: WaitOptions = {}): Promise<T> {
  const timeoutMs = options.timeoutMs ?? WAIT_MS
  let timer: ReturnType<typeof setTimeout> | undefined
  const timeout = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`waited ${timeoutMs} ms for ${what}`)), timeoutMs) })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}
