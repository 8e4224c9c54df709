import { Queue, type DefaultJobOptions, type Job, type Processor, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { Gauge, type Registry } from 'prom-client';
import type { Config, JobsConfig } from '../config.js';
import { createRedis } from './redis.js';

export const QUEUE_PREFIX = 'parley';
// One queue per concern, so a flood of one kind (a backlog of uploads to verify) never delays
// another (a leaderboard flush), and each has its own concurrency and metrics.
export const QUEUES = {
  maintenance: 'maintenance',
  leaderboards: 'leaderboards',
  attachments: 'attachments',
  backups: 'backups',
} as const;
export type QueueName = (typeof QUEUES)[keyof typeof QUEUES];

/**
 * Retries with exponential backoff and jitter (a burst of failures, say every upload verification
 * during an S3 blip, comes back spread out, not as the same burst). Completed jobs are trimmed;
 * failed ones, which exhausted their attempts, are the dead letters: kept a fortnight for
 * `npm run jobs -- dead` and redrive.
 */
export function jobOptions(jobs: JobsConfig): DefaultJobOptions {
  return {
    attempts: jobs.attempts,
    backoff: { type: 'exponential', delay: jobs.backoffMs, jitter: 0.5 },
    removeOnComplete: { age: 3_600, count: 1_000 },
    removeOnFail: { age: 14 * 24 * 3_600 },
  };
}

// BullMQ treats a connection passed as an instance as shared and never quits it; ours are made for
// one queue or worker each (Sentinel-aware, see createRedis), so each closes its own after itself.
async function quit(connection: Redis): Promise<void> {
  await connection.quit().catch(() => connection.disconnect());
}

class QueueOwningItsConnection extends Queue {
  constructor(
    name: QueueName,
    private readonly ownConnection: Redis,
    defaultJobOptions: DefaultJobOptions,
  ) {
    super(name, { connection: ownConnection, prefix: QUEUE_PREFIX, defaultJobOptions });
  }

  override async close(): Promise<void> {
    await super.close();
    await quit(this.ownConnection);
  }
}

class WorkerOwningItsConnection<T> extends Worker<T> {
  constructor(
    name: QueueName,
    processor: Processor<T>,
    jobs: JobsConfig,
    private readonly ownConnection: Redis,
  ) {
    super(name, processor, {
      connection: ownConnection,
      prefix: QUEUE_PREFIX,
      concurrency: jobs.concurrency[name],
      // A worker that dies mid-job (SIGKILL, a lost node) stops renewing the lock; once it lapses,
      // another worker's stalled-job check hands the job to a live worker.
      lockDuration: jobs.lockMs,
      stalledInterval: jobs.lockMs,
    });
  }

  /** Waits for the running jobs (BullMQ's close has no bound: the lifecycle gives it one), then quits. */
  override async close(force = false): Promise<void> {
    await super.close(force);
    await quit(this.ownConnection);
  }
}

export function createQueue(config: Pick<Config, 'redis' | 'jobs'>, name: QueueName): Queue {
  return new QueueOwningItsConnection(
    name,
    createRedis(config.redis, 'bullmq', `queue-${name}`),
    jobOptions(config.jobs),
  );
}

export function createWorker<T>(
  config: Pick<Config, 'redis' | 'jobs'>,
  name: QueueName,
  processor: Processor<T>,
): Worker<T> {
  return new WorkerOwningItsConnection(
    name,
    processor,
    config.jobs,
    createRedis(config.redis, 'bullmq', `worker-${name}`),
  );
}

/**
 * Depth and age of each queue, read at scrape time: the worker's HPA/KEDA scales on depth, and the
 * age of the oldest waiting job is what an alert should watch.
 */
export function registerQueueMetrics(registry: Registry, queues: Queue[]): void {
  new Gauge({
    name: 'parley_queue_jobs',
    help: 'Jobs per queue and state',
    labelNames: ['queue', 'state'] as const,
    registers: [registry],
    async collect() {
      for (const queue of queues) {
        // `failed` holds only jobs that exhausted their attempts: the dead letters.
        const counts = await queue.getJobCounts('waiting', 'prioritized', 'delayed', 'active', 'failed');
        for (const [state, count] of Object.entries(counts)) this.set({ queue: queue.name, state }, count);
      }
    },
  });
  new Gauge({
    name: 'parley_queue_oldest_waiting_seconds',
    help: 'Age of the oldest waiting job per queue (0 when none waits)',
    labelNames: ['queue'] as const,
    registers: [registry],
    async collect() {
      for (const queue of queues) {
        const [oldest] = (await queue.getJobs(['waiting'], 0, 0, true)) as (Job | undefined)[];
        this.set({ queue: queue.name }, oldest ? (Date.now() - oldest.timestamp) / 1000 : 0);
      }
    },
  });
}
