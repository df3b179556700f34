/** `shoal/client`: the client library for browsers and Node.js. */
export { ShoalClient, ShoalClientError } from './client.js'
export type {
  ConnectionState, RegisterFields, SecretStorage, ShoalClientEvents, ShoalClientOptions, ShoalError, ShoalMessages, MessageMap, Timers,
  WebSocketConstructor, WebSocketLike
} from './client.js'
export { backoffDelay, type BackoffOptions } from './backoff.js'
export { Interpolator, type Point } from './interpolation.js'
export { RoomMirror } from './mirror.js'
export type { CsvMessageT, PositionT, PresenceUpdateT, ServerMessageT, StateT, UserT, WelcomeMessageT } from '../../schemas/protocol.js'
