import type { Job, Queue } from 'bullmq';
import { sql } from 'drizzle-orm';
import { z } from 'zod';
import { defineJob, handle } from '../../platform/jobs.js';
import type { JobSchedule } from '../../platform/job-workers.js';
import type { Database } from '../../platform/mysql.js';
import { QUEUES } from '../../platform/queues.js';

export const HEARTBEAT_JOB = 'heartbeat';

export const heartbeatJob = defineJob({
  queue: QUEUES.maintenance,
  name: HEARTBEAT_JOB,
  data: z.object({}),
});

/**
 * A job scheduled through the same Redis and queues as real work. Its completions are the worker's
 * liveness signal: a worker whose Redis connection hung (BullMQ < 6.3.3 could) or whose event loop
 * is stuck stops completing it, and /livez says so, where a ping would still pass. It has a queue
 * of its own concerns (maintenance), so an hour-long backup does not starve it.
 */
export function heartbeatJobs(db: Database, everyMs: number) {
  return {
    handlers: [handle(heartbeatJob, (_data, job) => runHeartbeat(db, job))],
    schedules: [{ kind: heartbeatJob, data: {}, every: everyMs }] satisfies JobSchedule[],
  };
}

/** Proves the worker's MySQL path works too: one round trip to the primary, returned as the result. */
export async function runHeartbeat(db: Database, job: Job): Promise<{ databaseTime: string; jobId: string }> {
  const rows = await db.write((database) => database.execute(sql`SELECT UTC_TIMESTAMP(3) AS now`));
  const [first] = rows[0] as unknown as { now: Date }[];
  return { databaseTime: new Date(first!.now).toISOString(), jobId: job.id ?? '' };
}

/**
 * How long the heartbeat queue's most overdue job has waited for a worker: the oldest waiting job,
 * or a delayed one (the next run of a schedule) whose time has come, since nothing but a worker
 * promotes it. 0 when nothing is due.
 */
export async function overdueMs(queue: Queue, now = Date.now()): Promise<number> {
  const [[waiting], [delayed]] = (await Promise.all([
    queue.getJobs(['waiting', 'prioritized'], 0, 0, true),
    queue.getJobs(['delayed'], 0, 0, true),
  ])) as [(Job | undefined)[], (Job | undefined)[]];
  return Math.max(
    0,
    waiting ? now - waiting.timestamp : 0,
    delayed ? now - (delayed.timestamp + (delayed.delay ?? 0)) : 0,
  );
}

/**
 * Liveness as job progress, for one worker pod among several sharing the queues. A pod is alive
 * when it completed a job within the tolerance, or when no heartbeat has waited that long for a
 * worker: with several pods, one schedule's runs go to whichever pod asks first, and an idle pod
 * may complete none for minutes while all is well. A hung pod is still found when it matters: once
 * every pod is stuck, heartbeats go untaken, and each pod's probe fails until it is restarted. A
 * Redis that cannot be read is an outage for readiness, not a reason to restart: alive.
 */
export class ProgressWatch {
  private lastProgressAt = Date.now();

  constructor(
    private readonly toleranceMs: number,
    private readonly heartbeatOverdueMs: () => Promise<number>,
  ) {}

  recordProgress(): void {
    this.lastProgressAt = Date.now();
  }

  async status(): Promise<{ alive: boolean; detail: Record<string, unknown> }> {
    const idleMs = Date.now() - this.lastProgressAt;
    const detail: Record<string, unknown> = { lastJobCompletedMsAgo: idleMs, toleranceMs: this.toleranceMs };
    if (idleMs <= this.toleranceMs) return { alive: true, detail };
    try {
      const overdue = await this.heartbeatOverdueMs();
      return { alive: overdue <= this.toleranceMs, detail: { ...detail, heartbeatOverdueMs: overdue } };
    } catch (error) {
      return { alive: true, detail: { ...detail, heartbeatOverdue: `unknown: ${(error as Error).message}` } };
    }
  }
}
