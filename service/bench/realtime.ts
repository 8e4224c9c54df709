/**
 * The live side's scenarios of `npm run bench`, each beside a raw baseline measured in the same run:
 * fan-out to 1,000 sockets against a bare `ws` broadcast loop, post-to-last-subscriber latency at
 * 50 messages a second against the bare server's broadcast at the same rate, the memory an idle
 * socket costs and the most sockets one process held, and a resume of 1,000 missed messages through
 * the typed client against reading them with one SELECT. The crowds of 1,000 and 10,000 are bare `ws`
 * sockets that count frames and find a body's tag, the same work on both sides: the typed client
 * parses every frame with zod, which in a crowd would load the generator's share of the two cores
 * far more than the servers'.
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';
import { Pool } from 'undici';
import WebSocket from 'ws';
import { ParleyClient } from '../src/client/index.js';
import type { TestStack } from '../src/test-support/stack.js';
import { client, signUp, type User } from '../src/test-support/cluster.js';
import { median, startApi, startBenchServer } from './load.js';

type Say = (line: string) => void;

interface Listeners {
  sockets: WebSocket[];
  /** message.created frames received, all sockets together. */
  received(): number;
  /** When the last socket received the frame whose body is `tag` (ms, performance.now()). */
  lastArrival(tag: string): number | undefined;
  close(): void;
}

const BODY = Buffer.from('"body":"');
const QUOTE = 0x22;

/**
 * `count` sockets to `url` (in batches, as a crowd of clients arrives), each subscribed to `roomId`
 * when one is given. Each counts the frames it receives and notes when a tagged body arrives; it
 * reads the tag from the frame's bytes without decoding the frame, and skips ws's UTF-8 check, so
 * that the clients, which share the machine with the servers, cost as little as they can.
 */
async function openListeners(url: string, count: number, options: { token?: string; roomId?: string } = {}) {
  const arrivals = new Map<string, { sockets: number; at: number }>();
  let received = 0;
  const sockets: WebSocket[] = [];
  const onFrame = (data: Buffer) => {
    received++;
    const start = data.indexOf(BODY);
    if (start < 0) return;
    const tag = data.toString('latin1', start + BODY.length, data.indexOf(QUOTE, start + BODY.length));
    const seen = arrivals.get(tag);
    if (seen) {
      seen.sockets++;
      seen.at = performance.now();
    } else arrivals.set(tag, { sockets: 1, at: performance.now() });
  };
  const openOne = () =>
    new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(url, {
        headers: options.token ? { authorization: `Bearer ${options.token}` } : {},
        perMessageDeflate: false,
        skipUTF8Validation: true,
      });
      const listen = () => {
        ws.on('message', onFrame);
        resolve(ws);
      };
      ws.once('open', () => {
        if (!options.roomId) return listen();
        ws.once('message', listen); // the subscribed frame
        ws.send(JSON.stringify({ type: 'subscribe', roomId: options.roomId }));
      });
      ws.once('error', reject);
    });
  for (let opened = 0; opened < count; opened += 200) {
    sockets.push(...(await Promise.all(Array.from({ length: Math.min(200, count - opened) }, openOne))));
  }
  const listeners: Listeners = {
    sockets,
    received: () => received,
    lastArrival: (tag) => {
      const seen = arrivals.get(tag);
      return seen && seen.sockets >= sockets.length ? seen.at : undefined;
    },
    close: () => {
      for (const ws of sockets) ws.terminate();
    },
  };
  return listeners;
}

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) return false;
    await new Promise((resolve) => setImmediate(resolve));
  }
  return true;
}

/** Resident memory of a process, in bytes (Linux). */
function rssBytes(pid: number): number {
  const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kb) * 1024;
}

const percentile = (values: number[], q: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
};

/** Sends `count` requests at `rate` a second, evenly; `request(i)` resolves when sent and answered. */
async function pacedRun(rate: number, count: number, request: (i: number) => Promise<unknown>) {
  const start = performance.now();
  const sent: Promise<unknown>[] = [];
  for (let i = 0; i < count; i++) {
    const wait = start + (i * 1000) / rate - performance.now();
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
    sent.push(request(i));
  }
  await Promise.all(sent);
}

