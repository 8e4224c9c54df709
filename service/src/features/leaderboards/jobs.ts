import type { Redis } from 'ioredis';
import type { Config } from '../../config.js';
import { handle, type JobQueues } from '../../platform/jobs.js';
import type { Database } from '../../platform/mysql.js';
import { roomChannel, roomEventPayload } from '../rooms/events.js';
import { LEADERBOARD_FLUSH, LEADERBOARD_SWEEP, scheduleFlush, SWEEP_EVERY_MS } from './kinds.js';
import { ALL_TIME_KEY, PERIODS } from './periods.js';
import { leaderboardsRepository, type ScoreDelta } from './repository.js';
import { leaderboardKeys, parsePendingField, scriptedPipeline, withLeaderboardScripts } from './store.js';

/** What the leaderboard jobs need of the worker's dependencies. */
export interface LeaderboardJobDeps {
  db: Database;
  redis: Redis;
  config: Pick<Config, 'leaderboards' | 'instanceId'>;
  jobs: JobQueues;
}

/** How long a batch retained for a running rebuild outlives it, should that rebuild die. */
const RETAINED_BATCH_TTL_SECONDS = 86_400;

export interface FlushResult {
  batchId: string;
  /** What happened to the batch: written now, written by an earlier attempt, or nothing to write. */
  outcome: 'applied' | 'already-applied' | 'empty';
  rows: number;
  points: number;
}

/** A batch's awards summed per (period, user): the rows its transaction adds to. */
export function deltasOf(fields: string[]): ScoreDelta[] {
  const sums = new Map<string, ScoreDelta>();
  const add = (periodKey: string, userId: string, points: number) => {
    const key = `${periodKey}|${userId}`;
    const row = sums.get(key);
    if (row) row.points += points;
    else sums.set(key, { periodKey, userId, points });
  };
  for (let i = 0; i < fields.length; i += 2) {
    const { userId, week, month } = parsePendingField(fields[i]!);
    const points = Number(fields[i + 1]);
    add(week, userId, points);
    add(month, userId, points);
    add(ALL_TIME_KEY, userId, points);
  }
  return [...sums.values()];
}

/**
 * A room's flush in its steps, each safe to run again: take the pending awards as the batch (or find
 * the batch a failed attempt took), add them to MySQL with the batch's id in one transaction, then
 * drop the batch from Redis and announce the change.
 */
