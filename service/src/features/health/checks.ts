import type { Redis } from 'ioredis';
import type { Database } from '../../platform/mysql.js';
import type { DependencyCheck } from './readiness.js';

/**
 * The MySQL primary and Redis must answer once before the first readiness (see createReadiness);
 * a replica need not, because reads fall back to the primary.
 */
export function dependencyChecks(db: Database, redis: Redis): DependencyCheck[] {
  return [
    { name: 'mysql-primary', required: true, check: (timeoutMs) => db.ping('primary', timeoutMs) },
    ...(db.hasReplica
      ? [
          {
            name: 'mysql-replica',
            required: false,
            check: (timeoutMs: number) => db.ping('replica', timeoutMs),
          },
        ]
      : []),
    {
      name: 'redis',
      required: true,
      check: async () => {
        // A client that is reconnecting would queue the PING; readiness wants a fresh answer.
        if (redis.status !== 'ready') throw new Error(`redis connection is ${redis.status}`);
        await redis.ping();
      },
    },
  ];
}
