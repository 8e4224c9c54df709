import type { Job, Queue } from 'bullmq';
import { sql } from 'drizzle-orm';
import type { Database } from '../../platform/mysql.js';

export const HEARTBEAT_JOB = 'heartbeat';
export const HEARTBEAT_EVERY_MS = 15_000;

/**
 * A job scheduled every 15 s through the same Redis and queue as real work. Its completions are
 * the worker's liveness signal: a worker whose Redis connection hung (BullMQ < 6.3.3 could) or whose
 * event loop is stuck stops completing it, and /livez says so, where a ping would still pass.
 */
export async function scheduleHeartbeat(queue: Queue): Promise<void> {
  await queue.upsertJobScheduler(
    HEARTBEAT_JOB,
    { every: HEARTBEAT_EVERY_MS },
    { name: HEARTBEAT_JOB, data: {} },
  );
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
