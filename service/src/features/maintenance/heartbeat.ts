import type { Job } from 'bullmq';
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

/** Tracks job progress for liveness: stalled when nothing completed within `toleranceMs`. */
export class ProgressWatch {
  private lastProgressAt = Date.now();

  constructor(private readonly toleranceMs: number) {}

  recordProgress(): void {
    this.lastProgressAt = Date.now();
  }

  status(): { alive: boolean; detail: Record<string, unknown> } {
    const idleMs = Date.now() - this.lastProgressAt;
    return {
      alive: idleMs <= this.toleranceMs,
      detail: { lastJobCompletedMsAgo: idleMs, toleranceMs: this.toleranceMs },
    };
  }
}
