/**
 * The backup's side of `npm run bench` (BENCH_ONLY=backups runs it alone): a database of
 * BENCH_BACKUP_MESSAGES messages (100,000 at least) backed up by a process of its own, as the
 * worker runs it, while an API process answers requests; beside it, in the same rounds,
 * `mariadb-dump --single-transaction | gzip` of the same replica.
 *
 * Reported: the event-loop lag p99 of the backing-up process and of the API during the backup
 * (each beyond the 10 ms sampling interval that monitorEventLoopDelay's figures include), the
 * backup's throughput and the dump's, and how far the backup process's memory grew while the whole
 * database streamed through it.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { v7 as uuidv7 } from 'uuid';
import { adminConnection } from '../src/test-support/admin-sql.js';
import { client, signUp } from '../src/test-support/cluster.js';
import type { TestStack } from '../src/test-support/stack.js';
import { median, startApi } from './load.js';

type Say = (line: string) => void;

const MESSAGES = Math.max(100_000, Number(process.env.BENCH_BACKUP_MESSAGES ?? 200_000));
/** The database grows to this many messages for one last backup: does the memory grow with it? */
const MEMORY_MESSAGES = Math.max(MESSAGES, Number(process.env.BENCH_BACKUP_MEMORY_MESSAGES ?? 3 * MESSAGES));
const ROOMS = 20;
const USERS = 200;
const INSERT_ROWS = 2_000;
const KEY = 'bench backup passphrase, not a secret';
// Requests a second to the API while the backup runs: steady work for its event loop.
const API_RATE = 100;
/** monitorEventLoopDelay's sampling interval, here and in the API's prom-client: each figure includes it. */
const LAG_RESOLUTION_MS = 10;

const WORDS =
  'the of and to in is you that it he was for on are as with his they at be this have from or one had by word but not what all were we when your can said there use an each which she do how their if will up other about out many then them these so some her would make like him into time has look two more write go see number no way could people my than first water been call who oil its now find long down day did get come made may part'.split(
    ' ',
  );

/** A chat line of 5 to 200 words: text that compresses as chat does, neither random nor repeated. */
function body(): string {
  const words = 5 + Math.floor(Math.random() ** 2 * 195);
  let text = '';
  for (let i = 0; i < words; i++) text += `${WORDS[Math.floor(Math.random() * WORDS.length)]} `;
  return text.slice(0, 3_990);
}

interface Seeded {
  users: string[];
  rooms: string[];
  /** Messages inserted so far: the next one's index. */
  messages: number;
}

export async function seed(stack: TestStack, say: Say): Promise<Seeded> {
  const connection = await adminConnection(stack.stack);
  try {
    const users = Array.from({ length: USERS }, () => uuidv7());
    const rooms = Array.from({ length: ROOMS }, () => uuidv7());
    await connection.query('INSERT INTO users (id, username, password_hash) VALUES ?', [
      users.map((id, i) => [id, `backup-bench-${i}`, `$argon2id$${randomBytes(24).toString('base64')}`]),
    ]);
    await connection.query('INSERT INTO rooms (id, name, visibility, owner_id) VALUES ?', [
      rooms.map((id, i) => [id, `backup bench ${i}`, 'public', users[i % USERS]]),
    ]);
    await connection.query('INSERT INTO room_memberships (room_id, user_id) VALUES ?', [
      rooms.flatMap((room) => users.slice(0, 50).map((user) => [room, user])),
    ]);
  } finally {
    await connection.end();
  }
  const seeded = { users: [] as string[], rooms: [] as string[], messages: 0 };
  return seedMessages(stack, seeded, MESSAGES, say);
}