export function leaderboardFlusher(deps: LeaderboardJobDeps) {
  const redis = withLeaderboardScripts(deps.redis);
  const repository = leaderboardsRepository(deps.db);
  const { config } = deps;

  async function take(roomId: string, batchId: string): Promise<string[]> {
    return (await redis.lbTake(
      leaderboardKeys.pending(roomId),
      leaderboardKeys.batch(batchId),
      leaderboardKeys.batches(roomId),
      leaderboardKeys.pendingRooms,
      leaderboardKeys.batchRooms,
      batchId,
      roomId,
      Date.now(),
    )) as string[];
  }

  /** Drops the written batch and, when `announce`, publishes one leaderboard.updated per period. */
  async function settle(roomId: string, batchId: string, announce: boolean): Promise<void> {
    const write = scriptedPipeline(redis.pipeline());
    // Announced before the batch goes: a crash in between announces twice, never not at all.
    if (announce) {
      for (const period of PERIODS) {
        const event = roomEventPayload(config.instanceId, { type: 'leaderboard.updated', roomId, period });
        write.publish(roomChannel(roomId), JSON.stringify(event));
      }
    }
    write.lbSettle(
      leaderboardKeys.batch(batchId),
      leaderboardKeys.batches(roomId),
      leaderboardKeys.batchRooms,
      leaderboardKeys.rebuilding,
      batchId,
      roomId,
      Date.now(),
      RETAINED_BATCH_TTL_SECONDS,
    );
    const replies = await write.exec();
    const failed = replies?.find(([error]) => error !== null)?.[0];
    if (!replies || failed) throw failed ?? new Error('the settle was not answered');
  }

  async function flush({ roomId, batchId }: { roomId: string; batchId: string }): Promise<FlushResult> {
    let result: FlushResult;
    if (await repository.isFlushed(batchId)) {
      // An attempt committed and then died: only its Redis side is left to do.
      const batchLeft = (await redis.exists(leaderboardKeys.batch(batchId))) === 1;
      await settle(roomId, batchId, batchLeft);
      result = { batchId, outcome: 'already-applied', rows: 0, points: 0 };
    } else {
      const fields = await take(roomId, batchId);
      if (fields.length === 0) return { batchId, outcome: 'empty', rows: 0, points: 0 };
      const deltas = deltasOf(fields);
      const applied = await repository.applyBatch(roomId, batchId, deltas);
      await settle(roomId, batchId, true);
      const points = deltas.reduce(
        (sum, delta) => sum + (delta.periodKey === ALL_TIME_KEY ? delta.points : 0),
        0,
      );
      result = applied
        ? { batchId, outcome: 'applied', rows: deltas.length, points }
        : { batchId, outcome: 'already-applied', rows: 0, points: 0 };
    }
    // Awards that came after the take schedule the next flush themselves; this catches those whose
    // schedule was lost, and those that arrived while this job waited out a retry's backoff.
    if ((await redis.exists(leaderboardKeys.pending(roomId))) === 1)
      await scheduleFlush(deps.jobs, roomId, config.leaderboards.flushIntervalMs);
    return result;
  }

  return { take, settle, flush };
}

/**
 * The safety net, every minute: schedules a flush for every room with pending awards (a schedule
 * lost with an API process or a Redis blip), and re-adds the flush of any batch left open for long
 * (its job removed before it succeeded); drops batches a finished rebuild kept.
 */
export async function sweepLeaderboards(
  deps: LeaderboardJobDeps,
): Promise<{ scheduled: number; resumed: number }> {
  const redis = withLeaderboardScripts(deps.redis);
  const intervalMs = deps.config.leaderboards.flushIntervalMs;
  const staleBefore = Date.now() - Math.max(10 * intervalMs, SWEEP_EVERY_MS);
  const pendingRooms = await redis.smembers(leaderboardKeys.pendingRooms);
  for (const roomId of pendingRooms) await scheduleFlush(deps.jobs, roomId, intervalMs);
  let resumed = 0;
  for (const roomId of await redis.smembers(leaderboardKeys.batchRooms)) {
    const open = (await redis.lbPrune(
      leaderboardKeys.batches(roomId),
      leaderboardKeys.batchRooms,
      leaderboardKeys.rebuilding,
      roomId,
      leaderboardKeys.batchPrefix,
    )) as string[];
    for (let i = 0; i < open.length; i += 2) {
      if (Number(open[i + 1]) >= staleBefore) continue;
      // Its job id is the batch id: while that job exists (retrying, or dead and awaiting a
      // redrive) this add does nothing.
      await deps.jobs.add(LEADERBOARD_FLUSH, { roomId, batchId: open[i]! });
      resumed++;
    }
  }
  return { scheduled: pendingRooms.length, resumed };
}

/**
 * The worker's leaderboard handlers and the sweep's schedule (a BullMQ job scheduler, so several
 * worker pods never run one sweep twice).
 */
export function leaderboardsJobs(deps: LeaderboardJobDeps) {
  const flusher = leaderboardFlusher(deps);
  return {
    handlers: [
      handle(LEADERBOARD_FLUSH, (data) => flusher.flush(data)),
      handle(LEADERBOARD_SWEEP, () => sweepLeaderboards(deps)),
    ] as const,
    schedules: [{ kind: LEADERBOARD_SWEEP, every: SWEEP_EVERY_MS, data: {} }],
  };
}
