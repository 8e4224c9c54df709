import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { createRedis } from '../src/platform/redis.js';
import { createS3Client } from '../src/platform/s3.js';
import { TEST_ENV } from '../src/test-support/stack.js';
import { chooseProvider, startDevstack, type Devstack } from './index.js';
import { missingLocalBinaries } from './local/binaries.js';
import { isAlive } from './local/cleanup.js';
import { eventually } from '../src/test-support/until.js';

async function waitFor(what: string, predicate: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** This process's stack temp dirs (the local provider names them after the owner pid). */
const ownStackDirs = () =>
  readdirSync(tmpdir()).filter((entry) => entry.startsWith(`parley-devstack-${process.pid}-`));

describe('devstack (full topology)', () => {
  let stack: Devstack;
  let startMs: number;

  beforeAll(async () => {
    const startedAt = performance.now();
    stack = await startDevstack();
    startMs = performance.now() - startedAt;
    console.info(`devstack (${stack.provider}) started in ${startMs.toFixed(0)} ms`);
  });
  afterAll(() => stack?.stop());

  it('replicates a write on the primary to the replica within 2 s', async () => {
    const { primary, replica, app, database } = stack.mysql;
    const writer = await mysql.createConnection({ host: primary.host, port: primary.port, ...app, database });
    const reader = await mysql.createConnection({
      host: replica!.host,
      port: replica!.port,
      ...app,
      database,
    });
    const admin = await mysql.createConnection({
      host: primary.host,
      port: primary.port,
      ...stack.mysql.admin,
    });
    try {
      await admin.query(`CREATE TABLE ${database}.replication_probe (id INT PRIMARY KEY, note VARCHAR(20))`);
      const writtenAt = performance.now();
      await writer.query('INSERT INTO replication_probe VALUES (1, ?)', ['hello']);
      let rows: unknown[] = [];
      while (rows.length === 0 && performance.now() - writtenAt < 2_000) {
        [rows] = (await reader.query('SELECT note FROM replication_probe WHERE id = 1')) as [
          unknown[],
          unknown,
        ];
      }
      console.info(`replica saw the row after ${(performance.now() - writtenAt).toFixed(0)} ms`);
      expect(rows).toEqual([{ note: 'hello' }]);
    } finally {
      await Promise.all([writer.end(), reader.end(), admin.end()]);
    }
  });

  it('gives the app user no write access on the read-only replica', async () => {
    const { replica, app, database } = stack.mysql;
    const connection = await mysql.createConnection({
      host: replica!.host,
      port: replica!.port,
      ...app,
      database,
    });
    try {
      await expect(connection.query('CREATE TABLE nope (id INT)')).rejects.toMatchObject({
        code: expect.stringMatching(/ER_(TABLEACCESS_DENIED|DBACCESS_DENIED|OPTION_PREVENTS)/),
      });
    } finally {
      await connection.end();
    }
  });

  it('pauses a server until resume(): its connections stay open and nothing is answered meanwhile', async () => {
    const replica = stack.mysql.replica!;
    const connection = await mysql.createConnection({
      host: replica.host,
      port: replica.port,
      ...stack.mysql.admin,
    });
    try {
      await connection.query('SELECT 1');
      await replica.pause();
      let answered = false;
      const pending = connection.query('SELECT 1 AS one').then(([rows]) => {
        answered = true;
        return rows;
      });
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(answered).toBe(false);
      expect(replica.isRunning()).toBe(true);
      await replica.resume();
      expect(await pending).toEqual([{ one: 1 }]);
    } finally {
      await replica.resume();
      await connection.end();
    }
  });

  it(
    'serves writes through the Sentinel-aware client again after the master is SIGKILLed',
    { timeout: 120_000 },
    async () => {
      const config = loadConfig({ ...TEST_ENV, ...stack.env() });
      const client = createRedis(config.redis, 'app');
      client.on('error', () => undefined);
      try {
        await client.set('before', '1');
        const oldMaster = await stack.redis.currentMaster();
        const killedAt = performance.now();
        await oldMaster.kill();

        let recoveredAfterMs: number | undefined;
        for (
          let attempt = 0;
          recoveredAfterMs === undefined && performance.now() - killedAt < 30_000;
          attempt++
        ) {
          try {
            await client.set(`after-${attempt}`, 'ok');
            recoveredAfterMs = performance.now() - killedAt;
          } catch {
            await new Promise((resolve) => setTimeout(resolve, 50));
          }
        }
        console.info(`redis writes resumed ${recoveredAfterMs?.toFixed(0)} ms after SIGKILL of the master`);
        expect(recoveredAfterMs).toBeDefined();
        const newMaster = await stack.redis.currentMaster();
        expect(newMaster.port).not.toBe(oldMaster.port);
        expect(await client.get('before')).toBe('1'); // replicated before the kill

        // The old master comes back, and Sentinel makes it a replica of the new one.
        await oldMaster.start();
        const restartedAt = performance.now();
        const node = new Redis({
          host: oldMaster.host,
          port: oldMaster.port,
          password: stack.redis.password,
        });
        try {
          const replication = await eventually(
            () => node.info('replication').catch((error: Error) => error.message),
            (info) => /^role:slave\r?$/m.test(info) && /^master_link_status:up\r?$/m.test(info),
            // Sentinel waits for the returning node to report itself master for a while (~8 s), and
            // polls replicas' INFO every 10 s, before it reconfigures it.
            45_000,
            200,
          );
          console.info(
            `old master rejoined as a replica ${(performance.now() - restartedAt).toFixed(0)} ms after restart`,
          );
          expect(replication).toMatch(/^role:slave\r?$/m);
          expect(replication).toMatch(new RegExp(`^master_port:${newMaster.port}\\r?$`, 'm'));
          expect(replication).toMatch(/^master_link_status:up\r?$/m);
        } finally {
          node.disconnect();
        }
      } finally {
        client.disconnect();
      }
    },
  );

  it('stores and reads back objects in S3, including a multipart upload', async () => {
    const config = loadConfig({ ...TEST_ENV, ...stack.env() });
    const s3 = createS3Client(config.s3);
    const Bucket = stack.s3.buckets.attachments;
    await s3.send(new PutObjectCommand({ Bucket, Key: 'small.txt', Body: 'hello parley' }));
    const small = await s3.send(new GetObjectCommand({ Bucket, Key: 'small.txt' }));
    expect(await small.Body!.transformToString()).toBe('hello parley');

    // 12 MiB in 5 MiB parts: three parts, the S3 minimum part size.
    const payload = Buffer.alloc(12 * 1024 * 1024, 0);
    for (let i = 0; i < payload.length; i += 4096) payload.writeUInt32BE(i, i);
    const upload = new Upload({
      client: s3,
      params: { Bucket, Key: 'big.bin', Body: payload },
      partSize: 5 * 1024 * 1024,
    });
    const parts: number[] = [];
    upload.on('httpUploadProgress', (progress) => progress.part && parts.push(progress.part));
    await upload.done();
    expect(new Set(parts).size).toBe(3);
    const big = await s3.send(new GetObjectCommand({ Bucket, Key: 'big.bin' }));
    expect(Buffer.from(await big.Body!.transformToByteArray()).equals(payload)).toBe(true);
    s3.destroy();
  });

  it('stops every process and removes its files', async () => {
    const pids = stack.pids();
    expect(pids.length).toBe(stack.provider === 'local' ? 8 : 0);
    expect(ownStackDirs()).toHaveLength(stack.provider === 'local' ? 1 : 0);
    const stoppedAt = performance.now();
    await stack.stop();
    console.info(`devstack stopped in ${(performance.now() - stoppedAt).toFixed(0)} ms`);
    expect(pids.filter(isAlive)).toEqual([]);
    expect(ownStackDirs()).toEqual([]);
    await stack.stop(); // idempotent
  });
});

describe.runIf(process.platform === 'linux')('devstack teardown when its owner dies', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'parley-owner-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  async function startOwner(mode: 'throw' | 'hang') {
    const child = spawn(process.execPath, ['--import', 'tsx', 'devstack/fixtures/owner.ts', mode], {
      cwd: new URL('..', import.meta.url),
      env: { ...process.env, TMPDIR: tmp, PARLEY_DEVSTACK: 'local' },
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
    return { child, pids: (JSON.parse(line) as { pids: number[] }).pids };
  }

  it('cleans up on an uncaught error: no process, no temp dir', async () => {
    const { child, pids } = await startOwner('throw');
    expect(pids.length).toBe(3);
    const [code] = await once(child, 'exit');
    expect(code).not.toBe(0);
    await waitFor('servers to die', () => pids.every((pid) => !isAlive(pid)));
    expect(readdirSync(tmp).filter((entry) => entry.startsWith('parley-devstack-'))).toEqual([]);
  });

  it('takes its servers down with it on SIGKILL, and the next stack sweeps its files', async () => {
    const { child, pids } = await startOwner('hang');
    child.kill('SIGKILL');
    await once(child, 'exit');
    await waitFor('servers to die (PR_SET_PDEATHSIG)', () => pids.every((pid) => !isAlive(pid)));
    const { sweepAbandonedStacks } = await import('./local/cleanup.js');
    expect(sweepAbandonedStacks(tmp)).toHaveLength(1);
    expect(readdirSync(tmp).filter((entry) => entry.startsWith('parley-devstack-'))).toEqual([]);
  });
});

describe('devstack provider choice', () => {
  const home = mkdtempSync(join(tmpdir(), 'parley-provider-'));
  afterAll(() => rmSync(home, { recursive: true, force: true }));

  it('rejects an unknown PARLEY_DEVSTACK, naming the choices', async () => {
    await expect(chooseProvider('bogus')).rejects.toThrow(
      'PARLEY_DEVSTACK must be "local" or "containers", not "bogus"',
    );
  });

  /** `npm run devstack -- --check` on a machine with Node but without MariaDB or Redis on its PATH. */
  async function devstackWithoutBinaries(env: Record<string, string> = {}) {
    const bin = mkdtempSync(join(home, 'bin-'));
    symlinkSync(process.execPath, join(bin, 'node'));
    symlinkSync(execFileSync('which', ['which'], { encoding: 'utf8' }).trim(), join(bin, 'which'));
    const child = spawn(process.execPath, ['--import', 'tsx', 'devstack/cli.ts', '--check'], {
      cwd: new URL('..', import.meta.url),
      // HOME and DOCKER_HOST so no testcontainers config or socket from this machine can answer.
      env: { PATH: bin, HOME: home, DOCKER_HOST: `unix://${join(home, 'no-docker.sock')}`, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    const [code] = (await once(child, 'close')) as [number | null];
    clearTimeout(timer);
    return { code, stderr };
  }

  it('fails naming the packages to install when neither a container runtime nor the binaries are there', async () => {
    const run = await devstackWithoutBinaries();
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(
      'the devstack needs a container runtime (Docker or Podman) or local binaries',
    );
    expect(run.stderr).toContain('mariadbd (apt-get install mariadb-server)');
    expect(run.stderr).toContain('mariadb-install-db (apt-get install mariadb-server)');
    expect(run.stderr).toContain('redis-server (apt-get install redis-server)');
    expect(run.stderr).not.toContain('    at '); // a message, not a stack trace
  });

  it('names the install script when MinIO is neither in .tools/bin nor on the PATH', () => {
    const empty = mkdtempSync(join(home, 'empty-'));
    expect(missingLocalBinaries({ path: empty, toolsBin: empty })).toContain(
      'minio (run .ci/install-missing: it builds MinIO with Go, cached per machine, and links it into .tools/bin)',
    );
    expect(missingLocalBinaries({ path: process.env.PATH })).not.toContainEqual(
      expect.stringMatching(/^minio/),
    );
  });

  it('names the missing packages when PARLEY_DEVSTACK=local is forced without them', async () => {
    const run = await devstackWithoutBinaries({ PARLEY_DEVSTACK: 'local' });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(
      'PARLEY_DEVSTACK=local, but these are missing: mariadbd (apt-get install mariadb-server)',
    );
  });
});