/** `count` more messages, multi-row INSERTs as the admin, then waits for the replica to have them. */
async function seedMessages(stack: TestStack, seeded: Seeded, count: number, say: Say): Promise<Seeded> {
  const connection = await adminConnection(stack.stack);
  try {
    if (seeded.users.length === 0) {
      const [users] = (await connection.query(
        "SELECT id FROM users WHERE username LIKE 'backup-bench-%' ORDER BY id",
      )) as [{ id: string }[], unknown];
      const [rooms] = (await connection.query(
        "SELECT id FROM rooms WHERE name LIKE 'backup bench %' ORDER BY id",
      )) as [{ id: string }[], unknown];
      seeded = { ...seeded, users: users.map((u) => u.id), rooms: rooms.map((r) => r.id) };
    }
    const { users, rooms } = seeded;
    const startedAt = Date.now();
    const last = seeded.messages + count;
    for (let first = seeded.messages; first < last; first += INSERT_ROWS) {
      const rows = Array.from({ length: Math.min(INSERT_ROWS, last - first) }, (_, j) => {
        const i = first + j;
        const at = new Date(Date.UTC(2026, 10, 1) + i * 1_000 + (i % 1000));
        return [
          rooms[i % ROOMS],
          users[(i * 7) % USERS],
          Math.floor(i / ROOMS) + 1,
          body(),
          i % 3 === 0 ? null : `k-${i}`,
          at,
        ];
      });
      await connection.query(
        'INSERT INTO messages (room_id, author_id, seq, body, idempotency_key, created_at) VALUES ?',
        [rows],
      );
    }
    await connection.query(
      'UPDATE rooms r SET message_seq = (SELECT COALESCE(MAX(seq), 0) FROM messages m WHERE m.room_id = r.id) WHERE r.id IN (?)',
      [rooms],
    );
    say(
      `seeded ${count} messages in ${((Date.now() - startedAt) / 1000).toFixed(1)} s; waiting for the replica…`,
    );
    await stack.stack.mysql.waitForReplication(300_000);
    return { ...seeded, messages: last };
  } finally {
    await connection.end();
  }
}

interface RunnerReport {
  result: { bytes: number; plaintextBytes: number; rows: number; server: string; key: string };
  seconds: number;
  cpuSeconds: number;
  lagP99Ms: number;
  lagMaxMs: number;
  rssBefore: number;
  rssPeak: number;
  rssPeakFirstHalf: number;
  heapPeak: number;
}

function runBackupProcess(env: Record<string, string>): Promise<RunnerReport> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', fileURLToPath(new URL('./backup-runner.ts', import.meta.url))],
      {
        env: { ...process.env, ...env, BENCH_LAG_RESOLUTION_MS: String(LAG_RESOLUTION_MS) },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`the backup process exited with ${code}`));
      resolve(JSON.parse(output.trim().split('\n').at(-1)!) as RunnerReport);
    });
  });
}

