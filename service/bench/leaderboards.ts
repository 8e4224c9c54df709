/**
 * The leaderboards' section of `npm run bench` (BENCH_ONLY=leaderboards runs it alone): awards a
 * second through the award path the API uses, on one process and one Redis client as an API process
 * has them, beside a raw ZINCRBY pipeline of the same boards in the same run. Each award changes six
 * boards (the room's and the global week, month and all-time), so the baseline sends six ZINCRBYs
 * per award: the least Redis work that moves the same scores, with none of the award's atomicity,
 * expiry, pending delta for the flush or flush schedule.
 */
import { randomUUID } from 'node:crypto';
import { Registry } from 'prom-client';
import type { TestStack } from '../src/test-support/stack.js';
import { leaderboardAwards } from '../src/features/leaderboards/service.js';
import { boardKeys } from '../src/features/leaderboards/store.js';
import { periodsAt } from '../src/features/leaderboards/periods.js';
import { createBreakerFactory } from '../src/platform/breakers.js';
import { queuesFrom } from '../src/platform/jobs.js';
import { createLogger } from '../src/platform/logger.js';
import { createQueue } from '../src/platform/queues.js';
import { createRedis } from '../src/platform/redis.js';
import { cpuMs, median } from './load.js';

type Say = (line: string) => void;
interface Rate {
  perSecond: number;
  cpuUs: number;
  redisCpuUs: number | undefined;
}

const AWARDS = Number(process.env.BENCH_AWARDS ?? 50_000);
/** Awards in flight at once, as many concurrent posts would have them. */
const IN_FLIGHT = 1_000;
const ROOMS = 20;
const USERS = 1_000;
const RAW = 'raw ZINCRBY pipeline, 6 boards an award (the same keys)';

export async function leaderboardsBench(stack: TestStack, rounds: number, say: Say): Promise<string[]> {
  // The API's shared client (auto-pipelined) and its Redis breaker, as dependencies.ts makes them.
  const redis = createRedis(stack.config.redis, 'app', 'bench-awards');
  const breaker = createBreakerFactory(new Registry())('redis', {
    timeoutMs: 1_000,
    openMs: 3_000,
    isFailure: () => true,
  });
  const jobs = queuesFrom((name) => createQueue(stack.config, name));
  const awards = leaderboardAwards({
    redis,
    redisBreaker: breaker,
    jobs,
    config: stack.config.leaderboards,
    logger: createLogger({ ...stack.config, logLevel: 'warn' }, 'api'),
  });
  const rooms = Array.from({ length: ROOMS }, () => randomUUID());
  const users = Array.from({ length: USERS }, () => randomUUID());
  const roomOf = (i: number) => rooms[i % ROOMS]!;
  const userOf = (i: number) => users[(i * 7919) % USERS]!;

  const redisPid = stack.stack.redis.nodes[0]!.pid();
  /** Awards a second, and the CPU an award cost this process and redis-server (µs; local stack only). */
  const timed = async (run: () => Promise<void>): Promise<Rate> => {
    const cpuBefore = process.cpuUsage();
    const redisBefore = redisPid === undefined ? undefined : cpuMs(redisPid);
    const startedAt = performance.now();
    await run();
    const seconds = (performance.now() - startedAt) / 1000;
    const cpu = process.cpuUsage(cpuBefore);
    const redisAfter = redisPid === undefined ? undefined : cpuMs(redisPid);
    return {
      perSecond: AWARDS / seconds,
      cpuUs: (cpu.user + cpu.system) / AWARDS,
      redisCpuUs:
        redisBefore === undefined || redisAfter === undefined
          ? undefined
          : ((redisAfter - redisBefore) * 1000) / AWARDS,
    };
  };
  const inWaves = async (wave: (from: number, to: number) => Promise<unknown>) => {
    for (let from = 0; from < AWARDS; from += IN_FLIGHT) await wave(from, Math.min(AWARDS, from + IN_FLIGHT));
  };
  const periods = periodsAt(new Date());
  const rawBoards = (roomId: string) =>
    [...boardKeys(roomId, periods), ...boardKeys(null, periods)].map((key) => `bench:raw:${key}`);
  const rawPipeline = (boardsPerAward: number) => () =>
    timed(() =>
      inWaves(async (from, to) => {
        const pipeline = redis.pipeline();
        for (let i = from; i < to; i++)
          for (const key of rawBoards(roomOf(i)).slice(0, boardsPerAward))
            pipeline.zincrby(key, 1, userOf(i));
        await pipeline.exec();
      }),
    );
  const scenarios: Record<string, () => Promise<Rate>> = {
    [RAW]: rawPipeline(6),
    'raw ZINCRBY pipeline, 1 board an award (one command an award)': rawPipeline(1),
    // What a room creation runs: award() on its own, awaited, IN_FLIGHT of them at once.
    'award(), concurrently (auto-pipelined EVALSHA)': () =>
      timed(() =>
        inWaves((from, to) =>
          Promise.all(
            Array.from({ length: to - from }, (_, k) =>
              awards.award('message', roomOf(from + k), userOf(from + k)),
            ),
          ),
        ),
      ),
    // What a post runs: awardIn() added to a pipeline the caller sends (here one per wave).
    'awardIn() in an explicit pipeline': () =>
      timed(() =>
        inWaves(async (from, to) => {
          const pipeline = redis.pipeline();
          for (let i = from; i < to; i++) awards.awardIn(pipeline, 'message', roomOf(i), userOf(i));
          await breaker.run(() => pipeline.exec());
        }),
      ),
  };
  try {
    say(
      `leaderboards: ${AWARDS} awards a round over ${ROOMS} rooms and ${USERS} users, ${IN_FLIGHT} in flight…`,
    );
    for (const run of Object.values(scenarios)) await run(); // warm-up: JIT, the scripts loaded
    const results: Record<string, Rate[]> = Object.fromEntries(
      Object.keys(scenarios).map((name) => [name, []]),
    );
    for (let round = 1; round <= rounds; round++) {
      say(`leaderboards: round ${round}/${rounds}`);
      for (const [name, run] of Object.entries(scenarios)) results[name]!.push(await run());
    }
    const rate = (name: string) => median(results[name]!.map((result) => result.perSecond));
    const rawRate = rate(RAW);
    const redisCpu = (name: string) => {
      const values = results[name]!.flatMap((result) => result.redisCpuUs ?? []);
      return values.length > 0 ? median(values).toFixed(1) : '–';
    };
    return [
      '',
      `Leaderboard awards on one process (${rounds} interleaved rounds of ${AWARDS} awards, ${IN_FLIGHT} in flight, ${ROOMS} rooms, ${USERS} users; medians; one redis-server):`,
      '',
      '| scenario | awards/s (median) | ratio to the raw pipeline of 6 boards | CPU µs an award: this process | redis-server | rounds, awards/s |',
      '|---|---:|---:|---:|---:|---|',
      ...Object.keys(scenarios).map(
        (name) =>
          `| ${name} | ${Math.round(rate(name))} | ${name === RAW ? '1.00' : `**${(rate(name) / rawRate).toFixed(2)}**`} | ${median(results[name]!.map((result) => result.cpuUs)).toFixed(1)} | ${redisCpu(name)} | ${results[name]!.map((result) => Math.round(result.perSecond)).join(', ')} |`,
      ),
    ];
  } finally {
    await jobs.close();
    await redis.quit();
  }
}
