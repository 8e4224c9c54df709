import { Redis } from 'ioredis';
import { RateLimiterRedis } from 'rate-limiter-flexible';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startDevstack, type Devstack } from '../../devstack/index.js';
import { loadConfig } from '../config.js';
import { TEST_ENV } from '../test-support/stack.js';
import { LeasedLimiter } from './rate-limit-leases.js';

/*
 * Leases against one real Redis. Each limiter here stands for one API process: its own client and
 * its own leases, one shared counter.
 */
let stack: Devstack;
let redisUrl: string;
const clients: Redis[] = [];

beforeAll(async () => {
  stack = await startDevstack({ mysqlReplica: false, redisTopology: 'single' });
  const config = loadConfig({ ...TEST_ENV, ...stack.env() }, 'api');
  redisUrl = config.redis.kind === 'url' ? config.redis.url : '';
});
afterAll(async () => {
  for (const client of clients) client.disconnect();
  await stack?.stop();
});

let prefix = 0;
/** `count` limiters ("processes") sharing one fresh counter of `points` per `seconds`. */
function processes(count: number, points: number, seconds = 60) {
  const keyPrefix = `test:rl:${++prefix}`;
  return Array.from({ length: count }, () => {
    const client = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
    clients.push(client);
    const shared = new RateLimiterRedis({ storeClient: client, keyPrefix, points, duration: seconds });
    return { limiter: new LeasedLimiter(shared, (call) => call()), shared };
  });
}

const allowedOf = (decisions: { allowed: boolean }[]) => decisions.filter((d) => d.allowed).length;

describe('a leased rate limit', () => {
  it('takes a cold key’s points one at a time, exactly as the plain limiter would', async () => {
    const [{ limiter, shared }] = processes(1, 100) as [ReturnType<typeof processes>[number]];
    expect(await limiter.consume('user:a')).toMatchObject({ allowed: true, remaining: 99 });
    expect((await shared.get('user:a'))?.consumedPoints).toBe(1);
  });

  it('costs a busy key one Redis call per lease, and never more than the points it used plus one lease', async () => {
    const [{ limiter, shared }] = processes(1, 100_000) as [ReturnType<typeof processes>[number]];
    const calls = vi.spyOn(shared, 'consume');
    for (let i = 0; i < 1_000; i++) expect((await limiter.consume('user:busy')).allowed).toBe(true);
    // 1 + 2 + 4 + ... + 64, then blocks of 64: 21 leases for 1,000 requests.
    expect(calls.mock.calls.length).toBe(21);
    const counted = (await shared.get('user:busy'))!.consumedPoints;
    expect(counted).toBeGreaterThanOrEqual(1_000);
    expect(counted).toBeLessThan(1_000 + 64);
  });

  it('lets concurrent requests share one lease instead of each asking Redis', async () => {
    const [{ limiter, shared }] = processes(1, 100_000) as [ReturnType<typeof processes>[number]];
    const calls = vi.spyOn(shared, 'consume');
    const decisions = await Promise.all(Array.from({ length: 200 }, () => limiter.consume('user:burst')));
    expect(allowedOf(decisions)).toBe(200);
    // One point for the first, then leases as large as the queue behind it (64 at most): 1 + 4.
    expect(calls.mock.calls.length).toBe(5);
  });

  it('never allows more than the limit across processes, hammered concurrently', async () => {
    const pods = processes(3, 500);
    const decisions = await Promise.all(
      pods.flatMap(({ limiter }) => Array.from({ length: 400 }, () => limiter.consume('user:shared'))),
    );
    expect(allowedOf(decisions)).toBe(500);
    // Points a lease took beyond the limit were given back: the counter holds exactly the limit.
    expect((await pods[0]!.shared.get('user:shared'))!.consumedPoints).toBe(500);
  });

  it('uses every point of the window when requests alternate between processes', async () => {
    const pods = processes(2, 200);
    const decisions = [];
    for (let i = 0; i < 230; i++) decisions.push(await pods[i % 2]!.limiter.consume('user:alternating'));
    expect(allowedOf(decisions)).toBe(200);
    expect(decisions.slice(-20).every((decision) => !decision.allowed)).toBe(true);
  });

  it('refuses a spent key without asking Redis until its window ends, then starts afresh', async () => {
    const [{ limiter, shared }] = processes(1, 3, 1) as [ReturnType<typeof processes>[number]];
    const decisions = [];
    for (let i = 0; i < 5; i++) decisions.push(await limiter.consume('user:spent'));
    expect(decisions.map((decision) => decision.allowed)).toEqual([true, true, true, false, false]);
    expect(decisions[4]).toMatchObject({ remaining: 0, resetSeconds: 1 });
    const calls = vi.spyOn(shared, 'consume');
    for (let i = 0; i < 10; i++) expect((await limiter.consume('user:spent')).allowed).toBe(false);
    expect(calls).not.toHaveBeenCalled();

    await new Promise((resolve) => setTimeout(resolve, 1_100));
    expect(await limiter.consume('user:spent')).toMatchObject({ allowed: true, remaining: 2 });
    expect(calls).toHaveBeenCalledTimes(1);
  });

  it('fails the request, not the key, when Redis fails: the next request asks again', async () => {
    const [{ shared }] = processes(1, 100) as [ReturnType<typeof processes>[number]];
    let failing = true;
    let attempts = 0;
    const limiter = new LeasedLimiter(shared, (call) => {
      attempts += 1;
      return failing ? Promise.reject(new Error('redis is down')) : call();
    });
    // The requests that waited for the failed lease fail with it, at once, rather than each trying
    // Redis in turn (behind a hanging Redis that would be one breaker timeout per request).
    const waiting = Array.from({ length: 5 }, () => limiter.consume('user:outage'));
    for (const outcome of await Promise.allSettled(waiting)) {
      expect(outcome.status).toBe('rejected');
      expect((outcome as PromiseRejectedResult).reason.message).toBe('redis is down');
    }
    expect(attempts).toBe(1);
    failing = false;
    expect(await limiter.consume('user:outage')).toMatchObject({ allowed: true, remaining: 99 });
  });
});
