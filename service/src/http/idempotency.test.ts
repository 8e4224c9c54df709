import { Hono } from 'hono';
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevstack, type Devstack } from '../../devstack/index.js';
import { loadConfig } from '../config.js';
import { createBreakerFactory } from '../platform/breakers.js';
import { createLogger } from '../platform/logger.js';
import { TEST_ENV } from '../test-support/stack.js';
import { idempotency } from './idempotency.js';
import type { AppEnv } from './types.js';

/*
 * The middleware on its own, against a real Redis, behind a handler the test controls: how
 * duplicates of one Idempotency-Key behave around an original that fails.
 */
let stack: Devstack;
let redis: Redis;

beforeAll(async () => {
  stack = await startDevstack({ mysqlReplica: false, redisTopology: 'single' });
  const config = loadConfig({ ...TEST_ENV, ...stack.env() }, 'api');
  redis = new Redis(config.redis.kind === 'url' ? config.redis.url : '');
});
afterAll(async () => {
  redis?.disconnect();
  await stack?.stop();
});

/** An app whose first request waits for `failFirst` and then answers 500; the others answer 201. */
function appWithFailingOriginal() {
  let calls = 0;
  let failFirst!: () => void;
  const firstMayFail = new Promise<void>((resolve) => (failFirst = resolve));
  const breaker = createBreakerFactory(new Registry())('redis', {
    timeoutMs: 1_000,
    openMs: 1_000,
    isFailure: () => true,
  });
  const app = new Hono<AppEnv>();
  app.use(async (c, next) => {
    c.set('principal', { userId: 'user-1', sessionId: 's', exp: 0 });
    c.set('log', createLogger({ logLevel: 'silent', instanceId: 'test' }, 'api'));
    await next();
  });
  app.post('/things', idempotency({ redis, breaker, waitMs: 10_000 }), async (c) => {
    const call = ++calls;
    if (call === 1) {
      await firstMayFail;
      return c.json({ error: 'the database went away' }, 500);
    }
    return c.json({ call }, 201);
  });
  const send = (key: string) =>
    app.request('/things', {
      method: 'POST',
      headers: { 'Idempotency-Key': key, 'Content-Type': 'application/json' },
      body: '{"name":"x"}',
    });
  return { send, failFirst, calls: () => calls };
}

describe('duplicates waiting on an original that fails', () => {
  it('run the request once between them, and the rest replay that answer', async () => {
    const { send, failFirst, calls } = appWithFailingOriginal();
    const key = crypto.randomUUID();
    const original = send(key);
    while (calls() === 0) await new Promise((resolve) => setTimeout(resolve, 10));
    const duplicates = Array.from({ length: 5 }, () => send(key));
    await new Promise((resolve) => setTimeout(resolve, 100)); // all five are waiting on the claim
    failFirst();
    expect((await original).status).toBe(500);
    const answers = await Promise.all(duplicates);
    expect(calls()).toBe(2);
    expect(answers.map((answer) => answer.status)).toEqual([201, 201, 201, 201, 201]);
    const bodies = await Promise.all(answers.map((answer) => answer.json()));
    expect(bodies).toEqual(Array.from({ length: 5 }, () => ({ call: 2 })));
    const replayed = answers.filter((answer) => answer.headers.get('idempotent-replayed') === 'true');
    expect(replayed).toHaveLength(4);
  });
});
