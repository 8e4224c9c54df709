import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { Config } from '../config.js';
import { startTestStack, type TestStack } from '../test-support/stack.js';
import { eventually } from '../test-support/until.js';
import { listDeadLetters, redrive } from './dead-letters.js';
import { defineJob, handle, queuesFrom, type JobHandler, type JobQueues } from './jobs.js';
import { startJobWorkers, upsertSchedules, type JobWorkers } from './job-workers.js';
import { createLogger } from './logger.js';
import { createQueue, QUEUES } from './queues.js';

let testStack: TestStack;
let config: Config;
let jobs: JobQueues;
const running: JobWorkers[] = [];

beforeAll(async () => {
  testStack = await startTestStack({ mysqlReplica: false, redisTopology: 'single' });
  // Quick retries and a short lock, so that failures and lost workers play out in a test's time.
  config = {
    ...testStack.config,
    jobs: { ...testStack.config.jobs, attempts: 3, backoffMs: 20, lockMs: 1_000 },
  };
  jobs = queuesFrom((name) => createQueue(config, name));
});
afterAll(async () => {
  await jobs?.close();
  await testStack?.stack.stop();
});
beforeEach(async () => {
  await jobs.queue(QUEUES.maintenance).obliterate({ force: true });
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((workers) => workers.close(0)));
});

const logger = createLogger({ logLevel: 'silent', instanceId: 'test' }, 'worker');

function start(handlers: JobHandler[], registry = new Registry()): JobWorkers {
  const workers = startJobWorkers({ config, handlers, logger, registry });
  running.push(workers);
  return workers;
}

const echo = defineJob({
  queue: QUEUES.maintenance,
  name: 'echo',
  data: z.object({ text: z.string().min(1) }),
  options: (data) => ({ jobId: `echo-${data.text}` }),
});

async function metricValue(registry: Registry, name: string, labels: Record<string, string>) {
  const metric = await registry.getSingleMetric(name)?.get();
  const sample = metric?.values.find((value) =>
    Object.entries(labels).every(([key, wanted]) => value.labels[key] === wanted),
  );
  return sample?.value ?? 0;
}

describe('job kinds', () => {
  it('refuse data that does not match the schema before it reaches the queue', async () => {
    await expect(jobs.add(echo, { text: '' })).rejects.toThrow(
      /invalid data for job maintenance\/echo: text:/,
    );
    expect(await jobs.queue(QUEUES.maintenance).count()).toBe(0);
  });

  it('collapse a duplicate into the job already there, by the id the kind derives from the data', async () => {
    const first = await jobs.add(echo, { text: 'once' });
    const second = await jobs.add(echo, { text: 'once' });
    expect(second.id).toBe(first.id);
    expect(await jobs.queue(QUEUES.maintenance).count()).toBe(1);
  });
});

