/** Session secrets: 32 random bytes, base64url; only their SHA-256 is ever stored. */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'

export function newSecret (): string {
  return randomBytes(32).toString('base64url')
}

export function hashSecret (secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('base64url')
}

/**
 * Constant-time comparison of two hashes. Stores look records up by hash (an
 * attacker cannot steer a SHA-256 prefix), and the record found is then verified here.
 */
export function sameHash (a: string, b: string): boolean {
  const left = Buffer.from(a)
  const right = Buffer.from(b)
  return left.length === right.length && timingSafeEqual(left, right)
}
