import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { connectionRefused, freePorts } from './ports.js';
import { isAlive } from './local/cleanup.js';

/** The service pids `npm run dev` reported ("api running as pid N (watcher pid W)"), both kinds. */
function reportedPids(output: string, name: 'api' | 'worker'): number[] {
  const pids: number[] = [];
  for (const match of output.matchAll(
    new RegExp(`\\[dev\\] ${name} running as pid (\\d+) \\(watcher pid (\\d+)\\)`, 'g'),
  )) {
    pids.push(Number(match[1]), Number(match[2]));
  }
  return pids;
}

/**
 * `npm run dev` as a developer runs it: the whole loop, then `stop` (SIGTERM, or Ctrl-C), then
 * nothing left behind: no process it reported, no server of its stack, no port, no temp dir.
 */
const tmpDirs: string[] = [];
afterAll(() => tmpDirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

async function runDevThenStop(stop: (dev: ChildProcess) => void): Promise<void> {
  const tmp = mkdtempSync(join(tmpdir(), 'parley-dev-test-'));
  tmpDirs.push(tmp);
  const [port, managementPort, workerPort] = (await freePorts(3)) as [number, number, number];
  const dev = spawn('npm', ['run', 'dev'], {
    cwd: new URL('../..', import.meta.url),
    env: {
      ...process.env,
      TMPDIR: tmp,
      PORT: String(port),
      MANAGEMENT_PORT: String(managementPort),
      WORKER_HEALTH_PORT: String(workerPort),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group, as a shell gives a foreground job: Ctrl-C signals the whole group.
    detached: true,
  });
  let output = '';
  dev.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  dev.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = once(dev, 'close');
  const deadline = Date.now() + 90_000;
  const waitFor200 = async (url: string) => {
    let status = 0;
    while (Date.now() < deadline && status !== 200) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      status = await fetch(url).then(
        (response) => response.status,
        () => 0,
      );
    }
    return status;
  };
  let pids: number[] = [];
  try {
    // The API and the worker start independently; wait for each. Probes are on the management port.
    expect(await waitFor200(`http://127.0.0.1:${managementPort}/readyz`), output).toBe(200);
    expect(await waitFor200(`http://127.0.0.1:${workerPort}/readyz`), output).toBe(200);
    expect(output).toContain(`API          http://localhost:${port}`);
    expect(output).toContain(`API probes   http://localhost:${managementPort}/readyz`);
    expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(404);
    const openapi = (await (await fetch(`http://127.0.0.1:${port}/openapi.json`)).json()) as {
      openapi: string;
    };
    expect(openapi.openapi).toBe('3.1.0');
    // The jobs command, run beside it with no environment of its own, reaches the same stack.
    const { PATH, HOME } = process.env;
    const jobs = spawnSync('npm', ['run', '--silent', 'jobs', '--', 'dead'], {
      cwd: new URL('../..', import.meta.url),
      env: { PATH, HOME },
      encoding: 'utf8',
    });
    expect(jobs.stdout, jobs.stderr).toBe('no dead letters\n');
    pids = [...reportedPids(output, 'api'), ...reportedPids(output, 'worker')];
    expect(pids, output).toHaveLength(4);
    expect(pids.filter(isAlive)).toEqual(pids);
    stop(dev);
    await exited;
  } finally {
    if (dev.exitCode === null && dev.signalCode === null) process.kill(-dev.pid!, 'SIGKILL');
  }
  expect(output).toContain('[dev] stopped');
  expect(existsSync(new URL('../.devstack.env', import.meta.url))).toBe(false);
  expect(pids.filter(isAlive), output).toEqual([]);
  for (const listening of [port, managementPort, workerPort])
    expect(await connectionRefused(listening)).toBe(true);
  expect(readdirSync(tmp).filter((entry) => entry.startsWith('parley-devstack-'))).toEqual([]);
  // Every server of the stack had its files under this TMPDIR; none may still run.
  expect(spawnSync('pgrep', ['-f', tmp]).stdout.toString().trim()).toBe('');
}

describe('npm run dev', () => {
  it(
    'starts the stack, migrates, serves the API on PORT, and stops everything on SIGTERM',
    { timeout: 150_000 },
    () => runDevThenStop((dev) => dev.kill('SIGTERM')),
  );

  it(
    'stops everything on Ctrl-C, which a terminal sends to every process of the job',
    { timeout: 150_000 },
    () => runDevThenStop((dev) => process.kill(-dev.pid!, 'SIGINT')),
  );
});
