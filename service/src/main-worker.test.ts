import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Health } from './test-support/health.js';

import { HEARTBEAT_JOB } from './features/maintenance/heartbeat.js';
import { createRedis } from './platform/redis.js';
import { QUEUE_PREFIX, QUEUES } from './platform/queues.js';
import { startServiceProcess, type ServiceProcess } from './test-support/service-process.js';
import { startTestStack, type TestStack } from './test-support/stack.js';

let testStack: TestStack;
let worker: ServiceProcess;

beforeAll(async () => {
  testStack = await startTestStack({ mysqlReplica: false });
  worker = await startServiceProcess('main-worker', testStack.env);
});
afterAll(async () => {
  await worker?.stop('SIGKILL');
  await testStack?.stack.stop();
});

async function getJson(path: string) {
  const response = await fetch(`http://127.0.0.1:${worker.ports.healthPort}${path}`);
  return { status: response.status, body: (await response.json()) as Health };
}

describe('the worker process', () => {
  it('is ready once MySQL and Redis (through Sentinel) answer', async () => {
    let readiness = await getJson('/readyz');
    for (let i = 0; i < 50 && readiness.status !== 200; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      readiness = await getJson('/readyz');
    }
    expect(readiness.status).toBe(200);
    expect(readiness.body.checks.redis?.status).toBe('up');
  });

  it('completes its scheduled heartbeat job against MySQL, which is its liveness signal', async () => {
    const queue = new Queue(QUEUES.maintenance, {
      connection: createRedis(testStack.config.redis, 'bullmq'),
      prefix: QUEUE_PREFIX,
    });
    try {
      let completed = await queue.getJobs(['completed']);
      for (let i = 0; i < 100 && completed.length === 0; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        completed = await queue.getJobs(['completed']);
      }
      expect(completed[0]?.name).toBe(HEARTBEAT_JOB);
      expect(new Date(completed[0]!.returnvalue.databaseTime).getTime()).toBeGreaterThan(Date.now() - 60_000);
      const schedulers = await queue.getJobSchedulers();
      expect(schedulers).toContainEqual(expect.objectContaining({ key: HEARTBEAT_JOB, every: 15_000 }));
    } finally {
      await queue.close();
    }
    const liveness = await getJson('/livez');
    expect(liveness.status).toBe(200);
    expect(liveness.body.lastJobCompletedMsAgo).toBeLessThan(15_000);
  });

  it('exports queue depth and age for autoscaling', async () => {
    const metrics = await (await fetch(`http://127.0.0.1:${worker.ports.healthPort}/metrics`)).text();
    expect(metrics).toMatch(/parley_queue_jobs\{queue="maintenance",state="waiting"\} \d+/);
    expect(metrics).toMatch(/parley_queue_oldest_waiting_seconds\{queue="maintenance"\} [\d.]+/);
  });

  it('shuts down cleanly on SIGTERM', async () => {
    expect(await worker.stop('SIGTERM')).toBe(0);
    const closed = worker.logs.filter((line) => line.msg === 'closed').map((line) => line.resource);
    expect(closed).toEqual([
      'maintenance worker',
      'maintenance queue',
      'redis',
      'mysql',
      'management server',
    ]);
  });
});
