import { ServerFrame, SubscribeFrame, type ClientFrame } from '../features/realtime/protocol.js';
import { backoffDelayMs, type Backoff } from './backoff.js';
import { TypedEvents } from './events.js';
import { FramePacer } from './frame-pacer.js';
import { ParleyError } from './problem.js';
import { DEFAULT_RECONNECT, planReconnect } from './reconnect.js';
import { RoomSubscription, type RoomLink } from './room-subscription.js';
import type { RealtimeTicket } from './types.js';
import type { WebSocketConstructor, WebSocketLike } from './web-socket.js';

export type ConnectionState = 'connecting' | 'live' | 'reconnecting' | 'closed';

export interface LiveEvents {
  /** The state changed; `code` and `reason` say how the socket before it closed. */
  state: { state: ConnectionState; code?: number; reason?: string };
  /**
   * Something the connection cannot mend by reconnecting: a frame that breaks the protocol, or
   * credentials that no longer refresh (a ParleyError; the connection then closes for good).
   */
  error: Error;
}

export interface LiveOptions {
  /** The reconnect backoff: 500 ms doubling up to 30 s by default, jittered. */
  reconnect?: Partial<Backoff>;
  /**
   * Client frames a second at most. Half the server's default limit (20), so that frames bunched
   * on the way still find the server's bucket with room to spare.
   */
  maxFramesPerSecond?: number;
}

/** What a live connection needs from the ParleyClient that opened it. */
export interface LiveSession {
  readonly url: string;
  readonly WebSocket: WebSocketConstructor;
  accessToken(): string | undefined;
  userId(): string | undefined;
  createTicket(): Promise<RealtimeTicket>;
  /** Refreshes the access token, unless it was already replaced since `used` was sent. */
  refreshUnlessReplaced(used: string | undefined): Promise<void>;
  forget(connection: LiveConnection): void;
}

/** A connection that has stayed open this long is healthy: the next failure starts backing off anew. */
const STABLE_AFTER_MS = 10_000;
/** A socket that never reported `open` never reached the gateway; this long and it is abandoned. */
const OPEN_TIMEOUT_MS = 15_000;

/**
 * The live connection: one WebSocket at a time, reopened whenever it closes until `close()`, with
 * every room resubscribed from the last message it delivered, so each room's messages arrive
 * exactly once and in order across reconnects.
 */
export class LiveConnection extends TypedEvents<LiveEvents> {
  private current: ConnectionState = 'connecting';
  private socket: WebSocketLike | undefined;
  private pacer: FramePacer | undefined;
  private readonly rooms = new Map<string, RoomSubscription>();
  private attempt = 0;
  private openedAt: number | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly backoff: Backoff;
  private readonly framesPerSecond: number;

  constructor(
    private readonly session: LiveSession,
    options: LiveOptions = {},
  ) {
    super();
    this.backoff = { ...DEFAULT_RECONNECT, ...options.reconnect };
    this.framesPerSecond = options.maxFramesPerSecond ?? 10;
    void this.connect();
  }

  get state(): ConnectionState {
    return this.current;
  }

  /**
   * The room's events from `after` on (the id of the last message the caller has; its later ones
   * are replayed first), or from now. Subscribing again to a room returns the same subscription;
   * with `after`, it reads again from there, and what it delivered already is not delivered twice.
   */
  subscribe(roomId: string, options: { after?: string } = {}): RoomSubscription {
    if (this.current === 'closed') throw new Error('the live connection is closed: open another with live()');
    // Validated here, where the caller sees the mistake, rather than as an error frame later.
    const { after } = SubscribeFrame.parse({ type: 'subscribe', roomId, after: options.after });
    const existing = this.rooms.get(roomId);
    if (existing) {
      if (after !== undefined) existing.resubscribe(after);
      return existing;
    }
    const room = new RoomSubscription(roomId, after, this.roomLink);
    this.rooms.set(roomId, room);
    room.resubscribe();
    return room;
  }

  /** Closes the connection for good. */
  close(): void {
    if (this.current === 'closed') return;
    this.dropSocket(1000, 'client closed');
    this.setState({ state: 'closed' });
    this.session.forget(this);
  }

  private readonly roomLink: RoomLink = {
    subscribe: (room, after) => {
      if (this.rooms.get(room.roomId) === room)
        this.send({ type: 'subscribe', roomId: room.roomId, ...(after === undefined ? {} : { after }) });
    },
    unsubscribe: (room) => {
      if (this.rooms.get(room.roomId) !== room) return;
      this.rooms.delete(room.roomId);
      this.send({ type: 'unsubscribe', roomId: room.roomId });
    },
    forget: (room) => {
      if (this.rooms.get(room.roomId) === room) this.rooms.delete(room.roomId);
    },
    userId: () => this.session.userId(),
    retryDelayMs: (attempt) => backoffDelayMs(attempt, this.backoff),
  };

