import type { ChainableCommander, Redis } from 'ioredis';
import { ALL_TIME_KEY, periodKeyOf, type CurrentPeriods, type Period } from './periods.js';

/*
 * The leaderboards' Redis side: key names and the scripts that change them, each one atomic.
 *
 * Every key carries the hash tag {lb}: an award changes the room's boards, the global boards and the
 * room's pending deltas in one script, and a script's keys must share a slot on a Redis Cluster. The
 * price there is that all leaderboards live on one shard; Redis is one master (Sentinel) here.
 *
 * Order: a board's scores are stored negated, so that ascending order (ZRANGE, ZRANK) is best first
 * and Redis itself orders equal scores by member, the user id, ascending. User ids are UUIDv7, so of
 * two users with equal scores the older account ranks first, in Redis and in a rebuild alike (the
 * MySQL record has no time of reaching a score, so a "first to reach it" order could not be rebuilt).
 */
const PREFIX = 'parley:{lb}';

export const leaderboardKeys = {
  board: (roomId: string | null, periodKey: string) =>
    roomId === null ? `${PREFIX}:global:${periodKey}` : `${PREFIX}:room:${roomId}:${periodKey}`,
  /** Awards not yet in MySQL, per room: field `<userId>|<week>|<month>` → points. */
  pending: (roomId: string) => `${PREFIX}:pending:${roomId}`,
  pendingPrefix: `${PREFIX}:pending:`,
  /** Rooms with a pending hash (what the sweep and a rebuild visit). */
  pendingRooms: `${PREFIX}:pending-rooms`,
  /** A room's pending hash once a flush has taken it, named by the flush's batch id. */
  batch: (batchId: string) => `${PREFIX}:batch:${batchId}`,
  batchPrefix: `${PREFIX}:batch:`,
  /** A room's batches still in Redis: batch id → `open:<takenAtMs>` or `flushed:<ms>` (kept for a rebuild). */
  batches: (roomId: string) => `${PREFIX}:batches:${roomId}`,
  batchesPrefix: `${PREFIX}:batches:`,
  batchRooms: `${PREFIX}:batch-rooms`,
  /** Held (a token, with a lease) while a rebuild runs: flushes then keep their batches for it. */
  rebuilding: `${PREFIX}:rebuilding`,
  rebuildTemp: (token: string, roomId: string | null, periodKey: string) =>
    `${PREFIX}:rebuild:${token}:${roomId === null ? 'global' : `room:${roomId}`}:${periodKey}`,
};

/** The three boards of one scope (a room, or global with null) for the given periods, week first. */
export const boardKeys = (roomId: string | null, periods: CurrentPeriods) => [
  leaderboardKeys.board(roomId, periods.week),
  leaderboardKeys.board(roomId, periods.month),
  leaderboardKeys.board(roomId, ALL_TIME_KEY),
];

export const boardKey = (roomId: string | null, period: Period, periods: CurrentPeriods) =>
  leaderboardKeys.board(roomId, periodKeyOf(period, periods));

export const pendingField = (userId: string, periods: CurrentPeriods) =>
  `${userId}|${periods.week}|${periods.month}`;

export function parsePendingField(field: string): { userId: string; week: string; month: string } {
  const [userId, week, month] = field.split('|') as [string, string, string];
  return { userId, week, month };
}

/** When a period's board expires: the period's end plus the grace, in seconds since the epoch. */
export const expiresAt = (endsAtMs: number, graceSeconds: number) =>
  Math.ceil(endsAtMs / 1000) + graceSeconds;

// Keys: the room's week, month, all-time boards; the same three global; the room's pending hash; the
// set of rooms with one. A board's expiry is set when its key is created (its first member), so the
// common award, to a user already on every board, runs no EXPIREAT. Answers 1 when this award
// created the pending hash: the caller then makes sure a flush is scheduled.
const AWARD = `
local user, points = ARGV[1], tonumber(ARGV[2])
local created = redis.call('EXISTS', KEYS[7]) == 0
for i = 1, 6 do
  local score = tonumber(redis.call('ZINCRBY', KEYS[i], -points, user))
  if score == -points then
    if i == 1 or i == 4 then redis.call('EXPIREAT', KEYS[i], ARGV[3])
    elseif i == 2 or i == 5 then redis.call('EXPIREAT', KEYS[i], ARGV[4]) end
  end
end
redis.call('HINCRBY', KEYS[7], ARGV[5], points)
if created then
  redis.call('SADD', KEYS[8], ARGV[6])
  return 1
end
return 0`;

