/**
 * The chart's Redis scripts, run for real against local redis-server binaries (Debian's redis,
 * present on this machine kind): the config they write must be accepted by Redis and Sentinel,
 * and the preStop hook must move the master role away before the pod stops. Kubernetes-only
 * details are rewritten for loopback: DNS names of peers become 127.0.0.1, fixed ports become
 * free ones, mount paths become a temporary directory.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { find, scenarioFile } from '../lib/objects.js';
import { renderChart } from '../lib/render.js';

const run = promisify(execFile);
const PASSWORD = 'k8s-tests-redis-password';

async function haveRedis(): Promise<boolean> {
  try {
    await run('redis-server', ['--version']);
    await run('redis-cli', ['--version']);
    return true;
  } catch {
    return false;
  }
}
const redisAvailable = await haveRedis();

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function cli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run('redis-cli', ['-p', String(port), ...args], {
    env: { ...process.env, REDISCLI_AUTH: PASSWORD },
  });
  return stdout.trim();
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe.skipIf(!redisAvailable)(
  `Redis scripts against real Redis and Sentinel${redisAvailable ? '' : ' (skipped: no redis-server on PATH)'}`,
  () => {
    let dir = '';
    let startScript = '';
    let prestopScript = '';
    const children: ChildProcess[] = [];
    const ports = { master: 0, replica: 0, sentinel: 0 };

    const rewritePaths = (script: string): string =>
      script
        .replaceAll('/var/run/secrets/parley', join(dir, 'secrets'))
        .replaceAll('/conf/', `${join(dir, 'conf')}/`);

    async function configure(ordinal: number): Promise<{ redis: string; sentinel: string }> {
      await rm(join(dir, 'conf'), { recursive: true, force: true });
      await mkdir(join(dir, 'conf'));
      await run('sh', ['-c', rewritePaths(startScript)], {
        env: {
          PATH: process.env['PATH'],
          POD_NAME: `parley-redis-${ordinal}`,
          NAMESPACE: 'parley',
          STATEFULSET: 'parley-redis',
          HEADLESS: 'parley-redis-headless',
          REPLICAS: '1',
          MASTER_NAME: 'mymaster',
          QUORUM: '1',
          DOWN_AFTER_MS: '1000',
          FAILOVER_TIMEOUT_MS: '5000',
          MAXMEMORY: '0',
        },
      });
      return {
        redis: await readFile(join(dir, 'conf', 'redis.conf'), 'utf8'),
        sentinel: await readFile(join(dir, 'conf', 'sentinel.conf'), 'utf8'),
      };
    }

    async function start(name: string, config: string, args: string[]): Promise<void> {
      const file = join(dir, `${name}.conf`);
      await writeFile(file, config);
      await mkdir(join(dir, `data-${name}`), { recursive: true });
      const child = spawn('redis-server', [file, ...args], {
        cwd: join(dir, `data-${name}`),
        stdio: 'ignore',
      });
      children.push(child);
    }

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'parley-redis-'));
      await mkdir(join(dir, 'secrets'));
      await writeFile(join(dir, 'secrets', 'redis-password'), PASSWORD);
      const data = find(await renderChart([scenarioFile('default')]), 'ConfigMap', 'parley-redis')[
        'data'
      ] as Record<string, string>;
      startScript = data['start.sh']!;
      prestopScript = data['prestop.sh']!;
      ports.master = await freePort();
      ports.replica = await freePort();
      ports.sentinel = await freePort();
    });

    afterAll(async () => {
      for (const child of children) child.kill('SIGKILL');
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('pod 0 bootstraps as master, other pods replicate from it', async () => {
      const first = await configure(0);
      expect(first.redis).not.toMatch(/^replicaof /m);
      expect(first.sentinel).toMatch(
        /^sentinel monitor mymaster parley-redis-0\.parley-redis-headless\.parley\.svc 6379 1$/m,
      );
      const second = await configure(1);
      expect(second.redis).toMatch(/^replicaof parley-redis-0\.parley-redis-headless\.parley\.svc 6379$/m);
    });

    it('Redis accepts the config: auth required, AOF on, noeviction', async () => {
      const { redis } = await configure(0);
      const local = (conf: string, port: number, data: string): string =>
        conf
          .replace(/^port 6379$/m, `port ${port}`)
          .replace(/^bind .*$/m, 'bind 127.0.0.1')
          .replace(/^dir \/data$/m, `dir ${data}`)
          .replace(/^replica-announce-ip .*$/m, 'replica-announce-ip 127.0.0.1');
      await start('master', local(redis, ports.master, join(dir, 'data-master')), []);
      await start('replica', local(redis, ports.replica, join(dir, 'data-replica')), [
        '--replicaof',
        '127.0.0.1',
        String(ports.master),
      ]);
      await until('master', async () => ((await cli(ports.master, 'ping')) === 'PONG' ? true : undefined));
      const { stdout } = await run('redis-cli', ['-p', String(ports.master), 'ping']);
      expect(stdout).toMatch(/NOAUTH/);
      expect(await cli(ports.master, 'config', 'get', 'maxmemory-policy')).toBe(
        'maxmemory-policy\nnoeviction',
      );
      expect(await cli(ports.master, 'config', 'get', 'appendonly')).toBe('appendonly\nyes');
      await until('replication link', async () =>
        (await cli(ports.replica, 'info', 'replication')).includes('master_link_status:up')
          ? true
          : undefined,
      );
    });

    it('Sentinel accepts its config, and preStop hands the master role to the replica', async () => {
      const { sentinel } = await configure(0);
      const localSentinel = sentinel
        .replace(/^port 26379$/m, `port ${ports.sentinel}`)
        .replace(/^dir \/tmp$/m, `dir ${dir}`)
        .replace(/^sentinel announce-ip .*$/m, 'sentinel announce-ip 127.0.0.1')
        .replace(
          /^sentinel monitor mymaster \S+ 6379/m,
          `sentinel monitor mymaster 127.0.0.1 ${ports.master}`,
        );
      await start('sentinel', localSentinel, ['--sentinel']);
      // Sentinel promotes only a replica it has polled itself (fresh INFO, link to master up).
      await until(
        'sentinel to vet the replica',
        async () => {
          const lines = (await cli(ports.sentinel, 'sentinel', 'replicas', 'mymaster')).split('\n');
          const fields = new Map<string, string>();
          for (let i = 0; i + 1 < lines.length; i += 2) fields.set(lines[i]!, lines[i + 1]!);
          const vetted =
            fields.get('port') === String(ports.replica) &&
            fields.get('flags') === 'slave' &&
            fields.get('master-link-status') === 'ok' &&
            Number(fields.get('info-refresh')) < 5_000;
          return vetted ? true : undefined;
        },
        45_000,
      );
      // Sentinel refuses to act in TILT mode (its timer ran late, as on a loaded CI machine).
      await until(
        'sentinel out of TILT mode',
        async () =>
          (await cli(ports.sentinel, 'info', 'sentinel')).includes('sentinel_tilt:0') ? true : undefined,
        45_000,
      );
      const prestop = rewritePaths(prestopScript)
        .replaceAll('-p 6379', `-p ${ports.master}`)
        .replaceAll('-p 26379', `-p ${ports.sentinel}`);
      const { stdout } = await run('sh', ['-c', prestop], {
        env: { PATH: process.env['PATH'], MASTER_NAME: 'mymaster', FAILOVER_WAIT_SECONDS: '40' },
        timeout: 50_000,
      });
      expect(stdout.trim()).toBe('failed over: this pod is now a replica');
      expect((await cli(ports.master, 'role')).split('\n')[0]).toBe('slave');
      expect((await cli(ports.replica, 'role')).split('\n')[0]).toBe('master');
    }, 120_000);
  },
);
