import { randomUUID } from 'node:crypto';
import type { Job, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDependencies } from '../../platform/dependencies.js';
import { parseJobData, queuesFrom, type JobKind, type JobQueues } from '../../platform/jobs.js';
import { Lifecycle } from '../../platform/lifecycle.js';
import { createLogger } from '../../platform/logger.js';
import { createMetrics } from '../../platform/metrics.js';
import { createQueue, createWorker, QUEUES } from '../../platform/queues.js';
import { createRedis } from '../../platform/redis.js';
import { adminQuery as adminQueryOn } from '../../test-support/admin-sql.js';
import { signUp, startCluster, type Cluster, type User } from '../../test-support/cluster.js';
import { eventually } from '../../test-support/until.js';
import {
  deltasOf,
  leaderboardFlusher,
  leaderboardsJobs,
  sweepLeaderboards,
  type FlushResult,
} from './jobs.js';
import { LEADERBOARD_FLUSH } from './kinds.js';
import { periodsAt } from './periods.js';
import { rebuildLeaderboards } from './rebuild.js';
import { leaderboardsRepository } from './repository.js';
import { leaderboardAwards } from './service.js';
import { leaderboardKeys } from './store.js';

const FLUSH_INTERVAL_MS = 400;
const ROOM_CREATED_POINTS = 5;

let cluster: Cluster;
let lifecycle: Lifecycle;
let workerDeps: Parameters<typeof leaderboardsJobs>[0] & Parameters<typeof rebuildLeaderboards>[0];
let redis: Redis;
let worker: Worker;
/** Every flush the test's worker finished: its job, and what the handler answered. */
const flushes: { roomId: string; job: Job; result: FlushResult }[] = [];
/** Runs instead of the first attempt of the next flush job, once, when set. */
let interceptNextFlush: ((job: Job) => Promise<void>) | undefined;

beforeAll(async () => {
  cluster = await startCluster(
    2,
    { redisTopology: 'single' },
    {
      LEADERBOARD_FLUSH_INTERVAL_MS: String(FLUSH_INTERVAL_MS),
      LEADERBOARD_POINTS_ROOM_CREATED: String(ROOM_CREATED_POINTS),
    },
  );
  const logger = createLogger({ ...cluster.config, logLevel: 'silent' }, 'worker');
  lifecycle = new Lifecycle(logger);
  const dependencies = openDependencies(cluster.config, logger, createMetrics(), lifecycle);
  const { db } = dependencies;
  redis = dependencies.redis;
  const jobs: JobQueues = queuesFrom((name) => createQueue(cluster.config, name));
  workerDeps = { db, redis, config: cluster.config, jobs };
  // The worker's wiring as main-worker.ts will do it: one BullMQ Worker on the queue, dispatching by
  // job name to the feature's handlers.
  const { handlers } = leaderboardsJobs(workerDeps);
  worker = createWorker(cluster.config, QUEUES.leaderboards, async (job: Job) => {
    const handler = handlers.find((candidate) => candidate.kind.name === job.name);
    if (!handler) throw new Error(`unknown job ${job.name}`);
    const data = parseJobData(handler.kind as JobKind<unknown>, job.data) as never;
    const instead = job.name === LEADERBOARD_FLUSH.name ? interceptNextFlush : undefined;
    if (instead && job.attemptsMade === 0) {
      interceptNextFlush = undefined;
      await instead(job);
      throw new Error('the worker died after its commit');
    }
    return handler.run(data, job);
  });
  worker.on('completed', (job, result) => {
    if (job.name === LEADERBOARD_FLUSH.name) flushes.push({ roomId: job.data.roomId, job, result });
  });
  lifecycle.register('test worker', async () => {
    await worker.close();
    await jobs.close();
  });
}, 120_000);
afterAll(async () => {
  await lifecycle?.shutdown('test finished');
  await cluster?.stop();
});

const api = (i = 0) => cluster.apis[i]!;
const adminQuery = <T>(sql: string, params: unknown[] = []) => adminQueryOn<T>(cluster.stack, sql, params);

