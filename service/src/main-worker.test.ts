import { Queue } from 'bullmq';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Health } from './test-support/health.js';

import { HEARTBEAT_JOB } from './features/maintenance/heartbeat.js';
import { createRedis } from './platform/redis.js';
import { QUEUE_PREFIX, QUEUES } from './platform/queues.js';
import { freeze } from './test-support/freeze.js';
import { startServiceProcess, type ServiceProcess } from './test-support/service-process.js';
import { startTestStack, type TestStack } from './test-support/stack.js';
import { eventually } from './test-support/until.js';

let testStack: TestStack;
let worker: ServiceProcess;

beforeAll(async () => {
  // With the default GTID replica: the worker measures its lag.
  testStack = await startTestStack();
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

/** The gauge as a scrape shows it: a number, NaN, or undefined when the series is absent. */
async function scrapeReplicaLag(): Promise<number | undefined> {
  const metrics = await (await fetch(`http://127.0.0.1:${worker.ports.healthPort}/metrics`)).text();
  const sample = /^parley_mysql_replica_lag_seconds (\S+)$/m.exec(metrics);
  return sample ? Number(sample[1]) : undefined;
}

/** Scrapes until `done` holds or `timeoutMs` passes, and returns the last value for the assertion. */
const scrapeReplicaLagUntil = (done: (lag: number | undefined) => boolean, timeoutMs: number) =>
  eventually(scrapeReplicaLag, done, timeoutMs, 250);

async function onReplicaAsAdmin(statement: string): Promise<void> {
  const connection = await mysql.createConnection({
    host: testStack.stack.mysql.replica!.host,
    port: testStack.stack.mysql.replica!.port,
    ...testStack.stack.mysql.admin,
  });
  try {
    await connection.query(statement);
  } finally {
    await connection.end();
  }
}

const isSmall = (lag: number | undefined) => lag !== undefined && lag < 3;

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
    // BullMQ does not close a connection it was handed; left open, it complains once the stack stops.
    const connection = createRedis(testStack.config.redis, 'bullmq');
    const queue = new Queue(QUEUES.maintenance, { connection, prefix: QUEUE_PREFIX });
    try {
      let completed = await queue.getJobs(['completed']);
      for (let i = 0; i < 100 && completed.length === 0; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        completed = await queue.getJobs(['completed']);
      }
      expect(completed[0]?.name).toBe(HEARTBEAT_JOB);
      expect(new Date(completed[0]!.returnvalue.databaseTime).getTime()).toBeGreaterThan(Date.now() - 60_000);
      const schedulers = await queue.getJobSchedulers();
      expect(schedulers).toContainEqual(
        expect.objectContaining({ key: HEARTBEAT_JOB, every: testStack.config.jobs.heartbeatMs }),
      );
    } finally {
      await queue.close();
      connection.disconnect();
    }
    const liveness = await getJson('/livez');
    expect(liveness.status).toBe(200);
    expect(liveness.body.lastJobCompletedMsAgo).toBeLessThan(15_000);
  });

  it('exports depth per state and the oldest waiting job of every queue, and what its jobs did', async () => {
    const metrics = await (await fetch(`http://127.0.0.1:${worker.ports.healthPort}/metrics`)).text();
    for (const queue of Object.values(QUEUES)) {
      for (const state of ['waiting', 'prioritized', 'delayed', 'active', 'failed'])
        expect(metrics).toMatch(new RegExp(`parley_queue_jobs\\{queue="${queue}",state="${state}"\\} \\d+`));
      expect(metrics).toMatch(
        new RegExp(`parley_queue_oldest_waiting_seconds\\{queue="${queue}"\\} [\\d.]+`),
      );
    }
    // The heartbeat completed above: its counter and duration are there, by queue and job name.
    expect(metrics).toMatch(/parley_jobs_completed_total\{queue="maintenance",name="heartbeat"\} [1-9]/);
    expect(metrics).toMatch(
      /parley_job_duration_seconds_count\{queue="maintenance",name="heartbeat",outcome="completed"\} [1-9]/,
    );
    expect(metrics).toContain('# TYPE parley_jobs_dead_total counter');
  });

  it('keeps one scheduler for each repeatable job, on its queue (backups only when enabled)', async () => {
    const connection = createRedis(testStack.config.redis, 'bullmq');
    try {
      const schedulers: Record<string, string[]> = {};
      for (const name of Object.values(QUEUES)) {
        const queue = new Queue(name, { connection, prefix: QUEUE_PREFIX });
        schedulers[name] = (await queue.getJobSchedulers()).map((scheduler) => scheduler.key).sort();
        await queue.close();
      }
      expect(schedulers).toEqual({
        maintenance: ['heartbeat'],
        leaderboards: ['sweep'],
        attachments: ['sweep'],
        backups: [],
      });
    } finally {
      connection.disconnect();
    }
  });

  it('shows the queues on Bull Board, on its management port, read-only', async () => {
    const board = `http://127.0.0.1:${worker.ports.healthPort}/queues`;
    const page = await fetch(board);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<title>Parley jobs</title>');

    const listed = (await (await fetch(`${board}/api/queues`)).json()) as {
      queues: { name: string; readOnlyMode: boolean }[];
    };
    expect(listed.queues.map((queue) => [queue.name, queue.readOnlyMode]).sort()).toEqual(
      Object.values(QUEUES)
        .map((name) => [name, true])
        .sort(),
    );
    // Refused by the board's API itself, not only hidden in its page.
    const retry = await fetch(`${board}/api/queues/maintenance/retry/failed`, { method: 'PUT' });
    expect(retry.status).toBe(405);
  });

  it('exports the replica lag, near zero while the replica keeps up', async () => {
    const lag = await scrapeReplicaLagUntil(isSmall, 10_000);
    expect(lag).toBeGreaterThanOrEqual(0);
    expect(lag).toBeLessThan(3);
  });

  it('reports the lag growing while the replica stops applying, and falling once it applies again', async () => {
    // STOP REPLICA is MySQL 8.4's only spelling and MariaDB's synonym for STOP SLAVE since 10.5.
    await onReplicaAsAdmin('STOP REPLICA SQL_THREAD');
    let stalled: number | undefined;
    try {
      stalled = await scrapeReplicaLagUntil((lag) => lag !== undefined && lag > 5, 20_000);
    } finally {
      await onReplicaAsAdmin('START REPLICA SQL_THREAD');
    }
    expect(stalled).toBeGreaterThan(5);
    expect(await scrapeReplicaLagUntil(isSmall, 20_000)).toBeLessThan(3);
  });

  it('reports NaN, not the last figure, while the replica cannot be read, and a figure again after', async () => {
    const replica = testStack.stack.mysql.replica!;
    // A frozen server (queries hang until the circuit's timeout) is the harder case.
    const revive = await freeze(replica);
    let unknown: number | undefined;
    try {
      unknown = await scrapeReplicaLagUntil((lag) => lag !== undefined && Number.isNaN(lag), 20_000);
    } finally {
      await revive();
    }
    expect(unknown).toBeNaN();
    expect(await scrapeReplicaLagUntil(isSmall, 30_000)).toBeLessThan(3);
  });

  it('exports no replica lag when no replica is configured, rather than a 0 that claims one in sync', async () => {
    const { MYSQL_REPLICA_HOST: _host, MYSQL_REPLICA_PORT: _port, ...primaryOnly } = testStack.env;
    const primaryOnlyWorker = await startServiceProcess('main-worker', primaryOnly);
    try {
      const metrics = await (
        await fetch(`http://127.0.0.1:${primaryOnlyWorker.ports.healthPort}/metrics`)
      ).text();
      expect(metrics).toContain('parley_queue_jobs');
      expect(metrics).not.toContain('parley_mysql_replica_lag_seconds');
    } finally {
      await primaryOnlyWorker.stop('SIGKILL');
    }
  });

  it('shuts down cleanly on SIGTERM: jobs finish while their connections are open, every resource closes once', async () => {
    expect(await worker.stop('SIGTERM')).toBe(0);
    const closed = worker.logs.filter((line) => line.msg === 'closed').map((line) => String(line.resource));
    expect([...closed].sort()).toEqual(
      [
        'management server',
        'job queues',
        'job workers',
        'mysql',
        'redis',
        'replication heartbeat',
        's3 client',
      ].sort(),
    );
    const before = (first: string, then: string) => closed.indexOf(first) < closed.indexOf(then);
    // The worker waits for its running jobs first, while Redis, MySQL and its probes still answer.
    for (const later of ['redis', 'mysql', 'job queues', 'management server'])
      expect(before('job workers', later)).toBe(true);
    expect(before('replication heartbeat', 'mysql')).toBe(true);
    expect(worker.logs.filter((line) => line.msg === 'close failed')).toEqual([]);
  });
});
