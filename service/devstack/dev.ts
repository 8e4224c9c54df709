/**
 * `npm run dev`: real dependencies, migrations, then the API and the worker under `tsx watch`
 * (restarted on every source change). Ctrl-C or SIGTERM stops the processes, then the stack.
 * Honours PORT (API, default 3000), MANAGEMENT_PORT (default 9464), WORKER_HEALTH_PORT (3001).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import pretty from 'pino-pretty';
import { loadConfig } from '../src/config.js';
import { runMigrations } from '../src/db/migrate.js';
import { createLogger } from '../src/platform/logger.js';
import { startDevstack } from './index.js';
import { diesWithParent } from './local/local-server.js';

const serviceRoot = fileURLToPath(new URL('..', import.meta.url));
const say = (line: string) => process.stdout.write(`[dev] ${line}\n`);

const startedAt = performance.now();
say('starting MySQL primary + replica, Redis + Sentinels and S3…');
const stack = await startDevstack();
say(`devstack (${stack.provider}) up in ${((performance.now() - startedAt) / 1000).toFixed(1)} s`);

const env: Record<string, string> = {
  ...Object.fromEntries(
    Object.entries(process.env).filter((pair): pair is [string, string] => pair[1] !== undefined),
  ),
  NODE_ENV: 'development',
  LOG_LEVEL: process.env.LOG_LEVEL ?? 'info',
  PORT: process.env.PORT ?? '3000',
  MANAGEMENT_PORT: process.env.MANAGEMENT_PORT ?? '9464',
  WORKER_HEALTH_PORT: process.env.WORKER_HEALTH_PORT ?? '3001',
  ...stack.env(),
};

// `npm run jobs` in another terminal reads this to reach the same stack (see src/main-jobs.ts).
const devEnvFile = fileURLToPath(new URL('../.devstack.env', import.meta.url));
const devEnv =
  Object.entries({ ...stack.env(), NODE_ENV: 'development' })
    .map(([name, value]) => `${name}=${JSON.stringify(value)}`)
    .join('\n') + '\n';
writeFileSync(devEnvFile, devEnv, { mode: 0o600 });

/** The pid in the line a service logs once it is up ('api listening', 'worker started'), if this is it. */
function startedPid(line: string): number | undefined {
  if (!line.includes('"pid":')) return undefined;
  try {
    const entry = JSON.parse(line) as { msg?: string; pid?: unknown };
    const started = entry.msg === 'api listening' || entry.msg === 'worker started';
    return started && typeof entry.pid === 'number' ? entry.pid : undefined;
  } catch {
    return undefined;
  }
}

const children: ChildProcess[] = [];
let stopping = false;
async function stopEverything(code: number): Promise<never> {
  if (stopping) return new Promise(() => undefined);
  stopping = true;
  say('stopping api and worker…');
  await Promise.all(
    children.map(async (child) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    }),
  );
  say('stopping the devstack…');
  // Only ours: a second `npm run dev` started since may have written its own.
  if (existsSync(devEnvFile) && readFileSync(devEnvFile, 'utf8') === devEnv) rmSync(devEnvFile);
  await stack.stop();
  say('stopped');
  process.exit(code);
}
process.on('SIGINT', () => void stopEverything(0));
process.on('SIGTERM', () => void stopEverything(0));
// If npm (our parent) is killed without passing the signal on, we are orphaned: stop all the same.
const parent = process.ppid;
setInterval(() => process.ppid !== parent && void stopEverything(0), 500).unref();

try {
  const config = loadConfig(env);
  await runMigrations(config.mysql, createLogger(config, 'migrate'));

  for (const [name, entry] of [
    ['api', 'src/main-api.ts'],
    ['worker', 'src/main-worker.ts'],
  ] as const) {
    // SIGTERM on our death: even a `kill -9` of this script cannot leave an api or worker running.
    const [command, args] = diesWithParent(
      process.execPath,
      ['--import', 'tsx', '--watch', '--watch-preserve-output', entry],
      'TERM',
    );
    const child = spawn(command, args, {
      cwd: serviceRoot,
      env,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    child.stdout!.pipe(
      pretty({
        colorize: process.stdout.isTTY,
        singleLine: true,
        ignore: 'pid,hostname,process,instance',
        messageFormat: `[${name}] {msg}`,
      }),
    );
    // The watcher runs the service as its own child, a new one after each change: say which pid
    // serves now, so a developer (and the dev test) can tell exactly which processes are ours.
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const pid = startedPid(line);
      if (pid !== undefined) say(`${name} running as pid ${pid} (watcher pid ${child.pid})`);
    });
    child.on('exit', (code, signal) => {
      if (!stopping) say(`${name} exited (${signal ?? code}); fix the error and save, or Ctrl-C`);
    });
    children.push(child);
  }

  say(`API          http://localhost:${env.PORT}  (OpenAPI: /openapi.json)`);
  say(`API probes   http://localhost:${env.MANAGEMENT_PORT}/readyz  /metrics`);
  say(`worker       http://localhost:${env.WORKER_HEALTH_PORT}/readyz  /metrics  /queues (Bull Board)`);
  say('jobs         npm run jobs -- help  (dead letters, redrive, …)');
  say(
    `MySQL        mysql -h 127.0.0.1 -P ${env.MYSQL_PORT} -u ${env.MYSQL_USER} -p${env.MYSQL_PASSWORD} parley`,
  );
  say(`S3           ${env.S3_ENDPOINT}  (buckets ${env.S3_ATTACHMENTS_BUCKET}, ${env.S3_BACKUPS_BUCKET})`);
  say('watching src/ for changes; Ctrl-C stops everything');
} catch (error) {
  say(`failed to start: ${(error as Error).message}`);
  await stopEverything(1);
}