type Entry = { rank: number; userId: string; username: string | null; score: number };
type Board = { period: string; periodKey: string; roomId: string | null; entries: Entry[]; me: Entry | null };

async function createRoom(
  owner: User,
  visibility: 'public' | 'private' = 'public',
  via = 0,
): Promise<string> {
  const room = await api(via)('POST', '/v1/rooms', {
    token: owner.accessToken,
    body: { name: `board ${randomUUID().slice(0, 6)}`, visibility },
  });
  expect(room.status).toBe(201);
  return String(room.body.id);
}

async function join(user: User, roomId: string, via = 0): Promise<void> {
  expect((await api(via)('POST', `/v1/rooms/${roomId}/members`, { token: user.accessToken })).status).toBe(
    201,
  );
}

async function post(user: User, roomId: string, via = 0, key = randomUUID()) {
  const reply = await api(via)('POST', `/v1/rooms/${roomId}/messages`, {
    token: user.accessToken,
    body: { body: `message ${key}` },
    headers: { 'Idempotency-Key': key },
  });
  if (reply.status !== 201) throw new Error(`post failed: ${reply.status} ${JSON.stringify(reply.body)}`);
  return reply;
}

/** Runs `task(0 … count-1)` with at most `concurrency` at once. */
async function inParallel(count: number, concurrency: number, task: (i: number) => Promise<unknown>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) await task(next++);
    }),
  );
}

const board = (user: User, period: string, query: { roomId?: string; limit?: number } = {}, via = 0) => {
  const search = new URLSearchParams();
  if (query.roomId) search.set('roomId', query.roomId);
  search.set('limit', String(query.limit ?? 100));
  return api(via)<Board>('GET', `/v1/leaderboards/${period}?${search}`, { token: user.accessToken });
};

/** Standings as the API must order them: score descending, then user id ascending; competition ranks. */
function standingsOf(scores: Map<string, number>): Omit<Entry, 'username'>[] {
  const sorted = [...scores]
    .filter(([, score]) => score > 0)
    .sort(([a, x], [b, y]) => y - x || (a < b ? -1 : 1));
  return sorted.map(([userId, score]) => ({
    rank: sorted.findIndex(([, other]) => other === score) + 1,
    userId,
    score,
  }));
}

const withoutNames = (entries: Entry[]) => entries.map(({ username: _username, ...rest }) => rest);

/** True once no award waits for a flush and no batch is open. */
async function allFlushed(): Promise<boolean> {
  const [pending, batchRooms] = await Promise.all([
    redis.scard(leaderboardKeys.pendingRooms),
    redis.scard(leaderboardKeys.batchRooms),
  ]);
  return pending === 0 && batchRooms === 0;
}

async function waitForFlushes(): Promise<void> {
  expect(await eventually(allFlushed, (done) => done, 30_000)).toBe(true);
}

/** What MySQL says a room's board must be: a point per message, and the owner's room-created points. */
async function expectedRoomScores(roomId: string): Promise<Map<string, number>> {
  const counts = await adminQuery<{ author_id: string; n: number }>(
    'SELECT author_id, COUNT(*) AS n FROM messages WHERE room_id = ? GROUP BY author_id',
    [roomId],
  );
  const [room] = await adminQuery<{ owner_id: string }>('SELECT owner_id FROM rooms WHERE id = ?', [roomId]);
  const scores = new Map(counts.map((row) => [row.author_id, Number(row.n)]));
  scores.set(room!.owner_id, (scores.get(room!.owner_id) ?? 0) + ROOM_CREATED_POINTS);
  return scores;
}

async function storedScores(roomId: string, periodKey: string): Promise<Map<string, number>> {
  const rows = await adminQuery<{ user_id: string; score: number }>(
    'SELECT user_id, score FROM leaderboard_scores WHERE room_id = ? AND period_key = ?',
    [roomId, periodKey],
  );
  return new Map(rows.map((row) => [row.user_id, Number(row.score)]));
}

