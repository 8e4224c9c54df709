import type { Redis } from 'ioredis';
import type { RedisConfig } from '../config.js';
import type { Logger } from './logger.js';
import { createRedis } from './redis.js';

type Handler = (message: unknown) => void;

/**
 * Redis pub/sub across every process. A subscriber connection cannot run other commands, so it is
 * its own client; publishing goes through the shared app client. After the subscriber reconnects,
 * messages sent while it was away are gone: `onResubscribed` lets a consumer (the JWT cache) drop
 * what it can no longer trust.
 */
export class PubSub {
  private readonly subscriber: Redis;
  private readonly handlers = new Map<string, Set<Handler>>();
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
      if (this.connectedOnce) for (const listener of this.resubscribedListeners) listener();
      this.connectedOnce = true;
    });
    this.subscriber.on('message', (channel: string, raw: string) => {
      let message: unknown;
      try {
        message = JSON.parse(raw);
      } catch {
        logger.warn({ channel }, 'ignored a pub/sub message that is not JSON');
        return;
      }
      for (const handler of this.handlers.get(channel) ?? []) handler(message);
    });
  }

  async subscribe(channel: string, handler: Handler): Promise<() => Promise<void>> {
    let set = this.handlers.get(channel);
    if (!set) {
      set = new Set();
      this.handlers.set(channel, set);
      await this.subscriber.subscribe(channel);
    }
    set.add(handler);
    return async () => {
      set.delete(handler);
      if (set.size === 0 && this.handlers.get(channel) === set) {
        this.handlers.delete(channel);
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

  onResubscribed(listener: () => void): void {
    this.resubscribedListeners.push(listener);
  }

  async close(): Promise<void> {
    await this.subscriber.quit().catch(() => this.subscriber.disconnect());
  }
}
