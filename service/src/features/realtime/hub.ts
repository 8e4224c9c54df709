import type { Logger } from '../../platform/logger.js';
import type { PubSub } from '../../platform/pubsub.js';
import type { MessagesRepository, Sequenced } from '../messages/repository.js';
import { roomChannel, type RoomEvent } from '../rooms/events.js';
import type { RealtimeMetrics } from './metrics.js';
import type { ServerFrame } from './protocol.js';

/** One event as every subscription of a room receives it: the frame is serialized once for all. */
export interface Delivery {
  /** The message's seq in the room, for message.created: subscriptions skip what they have. */
  seq?: number;
  frame: Buffer;
  /** When the message was committed (ms since the epoch), for the fan-out histogram. */
  committedAt?: number;
  /** member.left of this user: the last frame of that user's subscriptions to the room. */
  endsSubscriptionsOf?: string;
}

/** A socket's subscription to a room, as its hub sees it. */
export interface HubMember {
  readonly userId: string;
  receive(delivery: Delivery): void;
}

export interface HubOptions {
  pubsub: PubSub;
  repository: Pick<MessagesRepository, 'lastSeq' | 'fromSeq'>;
  metrics: RealtimeMetrics;
  logger: Logger;
  instanceId: string;
  /** How long an event that arrived ahead of its predecessor waits for it before MySQL is asked. */
  gapWaitMs: number;
  /** How many missed messages a catch-up reads at most; beyond, the members are told to resync. */
  maxCatchUp: number;
  /** How long subscribing to the room's channel may take before the subscription fails. */
  subscribeTimeoutMs: number;
}

const frameOf = (frame: ServerFrame) => Buffer.from(JSON.stringify(frame));

/** A stored message as a delivery: a replay, or a gap filled from MySQL. */
export function messageDelivery({ message, seq }: Sequenced, origin: string): Delivery {
  return { seq, frame: frameOf({ type: 'message.created', roomId: message.roomId, message, origin }) };
}

/**
 * Everything this process delivers of one room, in the room's order. The room's channel is
 * subscribed while a local socket is in the room. Message events carry their seq (gapless, in
 * commit order): the hub delivers seq n only after n - 1, holds one that arrives early, and fills a
 * gap that lasts (a publish that was late or lost, events missed while the Redis subscriber was
 * away) from MySQL, where every seq below one that was published is committed. So every member
 * gets each message once, in order, whatever became of its event.
 */
export class RoomHub {
  readonly members = new Set<HubMember>();
  /** The next seq to deliver; 0 until the hub knows where the room stands. */
  private nextSeq = 0;
  private readonly early = new Map<number, Delivery>();
  private gapTimer: NodeJS.Timeout | undefined;
  private catchingUp: Promise<void> | undefined;
  private unsubscribe: (() => Promise<void>) | undefined;
  private closed = false;

  constructor(
    readonly roomId: string,
    private readonly options: HubOptions,
  ) {}

