/**
 * `npm run bench`: the scenarios of docs/benchmarks.md, on this machine, in one run, so every
 * figure can be quoted as a ratio to a ceiling measured side by side. Servers run as their own
 * processes; autocannon (the generator) runs here. Each HTTP scenario runs in interleaved rounds
 * and the median of the rounds is reported.
 */
import type { ChildProcess } from 'node:child_process';
import { cpus } from 'node:os';
import { client, signUp } from '../src/test-support/cluster.js';
import { startTestStack } from '../src/test-support/stack.js';
import { jwtMicrobenchmark } from './jwt-micro.js';
import { onImageRuntime } from './image-runtime.js';
import { backupsBench } from './backups.js';
import { leaderboardsBench } from './leaderboards.js';
import { realtimeBench } from './realtime.js';
import {
  buildService,
  buildServiceAt,
  cpuBudgetUs,
  load,
  median,
  medianCpuUs,
  paced,
  startApi,
  startBenchServer,
  withFreshIdempotencyKey,
  type LoadResult,
} from './load.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
/** `http`, `realtime`, `leaderboards` or `backups` runs that part alone; all of them by default. */
const ONLY = process.env.BENCH_ONLY;
/** A commit to compare with: its build posts beside this checkout's, in alternating rounds. */
const BASELINE = process.env.BENCH_BASELINE;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
/** Issue 4's goal for message posts on one process, req/s; the tail is measured at half of it. */
const GOAL_POSTS = 2_000;
/** Issue 4's goal for the cached read: this share of the bare node:http ceiling's req/s. */
const READ_GOAL = 0.6;
const children: ChildProcess[] = [];
const cleanups: (() => void)[] = [];
const say = (line: string) => process.stderr.write(`[bench] ${line}\n`);

