import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePorts } from './ports.js';

/** `npm run dev` as a developer runs it: the whole loop, then SIGTERM, then nothing left behind. */
describe('npm run dev', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'parley-dev-test-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it(
    'starts the stack, migrates, serves the API on PORT, and stops everything on SIGTERM',
    { timeout: 120_000 },
    async () => {
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
      });
      let output = '';
      dev.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
      dev.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
      const exited = once(dev, 'close');
      const deadline = Date.now() + 90_000;
      const statusOf = async (url: string) => {
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
      try {
        // The API and the worker start independently; wait for each.
        expect(await statusOf(`http://127.0.0.1:${port}/readyz`), output).toBe(200);
        expect(await statusOf(`http://127.0.0.1:${workerPort}/readyz`), output).toBe(200);
        expect(output).toContain(`API          http://localhost:${port}`);
        const openapi = (await (await fetch(`http://127.0.0.1:${port}/openapi.json`)).json()) as {
          openapi: string;
        };
        expect(openapi.openapi).toBe('3.1.0');
      } finally {
        dev.kill('SIGTERM');
        await exited;
      }
      expect(output).toContain('[dev] stopped');
      expect(readdirSync(tmp).filter((entry) => entry.startsWith('parley-devstack-'))).toEqual([]);
      // Every server of the stack had its files under this TMPDIR; none may still run.
      expect(spawnSync('pgrep', ['-f', tmp]).stdout.toString().trim()).toBe('');
    },
  );
});