describe('the job workers', () => {
  it('retry a failing job with backoff, then keep it as a dead letter with its last error', async () => {
    const registry = new Registry();
    let attempts = 0;
    start(
      [
        handle(echo, async () => {
          attempts += 1;
          throw new Error(`S3 answered 503 (attempt ${attempts})`);
        }),
      ],
      registry,
    );
    const job = await jobs.add(echo, { text: 'doomed' });

    const letters = await eventually(
      () => listDeadLetters(jobs, QUEUES.maintenance),
      (found) => found.length === 1,
    );
    expect(attempts).toBe(3);
    expect(letters).toEqual([
      expect.objectContaining({
        queue: 'maintenance',
        id: job.id,
        name: 'echo',
        attempts: 3,
        lastError: 'S3 answered 503 (attempt 3)',
        data: { text: 'doomed' },
      }),
    ]);
    const labels = { queue: 'maintenance', name: 'echo' };
    expect(await metricValue(registry, 'parley_jobs_failed_total', labels)).toBe(3);
    expect(await metricValue(registry, 'parley_jobs_dead_total', labels)).toBe(1);
  });

  it('send data that can never be valid, or a job nobody handles, straight to the dead letters', async () => {
    let ran = 0;
    start([
      handle(echo, async () => {
        ran += 1;
      }),
    ]);
    const queue = jobs.queue(QUEUES.maintenance);
    // Written past the kind's check, as an older release or a hand-made job could.
    await queue.add('echo', { text: 42 });
    await queue.add('no-such-job', {});

    const letters = await eventually(
      () => listDeadLetters(jobs, QUEUES.maintenance),
      (found) => found.length === 2,
    );
    expect(ran).toBe(0);
    expect(letters.map((letter) => [letter.name, letter.attempts, letter.lastError]).sort()).toEqual([
      ['echo', 1, expect.stringMatching(/^invalid data for job maintenance\/echo: text: Invalid input/)],
      ['no-such-job', 1, 'no handler for job "no-such-job" on queue maintenance'],
    ]);
  });

  it('run a redriven dead letter again with fresh attempts, once it can succeed', async () => {
    let healthy = false;
    const done: string[] = [];
    start([
      handle(echo, async (data) => {
        if (!healthy) throw new Error('the bucket does not exist');
        done.push(data.text);
      }),
    ]);
    await jobs.add(echo, { text: 'a' });
    await jobs.add(echo, { text: 'b' });
    await eventually(
      () => listDeadLetters(jobs, QUEUES.maintenance),
      (found) => found.length === 2,
    );

    healthy = true;
    expect(await redrive(jobs, QUEUES.maintenance, { id: 'echo-a' })).toEqual(['echo-a']);
    await eventually(
      async () => done,
      (list) => list.length === 1,
    );
    expect(done).toEqual(['a']);
    expect((await listDeadLetters(jobs, QUEUES.maintenance)).map((letter) => letter.id)).toEqual(['echo-b']);

    expect(await redrive(jobs, QUEUES.maintenance, 'all')).toEqual(['echo-b']);
    await eventually(
      async () => done,
      (list) => list.length === 2,
    );
    expect(await listDeadLetters(jobs, QUEUES.maintenance)).toEqual([]);
    const completed = await jobs.queue(QUEUES.maintenance).getJob('echo-b');
    expect(completed?.attemptsMade).toBe(1);
  });

  it('refuse to redrive a job that is not a dead letter', async () => {
    await jobs.add(echo, { text: 'waiting' });
    await expect(redrive(jobs, QUEUES.maintenance, { id: 'echo-waiting' })).rejects.toThrow(
      'job echo-waiting on queue maintenance is waiting, not a dead letter',
    );
    await expect(redrive(jobs, QUEUES.maintenance, { id: 'echo-nope' })).rejects.toThrow(
      'no job echo-nope on queue maintenance',
    );
  });

  it('hand a job still running at the end of the grace back to the queue, attempts untouched', async () => {
    const started: string[] = [];
    const workers = start([
      handle(echo, async (data, _job, signal) => {
        started.push(data.text);
        // A job that outlives the grace, e.g. a backup during a rollout.
        await new Promise((resolve) => signal?.addEventListener('abort', resolve));
      }),
    ]);
    const job = await jobs.add(echo, { text: 'long' });
    await eventually(
      async () => started,
      (list) => list.length === 1,
    );

    await workers.close(200);
    const handedBack = await jobs.queue(QUEUES.maintenance).getJob(job.id!);
    expect(await handedBack?.getState()).toMatch(/^(waiting|delayed)$/);
    expect(handedBack?.attemptsMade).toBe(0);

    const finished: string[] = [];
    start([handle(echo, async (data) => void finished.push(data.text))]);
    await eventually(
      async () => finished,
      (list) => list.length === 1,
    );
    expect(finished).toEqual(['long']);
  });
});

describe('job schedules', () => {
  const tick = defineJob({ queue: QUEUES.maintenance, name: 'tick', data: z.object({}) });

  it('run once per period however many workers keep them', async () => {
    const runs: { worker: string; at: number; id: string }[] = [];
    const schedules = [{ kind: tick, data: {}, every: 250 }];
    for (const worker of ['pod-a', 'pod-b']) {
      // Each "pod" upserts the schedule and runs a worker for the queue, as main-worker does.
      await upsertSchedules(jobs, schedules);
      start([handle(tick, async (_data, job) => void runs.push({ worker, at: Date.now(), id: job.id! }))]);
    }
    const startedAt = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 2_600));
    const elapsed = Date.now() - startedAt;

    expect(new Set(runs.map((run) => run.id)).size).toBe(runs.length);
    // One run per 250 ms period, give or take the first and the last, never one per worker.
    expect(runs.length).toBeGreaterThanOrEqual(Math.floor(elapsed / 250) - 2);
    expect(runs.length).toBeLessThanOrEqual(Math.ceil(elapsed / 250) + 1);
    expect((await jobs.queue(QUEUES.maintenance).getJobSchedulers()).map((s) => s.key)).toEqual(['tick']);
  });

  it('are removed from Redis when a release no longer keeps them', async () => {
    await upsertSchedules(jobs, [{ kind: tick, data: {}, every: 60_000 }]);
    await upsertSchedules(jobs, []);
    expect(await jobs.queue(QUEUES.maintenance).getJobSchedulers()).toEqual([]);
  });
});
