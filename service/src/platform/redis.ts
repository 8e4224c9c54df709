import { Redis, type RedisOptions } from 'ioredis';
import type { RedisConfig } from '../config.js';

/**
 * One factory for every Redis connection. With Sentinel, ioredis asks the Sentinels for the master
 * and reconnects to the new one after a failover; a write that reaches a demoted master gets
 * READONLY, which makes the client reconnect (and so re-resolve) and retry.
 *
 * `purpose: 'bullmq'` follows BullMQ's requirements: maxRetriesPerRequest must be null so a blocked
 * worker waits out an outage instead of crashing.
 */
export function createRedis(
  config: RedisConfig,
  purpose: 'app' | 'subscriber' | 'bullmq',
  name: string = purpose,
): Redis {
  const common: RedisOptions = {
    connectionName: `parley-${name}`,
    maxRetriesPerRequest: purpose === 'app' ? 2 : null,
    connectTimeout: 2_000,
    retryStrategy: (attempt) => Math.min(50 * 2 ** attempt, 2_000),
    reconnectOnError: (error) => (error.message.startsWith('READONLY') ? 2 : false),
    lazyConnect: false,
    // Commands issued in the same tick by concurrent requests go out in one write (measured in
    // docs/benchmarks.md). BullMQ manages its own connections' pipelining.
    enableAutoPipelining: purpose === 'app',
    // PubSub subscribes again itself after a reconnect, handling a SUBSCRIBE that fails (ioredis's
    // own resubscribe leaves that promise unhandled: a reconnect cut short by a close crashed it).
    autoResubscribe: purpose !== 'subscriber',
  };
  // A password in the URL wins; REDIS_PASSWORD(_FILE) keeps it out of the URL (ElastiCache AUTH).
  if (config.kind === 'url')
    return new Redis(config.url, { ...common, ...(config.password ? { password: config.password } : {}) });
  return new Redis({
    ...common,
    sentinels: config.sentinels,
    name: config.masterName,
    role: 'master',
    password: config.password,
    sentinelPassword: config.sentinelPassword,
    sentinelRetryStrategy: (attempt) => Math.min(100 * attempt, 1_000),
    // Subscribes to +switch-master so a failover is noticed at once, not at the next failed command.
    failoverDetector: true,
  });
}
