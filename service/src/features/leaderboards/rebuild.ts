import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import mysql, { type RowDataPacket } from 'mysql2/promise';
import type { Config } from '../../config.js';
import type { Logger } from '../../platform/logger.js';
import { tlsOptions } from '../../platform/mysql.js';
import { ALL_TIME_KEY, periodsAt } from './periods.js';
import { boardKeys, expiresAt, leaderboardKeys, scriptedPipeline, withLeaderboardScripts } from './store.js';

export interface RebuildDeps {
  redis: Redis;
  config: Pick<Config, 'mysql' | 'leaderboards'>;
  logger?: Logger;
}

export interface RebuildResult {
  week: string;
  month: string;
  /** Rooms whose three boards were replaced (the global boards come on top). */
  rooms: number;
  /** Rows read from MySQL. */
  rows: number;
  /** Batches in Redis that the MySQL snapshot already held, so not added twice. */
  batchesInSnapshot: number;
  durationMs: number;
}

const PAGE_ROWS = 5_000;
const LEASE_MS = 60_000;
// Temporary boards outlive a rebuild that dies half-way by at most this.
const TEMP_TTL_SECONDS = 3_600;

/**
 * Restores the current week's, month's and all-time boards, per room and global, from MySQL: what
 * `npm run jobs -- rebuild-leaderboards` runs after Redis lost them.
 *
 * Safe while awards continue, with no pause. The scores are read in one consistent snapshot (the
 * global board is the sum over rooms) into temporary keys; then, per board, one script adds every
 * award still in Redis that the snapshot does not hold (pending hashes, and batches not flushed in
 * the snapshot: leaderboard_flushes, read in that snapshot, says which) and swaps the board in,
 * atomically with the awards. The trade-off: while the rebuild runs (its lease is held from before
 * the snapshot), a flush keeps its batch in Redis instead of dropping it, since a batch flushed
 * after the snapshot is in neither the snapshot nor a pending hash; the next sweep drops those. The
 * snapshot is on the primary: a lagging replica's would miss batches flushed (and dropped) before
 * the lease was taken. Awards lost with Redis itself (pending, not yet flushed) cannot come back.
 */
