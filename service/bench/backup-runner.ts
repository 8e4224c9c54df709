/**
 * One backup run as the worker runs it, in a process of its own (the bench's process also hosts
 * s3rver, whose work must not count against the backup's event loop). Prints one JSON line: the
 * backup's result and what this process measured while it ran.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { loadConfig } from '../src/config.js';
import { runBackup } from '../src/features/backups/backup.js';
import type { Breaker } from '../src/platform/breakers.js';
import { createLogger } from '../src/platform/logger.js';
import { createDatabase } from '../src/platform/mysql.js';
import { createS3Client } from '../src/platform/s3.js';

/** The histogram's sampling interval (the bench's, so that both processes are read alike). */
const LAG_RESOLUTION_MS = Number(process.env.BENCH_LAG_RESOLUTION_MS ?? 10);

const config = loadConfig(process.env, 'worker');
const direct: Breaker = { name: 'bench', run: (call) => call(), state: () => 'closed' };
const db = createDatabase(config.mysql, { primary: direct, replica: direct });
const s3 = createS3Client(config.s3);
const logger = createLogger({ ...config, logLevel: 'warn' }, 'worker');

const lag = monitorEventLoopDelay({ resolution: LAG_RESOLUTION_MS });
const rssBefore = process.memoryUsage().rss;
let rssPeak = rssBefore;
let heapPeak = process.memoryUsage().heapUsed;
// RSS over time: a stream that holds memory in proportion to what went through grows to the end;
// a bounded one reaches its peak early and stays there.
const rssSamples: [ms: number, rss: number][] = [];
// process.memoryUsage() walks the heap's spaces: only the cheap RSS read at every sample.
let samples = 0;
const sampler = setInterval(() => {
  const rss = process.memoryUsage.rss();
  rssPeak = Math.max(rssPeak, rss);
  if (++samples % 10 === 0) heapPeak = Math.max(heapPeak, process.memoryUsage().heapUsed);
  rssSamples.push([performance.now(), rss]);
}, 20);
const cpuBefore = process.cpuUsage();
const startedAt = performance.now();
lag.enable();
const result = await runBackup({ db, s3, config, logger });
lag.disable();
const seconds = (performance.now() - startedAt) / 1000;
const cpu = process.cpuUsage(cpuBefore);
clearInterval(sampler);
const ms = (ns: number) => ns / 1e6;
const halfway = startedAt + (seconds * 1000) / 2;
const rssPeakFirstHalf = Math.max(
  rssBefore,
  ...rssSamples.filter(([at]) => at <= halfway).map(([, rss]) => rss),
);
process.stdout.write(
  `${JSON.stringify({
    result,
    seconds,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    lagP99Ms: ms(lag.percentile(99)),
    lagMaxMs: ms(lag.max),
    rssBefore,
    rssPeak,
    rssPeakFirstHalf,
    heapPeak,
  })}\n`,
);
await db.close();
s3.destroy();