  /** Sent on the open socket; a frame for a socket that is not open is not needed: open resubscribes. */
  private send(frame: ClientFrame): void {
    if (this.current === 'live') this.pacer?.push(JSON.stringify(frame));
  }

  private async connect(): Promise<void> {
    let ticket: RealtimeTicket;
    const token = this.session.accessToken();
    try {
      ticket = await this.session.createTicket();
    } catch (error) {
      if (this.current === 'closed') return;
      // A 401 here has been through a refresh already: the session is over.
      if (error instanceof ParleyError && error.status === 401) return this.fail(error);
      const retryAfterMs = error instanceof ParleyError ? (error.retryAfter ?? 0) * 1000 : 0;
      this.retry(Math.max(retryAfterMs, backoffDelayMs(this.attempt++, this.backoff)));
      return;
    }
    if (this.current === 'closed') return;
    let socket: WebSocketLike;
    try {
      socket = new this.session.WebSocket(this.session.url, ticket.protocols);
    } catch (error) {
      return this.fail(error instanceof Error ? error : new Error(String(error)));
    }
    this.socket = socket;
    this.openedAt = undefined;
    socket.addEventListener('open', () => this.onOpen(socket));
    socket.addEventListener('message', (event) => this.onData(socket, event.data));
    socket.addEventListener('close', (event) => void this.onClose(socket, token, event.code, event.reason));
    // Nothing to do here: a failed socket also closes, and its close says what happened. (With the
    // `ws` package, an 'error' without a listener would be thrown.)
    socket.addEventListener('error', () => undefined);
    this.timer = setTimeout(() => {
      if (this.socket === socket && this.openedAt === undefined)
        socket.close(4000, 'no answer to the upgrade');
    }, OPEN_TIMEOUT_MS);
  }

  private onOpen(socket: WebSocketLike): void {
    if (socket !== this.socket) return;
    clearTimeout(this.timer);
    this.openedAt = Date.now();
    this.pacer = new FramePacer(this.framesPerSecond, (data) => socket.send(data));
    this.setState({ state: 'live' });
    for (const room of this.rooms.values()) room.resubscribe();
  }

  private onData(socket: WebSocketLike, data: unknown): void {
    if (socket !== this.socket) return;
    let json: unknown;
    try {
      json = JSON.parse(String(data));
    } catch {
      this.emit(
        'error',
        new Error(`the server sent a frame that is not JSON: ${String(data).slice(0, 200)}`),
      );
      return;
    }
    const parsed = ServerFrame.safeParse(json);
    if (!parsed.success) {
      this.emit('error', new Error(`the server sent a frame outside the protocol: ${parsed.error.message}`));
      return;
    }
    const frame = parsed.data;
    if (frame.type === 'pong') return;
    if (frame.type === 'error' && frame.roomId === undefined) {
      this.emit('error', new Error(`the server refused a frame (${frame.code}): ${frame.detail}`));
      return;
    }
    this.rooms.get(frame.roomId!)?.receive(frame);
  }

  private async onClose(socket: WebSocketLike, token: string | undefined, code: number, reason: string) {
    if (socket !== this.socket) return;
    this.socket = undefined;
    this.pacer?.stop();
    clearTimeout(this.timer);
    if (this.openedAt !== undefined && Date.now() - this.openedAt >= STABLE_AFTER_MS) this.attempt = 0;
    const plan = planReconnect(code, this.attempt++, this.backoff);
    this.setState({ state: 'reconnecting', code, reason });
    if (plan.refreshCredentials) {
      try {
        await this.session.refreshUnlessReplaced(token);
      } catch (error) {
        if (error instanceof ParleyError && error.status === 401) return this.fail(error);
        // Otherwise (network, 5xx) the ticket request refreshes again when it is refused.
      }
    }
    this.retry(plan.delayMs);
  }

  private retry(delayMs: number): void {
    if (this.current === 'closed') return;
    this.setState({ state: 'reconnecting' });
    this.timer = setTimeout(() => void this.connect(), delayMs);
  }

  private fail(error: Error): void {
    if (this.current === 'closed') return;
    this.dropSocket(1000, 'client giving up');
    this.emit('error', error);
    this.setState({ state: 'closed' });
    this.session.forget(this);
  }

  private dropSocket(code: number, reason: string): void {
    clearTimeout(this.timer);
    this.pacer?.stop();
    const socket = this.socket;
    this.socket = undefined;
    socket?.close(code, reason);
  }

  private setState(change: LiveEvents['state']): void {
    if (change.state === this.current && change.code === undefined) return;
    this.current = change.state;
    this.emit('state', change);
  }
}