export async function rebuildLeaderboards(deps: RebuildDeps, at: Date = new Date()): Promise<RebuildResult> {
  const startedAt = Date.now();
  const redis = withLeaderboardScripts(deps.redis);
  const keys = leaderboardKeys;
  const token = randomUUID();
  if ((await redis.set(keys.rebuilding, token, 'PX', LEASE_MS, 'NX')) !== 'OK') {
    throw new Error(
      `a leaderboard rebuild is already running (${keys.rebuilding}); let it finish, or its lease lapse`,
    );
  }
  const renew = setInterval(() => {
    void redis.lbRenewLease(keys.rebuilding, token, LEASE_MS).catch(() => undefined);
  }, LEASE_MS / 4);
  const { mysql: db } = deps.config;
  let connection: mysql.Connection | undefined;
  try {
    connection = await mysql.createConnection({
      host: db.primary.host,
      port: db.primary.port,
      user: db.user,
      password: db.password,
      database: db.database,
      connectTimeout: 5_000,
      timezone: 'Z',
      supportBigNumbers: true,
      ssl: tlsOptions(db),
    });
    const periods = periodsAt(at);
    await connection.query('SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ');
    await connection.query('START TRANSACTION WITH CONSISTENT SNAPSHOT');

    const rooms = new Set<string>();
    let rows = 0;
    for (const periodKey of [periods.week, periods.month, ALL_TIME_KEY]) {
      rows += await copyPeriod(connection, redis, token, periodKey, rooms);
    }

    // Which of the batches now in Redis the snapshot holds: a batch flushed after the snapshot is
    // not, and any batch taken from now on cannot be.
    const batchesByRoom = new Map<string, string[]>();
    for (const roomId of await redis.smembers(keys.batchRooms)) {
      batchesByRoom.set(roomId, await redis.hkeys(keys.batches(roomId)));
    }
    const inSnapshot = new Set<string>();
    const candidates = [...batchesByRoom.values()].flat();
    for (let start = 0; start < candidates.length; start += PAGE_ROWS) {
      const [found] = await connection.query<RowDataPacket[]>(
        'SELECT batch_id FROM leaderboard_flushes WHERE batch_id IN (?)',
        [candidates.slice(start, start + PAGE_ROWS)],
      );
      for (const row of found) inSnapshot.add(String(row.batch_id));
    }
    await connection.query('COMMIT');

    const weekExpiry = expiresAt(periods.weekEndsAt, deps.config.leaderboards.periodGraceSeconds);
    const monthExpiry = expiresAt(periods.monthEndsAt, deps.config.leaderboards.periodGraceSeconds);
    const periodArgs = [periods.week, periods.month, weekExpiry, monthExpiry];
    const temps = (roomId: string | null) =>
      [periods.week, periods.month, ALL_TIME_KEY].map((key) => keys.rebuildTemp(token, roomId, key));
    for (const roomId of await redis.smembers(keys.pendingRooms)) rooms.add(roomId);
    for (const roomId of batchesByRoom.keys()) rooms.add(roomId);
    const roomIds = [...rooms];
    for (let start = 0; start < roomIds.length; start += 500) {
      const finish = redis.pipeline();
      for (const roomId of roomIds.slice(start, start + 500)) {
        const excluded = (batchesByRoom.get(roomId) ?? []).filter((id) => inSnapshot.has(id));
        scriptedPipeline(finish).lbFinishRoom(
          ...temps(roomId),
          ...boardKeys(roomId, periods),
          keys.pending(roomId),
          keys.batches(roomId),
          keys.rebuilding,
          token,
          ...periodArgs,
          keys.batchPrefix,
          ...excluded,
        );
      }
      const failed = (await finish.exec())?.find(([error]) => error !== null)?.[0];
      if (failed) throw failed;
    }
    await redis.lbFinishGlobal(
      ...temps(null),
      ...boardKeys(null, periods),
      keys.pendingRooms,
      keys.batchRooms,
      keys.rebuilding,
      token,
      ...periodArgs,
      keys.pendingPrefix,
      keys.batchesPrefix,
      keys.batchPrefix,
      ...inSnapshot,
    );
    const result: RebuildResult = {
      week: periods.week,
      month: periods.month,
      rooms: roomIds.length,
      rows,
      batchesInSnapshot: inSnapshot.size,
      durationMs: Date.now() - startedAt,
    };
    deps.logger?.info(result, 'leaderboards rebuilt from MySQL');
    return result;
  } finally {
    clearInterval(renew);
    await connection?.end().catch(() => connection?.destroy());
    await redis.lbReleaseLease(keys.rebuilding, token);
    // The batches flushes kept for this rebuild are no use to anyone now.
    for (const roomId of await redis.smembers(keys.batchRooms)) {
      await redis.lbPrune(keys.batches(roomId), keys.batchRooms, keys.rebuilding, roomId, keys.batchPrefix);
    }
  }
}

/**
 * One period's scores, page by page in (user, room) order (the (period_key, user_id) index), into
 * each room's temporary board and, summed over the user's rooms, the global one. Answers the rows read.
 */
async function copyPeriod(
  connection: mysql.Connection,
  redis: Redis,
  token: string,
  periodKey: string,
  rooms: Set<string>,
): Promise<number> {
  const globalTemp = leaderboardKeys.rebuildTemp(token, null, periodKey);
  let after = { userId: '', roomId: '' };
  let user: { id: string; score: number } | undefined;
  let rows = 0;
  for (;;) {
    const [page] = await connection.query<RowDataPacket[]>(
      `SELECT room_id, user_id, score FROM leaderboard_scores
       WHERE period_key = ? AND (user_id > ? OR (user_id = ? AND room_id > ?))
       ORDER BY user_id, room_id LIMIT ?`,
      [periodKey, after.userId, after.userId, after.roomId, PAGE_ROWS],
    );
    if (page.length === 0) break;
    const write = redis.pipeline();
    const touched = new Set<string>();
    for (const row of page) {
      const roomId = String(row.room_id);
      const userId = String(row.user_id);
      const score = Number(row.score);
      rooms.add(roomId);
      const roomTemp = leaderboardKeys.rebuildTemp(token, roomId, periodKey);
      write.zadd(roomTemp, -score, userId);
      touched.add(roomTemp);
      if (user && user.id !== userId) write.zadd(globalTemp, -user.score, user.id);
      user = user && user.id === userId ? { id: userId, score: user.score + score } : { id: userId, score };
    }
    touched.add(globalTemp);
    for (const key of touched) write.expire(key, TEMP_TTL_SECONDS);
    const failed = (await write.exec())?.find(([error]) => error !== null)?.[0];
    if (failed) throw failed;
    rows += page.length;
    const last = page.at(-1)!;
    after = { userId: String(last.user_id), roomId: String(last.room_id) };
  }
  if (user) {
    await redis.zadd(globalTemp, -user.score, user.id);
    await redis.expire(globalTemp, TEMP_TTL_SECONDS);
  }
  return rows;
}
