import { DelayedError, UnrecoverableError, type Job, type Worker } from 'bullmq';
import { Counter, Histogram, type Registry } from 'prom-client';
import type { Config } from '../config.js';
import { parseJobData, type JobHandler, type JobKind, type JobQueues } from './jobs.js';
import type { Logger } from './logger.js';
import { createWorker, QUEUES, type QueueName } from './queues.js';

/** Repeatable work: BullMQ job schedulers, one per id however many worker pods upsert it. */
export interface JobSchedule<Data = unknown> {
  readonly kind: JobKind<Data>;
  readonly data: Data;
  /** Every so many milliseconds, or on a cron pattern (UTC). */
  readonly every?: number;
  readonly pattern?: string;
}

export interface JobWorkers {
  /** Queues that have workers in this process. */
  readonly queues: QueueName[];
  /**
   * Stops taking jobs and waits for the running ones. What is still running after `graceMs` is
   * handed back (moved to the queue again, not failed): another worker takes it at once, so a
   * rollout never turns a long job into a dead letter.
   */
  close(graceMs: number): Promise<void>;
}

interface RunnerOptions {
  config: Pick<Config, 'redis' | 'jobs'>;
  handlers: readonly JobHandler[];
  logger: Logger;
  registry: Registry;
  /** Called after every completed job: the worker's liveness is job progress. */
  onCompleted?: (job: Job) => void;
}

class HandedBack extends Error {}

function jobMetrics(registry: Registry) {
  const labelNames = ['queue', 'name'] as const;
  return {
    completed: new Counter({
      name: 'parley_jobs_completed_total',
      help: 'Jobs completed by this worker process',
      labelNames,
      registers: [registry],
    }),
    failed: new Counter({
      name: 'parley_jobs_failed_total',
      help: 'Failed attempts (a job with attempts left is retried after a backoff)',
      labelNames,
      registers: [registry],
    }),
    dead: new Counter({
      name: 'parley_jobs_dead_total',
      help: 'Jobs that exhausted their attempts (or could never succeed) and became dead letters',
      labelNames,
      registers: [registry],
    }),
    duration: new Histogram({
      name: 'parley_job_duration_seconds',
      help: 'Time from a job attempt starting to its end, by outcome',
      labelNames: ['queue', 'name', 'outcome'] as const,
      buckets: [0.005, 0.025, 0.1, 0.5, 1, 5, 15, 60, 300, 1_800],
      registers: [registry],
    }),
  };
}

/** A job is dead once it will not be tried again: no attempts left, or an unrecoverable error. */
export function isDeadLetter(job: Job, error: Error): boolean {
  return error instanceof UnrecoverableError || job.attemptsMade >= (job.opts.attempts ?? 1);
}

/**
 * One BullMQ Worker per queue that has handlers, each with its queue's concurrency. A job's data is
 * checked against its kind's schema before it runs; data that can never be valid, or a job name no
 * handler knows, fails at once without retries.
 */
export function startJobWorkers({
  config,
  handlers,
  logger,
  registry,
  onCompleted,
}: RunnerOptions): JobWorkers {
  const metrics = jobMetrics(registry);
  const byQueue = new Map<QueueName, Map<string, JobHandler>>();
  for (const handler of handlers) {
    const { queue, name } = handler.kind;
    const named = byQueue.get(queue) ?? new Map<string, JobHandler>();
    if (named.has(name)) throw new Error(`two handlers for job ${queue}/${name}`);
    byQueue.set(queue, named.set(name, handler));
    // Every series from the start, at 0: a rate or an alert then sees the first failure too.
    for (const counter of [metrics.completed, metrics.failed, metrics.dead]) counter.inc({ queue, name }, 0);
  }

  const workers: Worker[] = [...byQueue].map(([queue, named]) => {
    const worker = createWorker(config, queue, async (job: Job, token?: string, signal?: AbortSignal) => {
      const handler = named.get(job.name);
      if (!handler) throw new UnrecoverableError(`no handler for job "${job.name}" on queue ${queue}`);
      let data: unknown;
      try {
        data = parseJobData(handler.kind, job.data);
      } catch (error) {
        throw new UnrecoverableError((error as Error).message);
      }
      const handedBack = new Promise<never>((_, reject) =>
        signal?.addEventListener('abort', () => reject(new HandedBack()), { once: true }),
      );
      try {
        return await Promise.race([handler.run(data, job, signal), handedBack]);
      } catch (error) {
        if (!(error instanceof HandedBack)) throw error;
        // Back to the queue with its attempts untouched; the handler may still be finishing here,
        // which job idempotency makes harmless, and the process exits right after.
        await job.moveToDelayed(Date.now(), token);
        throw new DelayedError();
      }
    });
    worker.on('completed', (job) => {
      metrics.completed.inc({ queue, name: job.name });
      observe(job, 'completed');
      onCompleted?.(job);
    });
    worker.on('failed', (job, error) => {
      if (!job) return;
      metrics.failed.inc({ queue, name: job.name });
      observe(job, 'failed');
      const dead = isDeadLetter(job, error);
      if (dead) metrics.dead.inc({ queue, name: job.name });
      logger[dead ? 'error' : 'warn'](
        { queue, job: job.name, jobId: job.id, attempt: job.attemptsMade, dead, err: error },
        dead ? 'job failed for good: kept as a dead letter' : 'job attempt failed; it will be retried',
      );
    });
    worker.on('error', (error) => logger.error({ err: error, queue }, 'worker error'));
    return worker;

    function observe(job: Job, outcome: string) {
      if (job.processedOn === undefined) return;
      const seconds = ((job.finishedOn ?? Date.now()) - job.processedOn) / 1000;
      metrics.duration.observe({ queue, name: job.name, outcome }, seconds);
    }
  });

  return {
    queues: [...byQueue.keys()],
    async close(graceMs) {
      const handBack = setTimeout(() => {
        for (const worker of workers) worker.cancelAllJobs('the worker is shutting down');
      }, graceMs);
      try {
        await Promise.all(workers.map((worker) => worker.close()));
      } finally {
        clearTimeout(handBack);
      }
    },
  };
}

/**
 * Upserts each schedule as a BullMQ job scheduler, keyed by its kind: however many worker pods
 * start, each schedule exists once and each of its runs is one job. Schedulers on these queues that
 * no longer have a schedule (removed in a release) are removed, so they stop firing.
 */
export async function upsertSchedules(jobs: JobQueues, schedules: readonly JobSchedule[]): Promise<void> {
  const wanted = new Map<QueueName, Set<string>>(Object.values(QUEUES).map((queue) => [queue, new Set()]));
  for (const schedule of schedules) {
    const { queue, name } = schedule.kind;
    const data = parseJobData(schedule.kind, schedule.data);
    await jobs
      .queue(queue)
      .upsertJobScheduler(
        name,
        { every: schedule.every, pattern: schedule.pattern, tz: schedule.pattern ? 'UTC' : undefined },
        { name, data, opts: schedule.kind.options?.(data) },
      );
    wanted.get(queue)!.add(name);
  }
  for (const [queue, names] of wanted) {
    const existing = await jobs.queue(queue).getJobSchedulers();
    for (const scheduler of existing) {
      if (!names.has(scheduler.key)) await jobs.queue(queue).removeJobScheduler(scheduler.key);
    }
  }
}
