import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevstack, type Devstack } from '../../devstack/index.js';
import { createBreakerFactory } from './breakers.js';
import { createRedis } from './redis.js';
import { RedisWrite } from './redis-write.js';

let stack: Devstack;
let app: Redis;
let observer: Redis;
const breaker = createBreakerFactory(new Registry())('redis', {
  timeoutMs: 1_000,
  openMs: 1_000,
  isFailure: () => true,
});

beforeAll(async () => {
  stack = await startDevstack({ mysqlReplica: false, redisTopology: 'single' });
  const url = stack.env().REDIS_URL!;
  app = createRedis({ kind: 'url', url, password: undefined }, 'app');
  observer = new Redis(url);
  await app.ping();
});
afterAll(async () => {
  app?.disconnect();
  observer?.disconnect();
  await stack?.stop();
});

// Redis counts each read of a client's socket: one per write the client makes, when sequential.
const readsProcessed = async () =>
  Number(/total_reads_processed:(\d+)/.exec(await observer.info('stats'))![1]);

describe('a RedisWrite', () => {
  it('sends nothing until send, then every command added, across awaits, in one write', async () => {
    const write = new RedisWrite(app, breaker);
    write.commands.set('rw:a', '1');
    await new Promise((resolve) => setTimeout(resolve, 20)); // another turn, as a handler's awaits make
    write.commands.set('rw:b', '2').publish('rw:channel', 'hello');
    expect(await observer.exists('rw:a', 'rw:b')).toBe(0);

    const before = await readsProcessed();
    expect(await write.send()).toBeUndefined();
    const reads = (await readsProcessed()) - before - 1; // the INFO above is one
    expect(reads).toBe(1);
    expect(await observer.mget('rw:a', 'rw:b')).toEqual(['1', '2']);
  });

  it('reports the first command Redis refused, and still runs the others', async () => {
    await observer.set('rw:text', 'not a number');
    const write = new RedisWrite(app, breaker);
    write.commands.incr('rw:text').set('rw:after', 'ran');
    const failure = await write.send();
    expect(failure?.message).toMatch(/not an integer/);
    expect(await observer.get('rw:after')).toBe('ran');
  });

  it('resolves with the failure, never rejects, when Redis is gone', async () => {
    const unreachable = createRedis({ kind: 'url', url: 'redis://127.0.0.1:1', password: undefined }, 'app');
    unreachable.on('error', () => undefined);
    try {
      const write = new RedisWrite(unreachable, breaker);
      write.commands.set('rw:lost', '1');
      expect(await write.send()).toBeInstanceOf(Error);
    } finally {
      unreachable.disconnect();
    }
  });
});
