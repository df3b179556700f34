/**
 * WebSocket close codes of the contract, as server and client both use them.
 * No Node imports: the browser client shares this file.
 */
export const CloseCode = {
  /** The session ended for good (`leave`, or the server disconnected the user): do not come back with its secret. */
  ended: 1000,
  /** Policy: the connection kept breaking the rate limit. */
  policy: 1008,
  /** An inbound frame was larger than `maxPayload`. */
  tooBig: 1009,
  /** The server is restarting or draining: reconnect at once, to another instance if there is one. */
  restarting: 1012,
  /** The client read too slowly and fell hopelessly behind. */
  tooSlow: 1013,
  /** The client's own: register/reconnect was refused for now (`rate_limited`); retry after a backoff. */
  retry: 4000,
  /** The same user connected elsewhere (another tab, another node): do not reconnect. */
  replaced: 4001,
  /** The host's `authenticate` refused the credentials: do not retry with the same ones (as HTTP 401, after graphql-ws). */
  unauthorized: 4401,
  /** The host refused this identity (as HTTP 403): do not retry. */
  forbidden: 4403,
  /** A hook of the host failed while deciding: retry after a backoff. */
  serverError: 1011
} as const