const runtime = await onImageRuntime();
say(`Node ${process.version} (${runtime.origin}); compiling the service…`);
buildService();
const stack = await startTestStack({ redisTopology: 'single' }, { RATE_LIMIT_API: '1000000000/60' });
async function httpBench(): Promise<string[]> {
  say('JWT microbenchmark…');
  const jwt = await jwtMicrobenchmark(stack.env);

  const bare = await startBenchServer('./servers/bare.ts', {});
  const shaped = await startBenchServer('./servers/bare-shaped.ts', {});
  const hello = await startBenchServer('./servers/hello.ts', stack.env);
  children.push(bare.child, shaped.child, hello.child);
  const startTracked = async (logLevel: string) => {
    const api = await startApi(stack.env, logLevel);
    children.push(api.child);
    return { url: api.url, pid: api.child.pid };
  };
  const { url: apiQuiet, pid: apiQuietPid } = await startTracked('warn');
  const { url: apiLogged, pid: apiLoggedPid } = await startTracked('info');

  const user = await signUp(client(apiQuiet), 'bench');
  const room = await client(apiQuiet)('POST', '/v1/rooms', {
    token: user.accessToken,
    body: { name: 'bench', visibility: 'public' },
  });
  const roomPath = `/v1/rooms/${room.body.id}`;
  const auth = { authorization: `Bearer ${user.accessToken}` };
  const insertFloor = await startBenchServer('./servers/insert.ts', stack.env); // needs the user and room
  children.push(insertFloor.child);
  const postBody = JSON.stringify({ body: 'benchmark message' });
  let baseline: { url: string; pid: number | undefined } | undefined;
  if (BASELINE) {
    say(`compiling the service at ${BASELINE} (BENCH_BASELINE), to post beside this checkout…`);
    const built = buildServiceAt(BASELINE);
    cleanups.push(built.remove);
    const api = await startApi(stack.env, 'warn', [], built.serviceDir);
    children.push(api.child);
    baseline = { url: api.url, pid: api.child.pid };
  }
  const postMessages = (url = apiQuiet, pid = apiQuietPid) =>
    load(
      {
        url,
        duration: SECONDS * 2,
        requests: [
          {
            method: 'POST',
            path: `${roomPath}/messages`,
            headers: { ...auth, 'content-type': 'application/json' },
            body: postBody,
            setupRequest: (request) => ({
              ...request,
              headers: withFreshIdempotencyKey(request.headers),
            }),
          },
        ],
      },
      pid,
    );
  const floorUrl = `http://127.0.0.1:${insertFloor.info.port}/`;
  const postFloor = () =>
    load(
      {
        url: floorUrl,
        duration: SECONDS * 2,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: postBody,
      },
      insertFloor.child.pid,
    );

  const scenarios: Record<string, () => Promise<LoadResult>> = {
    'node:http bare JSON': () =>
      load({ url: `http://127.0.0.1:${bare.info.port}/`, duration: SECONDS }, bare.child.pid),
    'node:http, the API response’s headers and body': () =>
      load({ url: `http://127.0.0.1:${shaped.info.port}/`, duration: SECONDS }, shaped.child.pid),
    'Hono /hello': () =>
      load({ url: `http://127.0.0.1:${hello.info.port}/hello`, duration: SECONDS }, hello.child.pid),
    'Hono /hello + one Redis GET': () =>
      load({ url: `http://127.0.0.1:${hello.info.port}/hello-redis`, duration: SECONDS }, hello.child.pid),
    'Hono /hello + auth (LRU hit)': () =>
      load(
        {
          url: `http://127.0.0.1:${hello.info.port}/hello-auth`,
          headers: { authorization: `Bearer ${hello.info.token}` },
          duration: SECONDS,
        },
        hello.child.pid,
      ),
    'GET /v1/rooms/{id} (access log off)': () =>
      load({ url: `${apiQuiet}${roomPath}`, headers: auth, duration: SECONDS }, apiQuietPid),
    'GET /v1/rooms/{id} (access log on)': () =>
      load({ url: `${apiLogged}${roomPath}`, headers: auth, duration: SECONDS }, apiLoggedPid),
  };
  const results: Record<string, LoadResult[]> = Object.fromEntries(
    Object.keys(scenarios).map((name) => [name, []]),
  );
  for (const run of Object.values(scenarios)) await run(); // warm-up: JIT, pools, caches
  for (let round = 1; round <= ROUNDS; round++) {
    for (const [name, run] of Object.entries(scenarios)) {
      say(`round ${round}/${ROUNDS}: ${name}`);
      results[name]!.push(await run());
    }
  }

  say('message posts at full speed, beside their floor (node:http + the room-locked INSERT transaction)…');
  await postFloor(); // warm-up
  const postRounds: LoadResult[] = [];
  const floorRounds: LoadResult[] = [];
  const baselinePostRounds: LoadResult[] = [];
  if (baseline) await postMessages(baseline.url, baseline.pid); // warm-up
  for (let round = 1; round <= ROUNDS; round++) {
    floorRounds.push(await postFloor());
    postRounds.push(await postMessages());
    if (baseline) baselinePostRounds.push(await postMessages(baseline.url, baseline.pid));
  }
  const medianOf = (runs: LoadResult[], pick: (run: LoadResult) => number) => median(runs.map(pick));
  const failures = (runs: LoadResult[]) => runs.reduce((n, run) => n + run.non2xx + run.errors, 0);
  const postMax = {
    rps: medianOf(postRounds, (run) => run.rps),
    p99: medianOf(postRounds, (run) => run.p99),
    non2xx: failures(postRounds),
    cpuUs: medianCpuUs(postRounds),
  };
  const floorCpuUs = medianCpuUs(floorRounds);
  const floorRps = medianOf(floorRounds, (run) => run.rps);
  // The tail at a steady load, in rounds beside the floor at the same rate: this shared machine
  // stalls now and then for everything on it (the floor's p99 shows when), and a 100 ms stall alone
  // is the p99 of a 10 s run.
  const pacedRounds = async (rate: number) => {
    const pacedAt = (url: string, pid: number | undefined) =>
      paced({
        url,
        method: 'POST',
        headers: () => withFreshIdempotencyKey({ ...auth, 'content-type': 'application/json' }),
        body: postBody,
        rate,
        seconds: SECONDS * 2,
        pid,
      });
    const rounds: LoadResult[] = [];
    const floor: LoadResult[] = [];
    const baselineRounds: LoadResult[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      floor.push(await pacedAt(floorUrl, insertFloor.child.pid));
      rounds.push(await pacedAt(`${apiQuiet}${roomPath}/messages`, apiQuietPid));
      if (baseline) baselineRounds.push(await pacedAt(`${baseline.url}${roomPath}/messages`, baseline.pid));
    }
    return {
      rounds,
      baselineRounds,
      rate,
      p50: medianOf(rounds, (run) => run.p50),
      p99: medianOf(rounds, (run) => run.p99),
      p99s: rounds.map((run) => run.p99),
      floorP99s: floor.map((run) => run.p99),
      non2xx: failures(rounds),
      cpuUs: medianCpuUs(rounds),
      floorCpuUs: medianCpuUs(floor),
    };
  };
  say(`message posts at ${GOAL_POSTS / 2}/s (half the goal's rate), evenly paced, beside the floor…`);
  const atHalfGoal = await pacedRounds(GOAL_POSTS / 2);
  const halfMax = Math.round(postMax.rps / 2);
  say(`message posts at ${halfMax}/s (half the measured rate), evenly paced, beside the floor…`);
  const atHalfMax = await pacedRounds(halfMax);
  const pacedLine = (name: string, result: Awaited<ReturnType<typeof pacedRounds>>) =>
    `at ${name} (${result.rate}/s, evenly paced), p99 **${result.p99} ms** (median of ${ROUNDS} rounds of ${SECONDS * 2} s: ` +
    `${result.p99s.join(', ')} ms; p50 ${result.p50} ms; non-2xx ${result.non2xx}); the floor's p99 at that rate in the rounds beside them: ${result.floorP99s.join(', ')} ms.` +
    (result.cpuUs !== undefined && result.floorCpuUs !== undefined
      ? ` CPU per post at this rate: the API ${result.cpuUs.toFixed(0)} µs (${((100 * result.cpuUs) / cpuBudgetUs(result.rate)).toFixed(0)}% of a core), the floor ${result.floorCpuUs.toFixed(0)} µs.`
      : '');

  const rps = (name: string) => median(results[name]!.map((result) => result.rps));
  const ceiling = rps('node:http bare JSON');
  const cpuUs = (name: string) => medianCpuUs(results[name]!);
  const read = 'GET /v1/rooms/{id} (access log off)';
  const readCpu = cpuUs(read);
  const ceilingCpu = cpuUs('node:http bare JSON');
  const generatorCpu = medianCpuUs(results['node:http bare JSON']!, 'generatorCpuUs');
  const helloAuthCpu = cpuUs('Hono /hello + auth (LRU hit)');
  const readBudget = cpuBudgetUs(READ_GOAL * ceiling);
  const lines = [
    `Measured ${new Date().toISOString().slice(0, 10)} on ${cpus().length} cores (${cpus()[0]?.model.trim()}), Node ${process.version} (${runtime.origin}), the API compiled (dist/main-api.js);`,
    `${ROUNDS} interleaved rounds of ${SECONDS} s, 50 connections; the servers in their own processes, autocannon and the paced generator in the bench process. Median req/s.`,
    '',
    '| scenario | req/s (median) | ratio to node:http | server CPU µs per request (median) | p99 ms (median) | non-2xx |',
    '|---|---:|---:|---:|---:|---:|',
    ...Object.keys(scenarios).map((name) => {
      const runs = results[name]!;
      return `| ${name} | ${Math.round(rps(name))} | ${(rps(name) / ceiling).toFixed(2)} | ${cpuUs(name)?.toFixed(1) ?? '–'} | ${median(runs.map((r) => r.p99))} | ${runs.reduce((n, r) => n + r.non2xx, 0)} |`;
    }),
    '',
    `JWT: verifyAccessToken on an LRU hit ${jwt.hitNs.toFixed(0)} ns (median), jose EdDSA verify ${(jwt.verifyNs / 1000).toFixed(1)} µs: ` +
      `**${(jwt.verifyNs / jwt.hitNs).toFixed(0)}x** (means: ${jwt.hitMeanNs.toFixed(0)} ns vs ${(jwt.verifyMeanNs / 1000).toFixed(1)} µs).`,
    `End to end, authenticated /hello vs the same route without auth: **${(rps('Hono /hello + auth (LRU hit)') / rps('Hono /hello')).toFixed(2)}**.`,
    `Authenticated, rate-limited, cached GET /v1/rooms/{id} vs bare node:http: **${(rps(read) / ceiling).toFixed(2)}** ` +
      `(access log on: ${(rps('GET /v1/rooms/{id} (access log on)') / ceiling).toFixed(2)}); ` +
      `vs node:http answering the same headers and body: ${(rps(read) / rps('node:http, the API response’s headers and body')).toFixed(2)}.` +
      (readCpu !== undefined && ceilingCpu !== undefined
        ? ` In the server's own CPU time per request (which other processes' load does not change, though the host's speed does): the route ${readCpu.toFixed(1)} µs, node:http ${ceilingCpu.toFixed(1)} µs (${(readCpu / ceilingCpu).toFixed(2)}x).`
        : ''),
    `The read goal as CPU: to answer ${READ_GOAL.toFixed(2)} of the ceiling's ${Math.round(ceiling)} req/s on its one event loop, a request may cost the API at most ${readBudget.toFixed(1)} µs of CPU` +
      (helloAuthCpu !== undefined && readCpu !== undefined
        ? `; Hono /hello + auth (LRU hit) spent ${helloAuthCpu.toFixed(1)} µs (${((100 * helloAuthCpu) / readBudget).toFixed(0)}% of it), the route ${readCpu.toFixed(1)} µs (${((100 * readCpu) / readBudget).toFixed(0)}%).`
        : '.') +
      (generatorCpu !== undefined && ceilingCpu !== undefined
        ? ` The generator (autocannon, in the bench process) spent ${generatorCpu.toFixed(1)} µs per request against node:http, ${(generatorCpu / ceilingCpu).toFixed(2)}x node:http's own; node:http itself used ${((100 * ceilingCpu) / cpuBudgetUs(ceiling)).toFixed(0)}% of a core at the ceiling.`
        : ''),
    `Message post, one process: **${Math.round(postMax.rps)} req/s** at full speed (median of ${ROUNDS} rounds of ${SECONDS * 2} s; p99 ${postMax.p99} ms, non-2xx ${postMax.non2xx}); ` +
      `its floor, node:http + the room-locked INSERT transaction, ${Math.round(floorRps)} req/s (ratio ${(postMax.rps / floorRps).toFixed(2)}).` +
      (postMax.cpuUs !== undefined && floorCpuUs !== undefined
        ? ` CPU per request: the API ${postMax.cpuUs.toFixed(0)} µs, the floor ${floorCpuUs.toFixed(0)} µs (MariaDB's and Redis's own CPU not counted).`
        : ''),
    `Message post ${pacedLine("half the goal's rate", atHalfGoal)}`,
    `Message post ${pacedLine('half the measured rate', atHalfMax)}`,
    ...(BASELINE
      ? [
          `Against ${BASELINE} (BENCH_BASELINE), its build posting in the rounds beside this checkout's: ` +
            [
              abLine('at full speed', postRounds, baselinePostRounds),
              abLine(`at ${atHalfGoal.rate}/s`, atHalfGoal.rounds, atHalfGoal.baselineRounds),
              abLine(`at ${atHalfMax.rate}/s`, atHalfMax.rounds, atHalfMax.baselineRounds),
            ].join('; ') +
            '.',
        ]
      : []),
  ];
  return lines;
}

