import type { Job, JobsOptions, Queue } from 'bullmq';
import type { z } from 'zod';
import type { QueueName } from './queues.js';

/**
 * A kind of job: the queue it goes to, the shape its data must have, and how a duplicate collapses
 * into the job already there. The API, the worker and `npm run jobs` all add jobs through a kind,
 * so the data is checked where it is made and again where it runs (a job redriven weeks later, or
 * written by an older release, is checked against today's schema before it touches anything).
 */
export interface JobKind<Data> {
  readonly queue: QueueName;
  readonly name: string;
  readonly data: z.ZodType<Data>;
  /**
   * Per-job options, typically the idempotency key: a `jobId` derived from the data (BullMQ ignores
   * an add whose id exists) or a `deduplication` id with a ttl (at most one job per window).
   */
  // A method, not a function property: a kind of any data can then stand in a list of kinds.
  options?(data: Data): JobsOptions;
}

/**
 * What the worker runs for one kind. The result is kept with the completed job. `signal` aborts
 * when the worker shuts down past its grace: the job is handed back to the queue, and a handler
 * holding something open (an upload, a transaction) should let go of it.
 */
export interface JobHandler<Data = unknown> {
  readonly kind: JobKind<Data>;
  run(data: Data, job: Job, signal?: AbortSignal): Promise<unknown>;
}

export function defineJob<Data>(kind: JobKind<Data>): JobKind<Data> {
  return kind;
}

export function handle<Data>(
  kind: JobKind<Data>,
  run: (data: Data, job: Job, signal?: AbortSignal) => Promise<unknown>,
): JobHandler<Data> {
  return { kind, run };
}

/** Where jobs are added: one Queue per concern, opened on first use. */
export interface JobQueues {
  add<Data>(kind: JobKind<Data>, data: Data, options?: JobsOptions): Promise<Job>;
  queue(name: QueueName): Queue;
  close(): Promise<void>;
}

export class InvalidJobData extends Error {
  constructor(kind: JobKind<unknown>, issues: z.core.$ZodIssue[]) {
    const detail = issues.map((issue) => `${issue.path.join('.') || '(data)'}: ${issue.message}`).join('; ');
    super(`invalid data for job ${kind.queue}/${kind.name}: ${detail}`);
    this.name = 'InvalidJobData';
  }
}

/** The kind's schema applied to data, or an InvalidJobData naming every problem. */
export function parseJobData<Data>(kind: JobKind<Data>, data: unknown): Data {
  const parsed = kind.data.safeParse(data);
  if (!parsed.success) throw new InvalidJobData(kind as JobKind<unknown>, parsed.error.issues);
  return parsed.data;
}

export function queuesFrom(open: (name: QueueName) => Queue): JobQueues {
  const opened = new Map<QueueName, Queue>();
  const queue = (name: QueueName) => {
    let found = opened.get(name);
    if (!found) {
      found = open(name);
      opened.set(name, found);
    }
    return found;
  };
  return {
    queue,
    async add(kind, data, options) {
      const valid = parseJobData(kind, data);
      return queue(kind.queue).add(kind.name, valid, { ...kind.options?.(valid), ...options });
    },
    async close() {
      await Promise.all([...opened.values()].map((opened) => opened.close()));
      opened.clear();
    },
  };
}
