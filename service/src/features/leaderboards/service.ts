import type { ChainableCommander, Redis } from 'ioredis';
import { LRUCache } from 'lru-cache';
import type { LeaderboardsConfig } from '../../config.js';
import type { Breaker } from '../../platform/breakers.js';
import type { JobQueues } from '../../platform/jobs.js';
import type { Logger } from '../../platform/logger.js';
import type { RoomsService } from '../rooms/service.js';
import { scheduleFlush } from './kinds.js';
import { periodClock, periodKeyOf, type CurrentPeriods, type Period } from './periods.js';
import type { LeaderboardsRepository } from './repository.js';
import {
  boardKey,
  boardKeys,
  expiresAt,
  leaderboardKeys,
  pendingField,
  scriptedPipeline,
  withLeaderboardScripts,
} from './store.js';

/** What earns points, and how many (config). */
export type AwardEvent = 'message' | 'room-created';

/**
 * Awards points: one script changes the room's and the global boards for the week, the month and all
 * time, and adds the award to the room's pending deltas, which a flush job writes to MySQL. The first
 * award after a flush (the one that starts a pending hash) makes sure the next flush is scheduled.
 */
export function leaderboardAwards(deps: {
  redis: Redis;
  redisBreaker: Breaker;
  jobs: JobQueues;
  config: LeaderboardsConfig;
  logger: Logger;
  periods?: () => CurrentPeriods;
}) {
  const redis = withLeaderboardScripts(deps.redis);
  const currentPeriods = deps.periods ?? periodClock();
  const { config } = deps;
  const points: Record<AwardEvent, number> = {
    message: config.points.message,
    'room-created': config.points.roomCreated,
  };

  const scriptArgs = (roomId: string, userId: string, awarded: number) => {
    const periods = currentPeriods();
    return [
      ...boardKeys(roomId, periods),
      ...boardKeys(null, periods),
      leaderboardKeys.pending(roomId),
      leaderboardKeys.pendingRooms,
      userId,
      awarded,
      expiresAt(periods.weekEndsAt, config.periodGraceSeconds),
      expiresAt(periods.monthEndsAt, config.periodGraceSeconds),
      pendingField(userId, periods),
      roomId,
    ];
  };
  // A lost schedule leaves the awards pending until the sweep finds them, within a minute.
  const ensureFlush = (roomId: string) =>
    scheduleFlush(deps.jobs, roomId, config.flushIntervalMs).catch((error: unknown) =>
      deps.logger.warn({ err: error, roomId }, 'could not schedule a leaderboard flush; the sweep will'),
    );
  const afterAward = (roomId: string) => (error: Error | null, created: unknown) => {
    if (!error && created === 1) void ensureFlush(roomId);
  };

  return {
    /**
     * Adds the award to a pipeline the caller sends: a post's one Redis write after its commit. A
     * failure shows in that write's result, as its other commands' do.
     */
    awardIn(commands: ChainableCommander, event: AwardEvent, roomId: string, userId: string): void {
      if (points[event] === 0) return;
      scriptedPipeline(commands).lbAward(...scriptArgs(roomId, userId, points[event]), afterAward(roomId));
    },

    /**
     * Sends an award on its own. Never rejects: the action that earned it is done already, and an
     * award lost with Redis is logged, as a post's lost event is.
     */
    async award(event: AwardEvent, roomId: string, userId: string): Promise<void> {
      if (points[event] === 0) return;
      try {
        const created = await deps.redisBreaker.run(() =>
          redis.lbAward(...scriptArgs(roomId, userId, points[event])),
        );
        if (created === 1) await ensureFlush(roomId);
      } catch (error) {
        deps.logger.warn({ err: error, roomId, event }, 'a leaderboard award was lost');
      }
    },
  };
}

export type LeaderboardAwards = ReturnType<typeof leaderboardAwards>;

export interface Standing {
  rank: number;
  userId: string;
  username: string | null;
  score: number;
}

export interface Standings {
  period: Period;
  periodKey: string;
  roomId: string | null;
  entries: Standing[];
  me: { rank: number; score: number } | null;
}

/**
 * Reads boards from Redis. Ranks are standard competition ranks ("1224"): equal scores share a rank,
 * the next rank counts everyone ahead. Equal scores are listed by user id, ascending (see store.ts).
 */
export function leaderboardsService(deps: {
  redis: Redis;
  redisBreaker: Breaker;
  rooms: RoomsService;
  repository: LeaderboardsRepository;
  periods?: () => CurrentPeriods;
}) {
  const redis = withLeaderboardScripts(deps.redis);
  const currentPeriods = deps.periods ?? periodClock();
  // Usernames never change, so a process may keep them as long as it likes.
  const usernames = new LRUCache<string, string>({ max: 50_000 });

  async function usernamesOf(ids: string[]): Promise<Map<string, string>> {
    const missing = ids.filter((id) => !usernames.has(id));
    if (missing.length > 0) {
      for (const [id, name] of await deps.repository.usernames(missing)) usernames.set(id, name);
    }
    return new Map(ids.flatMap((id) => (usernames.has(id) ? [[id, usernames.get(id)!]] : [])));
  }

  return {
    /** The top `limit` of a board and the caller's own standing; a room's board needs read access. */
    async standings(
      userId: string,
      query: { period: Period; roomId?: string; limit: number },
    ): Promise<Standings> {
      if (query.roomId !== undefined) await deps.rooms.visibleRoom(userId, query.roomId);
      const periods = currentPeriods();
      const key = boardKey(query.roomId ?? null, query.period, periods);
      const [flat, mine, ahead] = (await deps.redisBreaker.run(() =>
        redis.lbTop(key, query.limit, userId),
      )) as [string[], string?, number?];
      const entries: Standing[] = [];
      for (let i = 0; i < flat.length; i += 2) {
        const score = -Number(flat[i + 1]);
        const previous = entries.at(-1);
        entries.push({
          rank: previous && previous.score === score ? previous.rank : i / 2 + 1,
          userId: flat[i]!,
          username: null,
          score,
        });
      }
      const names = await usernamesOf(entries.map((entry) => entry.userId));
      for (const entry of entries) entry.username = names.get(entry.userId) ?? null;
      return {
        period: query.period,
        periodKey: periodKeyOf(query.period, periods),
        roomId: query.roomId ?? null,
        entries,
        me: mine === undefined || mine === null ? null : { rank: ahead! + 1, score: -Number(mine) },
      };
    },
  };
}

export type LeaderboardsService = ReturnType<typeof leaderboardsService>;
