// The HTTP API's shapes, as its OpenAPI document (/openapi.json) describes them. Message is the
// server's own schema; the others are declared in routes.ts files beside server-only code, so they
// are restated here as types.
export type { Message } from '../features/messages/message.js';

export interface TokenPair {
  accessToken: string;
  refreshToken: string;
  tokenType: 'Bearer';
  /** Access token lifetime in seconds. */
  expiresIn: number;
}

export interface User {
  id: string;
  username: string;
  createdAt: string;
}

export type Visibility = 'public' | 'private';

export interface RoomSummary {
  id: string;
  name: string;
  visibility: Visibility;
  ownerId: string;
  createdAt: string;
}

export interface Room extends RoomSummary {
  memberCount: number;
  isMember: boolean;
}

/** A page, newest first; `nextBefore` is the cursor for the next (older) page, null at the end. */
export interface Page<T> {
  items: T[];
  nextBefore: string | null;
}

export interface RealtimeTicket {
  ticket: string;
  /** Seconds until an unused ticket lapses. */
  expiresIn: number;
  /** The subprotocols to offer when opening the socket. */
  protocols: string[];
}
