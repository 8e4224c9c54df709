import type { WebSocket } from 'ws';
import type { Principal } from '../../domain/principal.js';
import type { Delivery, HubMember, RoomHub } from './hub.js';
import type { RealtimeMetrics } from './metrics.js';
import { CloseCode, type ServerFrame } from './protocol.js';

/** How long a closing socket may take to finish its close handshake before it is cut. */
const CLOSE_HANDSHAKE_MS = 5_000;
// One options object for every send: a fan-out sends the same frame to every socket of a room.
const TEXT = { binary: false } as const;

/**
 * One open socket: what it may still be sent (its unsent bytes are bounded), its subscriptions,
 * and how fast it may send frames. Sending never waits: a socket that cannot keep up is closed with
 * 1013, so it neither grows this process's memory nor delays anyone else's delivery.
 */
export class Connection {
  readonly subscriptions = new Map<string, Subscription>();
  /** Answered the last ping (heartbeat). */
  alive = true;
  private closing = false;
  private frameTokens: number;
  private tokensAt = performance.now();

  constructor(
    readonly ws: WebSocket,
    readonly principal: Principal,
    /** Its id in the per-user count (user-sockets.ts). */
    readonly id: string,
    private readonly limits: { maxBufferedBytes: number; maxFramesPerSecond: number },
    private readonly metrics: RealtimeMetrics,
  ) {
    this.frameTokens = limits.maxFramesPerSecond;
  }

  get userId(): string {
    return this.principal.userId;
  }

  get isOpen(): boolean {
    return !this.closing && this.ws.readyState === this.ws.OPEN;
  }

  send(data: Buffer | string): void {
    if (!this.isOpen) return;
    if (this.ws.bufferedAmount > this.limits.maxBufferedBytes) {
      this.metrics.slowConsumersClosed.inc();
      this.close(CloseCode.TRY_AGAIN_LATER, 'too far behind: reconnect and resume');
      return;
    }
    this.ws.send(data, TEXT);
  }

  sendFrame(frame: ServerFrame): void {
    this.send(JSON.stringify(frame));
  }

  /**
   * One client frame's worth of the budget (a token bucket of `maxFramesPerSecond`, refilled
   * continuously); false once it is spent.
   */
  takeFrameToken(): boolean {
    const now = performance.now();
    const rate = this.limits.maxFramesPerSecond;
    this.frameTokens = Math.min(rate, this.frameTokens + ((now - this.tokensAt) / 1000) * rate);
    this.tokensAt = now;
    if (this.frameTokens < 1) return false;
    this.frameTokens--;
    return true;
  }

  /** Starts the close handshake; a peer that does not answer it is cut after a few seconds. */
  close(code: number, reason: string): void {
    if (this.closing) return;
    this.closing = true;
    this.ws.close(code, reason);
    setTimeout(() => this.ws.terminate(), CLOSE_HANDSHAKE_MS).unref();
  }
}

/**
 * A connection's subscription to one room. It exists from the subscribe frame on (so that a close,
 * an unsubscribe or a second subscribe can end it while it waits for its hub); once attached to its
 * room's hub it buffers what the hub delivers while the messages it missed are read from MySQL;
 * then it sends the replay, and the buffered events that the replay did not already hold, in seq
 * order, and everything after as it comes.
 */
export class Subscription implements HubMember {
  private buffered: Delivery[] | undefined = [];
  /** The seq of the last message this socket has (or was told to reload); later ones are sent. */
  private lastSeq = 0;
  hub: RoomHub | undefined;
  ended = false;

  constructor(
    readonly connection: Connection,
    readonly roomId: string,
    private readonly onEnd: (subscription: Subscription) => void,
  ) {}

  get userId(): string {
    return this.connection.userId;
  }

  /** Joins the room's hub: every message after the last one it delivered reaches this socket. */
  attach(hub: RoomHub): void {
    this.hub = hub;
    this.lastSeq = hub.deliveredSeq;
    hub.members.add(this);
  }

  /** The seq the live stream starts after: the last one replayed, or where the hub stood. */
  get position(): number {
    return this.lastSeq;
  }

  receive(delivery: Delivery): void {
    if (this.ended) return;
    if (this.buffered) this.buffered.push(delivery);
    else this.send(delivery);
  }

  /**
   * Goes live: `replay` (the missed messages, in seq order, read after the hub started delivering
   * here) is sent first; from `replayedUpTo` on, buffered and later events follow.
   */
  goLive(replayedUpTo: number | undefined, replay: Delivery[]): void {
    if (this.ended) return;
    if (replayedUpTo !== undefined) this.lastSeq = replayedUpTo;
    for (const delivery of replay) this.connection.send(delivery.frame);
    const buffered = this.buffered ?? [];
    this.buffered = undefined;
    for (const delivery of buffered) this.send(delivery);
  }

  private send(delivery: Delivery): void {
    if (delivery.seq !== undefined) {
      if (delivery.seq <= this.lastSeq) return; // replayed already
      this.lastSeq = delivery.seq;
    }
    this.connection.send(delivery.frame);
    if (delivery.endsSubscriptionsOf === this.userId) this.onEnd(this);
  }
}
