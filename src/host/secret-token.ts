/** A shared secret (ADMIN_TOKEN, METRICS_TOKEN) checked in constant time. */
import { createHash, timingSafeEqual } from 'node:crypto'

const digest = (secret: string): Buffer => createHash('sha256').update(secret).digest()

/** Whether what a request presents is `token`: hashes of equal length, so the comparison takes the same time whatever was sent. */
export function tokenMatcher (token: string): (given: string) => boolean {
  const expected = digest(token)
  return (given) => timingSafeEqual(digest(given), expected)
}
