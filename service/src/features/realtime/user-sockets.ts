import type { Redis } from 'ioredis';
import type { Breaker } from '../../platform/breakers.js';

const userKey = (userId: string) => `parley:ws:user:${userId}`;

// Prunes the user's lapsed sockets, then adds this one if the user is under the limit; one step,
// so two processes admitting the user's last socket at once cannot both succeed.
const ADMIT = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
`;

/**
 * How many sockets each user has open, across every API process: a sorted set per user of socket
 * ids scored by when their registration lapses (the set itself outlives the latest by a lease). Each process renews its sockets on every heartbeat,
 * so the sockets of a process that died lapse within `leaseMs` instead of counting for ever.
 */
export function userSockets(redis: Redis, breaker: Breaker, limit: number, leaseMs: number) {
  return {
    /** Registers the socket; false when the user already has `limit` open. */
    async admit(userId: string, socketId: string): Promise<boolean> {
      const now = Date.now();
      const admitted = await breaker.run(() =>
        redis.eval(ADMIT, 1, userKey(userId), socketId, now, now + leaseMs, limit, 2 * leaseMs),
      );
      return admitted === 1;
    },

    /** Extends the lease of these sockets (one write for all of them). */
    async renew(sockets: { userId: string; socketId: string }[]): Promise<void> {
      if (sockets.length === 0) return;
      const until = Date.now() + leaseMs;
      const pipeline = redis.pipeline();
      for (const { userId, socketId } of sockets) {
        pipeline.zadd(userKey(userId), 'XX', until, socketId).pexpire(userKey(userId), 2 * leaseMs);
      }
      await breaker.run(() => pipeline.exec());
    },

    async release(userId: string, socketId: string): Promise<void> {
      await breaker.run(() => redis.zrem(userKey(userId), socketId));
    },
  };
}

export type UserSockets = ReturnType<typeof userSockets>;
