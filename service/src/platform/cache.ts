import { randomUUID } from 'node:crypto';
import type { ChainableCommander, Redis } from 'ioredis';
import { LRUCache } from 'lru-cache';
import { Counter, type Registry } from 'prom-client';
import type { Breaker } from './breakers.js';
import type { PubSub } from './pubsub.js';

export interface CacheOptions {
  /** How long a loaded value stays cached in Redis. Writers also delete it (see `invalidate`). */
  ttlSeconds: number;
  /**
   * How long this process may keep its own copy, skipping Redis. Every invalidation drops the copy
   * on every process over pub/sub; this bound only matters if one were lost. 0 turns it off.
   */
  localTtlMs?: number;
  /** How long one loader may hold the stampede lock (its lease, in case it dies). */
  lockMs?: number;
  /** The longest a caller waits for other loaders before loading itself. */
  waitMs?: number;
}

/** What the shared tier answered; `size` (the JSON length) only when the value is what Redis holds. */
interface Shared<T> {
  value: T;
  size?: number;
}

export type CacheOutcome = 'local_hit' | 'hit' | 'miss' | 'lock_wait' | 'error';
type OutcomeCounters = Record<CacheOutcome, { inc(): void }>;

const INVALIDATIONS_CHANNEL = 'parley:cache:invalidations';

/**
 * Two-tier cache-aside shared by every process.
 * - Local: a bounded LRU per process, so a hot entry costs no round trip. Invalidations are
 *   published with the Redis delete (in the same MULTI when the caller has one) and drop the copy
 *   on every process; while the subscriber is down the local tier is bypassed, and after it
 *   reconnects it is cleared, since an invalidation may have been missed.
 * - Redis, with stampede protection: on a miss, one caller takes a short lock (SET NX PX) and
 *   loads from MySQL; the others poll for the value it writes. When Redis is unavailable the cache
 *   steps aside and every caller loads directly (fail open).
 */
export class Cache {
  private readonly outcomes: Counter<'cache' | 'outcome'>;
  private readonly countersByCache = new Map<string, OutcomeCounters>();
  // Bounded in entries and in size (the JSON length of each value, a proxy for its memory).
  private readonly local = new LRUCache<string, { value: unknown }>({
    max: 10_000,
    maxSize: 32 * 1024 * 1024,
  });
  /** Bumped by every invalidation: a value loaded across one must not be kept locally. */
  private generation = 0;

  constructor(
    private readonly redis: Redis,
    private readonly breaker: Breaker,
    private readonly pubsub: PubSub,
    registry: Registry,
    private readonly prefix = 'parley:cache:',
  ) {
    this.outcomes = new Counter({
      name: 'parley_cache_requests_total',
      help: 'Cache lookups by cache and outcome (local_hit = this process, hit = Redis, miss = this caller loaded, lock_wait, error = Redis unavailable)',
      labelNames: ['cache', 'outcome'] as const,
      registers: [registry],
    });
    pubsub.onResubscribed(() => this.dropLocal());
  }

  /** Subscribes to invalidations from other processes; call once at start-up. */
  async start(): Promise<void> {
    await this.pubsub.subscribe(INVALIDATIONS_CHANNEL, (message) => {
      const { keys } = message as { keys?: unknown };
      if (!Array.isArray(keys)) return;
      this.generation++;
      for (const key of keys) if (typeof key === 'string') this.local.delete(key);
    });
  }

  /**
   * The cached value, else loaded once across all processes. `fresh` skips this process's copy: for
   * an answer that refuses the caller, which must not rest on an invalidation still in flight.
   */
  async getOrLoad<T>(
    cache: string,
    id: string,
    options: CacheOptions,
    load: () => Promise<T>,
    fresh = false,
  ): Promise<T> {
    const key = this.key(cache, id);
    const count = this.countersFor(cache);
    const localTtl = options.localTtlMs ?? 0;
    const useLocal = localTtl > 0 && this.pubsub.connected;
    if (useLocal && !fresh) {
      const copy = this.local.get(key);
      if (copy) {
        count.local_hit.inc();
        return copy.value as T;
      }
    }
    const generation = this.generation;
    const { value, size } = await this.getOrLoadShared(key, count, options, load);
    // Kept only when it is what Redis holds (its size known): not a value loaded around Redis.
    if (useLocal && size !== undefined && generation === this.generation)
      this.local.set(key, { value }, { ttl: localTtl, size });
    return value;
  }

  /**
   * Adds the invalidation of entries to a caller's MULTI, so it commits (or not) with the caller's
   * own changes; this process's copies are dropped at once.
   */
  invalidateIn(transaction: ChainableCommander, cache: string, ...ids: string[]): ChainableCommander {
    const keys = ids.map((id) => this.key(cache, id));
    this.generation++;
    for (const key of keys) this.local.delete(key);
    // The stampede locks go too, so a load that was running across this write does not store what
    // it read before it (see STORE_IF_LOCKED).
    const locks = keys.map((key) => `${key}:lock`);
    return transaction.del(...keys, ...locks).publish(INVALIDATIONS_CHANNEL, JSON.stringify({ keys }));
  }