describe('leaderboards', () => {
  it('turns 10,000 concurrent posts on two processes into ranks equal to a count of the messages in MySQL', async () => {
    const users = await Promise.all(Array.from({ length: 8 }, (_, i) => signUp(api(i % 2), `ranked${i}`)));
    const rooms = [await createRoom(users[0]!), await createRoom(users[1]!, 'public', 1)];
    await Promise.all(users.slice(1).map((user, i) => join(user, rooms[0]!, i % 2)));
    await Promise.all([users[0]!, ...users.slice(2)].map((user, i) => join(user, rooms[1]!, i % 2)));
    // Unequal shares, so the ranks mean something: user k posts about (k + 1) parts in 36.
    const authors = users.flatMap((user, k) => Array.from({ length: k + 1 }, () => user));
    const flushesBefore = (
      await adminQuery<{ n: number }>('SELECT COUNT(*) AS n FROM leaderboard_flushes')
    )[0]!.n;

    await inParallel(10_000, 64, (i) =>
      post(authors[i % authors.length]!, rooms[i % 3 === 0 ? 1 : 0]!, i % 2),
    );
    await waitForFlushes();

    const periods = periodsAt(new Date());
    const global = new Map<string, number>();
    for (const roomId of rooms) {
      const expected = await expectedRoomScores(roomId);
      for (const [userId, score] of expected) global.set(userId, (global.get(userId) ?? 0) + score);
      for (const [period, periodKey] of [
        ['week', periods.week],
        ['month', periods.month],
        ['all-time', 'all'],
      ] as const) {
        const served = await board(users[7]!, period, { roomId }, 1);
        expect(served.status).toBe(200);
        expect(withoutNames(served.body.entries)).toEqual(standingsOf(expected));
        expect(served.body.periodKey).toBe(periodKey);
        expect(await storedScores(roomId, periodKey)).toEqual(expected);
      }
    }
    const served = await board(users[0]!, 'all-time');
    const ours = served.body.entries.filter((entry) => global.has(entry.userId));
    expect(withoutNames(ours).map(({ userId, score }) => ({ userId, score }))).toEqual(
      standingsOf(global).map(({ userId, score }) => ({ userId, score })),
    );
    expect(ours.map((entry) => entry.username)).toEqual(
      standingsOf(global).map(({ userId }) => users.find((user) => user.id === userId)!.username),
    );
    // Batches, not writes per award.
    const flushesAfter = (
      await adminQuery<{ n: number }>('SELECT COUNT(*) AS n FROM leaderboard_flushes')
    )[0]!.n;
    expect(flushesAfter - flushesBefore).toBeGreaterThan(0);
    expect(flushesAfter - flushesBefore).toBeLessThan(500);
  }, 180_000);

  it('restores the same ranks from MySQL after Redis lost every leaderboard key', async () => {
    const viewer = await signUp(api(), 'viewer');
    await waitForFlushes();
    const roomIds = (
      await adminQuery<{ room_id: string }>('SELECT DISTINCT room_id FROM leaderboard_scores')
    ).map((row) => row.room_id);
    expect(roomIds.length).toBeGreaterThan(0);
    const snapshot = async () => {
      const boards: Record<string, Entry[]> = {};
      for (const roomId of [undefined, ...roomIds])
        for (const period of ['week', 'month', 'all-time'])
          boards[`${roomId ?? 'global'} ${period}`] = (await board(viewer, period, { roomId })).body.entries;
      return boards;
    };
    const before = await snapshot();
    expect(before['global all-time']!.length).toBeGreaterThan(0);

    const lost = await redis.keys('parley:{lb}:*');
    expect(lost.length).toBeGreaterThan(0);
    await redis.del(...lost);
    expect((await board(viewer, 'all-time')).body.entries).toEqual([]);

    const result = await rebuildLeaderboards(workerDeps);
    expect(result.rooms).toBe(roomIds.length);
    expect(await snapshot()).toEqual(before);
    const keys = leaderboardKeys;
    expect(await redis.ttl(keys.board(null, result.week))).toBeGreaterThan(0);
    expect(await redis.ttl(keys.board(null, 'all'))).toBe(-1);
    expect(await redis.keys('parley:{lb}:rebuild:*')).toEqual([]);
  }, 60_000);

  it('rebuilds to the exact count while posts and flushes go on', async () => {
    const [owner, other] = await Promise.all([signUp(api(), 'busy'), signUp(api(1), 'busy')]);
    const roomId = await createRoom(owner);
    await join(other, roomId, 1);
    let rebuilt = 0;
    await Promise.all([
      inParallel(600, 8, (i) => post(i % 3 ? owner : other, roomId, i % 2)),
      (async () => {
        // Rebuild over and over while the posts go on, across their flushes.
        await eventually(
          () => redis.scard(leaderboardKeys.batchRooms).then(Number),
          (n) => n > 0,
          10_000,
          5,
        );
        for (let i = 0; i < 5; i++) {
          await rebuildLeaderboards(workerDeps);
          rebuilt++;
        }
      })(),
    ]);
    expect(rebuilt).toBe(5);
    await waitForFlushes();
    const expected = await expectedRoomScores(roomId);
    expect(withoutNames((await board(owner, 'all-time', { roomId })).body.entries)).toEqual(
      standingsOf(expected),
    );
    expect(await storedScores(roomId, 'all')).toEqual(expected);
    // A last rebuild from the settled state changes nothing.
    await rebuildLeaderboards(workerDeps);
    expect(withoutNames((await board(owner, 'week', { roomId })).body.entries)).toEqual(
      standingsOf(expected),
    );
  }, 120_000);

  it('ranks equal scores together (competition ranks) and lists them by user id; the caller sees their own rank', async () => {
    const owner = await signUp(api(), 'tied-owner'); // 5 points for the room
    const roomId = await createRoom(owner);
    const users = await Promise.all(Array.from({ length: 6 }, (_, i) => signUp(api(i % 2), `tied${i}`)));
    for (const user of users) await join(user, roomId);
    const [leader, a, b, c, last, idle] = users as [User, User, User, User, User, User];
    const posts: [User, number][] = [
      [leader, 6],
      [a, 5],
      [b, 5],
      [c, 5],
      [last, 1],
    ];
    for (const [user, n] of posts) for (let i = 0; i < n; i++) await post(user, roomId, i % 2);
    // A post replayed for its Idempotency-Key is not a new post: no point for it.
    const key = randomUUID();
    await post(last, roomId, 0, key);
    await post(last, roomId, 1, key);

    const tied = [owner, a, b, c].map((user) => user.id).sort();
    const served = await board(last, 'week', { roomId });
    expect(withoutNames(served.body.entries)).toEqual([
      { rank: 1, userId: leader.id, score: 6 },
      ...tied.map((userId) => ({ rank: 2, userId, score: 5 })),
      { rank: 6, userId: last.id, score: 2 },
    ]);
    expect(served.body.me).toEqual({ rank: 6, score: 2 });
    expect(served.body.entries.map((entry) => entry.username)).toEqual(
      [leader.id, ...tied, last.id].map((id) => [owner, ...users].find((user) => user.id === id)!.username),
    );

    // The caller's own standing is there when they are below the top N too, and null with no points.
    const top2 = await board(
      users.find((user) => user.id === tied[3])!,
      'week',
      { roomId, limit: 2 },
    );
    expect(withoutNames(top2.body.entries)).toEqual([
      { rank: 1, userId: leader.id, score: 6 },
      { rank: 2, userId: tied[0], score: 5 },
    ]);
    expect(top2.body.me).toEqual({ rank: 2, score: 5 });
    expect((await board(idle, 'week', { roomId })).body.me).toBeNull();
    expect((await board(idle, 'week', { roomId, limit: 3 })).body.entries).toHaveLength(3);
  }, 60_000);

  it('refuses a bad period, limit or room id with a 400 problem naming the field', async () => {
    const user = await signUp(api(), 'validator');
    const cases: [string, string][] = [
      ['/v1/leaderboards/year', 'path.period'],
      ['/v1/leaderboards/week?limit=0', 'query.limit'],
      ['/v1/leaderboards/week?limit=101', 'query.limit'],
      ['/v1/leaderboards/week?limit=ten', 'query.limit'],
      ['/v1/leaderboards/week?roomId=lobby', 'query.roomId'],
      ['/v1/leaderboards/week?sort=asc', 'query'],
    ];
    for (const [path, field] of cases) {
      const reply = await api()<{ type: string; errors: { path: string }[] }>('GET', path, {
        token: user.accessToken,
      });
      expect(reply.status, path).toBe(400);
      expect(reply.headers.get('content-type'), path).toMatch(/^application\/problem\+json/);
      expect(reply.body.errors.map((error) => error.path).join(' '), path).toContain(field);
    }
    expect((await api()('GET', '/v1/leaderboards/week')).status).toBe(401);
    const defaults = await api()<Board>('GET', '/v1/leaderboards/month', { token: user.accessToken });
    expect(defaults.status).toBe(200);
    expect(defaults.body.entries.length).toBeLessThanOrEqual(10);
    expect(defaults.body.roomId).toBeNull();
  });

  it('shows a room’s board to whoever may read the room, and hides a private room from others', async () => {
    const [owner, stranger] = await Promise.all([signUp(api(), 'private'), signUp(api(1), 'stranger')]);
    const secret = await createRoom(owner, 'private');
    await post(owner, secret);
    const hidden = await board(stranger, 'all-time', { roomId: secret }, 1);
    expect(hidden.status).toBe(404);
    expect(hidden.body).toMatchObject({ status: 404 });
    expect((await board(stranger, 'all-time', { roomId: randomUUID() })).status).toBe(404);
    expect(withoutNames((await board(owner, 'all-time', { roomId: secret })).body.entries)).toEqual([
      { rank: 1, userId: owner.id, score: ROOM_CREATED_POINTS + 1 },
    ]);
    const open = await createRoom(owner, 'public');
    const visible = await board(stranger, 'all-time', { roomId: open }, 1);
    expect(visible.status).toBe(200);
    expect(withoutNames(visible.body.entries)).toEqual([
      { rank: 1, userId: owner.id, score: ROOM_CREATED_POINTS },
    ]);
    expect(visible.body.me).toBeNull();
  });

  it('lets week and month boards expire after their period and the grace; all-time ones never', async () => {
    const owner = await signUp(api(), 'expiry');
    const roomId = await createRoom(owner);
    const periods = periodsAt(new Date());
    const grace = cluster.config.leaderboards.periodGraceSeconds;
    const secondsLeft = (endsAt: number) => Math.ceil(endsAt / 1000) + grace - Date.now() / 1000;
    for (const scope of [roomId, null]) {
      const week = await redis.ttl(leaderboardKeys.board(scope, periods.week));
      const month = await redis.ttl(leaderboardKeys.board(scope, periods.month));
      expect(Math.abs(week - secondsLeft(periods.weekEndsAt))).toBeLessThan(5);
      expect(Math.abs(month - secondsLeft(periods.monthEndsAt))).toBeLessThan(5);
      expect(await redis.ttl(leaderboardKeys.board(scope, 'all'))).toBe(-1);
    }
  });

  it('applies a flush retried after its commit once, and announces it then', async () => {
    const owner = await signUp(api(), 'retried');
    const flusher = leaderboardFlusher(workerDeps);
    const repository = leaderboardsRepository(workerDeps.db);
    await waitForFlushes();
    // The next flush (the new room's first: nothing else is awarded meanwhile) commits, then its
    // worker dies before the Redis side; BullMQ retries it after its backoff.
    let committed: { roomId: string; batchId: string } | undefined;
    interceptNextFlush = async (job) => {
      const { roomId, batchId } = job.data as { roomId: string; batchId: string };
      const taken = await flusher.take(roomId, batchId);
      expect(await repository.applyBatch(roomId, batchId, deltasOf(taken))).toBe(true);
      committed = { roomId, batchId };
    };
    const roomId = await createRoom(owner);
    const events = await listen(roomId);
    try {
      for (let i = 0; i < 3; i++) await post(owner, roomId, i % 2);
      await waitForFlushes();
      expect(committed?.roomId).toBe(roomId);
      const ofRoom = flushes.filter((flush) => flush.roomId === roomId);
      expect(ofRoom.find((flush) => flush.result.batchId === committed!.batchId)?.result).toEqual({
        batchId: committed!.batchId,
        outcome: 'already-applied',
        rows: 0,
        points: 0,
      });
      expect(await storedScores(roomId, 'all')).toEqual(new Map([[owner.id, ROOM_CREATED_POINTS + 3]]));
      expect(
        await adminQuery('SELECT batch_id FROM leaderboard_flushes WHERE batch_id = ?', [committed!.batchId]),
      ).toHaveLength(1);
      expect(await redis.exists(leaderboardKeys.batch(committed!.batchId))).toBe(0);
      // One announcement per flush, the retried one included: it announced when it found its batch.
      expect(events.periods()).toEqual(ofRoom.flatMap(() => ['week', 'month', 'all-time']));
    } finally {
      interceptNextFlush = undefined;
      await events.close();
    }
  }, 60_000);

  it('flushes a board at most once per interval however many awards arrive, with one event per period', async () => {
    const owner = await signUp(api(), 'announced');
    const roomId = await createRoom(owner);
    await waitForFlushes();
    const events = await listen(roomId);
    const earlier = flushes.length;
    try {
      for (let wave = 0; wave < 3; wave++) {
        await inParallel(40, 20, (i) => post(owner, roomId, i % 2));
        await waitForFlushes();
      }
      const applied = flushes
        .slice(earlier)
        .filter((flush) => flush.roomId === roomId && flush.result.outcome === 'applied');
      expect(applied.length).toBeGreaterThanOrEqual(3);
      expect(applied.length).toBeLessThan(20);
      expect(applied.reduce((sum, flush) => sum + flush.result.points, 0)).toBe(120);
      // Each flush of the room started an interval or more after the one before it finished.
      const runs = flushes
        .filter((flush) => flush.roomId === roomId)
        .map((flush) => ({ started: flush.job.processedOn!, finished: flush.job.finishedOn! }))
        .sort((x, y) => x.started - y.started);
      for (let i = 1; i < runs.length; i++)
        expect(runs[i]!.started - runs[i - 1]!.finished).toBeGreaterThanOrEqual(FLUSH_INTERVAL_MS - 5);
      const periods = events.periods();
      for (const period of ['week', 'month', 'all-time'])
        expect(periods.filter((p) => p === period)).toHaveLength(applied.length);
    } finally {
      await events.close();
    }
  }, 60_000);

  it('flushes awards whose schedule was lost when the sweep comes by', async () => {
    const owner = await signUp(api(), 'swept');
    const roomId = await createRoom(owner);
    await waitForFlushes();
    const lostSchedules: JobQueues = {
      ...workerDeps.jobs,
      add: () => Promise.reject(new Error('Redis went away')),
    };
    const awards = leaderboardAwards({
      redis,
      redisBreaker: { name: 'redis', state: () => 'closed', run: (call) => call() },
      jobs: lostSchedules,
      config: cluster.config.leaderboards,
      logger: createLogger({ ...cluster.config, logLevel: 'silent' }, 'api'),
    });
    await awards.award('message', roomId, owner.id);
    await new Promise((resolve) => setTimeout(resolve, FLUSH_INTERVAL_MS * 3));
    expect(await redis.sismember(leaderboardKeys.pendingRooms, roomId)).toBe(1); // no flush came
    expect(await sweepLeaderboards(workerDeps)).toMatchObject({ scheduled: 1 });
    await waitForFlushes();
    expect(await storedScores(roomId, 'all')).toEqual(new Map([[owner.id, ROOM_CREATED_POINTS + 1]]));
  });
});

/** A subscriber to the room's channel that keeps the periods of its leaderboard.updated events. */
async function listen(roomId: string) {
  const subscriber = createRedis(cluster.config.redis, 'subscriber', 'test-events');
  const seen: string[] = [];
  subscriber.on('message', (_channel: string, raw: string) => {
    const event = JSON.parse(raw) as { type: string; period?: string };
    if (event.type === 'leaderboard.updated') seen.push(event.period!);
  });
  await subscriber.subscribe(`parley:room:${roomId}`);
  return {
    periods: () => [...seen],
    close: async () => {
      await subscriber.quit();
    },
  };
}
