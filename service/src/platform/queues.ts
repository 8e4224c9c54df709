import { Queue, type DefaultJobOptions, type Job, type Processor, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { Gauge, type Registry } from 'prom-client';
import type { Config } from '../config.js';
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

// Retries with exponential backoff; completed jobs are trimmed, failed ones kept a week for the
// dead-letter record.
export const DEFAULT_JOB_OPTIONS: DefaultJobOptions = {
  attempts: 5,
  backoff: { type: 'exponential', delay: 1_000 },
  removeOnComplete: { age: 3_600, count: 1_000 },
  removeOnFail: { age: 7 * 24 * 3_600 },
};

// BullMQ treats a connection passed as an instance as shared and never quits it; ours are made for
// one queue or worker each (Sentinel-aware, see createRedis), so each closes its own after itself.
async function quit(connection: Redis): Promise<void> {
  await connection.quit().catch(() => connection.disconnect());
}

class QueueOwningItsConnection extends Queue {
  constructor(
    name: QueueName,
    private readonly ownConnection: Redis,
  ) {
    super(name, { connection: ownConnection, prefix: QUEUE_PREFIX, defaultJobOptions: DEFAULT_JOB_OPTIONS });
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
    concurrency: number,
    private readonly ownConnection: Redis,
  ) {
    super(name, processor, { connection: ownConnection, prefix: QUEUE_PREFIX, concurrency });
  }

  /** Waits for the running jobs (BullMQ's close has no bound: the lifecycle gives it one), then quits. */
  override async close(force = false): Promise<void> {
    await super.close(force);
    await quit(this.ownConnection);
  }
}

export function createQueue(config: Config, name: QueueName): Queue {
  return new QueueOwningItsConnection(name, createRedis(config.redis, 'bullmq', `queue-${name}`));
}

export function createWorker<T>(
  config: Config,
  name: QueueName,
  processor: Processor<T>,
  concurrency = 4,
): Worker<T> {
  return new WorkerOwningItsConnection(
    name,
    processor,
    concurrency,
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
        const counts = await queue.getJobCounts('waiting', 'delayed', 'active', 'failed', 'prioritized');
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
