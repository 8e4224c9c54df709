import type { z } from 'zod';
import type {
  ErrorCode,
  LeaderboardPeriod,
  ResyncReason,
  ServerFrame,
} from '../features/realtime/protocol.js';
import { TypedEvents } from './events.js';
import type { Message } from './types.js';

export interface RoomEvents {
  /** A message, once, in the room's order; after a reconnect the missed ones come first. */
  message: Message;
  /** The server started (or, after a reconnect, resumed) the room; `replayed` missed messages follow. */
  subscribed: { recovered: boolean; replayed: number };
  'member.joined': { userId: string };
  'member.left': { userId: string };
  /** The room's leaderboard for `period` changed: read it again. */
  'leaderboard.updated': { period: z.infer<typeof LeaderboardPeriod> };
  /**
   * Messages were missed and will not be replayed (`too-far-behind`, `too-old`, `unknown-cursor`):
   * reload the room's history over HTTP, then `subscribe(roomId, { after })` with its newest id.
   * `connection-lost`: the messages were recovered, but other events may have been missed.
   */
  resync: { reason: z.infer<typeof ResyncReason> };
  /** The server refused a frame about this room. */
  error: { code: z.infer<typeof ErrorCode>; detail: string };
  /**
   * The server ended the subscription: this user left the room (`left`), or the room cannot be
   * read or subscribed to (`refused`, after an error event saying why). It is not resumed.
   */
  ended: { reason: 'left' | 'refused' };
}

export type RoomFrame = Exclude<ServerFrame, { type: 'pong' }>;

/** Is message id `a` later than `b`? Ids are digit strings of up to 16 digits, beyond 2^53. */
const isLater = (a: string, b: string) => BigInt(a) > BigInt(b);

/** What a room's subscription needs from its live connection. */
export interface RoomLink {
  /** Sends the subscribe frame now if the socket is open; the connection sends it again on every reconnect. */
  subscribe(room: RoomSubscription, after: string | undefined): void;
  /** Sends an unsubscribe if the socket is open, and forgets the room. */
  unsubscribe(room: RoomSubscription): void;
  /** Forgets a room the server ended itself. */
  forget(room: RoomSubscription): void;
  /** The signed-in user: their own member.left ends the subscription. */
  userId(): string | undefined;
  /** When to retry a subscribe the server could not serve (`unavailable`). */
  retryDelayMs(attempt: number): number;
}

/**
 * One room on a live connection: its events, and the id of the last message it delivered, which
 * is both where a reconnect resumes and what it deduplicates against.
 */
export class RoomSubscription extends TypedEvents<RoomEvents> {
  private lastId: string | undefined;
  private ended = false;
  private unavailableRetries = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    readonly roomId: string,
    after: string | undefined,
    private readonly link: RoomLink,
  ) {
    super();
    this.lastId = after;
  }

  /** The id of the last message delivered (or the `after` it started from): where a resume starts. */
  get lastMessageId(): string | undefined {
    return this.lastId;
  }

  get active(): boolean {
    return !this.ended;
  }

  /** Stops the room's events for good. */
  unsubscribe(): void {
    if (this.ended) return;
    this.end();
    this.link.unsubscribe(this);
  }

  /** @internal Asks the server for the room's events from `after` on (default: where it stands). */
  resubscribe(after: string | undefined = this.lastId): void {
    // An `after` older than what was delivered replays messages this room has: they are dropped.
    if (after !== undefined && (this.lastId === undefined || isLater(after, this.lastId)))
      this.lastId = after;
    this.link.subscribe(this, after);
  }

  /** @internal A frame about this room, from the connection. */
  receive(frame: RoomFrame): void {
    if (this.ended) return;
    switch (frame.type) {
      case 'message.created':
        // A room's ids grow in the order it delivers them (ids are taken under the room's lock,
        // in commit order), so one at or below the last delivered was delivered: one id per
        // room is all the memory exactly-once needs.
        if (this.lastId !== undefined && !isLater(frame.message.id, this.lastId)) return;
        this.lastId = frame.message.id;
        this.emit('message', frame.message);
        return;
      case 'subscribed':
        this.unavailableRetries = 0;
        // With nothing replayed, the live stream starts right after lastMessageId: a resume from
        // there loses nothing even if no message arrives before the next drop. (When messages are
        // replayed they follow, and the last of them becomes the resume point as it is delivered.)
        if (
          frame.replayed === 0 &&
          frame.lastMessageId !== null &&
          (this.lastId === undefined || isLater(frame.lastMessageId, this.lastId))
        )
          this.lastId = frame.lastMessageId;
        this.emit('subscribed', { recovered: frame.recovered, replayed: frame.replayed });
        return;
      case 'member.joined':
        this.emit('member.joined', { userId: frame.userId });
        return;
      case 'member.left':
        this.emit('member.left', { userId: frame.userId });
        // The server sends no more of this room to the user who left.
        if (frame.userId === this.link.userId()) this.endByServer('left');
        return;
      case 'leaderboard.updated':
        this.emit('leaderboard.updated', { period: frame.period });
        return;
      case 'resync':
        this.emit('resync', { reason: frame.reason });
        return;
      case 'error':
        this.emit('error', { code: frame.code, detail: frame.detail });
        if (frame.code === 'unavailable') {
          // The server could not read the room or reach Redis just now, and says to retry.
          this.retryTimer = setTimeout(
            () => this.resubscribe(),
            this.link.retryDelayMs(this.unavailableRetries++),
          );
        } else if (frame.code !== 'bad-frame') {
          this.endByServer('refused'); // not-found, too-many-subscriptions
        }
        return;
    }
  }

  private endByServer(reason: 'left' | 'refused'): void {
    this.end();
    this.link.forget(this);
    this.emit('ended', { reason });
  }

  private end(): void {
    this.ended = true;
    clearTimeout(this.retryTimer);
  }
}