  key(cache: string, id: string): string {
    return `${this.prefix}${cache}:${id}`;
  }

  private dropLocal(): void {
    this.generation++;
    this.local.clear();
  }

  // Label lookups hash their values on every call; a hit is cheaper than that, so bind them once.
  private countersFor(cache: string): OutcomeCounters {
    let counters = this.countersByCache.get(cache);
    if (!counters) {
      const bind = (outcome: CacheOutcome) => this.outcomes.labels(cache, outcome);
      counters = {
        local_hit: bind('local_hit'),
        hit: bind('hit'),
        miss: bind('miss'),
        lock_wait: bind('lock_wait'),
        error: bind('error'),
      };
      this.countersByCache.set(cache, counters);
    }
    return counters;
  }

  private async getOrLoadShared<T>(
    key: string,
    count: OutcomeCounters,
    options: CacheOptions,
    load: () => Promise<T>,
  ): Promise<Shared<T>> {
    let cached: string | null;
    try {
      cached = await this.breaker.run(() => this.redis.get(key));
    } catch {
      count.error.inc();
      return { value: await load() };
    }
    if (cached !== null) {
      count.hit.inc();
      return { value: JSON.parse(cached) as T, size: cached.length };
    }

    const token = randomUUID();
    const lockKey = `${key}:lock`;
    const lockMs = options.lockMs ?? 3_000;
    const deadline = Date.now() + (options.waitMs ?? 10_000);
    let waited = false;
    for (;;) {
      // Atomic with the value check: a caller that missed just before another loader stored the
      // value and released the lock would otherwise take the free lock and load a second time.
      let outcome: number;
      let stored: string | undefined;
      try {
        [outcome, stored] = (await this.breaker.run(() =>
          this.redis.eval(READ_OR_LOCK, 2, key, lockKey, token, lockMs),
        )) as [number, string?];
      } catch {
        count.error.inc(); // Redis cannot coordinate: fail open, as on the first read
        return { value: await load() };
      }
      if (outcome === VALUE_STORED) {
        count.hit.inc();
        return { value: JSON.parse(stored!) as T, size: stored!.length };
      }
      if (outcome === LOCK_TAKEN) {
        count.miss.inc();
        // Renew the lease while loading: on a loaded machine a load can outlast it, and a second
        // loader would then query too. A loader that dies stops renewing and its lock expires.
        const renew = setInterval(() => {
          void this.breaker
            .run(() => this.redis.eval(RENEW_LOCK, 1, lockKey, token, lockMs))
            .catch(() => undefined);
        }, lockMs / 3);
        try {
          const value = await load();
          const json = JSON.stringify(value);
          // Only while the lock is still ours: a write that committed during the load deleted it
          // (invalidateIn), and this value may predate that write.
          const kept = await this.breaker
            .run(() => this.redis.eval(STORE_IF_LOCKED, 2, key, lockKey, token, json, options.ttlSeconds))
            .catch(() => 0);
          return kept === 1 ? { value, size: json.length } : { value };
        } finally {
          clearInterval(renew);
          // Release only our own lock: it may have expired and been taken by another loader.
          await this.breaker
            .run(() => this.redis.eval(RELEASE_LOCK, 1, lockKey, token))
            .catch(() => undefined);
        }
      }
      if (!waited) count.lock_wait.inc();
      waited = true;
      // Wait for the loader's value; if its lock goes away without one (it failed or died), compete
      // for the lock again rather than all loading at once.
      for (;;) {
        if (Date.now() >= deadline) return { value: await load() }; // Redis too slow to coordinate
        await new Promise((resolve) => setTimeout(resolve, 15));
        const [value, holder] = await this.breaker
          .run(() => this.redis.mget(key, lockKey))
          .catch(() => [null, null]);
        if (value !== null && value !== undefined)
          return { value: JSON.parse(value) as T, size: value.length };
        if (holder === null || holder === undefined) break;
      }
    }
  }
}

// READ_OR_LOCK answers the value if it is stored by now, else takes the lock if it is free.
const [VALUE_STORED, LOCK_TAKEN, LOCK_HELD] = [1, 2, 3];
const READ_OR_LOCK = `local value = redis.call('get', KEYS[1])
if value then return {${VALUE_STORED}, value} end
if redis.call('set', KEYS[2], ARGV[1], 'PX', ARGV[2], 'NX') then return {${LOCK_TAKEN}} end
return {${LOCK_HELD}}`;
const STORE_IF_LOCKED = `if redis.call('get', KEYS[2]) == ARGV[1] then redis.call('set', KEYS[1], ARGV[2], 'EX', ARGV[3]) return 1 end
return 0`;
const RENEW_LOCK = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`;
const RELEASE_LOCK = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;