// Top N (negated scores, best first) and the caller's score and the number of users strictly ahead
// of it, read at one instant.
const TOP = `
local top = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1, 'WITHSCORES')
local mine = redis.call('ZSCORE', KEYS[1], ARGV[2])
if not mine then return {top} end
return {top, mine, redis.call('ZCOUNT', KEYS[1], '-inf', '(' .. mine)}`;

// Keys: pending, batch, the room's batch index, pending rooms, batch rooms. A retry finds its batch
// (named by its batch id) and takes it again; a first run renames the pending hash to it, so awards
// that arrive from now on start a new pending hash, for the next flush.
const TAKE = `
if redis.call('EXISTS', KEYS[2]) == 0 then
  if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
  redis.call('RENAME', KEYS[1], KEYS[2])
  redis.call('SREM', KEYS[4], ARGV[2])
  redis.call('HSET', KEYS[3], ARGV[1], 'open:' .. ARGV[3])
  redis.call('SADD', KEYS[5], ARGV[2])
end
return redis.call('HGETALL', KEYS[2])`;

// Keys: batch, the room's batch index, batch rooms, the rebuild lease. After the batch's commit: it
// goes, unless a rebuild is running, which may need it (see rebuild.ts); then it is kept, marked
// flushed, with a TTL in case that rebuild dies. Answers 1 when the batch was still there.
const SETTLE = `
local existed = redis.call('EXISTS', KEYS[1])
if existed == 1 and redis.call('EXISTS', KEYS[4]) == 1 then
  redis.call('HSET', KEYS[2], ARGV[1], 'flushed:' .. ARGV[3])
  redis.call('EXPIRE', KEYS[1], ARGV[4])
  return 1
end
redis.call('DEL', KEYS[1])
redis.call('HDEL', KEYS[2], ARGV[1])
if redis.call('HLEN', KEYS[2]) == 0 then redis.call('SREM', KEYS[3], ARGV[2]) end
return existed`;

// Keys: the room's batch index, batch rooms, the rebuild lease. Drops what no rebuild needs any more
// (flushed batches kept for one, entries whose batch is gone) and answers the open batches as
// [id, takenAtMs, …], for the sweep to find any whose flush was lost.
const PRUNE = `
local open = {}
local rebuilding = redis.call('EXISTS', KEYS[3]) == 1
local entries = redis.call('HGETALL', KEYS[1])
for i = 1, #entries, 2 do
  local id, state = entries[i], entries[i + 1]
  local batch = ARGV[2] .. id
  if string.sub(state, 1, 5) == 'open:' and redis.call('EXISTS', batch) == 1 then
    open[#open + 1] = id
    open[#open + 1] = string.sub(state, 6)
  elseif not rebuilding or redis.call('EXISTS', batch) == 0 then
    redis.call('DEL', batch)
    redis.call('HDEL', KEYS[1], id)
  end
end
if redis.call('HLEN', KEYS[1]) == 0 then redis.call('SREM', KEYS[2], ARGV[1]) end
return open`;

// Shared by the rebuild's two finishing scripts: adds the deltas of one hash of awards (a pending
// hash or a batch) to the three temporary boards KEYS[1..3], each field to the periods it was made in.
const APPLY_DELTAS = `
local function apply(hash, week, month)
  local fields = redis.call('HGETALL', hash)
  for i = 1, #fields, 2 do
    local user, w, m = string.match(fields[i], '^([^|]+)|([^|]+)|([^|]+)$')
    local delta = -tonumber(fields[i + 1])
    if w == week then redis.call('ZINCRBY', KEYS[1], delta, user) end
    if m == month then redis.call('ZINCRBY', KEYS[2], delta, user) end
    redis.call('ZINCRBY', KEYS[3], delta, user)
  end
end
local function install(weekExpiresAt, monthExpiresAt)
  for i = 1, 3 do
    if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('RENAME', KEYS[i], KEYS[i + 3])
    else redis.call('DEL', KEYS[i + 3]) end
  end
  redis.call('EXPIREAT', KEYS[4], weekExpiresAt)
  redis.call('EXPIREAT', KEYS[5], monthExpiresAt)
  redis.call('PERSIST', KEYS[6])
end`;

