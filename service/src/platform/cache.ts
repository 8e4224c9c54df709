import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { Counter, type Registry } from 'prom-client';
import type { Breaker } from './breakers.js';

export interface CacheOptions {
  /** How long a loaded value stays cached. Writers also delete it (see `invalidate`). */
  ttlSeconds: number;
  /** How long one loader may hold the stampede lock (its lease, in case it dies). */
  lockMs?: number;
  /** The longest a caller waits for other loaders before loading itself. */
  waitMs?: number;
}

export type CacheOutcome = 'hit' | 'miss' | 'lock_wait' | 'error';

/**
 * Cache-aside in Redis with stampede protection shared by every process: on a miss, one caller
 * takes a short lock (SET NX PX) and loads from MySQL; the others poll for the value it writes.
 * When Redis is unavailable the cache steps aside and every caller loads directly (fail open).
 */
export class Cache {
  private readonly outcomes: Counter<'cache' | 'outcome'>;

  constructor(
    private readonly redis: Redis,
    private readonly breaker: Breaker,
    registry: Registry,
    private readonly prefix = 'parley:cache:',
  ) {
    this.outcomes = new Counter({
      name: 'parley_cache_requests_total',
      help: 'Cache lookups by cache and outcome (hit, miss = this caller loaded, lock_wait, error = Redis unavailable)',
      labelNames: ['cache', 'outcome'] as const,
      registers: [registry],
    });
  }

  async getOrLoad<T>(cache: string, id: string, options: CacheOptions, load: () => Promise<T>): Promise<T> {
    const key = `${this.prefix}${cache}:${id}`;
    let cached: string | null;
    try {
      cached = await this.breaker.run(() => this.redis.get(key));
    } catch {
      this.outcomes.inc({ cache, outcome: 'error' });
      return load();
    }
    if (cached !== null) {
      this.outcomes.inc({ cache, outcome: 'hit' });
      return JSON.parse(cached) as T;
    }

    const token = randomUUID();
    const lockKey = `${key}:lock`;
    const deadline = Date.now() + (options.waitMs ?? 10_000);
    let waited = false;
    for (;;) {
      const locked = await this.breaker
        .run(() => this.redis.set(lockKey, token, 'PX', options.lockMs ?? 3_000, 'NX'))
        .catch(() => null);
      if (locked === 'OK') {
        this.outcomes.inc({ cache, outcome: 'miss' });
        // Renew the lease while loading: on a loaded machine a load can outlast it, and a second
        // loader would then query too. A loader that dies stops renewing and its lock expires.
        const lockMs = options.lockMs ?? 3_000;
        const renew = setInterval(() => {
          void this.breaker
            .run(() => this.redis.eval(RENEW_LOCK, 1, lockKey, token, lockMs))
            .catch(() => undefined);
        }, lockMs / 3);
        try {
          const value = await load();
          await this.breaker
            .run(() => this.redis.set(key, JSON.stringify(value), 'EX', options.ttlSeconds))
            .catch(() => undefined);
          return value;
        } finally {
          clearInterval(renew);
          // Release only our own lock: it may have expired and been taken by another loader.
          await this.breaker
            .run(() => this.redis.eval(RELEASE_LOCK, 1, lockKey, token))
            .catch(() => undefined);
        }
      }
      if (!waited) this.outcomes.inc({ cache, outcome: 'lock_wait' });
      waited = true;
      // Wait for the loader's value; if its lock goes away without one (it failed or died), compete
      // for the lock again rather than all loading at once.
      for (;;) {
        if (Date.now() >= deadline) return load(); // Redis is too slow to coordinate; serve anyway
        await new Promise((resolve) => setTimeout(resolve, 15));
        const [value, holder] = await this.breaker
          .run(() => this.redis.mget(key, lockKey))
          .catch(() => [null, null]);
        if (value !== null && value !== undefined) return JSON.parse(value) as T;
        if (holder === null || holder === undefined) break;
      }
    }
  }

  /** Deletes cached entries after a write; call it once the write has committed. */
  async invalidate(cache: string, ...ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.breaker.run(() => this.redis.del(...ids.map((id) => `${this.prefix}${cache}:${id}`)));
  }

  key(cache: string, id: string): string {
    return `${this.prefix}${cache}:${id}`;
  }
}

const RENEW_LOCK = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`;
const RELEASE_LOCK = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;
