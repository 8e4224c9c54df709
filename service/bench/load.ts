import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import autocannon, { type Options } from 'autocannon';
import { Pool } from 'undici';
import { freePorts } from '../devstack/ports.js';
import { apiNodeOptions } from './image-runtime.js';

const serviceDir = fileURLToPath(new URL('..', import.meta.url));
const repoRoot = join(serviceDir, '..');

/** Compiles the service as the image does (`npm run build`: tsc into dist/). */
export function buildService(): void {
  execFileSync('npm', ['run', 'build', '--silent'], {
    cwd: serviceDir,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}

/**
 * Compiles the service as it was at `ref` (any commit of this repository) into a temporary
 * directory, with this checkout's dependencies, for a run beside the working tree's build: what a
 * change did, measured side by side. Returns that build's service directory, for startApi, and
 * how to remove it.
 */
export function buildServiceAt(ref: string): { serviceDir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'parley-bench-baseline-'));
  const sources = execFileSync('git', ['archive', '--format=tar', ref, 'service', 'tsconfig.base.json'], {
    cwd: repoRoot,
    maxBuffer: 256 * 1024 * 1024,
  });
  execFileSync('tar', ['-x', '-C', dir], { input: sources });
  symlinkSync(join(repoRoot, 'node_modules'), join(dir, 'node_modules'));
  symlinkSync(join(serviceDir, 'node_modules'), join(dir, 'service', 'node_modules'));
  execFileSync(
    process.execPath,
    [join(repoRoot, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'],
    {
      cwd: join(dir, 'service'),
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  return { serviceDir: join(dir, 'service'), remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Starts the API as the image runs it (`node dist/main-api.js`, after buildService, or from the
 * service directory of buildServiceAt) on this process's Node, with the chart's NODE_OPTIONS, in its
 * own process; resolves with its base URL once it is ready. Its stdout is discarded, as a container
 * runtime would take it.
 */
export async function startApi(
  env: Record<string, string>,
  logLevel: string,
  nodeArgs: string[] = [],
  dir = serviceDir,
): Promise<{ url: string; managementUrl: string; child: ChildProcess }> {
  const [port, managementPort] = (await freePorts(2)) as [number, number];
  const child = spawn(process.execPath, [...nodeArgs, 'dist/main-api.js'], {
    cwd: dir,
    env: {
      ...process.env,
      ...env,
      NODE_OPTIONS: apiNodeOptions(),
      PORT: String(port),
      MANAGEMENT_PORT: String(managementPort),
      LOG_LEVEL: logLevel,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  for (let i = 0; i < 200; i++) {
    const ready = await fetch(`http://127.0.0.1:${managementPort}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ready)
      return { url: `http://127.0.0.1:${port}`, managementUrl: `http://127.0.0.1:${managementPort}`, child };
    if (child.exitCode !== null) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  child.kill('SIGTERM');
  throw new Error('the API did not become ready');
}

export interface LoadResult {
  rps: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
  /** CPU time the server process spent per request answered, in µs (when its pid was given). */
  cpuUs?: number;
  /** CPU time the generator (this process) spent per request answered, in µs. */
  generatorCpuUs?: number;
}

/**
 * What a load run cost: the server's CPU time (from /proc, when its pid is given) and this process's
 * own (the generator's), each per request answered. Start it before the run, call it after. Both
 * count every thread of the process (V8's GC helpers too), not the event loop's alone.
 */
function cpuMeter(pid: number | undefined) {
  const serverBefore = pid === undefined ? undefined : cpuMs(pid);
  const generatorBefore = process.cpuUsage();
  return (answered: number): Pick<LoadResult, 'cpuUs' | 'generatorCpuUs'> => {
    const serverAfter = pid === undefined ? undefined : cpuMs(pid);
    const generator = process.cpuUsage(generatorBefore);
    if (answered === 0) return {};
    return {
      generatorCpuUs: (generator.user + generator.system) / answered,
      ...(serverBefore !== undefined && serverAfter !== undefined
        ? { cpuUs: ((serverAfter - serverBefore) * 1000) / answered }
        : {}),
    };
  };
}

/**
 * CPU time (user + system) a process has used so far, in ms, from /proc (Linux); undefined
 * elsewhere. Per request, it is what a request costs the server itself, whatever the generator and
 * the other servers take of the cores meanwhile (the host's own speed still moves it).
 */
export function cpuMs(pid: number): number | undefined {
  try {
    // Fields after the command name, which may hold spaces and parentheses (so the last ')'):
    // utime and stime are the 12th and 13th.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}
// USER_HZ, which Linux fixes at 100 for every architecture Node runs on.
const CLOCK_TICKS_PER_SECOND = 100;

/**
 * One autocannon run from this process (the servers run in their own processes), with what each
 * request cost the generator in CPU time and, given the server's `pid`, the server.
 */
export async function load(options: Options, pid?: number): Promise<LoadResult> {
  const cost = cpuMeter(pid);
  const result = await autocannon({ connections: 50, duration: 5, ...options });
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
    ...cost(result.requests.total),
  };
}

export const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

/**
 * The median of the rounds' CPU time per request, the server's or the generator's; undefined where
 * it could not be read.
 */
export function medianCpuUs(
  runs: LoadResult[],
  whose: 'cpuUs' | 'generatorCpuUs' = 'cpuUs',
): number | undefined {
  const costs = runs.flatMap((run) => (run[whose] === undefined ? [] : [run[whose]]));
  return costs.length > 0 ? median(costs) : undefined;
}

/**
 * The most CPU time, in µs, one request may cost a server whose work runs on one event loop (one
 * core at most) if it is to answer `rps` requests a second: past it, that loop is the limit.
 */
export function cpuBudgetUs(rps: number): number {
  return 1e6 / rps;
}

/** A post's headers with an Idempotency-Key of its own, as a client posting distinct messages sends. */
export function withFreshIdempotencyKey<H extends object>(headers?: H) {
  return { ...headers, 'idempotency-key': randomUUID() };
}

/** Starts a bench server script as its own process and reads the JSON line it prints. */
export async function startBenchServer(script: string, env: Record<string, string>) {
  const child: ChildProcess = spawn(
    process.execPath,
    ['--import', 'tsx', fileURLToPath(new URL(script, import.meta.url))],
    {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
  return { child, info: JSON.parse(line) as { port: number; token?: string } };
}

export interface PacedOptions {
  url: string;
  method: string;
  headers: () => Record<string, string>;
  body: string;
  /** Requests per second, sent at evenly spaced instants. */
  rate: number;
  seconds: number;
  connections?: number;
  /** The server's pid: the result then says what each request cost it in CPU time. */
  pid?: number;
}

/**
 * An open-model load at a constant arrival rate (what k6's constant-arrival-rate executor does):
 * request i is due at start + i/rate, and its latency counts from that instant, so time spent
 * waiting for a free connection counts too (no coordinated omission). autocannon's rate limit
 * cannot stand in for this: it sends each second's quota in a burst as the second starts. The
 * client is undici's Pool (one request per connection at a time): node:http's client, tried first,
 * cost so much CPU on this 2-core machine that it put its own delays into the p99 of the servers it
 * measured.
 */
export async function paced(options: PacedOptions): Promise<LoadResult> {
  const target = new URL(options.url);
  const pool = new Pool(target.origin, { connections: options.connections ?? 50 });
  const total = Math.round(options.rate * options.seconds);
  const latencies: number[] = [];
  let non2xx = 0;
  let errors = 0;
  const cost = cpuMeter(options.pid);
  const start = performance.now();
  const sent: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = start + (i * 1000) / options.rate;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
    sent.push(
      pool
        .request({
          path: target.pathname + target.search,
          method: options.method as 'POST',
          headers: options.headers(),
          body: options.body,
        })
        .then(
          async (response) => {
            await response.body.dump();
            latencies.push(performance.now() - due);
            if (response.statusCode < 200 || response.statusCode >= 300) non2xx++;
          },
          () => {
            errors++;
          },
        ),
    );
  }
  await Promise.all(sent);
  const costs = cost(latencies.length);
  await pool.close();
  const sorted = latencies.sort((a, b) => a - b);
  const at = (q: number) =>
    Math.round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0);
  return {
    rps: latencies.length / ((performance.now() - start) / 1000),
    p50: at(0.5),
    p99: at(0.99),
    non2xx,
    errors,
    ...costs,
  };
}
