/** pino options shared by the standalone server and tests: secrets are never written to a log. */
import type { LoggerOptions } from 'pino'

export const REDACTED_PATHS = [
  'secret',
  '*.secret',
  'msg.secret',
  'message.secret',
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["sec-websocket-protocol"]'
]

export function loggerOptions (level: string): LoggerOptions {
  return { level, redact: { paths: REDACTED_PATHS, censor: '[redacted]' } }
}