/** `mariadb-dump --single-transaction <db> | gzip`, timed, with the dump's size before gzip. */
function runDump(stack: TestStack): Promise<{ seconds: number; bytes: number; gzipBytes: number }> {
  const server = stack.stack.mysql.replica ?? stack.stack.mysql.primary;
  const script =
    'set -o pipefail; mariadb-dump --single-transaction -h "$HOST" -P "$PORT" -u "$USER_NAME" "$DATABASE" ' +
    '| tee >(wc -c >&3) | gzip | wc -c';
  return new Promise((resolve, reject) => {
    const startedAt = performance.now();
    const child = spawn('bash', ['-c', `exec 3>&2; ${script}`], {
      env: {
        PATH: process.env.PATH ?? '',
        HOST: server.host,
        PORT: String(server.port),
        USER_NAME: stack.stack.mysql.admin.user,
        MYSQL_PWD: stack.stack.mysql.admin.password,
        DATABASE: stack.stack.mysql.database,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.on('close', (code) => {
      const seconds = (performance.now() - startedAt) / 1000;
      const dumped = Number(/^\s*(\d+)\s*$/m.exec(err)?.[1]);
      if (code !== 0 || !Number.isFinite(dumped))
        return reject(new Error(`mariadb-dump | gzip failed (${code}): ${err}`));
      resolve({ seconds, bytes: dumped, gzipBytes: Number(out.trim()) });
    });
  });
}

// An idle Node process that only samples its own event loop: what the machine alone (other
// processes, the scheduler) does to a loop that has no work of its own, during the same window.
const IDLE_MONITOR = `
const h = require('node:perf_hooks').monitorEventLoopDelay({ resolution: ${LAG_RESOLUTION_MS} });
h.enable();
process.stdout.write('ready\\n');
process.on('SIGTERM', () => {
  h.disable();
  process.stdout.write(JSON.stringify({ p99Ms: h.percentile(99) / 1e6, maxMs: h.max / 1e6 }) + '\\n');
  process.exit(0);
});
setInterval(() => {}, 1000);
`;

async function startIdleMonitor(): Promise<() => Promise<{ p99Ms: number; maxMs: number }>> {
  const child = spawn(process.execPath, ['-e', IDLE_MONITOR], { stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  while (!output.includes('ready')) await new Promise((resolve) => setTimeout(resolve, 20));
  return async () => {
    const closed = new Promise((resolve) => child.on('close', resolve));
    child.kill('SIGTERM');
    await closed;
    return JSON.parse(output.trim().split('\n').at(-1)!) as { p99Ms: number; maxMs: number };
  };
}

/** The API's event-loop lag p99 and max since its last scrape (prom-client resets them on each). */
async function apiLag(managementUrl: string): Promise<{ p99Ms: number; maxMs: number }> {
  const text = await (await fetch(`${managementUrl}/metrics`)).text();
  const read = (name: string) =>
    Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1]) * 1000;
  return { p99Ms: read('nodejs_eventloop_lag_p99_seconds'), maxMs: read('nodejs_eventloop_lag_max_seconds') };
}

/** Requests to `url` at `API_RATE` a second until `done` settles; their latencies, in ms. */
async function steadyRequests(url: string, headers: Record<string, string>, done: Promise<unknown>) {
  const latencies: number[] = [];
  let failures = 0;
  let finished = false;
  void done.finally(() => (finished = true)).catch(() => undefined);
  const inFlight: Promise<void>[] = [];
  const startedAt = performance.now();
  for (let i = 0; !finished; i++) {
    const wait = startedAt + (i * 1000) / API_RATE - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    const sentAt = performance.now();
    inFlight.push(
      fetch(url, { headers }).then(
        async (response) => {
          await response.arrayBuffer();
          if (!response.ok) failures++;
          latencies.push(performance.now() - sentAt);
        },
        () => void failures++,
      ),
    );
  }
  await Promise.all(inFlight);
  return { latencies, failures };
}

const percentile = (values: number[], q: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
};
const mb = (bytes: number) => bytes / 1024 / 1024;
const beyond = (ms: number) => Math.max(0, ms - LAG_RESOLUTION_MS);

export interface BackupBenchFigures {
  messages: number;
  ndjsonMB: number;
  backupMBps: number;
  dumpMBps: number;
  timeRatio: number;
  workerLagP99Ms: number;
  apiLagP99Ms: number;
  idleLagP99Ms: number;
  rssGrowthMB: number;
  largeNdjsonMB: number;
  largeRssGrowthMB: number;
}

export async function backupsBench(
  stack: TestStack,
  rounds: number,
  say: Say,
): Promise<{ lines: string[]; figures: BackupBenchFigures }> {
  say(`backups: seeding ${MESSAGES} messages…`);
  const seeded = await seed(stack, say);
  const env = { ...stack.env, BACKUP_ENCRYPTION_KEY: KEY, BACKUP_KEEP: '2', LOG_LEVEL: 'warn' };
  const api = await startApi(stack.env, 'warn');
  try {
    const user = await signUp(client(api.url), 'backup-bench');
    const room = await client(api.url)('POST', '/v1/rooms', {
      token: user.accessToken,
      body: { name: 'backup bench reads', visibility: 'public' },
    });
    const roomUrl = `${api.url}/v1/rooms/${room.body.id}`;
    const headers = { authorization: `Bearer ${user.accessToken}` };

    const dumps: Awaited<ReturnType<typeof runDump>>[] = [];
    const backups: (RunnerReport & {
      api: { p99Ms: number; maxMs: number };
      idle: { p99Ms: number; maxMs: number };
      requestP99Ms: number;
      failures: number;
    })[] = [];
    await runDump(stack); // warm-up: the replica's buffer pool, the page cache
    for (let round = 1; round <= rounds; round++) {
      // Under the same load as the backup: the API answering requests meanwhile.
      say(
        `backups round ${round}/${rounds}: mariadb-dump --single-transaction | gzip, the API answering ${API_RATE} req/s…`,
      );
      const dump = runDump(stack);
      await steadyRequests(roomUrl, headers, dump);
      dumps.push(await dump);
      say(
        `backups round ${round}/${rounds}: runBackup in its own process, the API answering ${API_RATE} req/s…`,
      );
      const stopIdleMonitor = await startIdleMonitor();
      await apiLag(api.managementUrl); // resets the API's histogram: what follows is the backup's window
      const backup = runBackupProcess(env);
      const requests = await steadyRequests(roomUrl, headers, backup);
      const report = await backup;
      backups.push({
        ...report,
        api: await apiLag(api.managementUrl),
        idle: await stopIdleMonitor(),
        requestP99Ms: percentile(requests.latencies, 0.99),
        failures: requests.failures,
      });
    }

    const ndjson = backups[0]!.result.plaintextBytes;
    const backupMBps = median(backups.map((b) => mb(b.result.plaintextBytes) / b.seconds));
    const dumpMBps = median(dumps.map((d) => mb(d.bytes) / d.seconds));
    const backupSeconds = median(backups.map((b) => b.seconds));
    const dumpSeconds = median(dumps.map((d) => d.seconds));
    const workerLag = median(backups.map((b) => b.lagP99Ms));
    const apiLagP99 = median(backups.map((b) => b.api.p99Ms));
    const rssGrowth = Math.max(...backups.map((b) => b.rssPeak - b.rssBefore));

    say(`backups: growing the database to ${MEMORY_MESSAGES} messages for one more backup, for its memory…`);
    await seedMessages(stack, seeded, MEMORY_MESSAGES - MESSAGES, say);
    const large = await runBackupProcess(env);
    const largeGrowth = large.rssPeak - large.rssBefore;
    const figures: BackupBenchFigures = {
      messages: MESSAGES,
      ndjsonMB: mb(ndjson),
      backupMBps,
      dumpMBps,
      timeRatio: dumpSeconds / backupSeconds,
      workerLagP99Ms: beyond(workerLag),
      apiLagP99Ms: beyond(apiLagP99),
      idleLagP99Ms: beyond(median(backups.map((b) => b.idle.p99Ms))),
      rssGrowthMB: mb(rssGrowth),
      largeNdjsonMB: mb(large.result.plaintextBytes),
      largeRssGrowthMB: mb(largeGrowth),
    };
    const lines = [
      '',
      `Backups: ${MESSAGES.toLocaleString('en')} messages (${backups[0]!.result.rows.toLocaleString('en')} rows in all), ${mb(ndjson).toFixed(1)} MB of NDJSON, ` +
        `${mb(backups[0]!.result.bytes).toFixed(1)} MB encrypted; ${rounds} rounds, the dump and the backup side by side, both reading the ${backups[0]!.result.server}. Medians.`,
      '',
      '| run | seconds | MB/s | output MB | event-loop lag p99 ms (max) | peak RSS growth MB |',
      '|---|---:|---:|---:|---:|---:|',
      `| mariadb-dump --single-transaction \\| gzip | ${dumpSeconds.toFixed(2)} | ${dumpMBps.toFixed(1)} of SQL text | ${mb(median(dumps.map((d) => d.gzipBytes))).toFixed(1)} | – | – |`,
      `| runBackup (own process) | ${backupSeconds.toFixed(2)} | ${backupMBps.toFixed(1)} of NDJSON | ${mb(median(backups.map((b) => b.result.bytes))).toFixed(1)} | ${beyond(workerLag).toFixed(1)} (${beyond(median(backups.map((b) => b.lagMaxMs))).toFixed(1)}) | ${mb(rssGrowth).toFixed(1)} |`,
      `| API meanwhile (${API_RATE} req/s) | – | – | – | ${beyond(apiLagP99).toFixed(1)} (${beyond(median(backups.map((b) => b.api.maxMs))).toFixed(1)}) | – |`,
      `| an idle Node process meanwhile (the machine's own share) | – | – | – | ${beyond(median(backups.map((b) => b.idle.p99Ms))).toFixed(1)} (${beyond(median(backups.map((b) => b.idle.maxMs))).toFixed(1)}) | – |`,
      '',
      `Backup vs dump, same database in the same run: **${(dumpSeconds / backupSeconds).toFixed(2)}** of the dump's speed in wall time ` +
        `(target ≥ 0.8); the dump's SQL text is ${mb(median(dumps.map((d) => d.bytes))).toFixed(1)} MB, the backup's NDJSON ${mb(ndjson).toFixed(1)} MB. ` +
        `Backup CPU ${median(backups.map((b) => b.cpuSeconds)).toFixed(2)} s on its process (zlib's pool threads included).`,
      `Event-loop lag p99 (beyond the ${LAG_RESOLUTION_MS} ms sampling interval; target < 20 ms): the backing-up process ` +
        `${backups.map((b) => beyond(b.lagP99Ms).toFixed(1)).join(', ')} ms, the API ${backups.map((b) => beyond(b.api.p99Ms).toFixed(1)).join(', ')} ms ` +
        `(its requests' p99 ${backups.map((b) => b.requestP99Ms.toFixed(1)).join(', ')} ms, failures ${backups.reduce((n, b) => n + b.failures, 0)}).`,
      `Memory: the backup process's RSS grew at most ${mb(rssGrowth).toFixed(1)} MB (heap peak ${mb(Math.max(...backups.map((b) => b.heapPeak))).toFixed(1)} MB) ` +
        `while ${mb(ndjson).toFixed(1)} MB of NDJSON streamed through it; with the database grown to ${MEMORY_MESSAGES.toLocaleString('en')} messages ` +
        `(${mb(large.result.plaintextBytes).toFixed(1)} MB of NDJSON, ${mb(large.result.bytes).toFixed(1)} MB encrypted, ${large.seconds.toFixed(1)} s), ` +
        `it grew ${mb(largeGrowth).toFixed(1)} MB (first half of that run: ${mb(large.rssPeakFirstHalf - large.rssBefore).toFixed(1)} MB).`,
    ];
    return { lines, figures };
  } finally {
    api.child.kill('SIGTERM');
  }
}
