import type { Job } from 'bullmq';
import type { JobQueues } from './jobs.js';
import { QUEUES, type QueueName } from './queues.js';

export interface DeadLetter {
  queue: QueueName;
  id: string;
  name: string;
  attempts: number;
  failedAt: string | undefined;
  lastError: string;
  data: unknown;
}

export class UnknownQueue extends Error {
  constructor(name: string) {
    super(`no queue "${name}"; the queues are: ${Object.values(QUEUES).join(', ')}`);
  }
}

export function queueNamed(name: string): QueueName {
  const found = Object.values(QUEUES).find((queue) => queue === name);
  if (!found) throw new UnknownQueue(name);
  return found;
}

function deadLetter(queue: QueueName, job: Job): DeadLetter {
  return {
    queue,
    id: job.id ?? '',
    name: job.name,
    attempts: job.attemptsMade,
    failedAt: job.finishedOn ? new Date(job.finishedOn).toISOString() : undefined,
    lastError: job.failedReason,
    data: job.data,
  };
}

/**
 * The jobs that exhausted their attempts, newest first. BullMQ keeps them in the queue's failed set
 * (a job with attempts left waits in `delayed` instead), with the error of its last attempt.
 */
export async function listDeadLetters(jobs: JobQueues, queue?: QueueName): Promise<DeadLetter[]> {
  const queues = queue ? [queue] : Object.values(QUEUES);
  const letters = await Promise.all(
    queues.map(async (name) => (await jobs.queue(name).getFailed()).map((job) => deadLetter(name, job))),
  );
  return letters.flat().sort((a, b) => (b.failedAt ?? '').localeCompare(a.failedAt ?? ''));
}

export class NotADeadLetter extends Error {}

/**
 * Runs dead letters again with a fresh set of attempts: the one given by id, or all of the queue's.
 * Returns the ids sent back to the queue.
 */
export async function redrive(
  jobs: JobQueues,
  queue: QueueName,
  which: { id: string } | 'all',
): Promise<string[]> {
  const target = jobs.queue(queue);
  const candidates = which === 'all' ? await target.getFailed() : [await target.getJob(which.id)];
  const redriven: string[] = [];
  for (const job of candidates) {
    if (!job) throw new NotADeadLetter(`no job ${which === 'all' ? '' : which.id} on queue ${queue}`);
    const state = await job.getState();
    if (state !== 'failed')
      throw new NotADeadLetter(`job ${job.id} on queue ${queue} is ${state}, not a dead letter`);
    await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
    redriven.push(job.id ?? '');
  }
  return redriven;
}
