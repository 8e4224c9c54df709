import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevstack, type Devstack } from '../../devstack/index.js';
import { loadConfig, type Config } from '../config.js';
import { TEST_ENV } from '../test-support/stack.js';
import { createBreakerFactory } from './breakers.js';
import { Cache } from './cache.js';
import { createLogger } from './logger.js';
import { PubSub } from './pubsub.js';
import { until } from '../test-support/until.js';

/*
 * The two tiers of the cache, as two processes would see them: each "process" here has its own
 * Redis clients, subscriber and local copies, against one real Redis.
 */
let stack: Devstack;
let config: Config;
const closers: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  stack = await startDevstack({ mysqlReplica: false, redisTopology: 'single' });
  config = loadConfig({ ...TEST_ENV, ...stack.env() }, 'api');
});
afterAll(async () => {
  for (const close of closers.reverse()) await close().catch(() => undefined);
  await stack?.stop();
});

const OPTIONS = { ttlSeconds: 60, localTtlMs: 60_000 };

async function startProcess() {
  const registry = new Registry();
  const logger = createLogger({ ...config, logLevel: 'silent' }, 'api');
  const redis = new Redis(config.redis.kind === 'url' ? config.redis.url : '', { maxRetriesPerRequest: 2 });
  const pubsub = new PubSub(config.redis, redis, logger);
  const breaker = createBreakerFactory(registry)('redis', {
    timeoutMs: 1_000,
    openMs: 3_000,
    isFailure: () => true,
  });
  const cache = new Cache(redis, breaker, pubsub, registry);
  await cache.start();
  closers.push(
    () => pubsub.close(),
    () => redis.quit(),
  );
  const outcomes = async (name: string) => {
    const metric = await registry.getSingleMetricAsString('parley_cache_requests_total');
    return Object.fromEntries(
      [...metric.matchAll(new RegExp(`cache="${name}",outcome="(\\w+)"\\} (\\d+)`, 'g'))].map((m) => [
        m[1],
        Number(m[2]),
      ]),
    );
  };
  return { cache, redis, pubsub, outcomes };
}

/** A source of truth the loaders read, counting how often they do. */
function source<T>(initial: T) {
  const state = { value: initial, loads: 0 };
  return { state, load: async () => (state.loads++, state.value) };
}

describe('the cache', () => {
  it('serves a hot entry from this process, without a round trip to Redis', async () => {
    const a = await startProcess();
    const truth = source({ name: 'v1' });
    expect(await a.cache.getOrLoad('t1', 'x', OPTIONS, truth.load)).toEqual({ name: 'v1' });
    // Gone from Redis behind the cache's back: only a local copy can still answer.
    await a.redis.del(a.cache.key('t1', 'x'));
    expect(await a.cache.getOrLoad('t1', 'x', OPTIONS, truth.load)).toEqual({ name: 'v1' });
    expect(truth.state.loads).toBe(1);
    expect(await a.outcomes('t1')).toMatchObject({ miss: 1, local_hit: 1 });
  });

  it('drops the copies on every process when one process invalidates after a write', async () => {
    const [a, b] = [await startProcess(), await startProcess()];
    const truth = source('v1');
    expect(await a.cache.getOrLoad('t2', 'x', OPTIONS, truth.load)).toBe('v1');
    expect(await b.cache.getOrLoad('t2', 'x', OPTIONS, truth.load)).toBe('v1'); // from Redis
    truth.state.value = 'v2';
    const replies = await a.cache.invalidateIn(a.redis.multi(), 't2', 'x').exec();
    expect(replies?.every(([error]) => error === null)).toBe(true);
    expect(await a.cache.getOrLoad('t2', 'x', OPTIONS, truth.load)).toBe('v2');
    expect(await until(async () => (await b.cache.getOrLoad('t2', 'x', OPTIONS, truth.load)) === 'v2')).toBe(
      true,
    );
    expect(truth.state.loads).toBe(2); // one load per miss across both processes
  });

  it('keeps nowhere a value whose load a write overtook, so the next read loads afresh', async () => {
    const [a, b] = [await startProcess(), await startProcess()];
    let release!: () => void;
    const loading = a.cache.getOrLoad('t3', 'x', OPTIONS, async () => {
      await new Promise<void>((resolve) => (release = resolve));
      return 'read-before-the-write';
    });
    await until(() => release !== undefined); // a holds the lock and is loading
    await b.cache.invalidateIn(b.redis.multi(), 't3', 'x').exec(); // a write commits meanwhile
    release();
    expect(await loading).toBe('read-before-the-write'); // its own caller raced the write
    expect(await a.redis.get(a.cache.key('t3', 'x'))).toBeNull(); // but Redis did not keep it
    expect(await a.cache.getOrLoad('t3', 'x', OPTIONS, async () => 'after-the-write')).toBe(
      'after-the-write',
    );
    expect(await b.cache.getOrLoad('t3', 'x', OPTIONS, async () => 'unused')).toBe('after-the-write');
  });

  it('fails open at once when Redis answers the lookup but not the lock', async () => {
    const a = await startProcess();
    // Scripts refused (as a Redis that died between the two commands would): load, no 10 s wait.
    await a.redis.call('CONFIG', 'SET', 'maxmemory', '1');
    await a.redis.call('CONFIG', 'SET', 'maxmemory-policy', 'noeviction');
    await a.redis.set('filler', 'x'.repeat(1_000)).catch(() => undefined);
    try {
      const loads: number[] = [];
      const value = await a.cache.getOrLoad('t5', 'x', { ...OPTIONS, waitMs: 60_000 }, async () => {
        loads.push(1);
        return 'served';
      });
      expect(value).toBe('served');
      expect(loads).toHaveLength(1);
      expect(await a.outcomes('t5')).toMatchObject({ error: 1 });
    } finally {
      await a.redis.call('CONFIG', 'SET', 'maxmemory', '0');
    }
  });

  it('bypasses its copies while its subscriber is away, and clears them when it is back', async () => {
    const [a, b] = [await startProcess(), await startProcess()];
    const truth = source('v1');
    expect(await a.cache.getOrLoad('t4', 'x', OPTIONS, truth.load)).toBe('v1');
    // Cut a's subscriber: an invalidation published now can never reach a.
    const admin = new Redis(config.redis.kind === 'url' ? config.redis.url : '');
    closers.push(() => admin.quit());
    await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
    expect(await until(() => !a.pubsub.connected)).toBe(true);
    truth.state.value = 'v2';
    await b.cache.invalidateIn(b.redis.multi(), 't4', 'x').exec();
    expect(await a.cache.getOrLoad('t4', 'x', OPTIONS, truth.load)).toBe('v2');
    expect(await until(() => a.pubsub.connected)).toBe(true);
    expect(await a.cache.getOrLoad('t4', 'x', OPTIONS, truth.load)).toBe('v2');
  });
});