  /** Subscribes to the room's channel, then reads where the room stands: nothing falls between. */
  async start(): Promise<void> {
    const { pubsub, subscribeTimeoutMs } = this.options;
    let timer: NodeJS.Timeout | undefined;
    const subscribing = pubsub.subscribe(roomChannel(this.roomId), (event) =>
      this.onEvent(event as RoomEvent),
    );
    try {
      this.unsubscribe = await Promise.race([
        subscribing,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`no Redis subscription within ${subscribeTimeoutMs} ms`)),
            subscribeTimeoutMs,
          );
        }),
      ]);
    } catch (error) {
      // If the SUBSCRIBE completes later, let go of it.
      void subscribing.then(
        (unsubscribe) => unsubscribe(),
        () => undefined,
      );
      throw error;
    } finally {
      clearTimeout(timer);
    }
    this.nextSeq = (await this.options.repository.lastSeq(this.roomId)) + 1;
    this.release();
  }

  /** The seq of the last message delivered: a member joining now gets every later one live. */
  get deliveredSeq(): number {
    return this.nextSeq - 1;
  }

  /**
   * Events published while the Redis subscriber was away are lost. The messages are in MySQL: they
   * are read and delivered in order; then the members are told (resync, connection-lost) that the
   * room's other events of that moment (joins, leaves, leaderboard changes) may have been missed.
   */
  recover(): void {
    if (this.nextSeq === 0) return;
    void this.catchUp().then(() => {
      if (this.closed) return;
      this.deliver({ frame: frameOf({ type: 'resync', roomId: this.roomId, reason: 'connection-lost' }) });
      this.options.metrics.resyncs.inc({ reason: 'connection-lost' }, this.members.size);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.gapTimer);
    this.members.clear();
    await this.unsubscribe?.();
  }

  private onEvent(event: RoomEvent): void {
    if (this.closed || event.roomId !== this.roomId) return;
    const origin = (event as { origin?: string }).origin ?? 'unknown';
    const committedAt = Date.parse((event as { at?: string }).at ?? '') || undefined;
    if (event.type === 'message.created') {
      if (!Number.isSafeInteger(event.seq) || event.seq < this.nextSeq) return; // delivered already
      this.early.set(event.seq, {
        seq: event.seq,
        frame: frameOf({ type: 'message.created', roomId: this.roomId, message: event.message, origin }),
        committedAt,
      });
      if (this.nextSeq > 0) this.release();
      return;
    }
    if (event.type === 'leaderboard.updated') {
      this.deliver({
        frame: frameOf({ type: event.type, roomId: this.roomId, period: event.period, origin }),
      });
      return;
    }
    if (event.type !== 'member.joined' && event.type !== 'member.left') return; // a newer publisher's
    const frame = frameOf({ type: event.type, roomId: this.roomId, userId: event.userId, origin });
    this.deliver({ frame, endsSubscriptionsOf: event.type === 'member.left' ? event.userId : undefined });
  }

  /** Delivers every held message that is next in line; asks MySQL for a gap that stays. */
  private release(): void {
    for (const seq of this.early.keys()) if (seq < this.nextSeq) this.early.delete(seq);
    for (let next = this.early.get(this.nextSeq); next; next = this.early.get(this.nextSeq)) {
      this.early.delete(this.nextSeq);
      this.nextSeq++;
      this.deliver(next);
    }
    if (this.early.size === 0) {
      clearTimeout(this.gapTimer);
      this.gapTimer = undefined;
    } else {
      this.gapTimer ??= setTimeout(() => {
        this.gapTimer = undefined;
        void this.catchUp();
      }, this.options.gapWaitMs);
    }
  }

  /** Reads the messages from `nextSeq` on from MySQL (the primary) and delivers them in order. */
  private catchUp(): Promise<void> {
    this.catchingUp ??= this.readMissed().finally(() => {
      this.catchingUp = undefined;
      if (this.early.size > 0 && !this.closed) this.release();
    });
    return this.catchingUp;
  }

  private async readMissed(): Promise<void> {
    const { repository, maxCatchUp, metrics, logger, instanceId } = this.options;
    let missed: Sequenced[];
    try {
      missed = await repository.fromSeq(this.roomId, this.nextSeq, maxCatchUp + 1);
    } catch (error) {
      logger.warn({ err: error, roomId: this.roomId }, 'live delivery cannot read missed messages; retrying');
      await new Promise((resolve) => setTimeout(resolve, 1_000).unref());
      if (!this.closed) void this.catchUp();
      return;
    }
    if (this.closed) return;
    if (missed.length > maxCatchUp) {
      // Too many to push down every socket: skip to the end; each member reloads over HTTP.
      const last = await repository.lastSeq(this.roomId).catch(() => missed.at(-1)!.seq);
      this.nextSeq = Math.max(this.nextSeq, last + 1);
      this.deliver({ frame: frameOf({ type: 'resync', roomId: this.roomId, reason: 'too-far-behind' }) });
      metrics.resyncs.inc({ reason: 'too-far-behind' }, this.members.size);
      return;
    }
    for (const sequenced of missed) {
      if (sequenced.seq !== this.nextSeq) break; // only ever contiguous: every seq below a committed one is
      this.early.delete(sequenced.seq);
      this.nextSeq++;
      metrics.gapsFilled.inc();
      this.deliver(messageDelivery(sequenced, instanceId));
    }
    if (this.early.size > 0 && !this.early.has(this.nextSeq) && missed.length < maxCatchUp) {
      // MySQL has nothing at nextSeq though later events came: the counter went back (a restore,
      // a failover that lost writes). Waiting would stall the room for good; go on from the events.
      const resumeAt = Math.min(...this.early.keys());
      logger.warn(
        { roomId: this.roomId, from: this.nextSeq, to: resumeAt },
        'skipping seqs that MySQL does not have',
      );
      this.nextSeq = resumeAt;
    }
  }

  private deliver(delivery: Delivery): void {
    for (const member of this.members) member.receive(delivery);
    // Once per event, not per socket: from its commit to the last local socket's send.
    if (delivery.committedAt !== undefined && this.members.size > 0)
      this.options.metrics.fanoutSeconds.observe((Date.now() - delivery.committedAt) / 1000);
  }
}

/**
 * The hubs of this process, one per room with a local subscription, shared by its sockets: the
 * room's channel is subscribed when the first socket joins and unsubscribed when the last leaves.
 */
export class Hubs {
  private readonly hubs = new Map<string, { hub: RoomHub; started: Promise<void>; refs: number }>();

  constructor(private readonly options: HubOptions) {
    options.pubsub.onResubscribed(() => {
      for (const { hub } of this.hubs.values()) hub.recover();
    });
  }

  /** The room's hub, started; call `release` once for every `acquire` that resolved. */
  async acquire(roomId: string): Promise<RoomHub> {
    let entry = this.hubs.get(roomId);
    if (!entry) {
      const hub = new RoomHub(roomId, this.options);
      entry = { hub, started: hub.start(), refs: 0 };
      this.hubs.set(roomId, entry);
      this.options.metrics.rooms.set(this.hubs.size);
    }
    entry.refs++;
    try {
      await entry.started;
    } catch (error) {
      this.release(entry.hub);
      throw error;
    }
    return entry.hub;
  }

  release(hub: RoomHub): void {
    const entry = this.hubs.get(hub.roomId);
    if (!entry || entry.hub !== hub || --entry.refs > 0) return;
    this.hubs.delete(hub.roomId);
    this.options.metrics.rooms.set(this.hubs.size);
    void hub
      .close()
      .catch((error: unknown) =>
        this.options.logger.warn({ err: error, roomId: hub.roomId }, 'unsubscribing a room failed'),
      );
  }

  get size(): number {
    return this.hubs.size;
  }
}
