import * as z from 'zod';
import { MessageCursor, MessageSchema } from '../messages/message.js';

/**
 * The live protocol, version 1: JSON text frames over a WebSocket at `GET /v1/ws`. These schemas are
 * the protocol: the gateway validates client frames with them, the typed client and the tests
 * parse server frames with them, and the AsyncAPI document (`/asyncapi.json`) is generated from
 * them. docs/realtime.md says what each frame means and what is guaranteed.
 */

/** The WebSocket subprotocol that names this version; the server selects it. */
export const PROTOCOL_VERSION = 'parley.v1';

/**
 * A browser cannot set headers on an upgrade, and a URL ends up in proxies' logs: its single-use
 * ticket travels as a second offered subprotocol, `parley.ticket.<ticket>`, never echoed back.
 */
export const TICKET_PROTOCOL_PREFIX = 'parley.ticket.';

export const WS_PATH = '/v1/ws';

/** Close codes the server uses; CLOSE_CODE_MEANINGS says what a client should do on each. */
export const CloseCode = {
  GOING_AWAY: 1001,
  UNSUPPORTED_DATA: 1003,
  INVALID_PAYLOAD: 1007,
  POLICY_VIOLATION: 1008,
  MESSAGE_TOO_BIG: 1009,
  INTERNAL_ERROR: 1011,
  TRY_AGAIN_LATER: 1013,
  CREDENTIALS_EXPIRED: 4401,
} as const;

/** Written as data, not doc comments, so the AsyncAPI document and the docs carry the same words. */
export const CLOSE_CODE_MEANINGS: Record<keyof typeof CloseCode, string> = {
  GOING_AWAY: 'The server is draining: reconnect now (to another pod), resuming each room.',
  UNSUPPORTED_DATA: 'A binary frame was sent: the protocol is JSON text.',
  INVALID_PAYLOAD: 'A text frame was not UTF-8.',
  POLICY_VIOLATION: 'Too many frames per second: slow down before reconnecting.',
  MESSAGE_TOO_BIG: 'A frame was over the size limit.',
  INTERNAL_ERROR: 'The server failed: reconnect with backoff.',
  TRY_AGAIN_LATER: 'This socket read too slowly and fell too far behind: reconnect and resume.',
  CREDENTIALS_EXPIRED:
    'The access token expired or its session was revoked: reconnect with a fresh credential.',
};

const RoomId = z.uuid();
const Origin = z
  .string()
  .meta({ description: 'the instance id of the API process that published the event' });

// Client → server

export const SubscribeFrame = z
  .strictObject({
    type: z.literal('subscribe'),
    roomId: RoomId,
    after: MessageCursor.optional().meta({
      description:
        'the id of the last message the client has; the messages after it are replayed first, in order',
    }),
  })
  .meta({ title: 'subscribe', description: 'Start receiving a room’s events (authorised like reading it).' });

export const UnsubscribeFrame = z
  .strictObject({ type: z.literal('unsubscribe'), roomId: RoomId })
  .meta({ title: 'unsubscribe', description: 'Stop receiving a room’s events.' });

export const PingFrame = z
  .strictObject({ type: z.literal('ping'), id: z.string().max(64).optional() })
  .meta({ title: 'ping', description: 'An application-level ping; answered by pong with the same id.' });

export const ClientFrame = z.discriminatedUnion('type', [SubscribeFrame, UnsubscribeFrame, PingFrame]);
export type ClientFrame = z.infer<typeof ClientFrame>;

// Server → client

export const SubscribedFrame = z
  .strictObject({
    type: z.literal('subscribed'),
    roomId: RoomId,
    recovered: z.boolean().meta({
      description:
        'true when every message after `after` follows (replayed); false without `after` or on resync',
    }),
    replayed: z
      .int()
      .min(0)
      .meta({ description: 'how many message.created frames replay the gap before live ones' }),
    lastMessageId: z.string().nullable().meta({
      description:
        'the last message before the live ones (the last replayed, or the room’s last at subscribe time): resume after it if none arrives before a drop; null in a room with no messages yet',
    }),
  })
  .meta({
    title: 'subscribed',
    description: 'The subscription is live; replayed messages, then live events follow.',
  });

export const MessageCreatedFrame = z
  .strictObject({
    type: z.literal('message.created'),
    roomId: RoomId,
    message: MessageSchema,
    origin: Origin,
  })
  .meta({ title: 'message.created', description: 'A message was posted (or is replayed after a resume).' });

const membership = <T extends 'member.joined' | 'member.left'>(type: T, description: string) =>
  z
    .strictObject({ type: z.literal(type), roomId: RoomId, userId: z.uuid(), origin: Origin })
    .meta({ title: type, description });

export const MemberJoinedFrame = membership('member.joined', 'A user joined the room.');
export const MemberLeftFrame = membership(
  'member.left',
  'A user left the room. When it is the connection’s own user, it is the subscription’s last frame.',
);

export const LeaderboardPeriod = z.enum(['week', 'month', 'all-time']);

export const LeaderboardUpdatedFrame = z
  .strictObject({
    type: z.literal('leaderboard.updated'),
    roomId: RoomId,
    period: LeaderboardPeriod,
    origin: Origin,
  })
  .meta({
    title: 'leaderboard.updated',
    description: 'The room’s leaderboard for a period changed: read it again.',
  });

export const ResyncReason = z.enum(['too-far-behind', 'too-old', 'unknown-cursor', 'connection-lost']);

export const ResyncFrame = z
  .strictObject({ type: z.literal('resync'), roomId: RoomId, reason: ResyncReason })
  .meta({
    title: 'resync',
    description:
      'Live delivery could not give the client everything. too-far-behind, too-old and unknown-cursor (after subscribe): ' +
      'the missed messages are not replayed; reload the room’s history over HTTP. connection-lost: the server’s Redis ' +
      'subscription dropped for a moment; the messages of that moment were recovered and came before this frame, but ' +
      'joins, leaves and leaderboard changes may have been missed: read the room again. Live events go on in every case.',
  });

export const ErrorCode = z.enum(['bad-frame', 'not-found', 'too-many-subscriptions', 'unavailable']);

export const ErrorFrame = z
  .strictObject({
    type: z.literal('error'),
    code: ErrorCode,
    detail: z.string(),
    roomId: RoomId.optional().meta({ description: 'the room of the frame that failed, when it named one' }),
  })
  .meta({ title: 'error', description: 'A client frame was refused; the connection stays open.' });

export const PongFrame = z
  .strictObject({ type: z.literal('pong'), id: z.string().max(64).optional() })
  .meta({ title: 'pong', description: 'The answer to a ping.' });

export const ServerFrame = z.discriminatedUnion('type', [
  SubscribedFrame,
  MessageCreatedFrame,
  MemberJoinedFrame,
  MemberLeftFrame,
  LeaderboardUpdatedFrame,
  ResyncFrame,
  ErrorFrame,
  PongFrame,
]);
export type ServerFrame = z.infer<typeof ServerFrame>;