const REBUILD_LEASE_CHECK = `
if redis.call('GET', KEYS[LEASE]) ~= ARGV[1] then
  return redis.error_reply('LBREBUILD the rebuild lease was lost; run the rebuild again')
end`;

// Keys: the room's 3 temporary boards, its 3 boards, its pending hash, its batch index, the lease.
// Args: token, week, month, week expiry, month expiry, batch key prefix, then the batch ids that the
// rebuild's MySQL snapshot holds already. Atomic with every award: what the rebuild read from MySQL,
// plus every award not in that snapshot still in Redis, replaces the boards in one step.
const FINISH_ROOM = `${APPLY_DELTAS}
${REBUILD_LEASE_CHECK.replace('LEASE', '9')}
local excluded = {}
for i = 7, #ARGV do excluded[ARGV[i]] = true end
apply(KEYS[7], ARGV[2], ARGV[3])
for _, id in ipairs(redis.call('HKEYS', KEYS[8])) do
  if not excluded[id] then apply(ARGV[6] .. id, ARGV[2], ARGV[3]) end
end
install(ARGV[4], ARGV[5])
return 1`;

// Keys: the 3 temporary global boards, the 3 global boards, pending rooms, batch rooms, the lease.
// Args: token, week, month, week expiry, month expiry, pending prefix, batch index prefix, batch
// prefix, then the batch ids the snapshot holds. The same as FINISH_ROOM over every room at once.
const FINISH_GLOBAL = `${APPLY_DELTAS}
${REBUILD_LEASE_CHECK.replace('LEASE', '9')}
local excluded = {}
for i = 9, #ARGV do excluded[ARGV[i]] = true end
for _, room in ipairs(redis.call('SMEMBERS', KEYS[7])) do apply(ARGV[6] .. room, ARGV[2], ARGV[3]) end
for _, room in ipairs(redis.call('SMEMBERS', KEYS[8])) do
  for _, id in ipairs(redis.call('HKEYS', ARGV[7] .. room)) do
    if not excluded[id] then apply(ARGV[8] .. id, ARGV[2], ARGV[3]) end
  end
end
install(ARGV[4], ARGV[5])
return 1`;

const RENEW_LEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`;
const RELEASE_LEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

const SCRIPTS = {
  lbAward: { numberOfKeys: 8, lua: AWARD },
  lbTop: { numberOfKeys: 1, lua: TOP, readOnly: true },
  lbTake: { numberOfKeys: 5, lua: TAKE },
  lbSettle: { numberOfKeys: 4, lua: SETTLE },
  lbPrune: { numberOfKeys: 3, lua: PRUNE },
  lbFinishRoom: { numberOfKeys: 9, lua: FINISH_ROOM },
  lbFinishGlobal: { numberOfKeys: 9, lua: FINISH_GLOBAL },
  lbRenewLease: { numberOfKeys: 1, lua: RENEW_LEASE },
  lbReleaseLease: { numberOfKeys: 1, lua: RELEASE_LEASE },
} as const;

type Script = (...keysThenArgs: (string | number)[]) => Promise<unknown>;
type PipelinedScript = (
  ...keysThenArgs: (string | number | ((error: Error | null, reply: unknown) => void))[]
) => ChainableCommander;

/** A Redis client with the leaderboard scripts (ioredis defineCommand: EVALSHA, loaded on first use). */
export type LeaderboardRedis = Redis & Record<keyof typeof SCRIPTS, Script>;
type LeaderboardPipeline = ChainableCommander & Record<keyof typeof SCRIPTS, PipelinedScript>;

/**
 * Defines the scripts on `redis` (once; a pipeline made from it afterwards has them too) and answers
 * it typed. The API's shared client, the worker's and the CLI's all go through here.
 */
export function withLeaderboardScripts(redis: Redis): LeaderboardRedis {
  const scripted = redis as LeaderboardRedis;
  if (typeof (scripted as Partial<LeaderboardRedis>).lbAward !== 'function') {
    for (const [name, definition] of Object.entries(SCRIPTS)) redis.defineCommand(name, definition);
  }
  return scripted;
}

/** The scripts on a pipeline made from a client that went through withLeaderboardScripts. */
export const scriptedPipeline = (commands: ChainableCommander) => commands as LeaderboardPipeline;
