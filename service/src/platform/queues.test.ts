import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestStack, type TestStack } from '../test-support/stack.js';
import { createQueue, createWorker, QUEUES } from './queues.js';
import { createRedis } from './redis.js';

let testStack: TestStack;
let observer: Redis;

beforeAll(async () => {
  testStack = await startTestStack({ mysqlReplica: false, redisTopology: 'single' });
  observer = createRedis(testStack.config.redis, 'app', 'test-observer');
});
afterAll(async () => {
  observer?.disconnect();
  await testStack?.stack.stop();
});

/** The names of the clients connected to the stack's Redis, as CLIENT LIST reports them. */
async function connectedClientNames(): Promise<string[]> {
  const list = (await observer.client('LIST')) as string;
  return list
    .split('\n')
    .map((line) => /(?:^| )name=(\S*)/.exec(line)?.[1] ?? '')
    .filter(Boolean);
}

const isQueueConnection = (name: string) =>
  /^parley-(queue|worker)-/.test(name) || name.startsWith('parley:');

describe('BullMQ queues and workers', () => {
  it('leave none of their Redis connections behind once closed, as the shutdown closes them', async () => {
    const queue = createQueue(testStack.config, QUEUES.maintenance);
    const worker = createWorker(testStack.config, QUEUES.maintenance, async () => 'done');
    const completed = new Promise((resolve) => worker.once('completed', resolve));
    await queue.add('probe', {});
    await completed; // both connected and did real work
    expect((await connectedClientNames()).filter(isQueueConnection)).toEqual(
      expect.arrayContaining(['parley-queue-maintenance', 'parley-worker-maintenance']),
    );

    // The order the worker's lifecycle closes them in: the worker first, then the queue.
    await worker.close();
    await queue.close();

    // Redis frees a client right after it answers QUIT; allow it a moment, bounded.
    let left = (await connectedClientNames()).filter(isQueueConnection);
    for (let i = 0; i < 20 && left.length > 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      left = (await connectedClientNames()).filter(isQueueConnection);
    }
    expect(left).toEqual([]);
  });
});
