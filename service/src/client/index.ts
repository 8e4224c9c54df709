// The typed client of Parley's HTTP API and live protocol, for browsers and Node: no Node built-ins
// (browser-bundle.test.ts bundles it for a browser; tsconfig.json typechecks it without Node's types).
export { ParleyClient, type ParleyClientOptions, type PostOptions } from './parley-client.js';
export {
  LiveConnection,
  type ConnectionState,
  type LiveEvents,
  type LiveOptions,
} from './live-connection.js';
export { RoomSubscription, type RoomEvents } from './room-subscription.js';
export { ParleyError, type Problem } from './problem.js';
export type { WebSocketConstructor, WebSocketLike } from './web-socket.js';
export type * from './types.js';
