import { v7 as uuidv7 } from 'uuid';
import { z } from 'zod';
import { defineJob, type JobQueues } from '../../platform/jobs.js';
import { QUEUES } from '../../platform/queues.js';

/**
 * Writes one room's pending awards to MySQL as one batch. The batch id is made when the job is added
 * and is its job id: a retry, a redrive or a re-add of the same batch is the same job, and the batch's
 * Redis key and its row in leaderboard_flushes are named by it, so it is applied once.
 */
export const LEADERBOARD_FLUSH = defineJob({
  queue: QUEUES.leaderboards,
  name: 'flush',
  data: z.object({ roomId: z.uuid(), batchId: z.uuid() }),
  options: (data) => ({ jobId: data.batchId }),
});

/** Schedules the flush of rooms whose awards were left without one (see sweep in jobs.ts). */
export const LEADERBOARD_SWEEP = defineJob({
  queue: QUEUES.leaderboards,
  name: 'sweep',
  data: z.object({}),
});

export const SWEEP_EVERY_MS = 60_000;

/**
 * Makes sure a flush of the room is coming, at most one per interval: a new job runs `intervalMs`
 * from now, and while one waits, adding another does nothing. `keepLastIfActive` rather than a TTL
 * on the deduplication: while a flush runs, an add is kept and becomes the next job once it ends,
 * so an award that arrives after a flush took the pending hash always has a flush after it, and two
 * flushes of one room never run at once.
 */
export async function scheduleFlush(jobs: JobQueues, roomId: string, intervalMs: number): Promise<void> {
  await jobs.add(
    LEADERBOARD_FLUSH,
    { roomId, batchId: uuidv7() },
    { delay: intervalMs, deduplication: { id: `leaderboard-flush:${roomId}`, keepLastIfActive: true } },
  );
}
