import type { Queue } from 'bullmq';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createQueue, QUEUES } from '../../platform/queues.js';
import { startTestStack, type TestStack } from '../../test-support/stack.js';
import { overdueMs, ProgressWatch } from './heartbeat.js';

let testStack: TestStack;
let queue: Queue;

beforeAll(async () => {
  testStack = await startTestStack({ mysqlReplica: false, redisTopology: 'single' });
  queue = createQueue(testStack.config, QUEUES.maintenance);
});
afterAll(async () => {
  await queue?.close();
  await testStack?.stack.stop();
});
beforeEach(async () => {
  await queue.obliterate({ force: true });
});

const TOLERANCE_MS = 300;
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("a worker pod's liveness", () => {
  it('holds for a pod that completed a job within the tolerance', async () => {
    const watch = new ProgressWatch(TOLERANCE_MS, () => overdueMs(queue));
    await queue.add('heartbeat', {}); // waiting, but this pod is making progress
    await pause(TOLERANCE_MS + 100);
    watch.recordProgress();
    expect((await watch.status()).alive).toBe(true);
  });

  it('holds for an idle pod while the other pods take the heartbeats in time', async () => {
    const watch = new ProgressWatch(TOLERANCE_MS, () => overdueMs(queue));
    await pause(TOLERANCE_MS + 100);
    const status = await watch.status();
    expect(status.alive).toBe(true);
    expect(status.detail).toMatchObject({ heartbeatOverdueMs: 0 });
  });

  it('fails once a heartbeat has waited longer than the tolerance for any worker', async () => {
    const watch = new ProgressWatch(TOLERANCE_MS, () => overdueMs(queue));
    await queue.add('heartbeat', {});
    await pause(TOLERANCE_MS + 100);
    const status = await watch.status();
    expect(status.alive).toBe(false);
    expect(status.detail.heartbeatOverdueMs).toBeGreaterThan(TOLERANCE_MS);
  });

  it('fails once a scheduled heartbeat is overdue and no worker promoted it', async () => {
    const watch = new ProgressWatch(TOLERANCE_MS, () => overdueMs(queue));
    // A schedule's next run waits in `delayed` until a worker moves it: with every worker hung,
    // it never reaches `waiting`.
    await queue.add('heartbeat', {}, { delay: 50 });
    await pause(TOLERANCE_MS + 150);
    expect((await watch.status()).alive).toBe(false);
  });

  it('holds while Redis cannot be read: that is an outage for readiness, not a restart', async () => {
    const watch = new ProgressWatch(TOLERANCE_MS, () => Promise.reject(new Error('connection refused')));
    await pause(TOLERANCE_MS + 100);
    expect(await watch.status()).toMatchObject({
      alive: true,
      detail: { heartbeatOverdue: 'unknown: connection refused' },
    });
  });
});
