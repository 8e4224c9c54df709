import type { Redis } from 'ioredis';
import type { RedisConfig } from '../config.js';
import type { Logger } from './logger.js';
import { createRedis } from './redis.js';

type Handler = (message: unknown) => void;

interface Channel {
  handlers: Set<Handler>;
  /** Settles once Redis has confirmed the SUBSCRIBE: messages published after it arrive. */
  subscribed: Promise<void>;
}

/**
 * Redis pub/sub across every process. A subscriber connection cannot run other commands, so it is
 * its own client; publishing goes through the shared app client. A channel is subscribed while it
 * has a handler, once however many there are (the first SUBSCRIBE is awaited by all of them), and
 * unsubscribed with the last. After the subscriber reconnects (ioredis subscribes again), messages
 * sent while it was away are gone: `onResubscribed` lets a consumer recover once its channels
 * receive again (the JWT cache drops what it can no longer trust, live delivery catches up from
 * MySQL).
 */
export class PubSub {
  private readonly subscriber: Redis;
  private readonly channels = new Map<string, Channel>();
  private readonly resubscribedListeners: (() => void)[] = [];
  private connectedOnce = false;

  constructor(
    config: RedisConfig,
    private readonly publisher: Redis,
    private readonly logger: Logger,
  ) {
    this.subscriber = createRedis(config, 'subscriber');
    this.subscriber.on('error', (error) => logger.warn({ err: error }, 'redis subscriber error'));
    this.subscriber.on('ready', () => {
      if (this.connectedOnce) {
        logger.warn({ channels: this.channels.size }, 'redis subscriber reconnected');
        // Once every channel receives again, the listeners run (they catch up on what was missed).
        const channels = [...this.channels.keys()];
        const resubscribed = channels.length > 0 ? this.subscriber.subscribe(...channels) : Promise.resolve();
        resubscribed.then(
          () => {
            for (const listener of this.resubscribedListeners) listener();
          },
          () => undefined, // dropped again: the next 'ready' subscribes and runs them
        );
      }
      this.connectedOnce = true;
    });
    this.subscriber.on('message', (channel: string, raw: string) => {
      const handlers = this.channels.get(channel)?.handlers;
      if (!handlers) return;
      let message: unknown;
      try {
        message = JSON.parse(raw);
      } catch {
        logger.warn({ channel }, 'ignored a pub/sub message that is not JSON');
        return;
      }
      for (const handler of handlers) handler(message);
    });
  }

  /** Resolves once messages published on `channel` from now on reach `handler`; returns its unsubscribe. */
  async subscribe(channel: string, handler: Handler): Promise<() => Promise<void>> {
    let entry = this.channels.get(channel);
    if (!entry) {
      const subscribed = this.subscriber.subscribe(channel).then(() => undefined);
      entry = { handlers: new Set(), subscribed };
      this.channels.set(channel, entry);
      // A failed SUBSCRIBE must not leave a channel that later callers would trust.
      subscribed.catch(() => {
        if (this.channels.get(channel) === entry) this.channels.delete(channel);
      });
    }
    entry.handlers.add(handler);
    try {
      await entry.subscribed;
    } catch (error) {
      entry.handlers.delete(handler);
      throw error;
    }
    const subscribedEntry = entry;
    return async () => {
      subscribedEntry.handlers.delete(handler);
      if (subscribedEntry.handlers.size === 0 && this.channels.get(channel) === subscribedEntry) {
        this.channels.delete(channel);
        // Commands run in order on the connection: a SUBSCRIBE issued after this by a new first
        // handler is processed after the UNSUBSCRIBE, so the channel ends up subscribed.
        await this.subscriber.unsubscribe(channel);
      }
    };
  }

  async publish(channel: string, message: unknown): Promise<number> {
    return this.publisher.publish(channel, JSON.stringify(message));
  }

  /** False while the subscriber is away: messages published now will never arrive here. */
  get connected(): boolean {
    return this.subscriber.status === 'ready';
  }

  /** Channels this process is subscribed to (or subscribing), e.g. for a gauge. */
  get channelCount(): number {
    return this.channels.size;
  }

  onResubscribed(listener: () => void): void {
    this.resubscribedListeners.push(listener);
  }

  async close(): Promise<void> {
    await this.subscriber.quit().catch(() => this.subscriber.disconnect());
  }
}
