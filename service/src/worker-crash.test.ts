import type { Connection } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queuesFrom, type JobQueues } from './platform/jobs.js';
import { createQueue, QUEUES } from './platform/queues.js';
import { adminConnection, adminQuery } from './test-support/admin-sql.js';
import { signUp, startCluster, type Cluster } from './test-support/cluster.js';
import { startServiceProcess, type ServiceProcess } from './test-support/service-process.js';
import { eventually } from './test-support/until.js';

/**
 * A worker pod lost in the middle of a job (SIGKILL, as when its node dies): the job's lock lapses,
 * another worker takes it, and what it does is applied exactly once.
 */
let cluster: Cluster;
let jobs: JobQueues;
const workers: ServiceProcess[] = [];
const WORKER_ENV = { JOBS_LOCK_MS: '1500', LEADERBOARD_FLUSH_INTERVAL_MS: '200' };

beforeAll(async () => {
  cluster = await startCluster(1, { mysqlReplica: false, redisTopology: 'single' }, WORKER_ENV);
  jobs = queuesFrom((name) => createQueue(cluster.config, name));
});
afterAll(async () => {
  await Promise.all(workers.map((worker) => worker.stop('SIGKILL')));
  await jobs?.close();
  await cluster?.stop();
});

async function startWorker(): Promise<ServiceProcess> {
  const worker = await startServiceProcess('main-worker', { ...cluster.env, ...WORKER_ENV });
  workers.push(worker);
  return worker;
}

describe('a worker killed mid-job', () => {
  it('has its job retried by another worker and applied exactly once', async () => {
    const api = cluster.apis[0]!;
    const author = await signUp(api, 'crash');
    const room = await api('POST', '/v1/rooms', {
      token: author.accessToken,
      body: { name: 'crash room', visibility: 'public' },
    });
    const roomId = String(room.body.id);

    // The flush writes its batch and marks it flushed in one transaction; holding the marker
    // table stops it half-way, with its transaction open, which is when it is killed.
    const blocker: Connection = await adminConnection(cluster.stack);
    await blocker.query(`USE ${cluster.stack.mysql.database}`);
    await blocker.query('LOCK TABLES leaderboard_flushes WRITE');
    const first = await startWorker();
    for (let i = 0; i < 7; i++) {
      const reply = await api('POST', `/v1/rooms/${roomId}/messages`, {
        token: author.accessToken,
        body: { body: `message ${i}` },
        headers: { 'Idempotency-Key': `crash-${i}` },
      });
      expect(reply.status).toBe(201);
    }
    const queue = jobs.queue(QUEUES.leaderboards);
    const active = await eventually(
      () => queue.getActive(),
      (found) => found.some((job) => job.name === 'flush'),
    );
    const flush = active.find((job) => job.name === 'flush')!;

    await first.stop('SIGKILL');
    await blocker.query('UNLOCK TABLES');
    await blocker.end();
    // Nothing of the killed attempt reached MySQL: its transaction died with its connection.
    const scoresNow = () =>
      adminQuery<{ period_key: string; score: number }>(
        cluster.stack,
        'SELECT period_key, score FROM leaderboard_scores WHERE room_id = ? AND user_id = ?',
        [roomId, author.id],
      );

    await startWorker();
    const finished = await eventually(
      async () => (await queue.getJob(flush.id!))?.getState(),
      (state) => state === 'completed',
      20_000,
    );
    expect(finished).toBe('completed');
    // Room creation (5) and seven messages (1 each), in every period: once, not twice.
    const scores = await scoresNow();
    expect(scores.map((row) => Number(row.score))).toEqual([12, 12, 12]);
    const batches = await adminQuery<{ n: number }>(
      cluster.stack,
      'SELECT COUNT(*) AS n FROM leaderboard_flushes',
    );
    expect(Number(batches[0]!.n)).toBe(1);
    expect((await queue.getJob(flush.id!))?.stalledCounter).toBe(1);
  });
});
