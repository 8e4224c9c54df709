import type { Config } from '../config.js';
import { createBreakerFactory, type Breaker } from './breakers.js';
import type { Lifecycle } from './lifecycle.js';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';
import { createDatabase, isConnectionError, type Database } from './mysql.js';
import { createRedis } from './redis.js';
import type { Redis } from 'ioredis';

export interface Dependencies {
  db: Database;
  redis: Redis;
  breakers: { primary: Breaker; replica: Breaker; redis: Breaker };
}

/**
 * Opens the connections both processes share and registers their close with the lifecycle, so
 * they close after the servers that use them have drained.
 */
export function openDependencies(
  config: Config,
  logger: Logger,
  metrics: Metrics,
  lifecycle: Lifecycle,
): Dependencies {
  const createBreaker = createBreakerFactory(metrics.registry, logger);
  const breakers = {
    primary: createBreaker('mysql-primary', {
      timeoutMs: 5_000,
      openMs: 5_000,
      isFailure: isConnectionError,
    }),
    replica: createBreaker('mysql-replica', {
      timeoutMs: 2_000,
      openMs: 5_000,
      isFailure: isConnectionError,
    }),
    redis: createBreaker('redis', { timeoutMs: 1_000, openMs: 3_000, isFailure: () => true }),
  };
  // Debug, not warn: during an outage this fires on every read; circuit_breaker_state shows it.
  const db = createDatabase(config.mysql, breakers, (error) =>
    logger.debug({ err: error }, 'replica unavailable; read served by the primary'),
  );
  lifecycle.register('mysql', () => db.close());

  const redis = createRedis(config.redis, 'app');
  redis.on('error', (error) => logger.warn({ err: error }, 'redis connection error'));
  lifecycle.register('redis', () => redis.quit().catch(() => redis.disconnect()));
  return { db, redis, breakers };
}
