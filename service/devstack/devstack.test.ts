import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { createRedis } from '../src/platform/redis.js';
import { createS3Client } from '../src/platform/s3.js';
import { TEST_ENV } from '../src/test-support/stack.js';
import { startDevstack, type Devstack } from './index.js';

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitFor(what: string, predicate: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

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

  it('serves writes through the Sentinel-aware client again after the master is SIGKILLed', async () => {
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

      // The old master comes back as a replica of the new one.
      await oldMaster.start();
      await waitFor('old master to rejoin as replica', () => oldMaster.isRunning());
    } finally {
      client.disconnect();
    }
  });

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
    expect(pids.length).toBe(stack.provider === 'local' ? 7 : 0);
    const stoppedAt = performance.now();
    await stack.stop();
    console.info(`devstack stopped in ${(performance.now() - stoppedAt).toFixed(0)} ms`);
    expect(pids.filter(isAlive)).toEqual([]);
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
    expect(pids.length).toBe(2);
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