export async function realtimeBench(stack: TestStack, rounds: number, say: Say): Promise<string[]> {
  const env = { ...stack.env, REALTIME_MAX_SOCKETS_PER_USER: '100000', REALTIME_RESUME_MAX_MESSAGES: '1000' };
  // BENCH_CPU_PROFILE_DIR=<dir>: both API processes write a CPU profile there when they stop.
  const profile = process.env.BENCH_CPU_PROFILE_DIR;
  const nodeArgs = profile ? ['--cpu-prof', `--cpu-prof-dir=${profile}`] : [];
  const [apiA, apiB] = [await startApi(env, 'warn', nodeArgs), await startApi(env, 'warn', nodeArgs)];
  const raw = await startBenchServer('./servers/ws-broadcast.ts', {});
  const children = [apiA.child, apiB.child, raw.child];
  const redis = new Redis(stack.env.REDIS_URL!);
  const wsUrl = (http: string) => `${http.replace('http', 'ws')}/v1/ws`;
  const rawHttp = `http://127.0.0.1:${raw.info.port}`;
  const rawPool = new Pool(rawHttp, { connections: 10 });
  const postPool = new Pool(apiB.url, { connections: 20 });
  try {
    const user: User = await signUp(client(apiA.url), 'live-bench');
    const newRoom = async () =>
      String(
        (
          await client(apiA.url)('POST', '/v1/rooms', {
            token: user.accessToken,
            body: { name: `bench-${randomUUID().slice(0, 6)}`, visibility: 'public' },
          })
        ).body.id,
      );
    const post = async (roomId: string, body: string) => {
      const response = await postPool.request({
        path: `/v1/rooms/${roomId}/messages`,
        method: 'POST',
        headers: {
          authorization: `Bearer ${user.accessToken}`,
          'content-type': 'application/json',
          'idempotency-key': randomUUID(),
        },
        body: JSON.stringify({ body }),
      });
      const text = await response.body.text();
      if (response.statusCode !== 201) throw new Error(`post answered ${response.statusCode}: ${text}`);
      return (JSON.parse(text) as { id: string }).id;
    };

    // Fan-out: the same 1,000 sockets' worth of frames, through the API's hub (events published on
    // the room's channel as a post publishes them) and through the bare broadcast loop.
    say('live: fan-out to 1,000 sockets, beside a bare ws broadcast loop…');
    const FANOUT_MESSAGES = 200;
    const fanoutRoom = await newRoom(); // never posted to: its seqs are the bench's to give
    let nextSeq = 1;
    const parleyCrowd = await openListeners(wsUrl(apiA.url), 1_000, {
      token: user.accessToken,
      roomId: fanoutRoom,
    });
    const rawCrowd = await openListeners(`ws://127.0.0.1:${raw.info.port}`, 1_000);
    const fanoutParley = async () => {
      const before = parleyCrowd.received();
      const pipeline = redis.pipeline();
      const startedAt = performance.now();
      for (let i = 0; i < FANOUT_MESSAGES; i++) {
        const at = new Date().toISOString();
        const message = {
          id: String(nextSeq),
          roomId: fanoutRoom,
          authorId: user.id,
          body: 'fan-out',
          createdAt: at,
        };
        pipeline.publish(
          `parley:room:${fanoutRoom}`,
          JSON.stringify({
            type: 'message.created',
            roomId: fanoutRoom,
            message,
            seq: nextSeq++,
            origin: 'bench',
            at,
          }),
        );
      }
      await pipeline.exec();
      const all = await waitFor(() => parleyCrowd.received() - before >= FANOUT_MESSAGES * 1_000, 60_000);
      if (!all) throw new Error('fan-out: not every socket received every message');
      return (FANOUT_MESSAGES * 1_000) / ((performance.now() - startedAt) / 1000);
    };
    const fanoutRaw = async () => {
      const before = rawCrowd.received();
      const startedAt = performance.now();
      await (
        await rawPool.request({ path: `/broadcast?count=${FANOUT_MESSAGES}&tag=fan-out`, method: 'POST' })
      ).body.dump();
      if (!(await waitFor(() => rawCrowd.received() - before >= FANOUT_MESSAGES * 1_000, 60_000)))
        throw new Error('fan-out: the raw clients missed frames');
      return (FANOUT_MESSAGES * 1_000) / ((performance.now() - startedAt) / 1000);
    };
    await fanoutParley(); // warm-up
    await fanoutRaw();
    const fanout = { parley: [] as number[], raw: [] as number[] };
    for (let round = 0; round < rounds; round++) {
      fanout.raw.push(await fanoutRaw());
      fanout.parley.push(await fanoutParley());
    }
    rawCrowd.close();
    parleyCrowd.close();

    // Latency at 50 messages a second: a post through process B to the last of 1,000 sockets on
    // process A, against a broadcast request to the bare server until its last client has it.
    say('live: post-to-last-subscriber latency at 50/s, beside the bare broadcast at 50/s…');
    const RATE = 50;
    const LATENCY_MESSAGES = 500;
    const latencyRoom = await newRoom();
    const parleyListeners = await openListeners(wsUrl(apiA.url), 1_000, {
      token: user.accessToken,
      roomId: latencyRoom,
    });
    const rawListeners = await openListeners(`ws://127.0.0.1:${raw.info.port}`, 1_000);
    const latencyRound = async (side: 'parley' | 'raw', round: number) => {
      const listeners = side === 'parley' ? parleyListeners : rawListeners;
      const sentAt = new Map<string, number>();
      await pacedRun(RATE, LATENCY_MESSAGES, async (i) => {
        const tag = `lat-${round}-${i}`;
        sentAt.set(tag, performance.now());
        if (side === 'parley') await post(latencyRoom, tag);
        else
          await (
            await rawPool.request({ path: `/broadcast?count=1&tag=${tag}`, method: 'POST' })
          ).body.dump();
      });
      await waitFor(
        () => [...sentAt.keys()].every((tag) => listeners.lastArrival(tag) !== undefined),
        30_000,
      );
      const latencies = [...sentAt].map(([tag, at]) => (listeners.lastArrival(tag) ?? Number.NaN) - at);
      return { p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99) };
    };
    await latencyRound('parley', -1); // warm-up
    await latencyRound('raw', -1);
    const latency = {
      parley: [] as { p50: number; p99: number }[],
      raw: [] as { p50: number; p99: number }[],
    };
    for (let round = 0; round < rounds; round++) {
      latency.raw.push(await latencyRound('raw', round));
      latency.parley.push(await latencyRound('parley', round));
    }
    parleyListeners.close();
    rawListeners.close();

    // Resume: 1,000 missed messages, from subscribe to the last replayed frame, beside one SELECT
    // of the same rows (what reading them costs at the least).
    say('live: resume of 1,000 missed messages, beside one SELECT of them…');
    const resumeRoom = await newRoom();
    const before = await post(resumeRoom, 'the last one seen');
    for (let i = 0; i < 1_000; i += 50)
      await Promise.all(Array.from({ length: 50 }, (_, j) => post(resumeRoom, `missed ${i + j}`)));
    // Through the typed client, as an app resumes: its frames parsed and deduplicated as it does.
    const parley = new ParleyClient({
      baseUrl: apiA.url,
      WebSocket,
      tokens: {
        accessToken: user.accessToken,
        refreshToken: user.refreshToken,
        tokenType: 'Bearer',
        expiresIn: 900,
      },
    });
    const resumeParley = async () => {
      const live = parley.live();
      try {
        if (!(await waitFor(() => live.state === 'live', 10_000)))
          throw new Error('resume: no live connection');
        let replayed = 0;
        const startedAt = performance.now();
        live.subscribe(resumeRoom, { after: before }).on('message', () => replayed++);
        if (!(await waitFor(() => replayed >= 1_000, 30_000)))
          throw new Error('resume: not every message came');
        return performance.now() - startedAt;
      } finally {
        live.close();
      }
    };
    const primary = stack.stack.mysql.primary;
    const sql = await mysql.createConnection({
      host: primary.host,
      port: primary.port,
      ...stack.stack.mysql.admin,
      database: stack.stack.mysql.database,
    });
    const resumeSelect = async () => {
      const startedAt = performance.now();
      await sql.query('SELECT * FROM messages WHERE room_id = ? AND id > ? ORDER BY seq LIMIT 1001', [
        resumeRoom,
        before,
      ]);
      return performance.now() - startedAt;
    };
    await resumeParley();
    await resumeSelect();
    const resume = { parley: [] as number[], select: [] as number[] };
    for (let round = 0; round < rounds; round++) {
      resume.select.push(await resumeSelect());
      resume.parley.push(await resumeParley());
    }
    await sql.end();

    // Idle sockets: what 10,000 open sockets (each subscribed to a room) add to the API's resident
    // memory, beside the bare ws server's for 10,000 plain sockets; then as many as one process holds.
    say('live: memory of 10,000 idle sockets, then as many as one process holds…');
    const idleRoom = await newRoom();
    const idleApi = await startApi(env, 'warn');
    children.push(idleApi.child);
    const memory = async (url: string, pid: number, token?: string) => {
      const warm = await openListeners(url, 100, { token, roomId: token ? idleRoom : undefined });
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      const rssBefore = rssBytes(pid);
      const crowd = await openListeners(url, 10_000, { token, roomId: token ? idleRoom : undefined });
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      const perSocket = (rssBytes(pid) - rssBefore) / 10_000;
      return { perSocket, crowd: [warm, crowd] };
    };
    const rawMemory = await memory(`ws://127.0.0.1:${raw.info.port}`, raw.child.pid!);
    for (const crowd of rawMemory.crowd) crowd.close();
    const parleyMemory = await memory(wsUrl(idleApi.url), idleApi.child.pid!, user.accessToken);
    // This process and the API are both held to the descriptor limit (ulimit -n): stop short of it.
    const descriptors = Number(execFileSync('sh', ['-c', 'ulimit -n']).toString().trim()) || 20_000;
    let most = parleyMemory.crowd.reduce((n, crowd) => n + crowd.sockets.length, 0);
    try {
      while (most + 1_000 <= descriptors - 1_000) {
        parleyMemory.crowd.push(
          await openListeners(wsUrl(idleApi.url), 1_000, { token: user.accessToken, roomId: idleRoom }),
        );
        most += 1_000;
      }
    } catch (error) {
      say(`live: opening more sockets failed at ${most}: ${(error as Error).message}`);
    }
    const rssAtMost = rssBytes(idleApi.child.pid!);
    for (const crowd of parleyMemory.crowd) crowd.close();

    const med = (values: number[]) => median(values);
    const fanoutRatio = med(fanout.parley) / med(fanout.raw);
    const p99Parley = med(latency.parley.map((r) => r.p99));
    const p99Raw = med(latency.raw.map((r) => r.p99));
    return [
      '',
      `Live side (${rounds} interleaved rounds; medians; the servers in their own processes, the clients bare ws sockets in the bench process):`,
      '',
      '| scenario | Parley | raw baseline | ratio or difference | target |',
      '|---|---:|---:|---:|---|',
      `| fan-out to 1,000 sockets, messages delivered a second | ${Math.round(med(fanout.parley))} | ${Math.round(med(fanout.raw))} (bare ws loop) | **${fanoutRatio.toFixed(2)}** | ≥ 0.70 |`,
      `| post to the last of 1,000 subscribers at 50/s, p50 ms | ${med(latency.parley.map((r) => r.p50)).toFixed(1)} | ${med(latency.raw.map((r) => r.p50)).toFixed(1)} (broadcast request) | ${(med(latency.parley.map((r) => r.p50)) - med(latency.raw.map((r) => r.p50))).toFixed(1)} | |`,
      `| the same, p99 ms | ${p99Parley.toFixed(1)} | ${p99Raw.toFixed(1)} | **+${(p99Parley - p99Raw).toFixed(1)}** | ≤ +5 ms |`,
      `| memory per idle socket (RSS over 10,000), KB | ${(parleyMemory.perSocket / 1024).toFixed(1)} | ${(rawMemory.perSocket / 1024).toFixed(1)} (bare ws) | ${(parleyMemory.perSocket / rawMemory.perSocket).toFixed(2)}x | ≤ 30 KB |`,
      `| resume of 1,000 missed messages through the typed client, subscribe to the last one delivered, ms | ${med(resume.parley).toFixed(1)} | ${med(resume.select).toFixed(1)} (one SELECT of them) | ${(med(resume.parley) / med(resume.select)).toFixed(1)}x | |`,
      '',
      `Fan-out rounds: Parley ${fanout.parley.map((v) => Math.round(v)).join(', ')}; raw ${fanout.raw.map((v) => Math.round(v)).join(', ')} deliveries a second. ` +
        `Latency p99 rounds: Parley ${latency.parley.map((r) => r.p99.toFixed(1)).join(', ')} ms; raw ${latency.raw.map((r) => r.p99.toFixed(1)).join(', ')} ms. ` +
        `The most sockets one API process held: ${most} (RSS ${(rssAtMost / 1024 / 1024).toFixed(0)} MB), where this machine's descriptor limit (ulimit -n ${descriptors}, for the API and the bench alike) stopped the bench.`,
    ];
  } finally {
    await Promise.all([rawPool.close(), postPool.close()]);
    redis.disconnect();
    for (const child of children) child.kill('SIGTERM');
  }
}
