import { Queue, type DefaultJobOptions, type Job, type Processor, Worker } from 'bullmq';
import { Gauge, type Registry } from 'prom-client';
import type { Config } from '../config.js';
import { createRedis } from './redis.js';

export const QUEUE_PREFIX = 'parley';
export const QUEUES = { maintenance: 'maintenance' } as const;
export type QueueName = (typeof QUEUES)[keyof typeof QUEUES];

// Retries with exponential backoff; completed jobs are trimmed, failed ones kept a week for the
// dead-letter record.
export const DEFAULT_JOB_OPTIONS: DefaultJobOptions = {
  attempts: 5,
  backoff: { type: 'exponential', delay: 1_000 },
  removeOnComplete: { age: 3_600, count: 1_000 },
  removeOnFail: { age: 7 * 24 * 3_600 },
};

export function createQueue(config: Config, name: QueueName): Queue {
  return new Queue(name, {
    connection: createRedis(config.redis, 'bullmq', `queue-${name}`),
    prefix: QUEUE_PREFIX,
    defaultJobOptions: DEFAULT_JOB_OPTIONS,
  });
}

export function createWorker<T>(config: Config, name: QueueName, processor: Processor<T>, concurrency = 4) {
  return new Worker<T>(name, processor, {
    connection: createRedis(config.redis, 'bullmq', `worker-${name}`),
    prefix: QUEUE_PREFIX,
    concurrency,
  });
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
