import type { ChainableCommander, Redis } from 'ioredis';
import type { Breaker } from './breakers.js';

/**
 * Commands that several steps of one request add, sent to Redis together by `send` as one ioredis
 * pipeline: one socket write and one wait for all of them, however the steps that add them are
 * ordered or awaited. Nothing is sent before `send`.
 */
export class RedisWrite {
  readonly commands: ChainableCommander;

  constructor(
    redis: Redis,
    private readonly breaker: Breaker,
  ) {
    this.commands = redis.pipeline();
  }

  /**
   * Resolves once Redis has answered every command, with the first failure (of Redis, or of one
   * command) or undefined. It never rejects: what to do about a lost write is the caller's call.
   */
  async send(): Promise<Error | undefined> {
    if (this.commands.length === 0) return undefined;
    try {
      const replies = await this.breaker.run(() => this.commands.exec());
      return replies?.find(([error]) => error !== null)?.[0] ?? undefined;
    } catch (error) {
      return error instanceof Error ? error : new Error(String(error));
    }
  }
}
