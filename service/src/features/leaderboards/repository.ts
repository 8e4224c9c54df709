import { eq, inArray } from 'drizzle-orm';
import { leaderboardFlushes, users } from '../../db/schema.js';
import { isDuplicateKey, type Database, type Db } from '../../platform/mysql.js';

/** One row's change: a user's points in one period of the batch's room. */
export interface ScoreDelta {
  periodKey: string;
  userId: string;
  points: number;
}

// Rows per INSERT statement: a busy room's batch stays far below max_allowed_packet.
const ROWS_PER_STATEMENT = 1_000;

export function leaderboardsRepository(db: Database) {
  return {
    async isFlushed(batchId: string): Promise<boolean> {
      const rows = await db.write((database) =>
        database
          .select({ batchId: leaderboardFlushes.batchId })
          .from(leaderboardFlushes)
          .where(eq(leaderboardFlushes.batchId, batchId))
          .limit(1),
      );
      return rows.length === 1;
    },

    /**
     * Adds a batch's deltas to leaderboard_scores and records the batch, in one transaction sent in
     * one round trip. False when the batch was recorded already (a retry after the commit): then
     * nothing is added. Rows go in key order, so two flushes that touch the same rows (a resumed
     * batch beside the room's next one) wait for each other instead of deadlocking.
     */
    async applyBatch(roomId: string, batchId: string, deltas: ScoreDelta[]): Promise<boolean> {
      const sorted = [...deltas].sort(
        (a, b) => compare(a.periodKey, b.periodKey) || compare(a.userId, b.userId),
      );
      const inserts = [];
      for (let start = 0; start < sorted.length; start += ROWS_PER_STATEMENT) {
        const chunk = sorted.slice(start, start + ROWS_PER_STATEMENT);
        inserts.push({
          // VALUES(col), not MySQL 8's `AS new` alias, which MariaDB refuses.
          sql: `INSERT INTO leaderboard_scores (room_id, period_key, user_id, score) VALUES ${chunk
            .map(() => '(?, ?, ?, ?)')
            .join(
              ', ',
            )} ON DUPLICATE KEY UPDATE score = score + VALUES(score), updated_at = CURRENT_TIMESTAMP(3)`,
          values: chunk.flatMap((delta) => [roomId, delta.periodKey, delta.userId, delta.points]),
        });
      }
      try {
        await db.writeScript([
          { sql: 'START TRANSACTION' },
          // First: a second run of the same batch waits here on the key, then finds it taken.
          { sql: 'INSERT INTO leaderboard_flushes (batch_id) VALUES (?)', values: [batchId] },
          ...inserts,
          { sql: 'COMMIT' },
        ]);
        return true;
      } catch (error) {
        if (isDuplicateKey(error)) return false;
        throw error;
      }
    },

    /** Usernames of `ids`, from the replica, and from the primary for any it lacks (a new account). */
    async usernames(ids: string[]): Promise<Map<string, string>> {
      const found = new Map<string, string>();
      const query = (missing: string[]) => (database: Db) =>
        database
          .select({ id: users.id, username: users.username })
          .from(users)
          .where(inArray(users.id, missing));
      if (ids.length === 0) return found;
      for (const row of await db.read(query(ids))) found.set(row.id, row.username);
      const missing = ids.filter((id) => !found.has(id));
      if (missing.length > 0)
        for (const row of await db.write(query(missing))) found.set(row.id, row.username);
      return found;
    },
  };
}

export type LeaderboardsRepository = ReturnType<typeof leaderboardsRepository>;

const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