try {
  const report = ONLY === undefined || ONLY === 'http' ? await httpBench() : [];
  if (ONLY === undefined || ONLY === 'realtime') report.push(...(await realtimeBench(stack, ROUNDS, say)));
  if (ONLY === undefined || ONLY === 'leaderboards')
    report.push(...(await leaderboardsBench(stack, ROUNDS, say)));
  // Last: it adds its messages to the database the other parts read.
  if (ONLY === undefined || ONLY === 'backups') {
    const backups = await backupsBench(stack, ROUNDS, say);
    report.push(...backups.lines);
    say(`backups figures: ${JSON.stringify(backups.figures)}`);
  }
  process.stdout.write(`${report.join('\n')}\n`);
} finally {
  for (const child of children) child.kill('SIGTERM');
  await stack.stack.stop();
  for (const cleanup of cleanups) cleanup();
}
process.exit(0);

/**
 * This checkout against the baseline, round by round: CPU per post and req/s, with the median of the
 * rounds' ratios (after / before), which the host's drifting speed moves far less than either figure.
 */
function abLine(label: string, after: LoadResult[], before: LoadResult[]): string {
  const ratios = (pick: (run: LoadResult) => number | undefined) =>
    after.flatMap((run, i) => {
      const [a, b] = [pick(run), pick(before[i]!)];
      return a === undefined || b === undefined || b === 0 ? [] : [a / b];
    });
  const cpu = ratios((run) => run.cpuUs);
  const rps = ratios((run) => run.rps);
  const cpuPart =
    cpu.length > 0
      ? `CPU a post ${medianCpuUs(before)!.toFixed(0)} → ${medianCpuUs(after)!.toFixed(0)} µs (paired ratio ${median(cpu).toFixed(2)}; rounds ${cpu.map((r) => r.toFixed(2)).join(', ')})`
      : 'CPU not readable here';
  return `${label}, ${cpuPart}, req/s paired ratio ${median(rps).toFixed(2)}, p99 ${median(before.map((r) => r.p99))} → ${median(after.map((r) => r.p99))} ms`;
}
