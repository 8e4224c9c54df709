/**
 * The chart's Redis scripts, run for real against local redis-server binaries (Debian's redis,
 * present on this machine kind): the config they write must be accepted by Redis and Sentinel,
 * and the preStop hooks must move the master role, and the writes, away before the pod stops.
 * Kubernetes-only details are rewritten for loopback: mount paths become a temporary directory,
 * fixed ports in the config files become free ones, and the hooks run with a stand-in `redis-cli`
 * first on PATH that plays cluster DNS: it sends a pod's DNS name and fixed port, or this pod's
 * own fixed port, to the loopback port of the process playing it.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { container, envOf, find, scenarioFile, workload } from '../lib/objects.js';
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

/** What redis-cli printed, an error reply or a refused connection included. */
async function reply(port: number, ...args: string[]): Promise<string> {
  try {
    return await cli(port, ...args);
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    return `${stdout ?? ''}${stderr ?? ''}`.trim();
  }
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

const localRedis = (conf: string, port: number, data: string): string =>
  conf
    .replace(/^port 6379$/m, `port ${port}`)
    .replace(/^bind .*$/m, 'bind 127.0.0.1')
    .replace(/^dir \/data$/m, `dir ${data}`)
    .replace(/^replica-announce-ip .*$/m, 'replica-announce-ip 127.0.0.1');

const localSentinel = (conf: string, port: number, dir: string, masterPort: number): string =>
  conf
    .replace(/^port 26379$/m, `port ${port}`)
    .replace(/^dir \/tmp$/m, `dir ${dir}`)
    .replace(/^sentinel announce-ip .*$/m, 'sentinel announce-ip 127.0.0.1')
    .replace(/^sentinel monitor mymaster \S+ 6379/m, `sentinel monitor mymaster 127.0.0.1 ${masterPort}`);

/** Sentinel promotes only a replica it has polled itself (fresh INFO, link to the master up). */
async function vetted(sentinelPort: number, replicaPort: number): Promise<true | undefined> {
  const lines = (await cli(sentinelPort, 'sentinel', 'replicas', 'mymaster')).split('\n');
  const fields = new Map<string, string>();
  for (let i = 0; i + 1 < lines.length; i += 2) fields.set(lines[i]!, lines[i + 1]!);
  const ok =
    fields.get('port') === String(replicaPort) &&
    fields.get('flags') === 'slave' &&
    fields.get('master-link-status') === 'ok' &&
    Number(fields.get('info-refresh')) < 5_000;
  return ok ? true : undefined;
}

/** Sentinel refuses to act in TILT mode (its timer ran late, as on a loaded CI machine). */
async function outOfTilt(sentinelPort: number): Promise<true | undefined> {
  return (await cli(sentinelPort, 'info', 'sentinel')).includes('sentinel_tilt:0') ? true : undefined;
}

describe.skipIf(!redisAvailable)(
  `Redis scripts against real Redis and Sentinel${redisAvailable ? '' : ' (skipped: no redis-server on PATH)'}`,
  () => {
    let dir = '';
    let scripts: Record<string, string> = {};
    let maxmemory = '';
    const children: ChildProcess[] = [];

    const rewritePaths = (script: string): string =>
      script
        .replaceAll('/var/run/secrets/parley', join(dir, 'secrets'))
        .replaceAll('/conf/', `${join(dir, 'conf')}/`);

    async function configure(ordinal: number, quorum = 1): Promise<{ redis: string; sentinel: string }> {
      await rm(join(dir, 'conf'), { recursive: true, force: true });
      await mkdir(join(dir, 'conf'));
      await run('sh', ['-c', rewritePaths(scripts['start.sh']!)], {
        env: {
          PATH: process.env['PATH'],
          POD_NAME: `parley-redis-${ordinal}`,
          NAMESPACE: 'parley',
          STATEFULSET: 'parley-redis',
          HEADLESS: 'parley-redis-headless',
          REPLICAS: '1',
          MASTER_NAME: 'mymaster',
          QUORUM: String(quorum),
          DOWN_AFTER_MS: '1000',
          FAILOVER_TIMEOUT_MS: '5000',
          MAXMEMORY: maxmemory,
        },
      });
      return {
        redis: await readFile(join(dir, 'conf', 'redis.conf'), 'utf8'),
        sentinel: await readFile(join(dir, 'conf', 'sentinel.conf'), 'utf8'),
      };
    }

    async function start(name: string, config: string, args: string[]): Promise<ChildProcess> {
      const file = join(dir, `${name}.conf`);
      await writeFile(file, config);
      await mkdir(join(dir, `data-${name}`), { recursive: true });
      const child = spawn('redis-server', [file, ...args], {
        cwd: join(dir, `data-${name}`),
        stdio: 'ignore',
      });
      children.push(child);
      return child;
    }

    /**
     * A `redis-cli` that resolves as the cluster would: `-h <pod DNS name> -p <fixed port>` and this
     * pod's own `-p 6379` / `-p 26379` go to the loopback port of the process playing that pod.
     */
    async function clusterDns(name: string, pods: Record<string, number>): Promise<string> {
      const bin = join(dir, `bin-${name}`);
      await mkdir(bin, { recursive: true });
      const realCli = (await run('sh', ['-c', 'command -v redis-cli'])).stdout.trim();
      const routes = Object.entries(pods)
        .map(([address, port]) => `  ${address}) port=${port} ;;`)
        .join('\n');
      await writeFile(
        join(bin, 'redis-cli'),
        `#!/bin/sh
host=this-pod port=6379 n=$#
while [ "$n" -gt 0 ]; do
  arg=$1; shift; n=$((n - 1))
  case "$arg" in
    -h) host=$1; shift; n=$((n - 1)) ;;
    -p) port=$1; shift; n=$((n - 1)) ;;
    *) set -- "$@" "$arg" ;;
  esac
done
case "$host:$port" in
${routes}
  127.0.0.1:*) ;;
  *) echo "Could not connect to Redis at $host:$port: Name or service not known" >&2; exit 1 ;;
esac
exec ${realCli} -h 127.0.0.1 -p "$port" "$@"
`,
      );
      await chmod(join(bin, 'redis-cli'), 0o755);
      return `${bin}:${process.env['PATH']}`;
    }

    async function hook(
      script: string,
      env: Record<string, string>,
    ): Promise<{ stdout: string; seconds: number }> {
      const started = Date.now();
      const { stdout } = await run('sh', ['-c', rewritePaths(script)], { env, timeout: 60_000 });
      return { stdout: stdout.trim(), seconds: (Date.now() - started) / 1000 };
    }

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'parley-redis-'));
      await mkdir(join(dir, 'secrets'));
      await writeFile(join(dir, 'secrets', 'redis-password'), PASSWORD);
      const objects = await renderChart([scenarioFile('default')]);
      scripts = find(objects, 'ConfigMap', 'parley-redis')['data'] as Record<string, string>;
      const init = workload(objects, 'StatefulSet', 'parley-redis').spec.initContainers!;
      maxmemory = envOf(container({ containers: init }, 'config')).get('MAXMEMORY')!.value!;
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

    it('Redis accepts the config: auth required, AOF on, noeviction under the rendered maxmemory', async () => {
      const { redis } = await configure(0);
      const master = await freePort();
      const replica = await freePort();
      await start('config-master', localRedis(redis, master, join(dir, 'data-config-master')), []);
      await start('config-replica', localRedis(redis, replica, join(dir, 'data-config-replica')), [
        '--replicaof',
        '127.0.0.1',
        String(master),
      ]);
      await until('master', async () => ((await cli(master, 'ping')) === 'PONG' ? true : undefined));
      const { stdout } = await run('redis-cli', ['-p', String(master), 'ping']);
      expect(stdout).toMatch(/NOAUTH/);
      expect(await cli(master, 'config', 'get', 'maxmemory-policy')).toBe('maxmemory-policy\nnoeviction');
      expect(await cli(master, 'config', 'get', 'appendonly')).toBe('appendonly\nyes');
      expect(await cli(master, 'config', 'get', 'maxmemory')).toBe(`maxmemory\n${384 * 2 ** 20}`);
      await until('replication link', async () =>
        (await cli(replica, 'info', 'replication')).includes('master_link_status:up') ? true : undefined,
      );
    });

    /*
     * Pod 0 holds the master, pod 1 its replica, and each of pods 0-2 a Sentinel (quorum 2). Pod 0
     * stops: its Sentinel is gone already (SIGTERM reaches every container at once), so the hook
     * must go through a peer's Sentinel. A client keeps writing to pod 0 all along.
     */
    describe('preStop on the master, its own Sentinel already stopped', () => {
      const pods = [0, 1, 2].map((i) => `parley-redis-${i}.parley-redis-headless.parley.svc`);
      const port = { master: 0, replica: 0, sentinels: [0, 0, 0] };
      let handOver = { stdout: '', seconds: 0 };
      let sentinelHook: { stdout: string; seconds: number } | Error = new Error('not run');
      let writes = { acknowledged: 0, refusal: '' };
      let podEnv: (ordinal: number, redisPort: number) => Promise<Record<string, string>>;

      beforeAll(async () => {
        port.master = await freePort();
        port.replica = await freePort();
        port.sentinels = [await freePort(), await freePort(), await freePort()];
        const { redis, sentinel } = await configure(0, 2);
        await start('master', localRedis(redis, port.master, join(dir, 'data-master')), []);
        await start('replica', localRedis(redis, port.replica, join(dir, 'data-replica')), [
          '--replicaof',
          '127.0.0.1',
          String(port.master),
        ]);
        const sentinels = await Promise.all(
          port.sentinels.map((p, i) =>
            start(`sentinel-${i}`, localSentinel(sentinel, p, join(dir, `data-sentinel-${i}`), port.master), [
              '--sentinel',
            ]),
          ),
        );
        const peers = port.sentinels.slice(1);
        await Promise.all(
          peers.map(async (p) => {
            await until('a peer Sentinel to vet the replica', () => vetted(p, port.replica), 45_000);
            await until('a peer Sentinel out of TILT mode', () => outOfTilt(p), 45_000);
          }),
        );
        const local = sentinels[0]!;
        await new Promise((resolve) => {
          local.once('exit', resolve);
          local.kill('SIGTERM');
        });

        podEnv = async (ordinal, redisPort) => ({
          PATH: await clusterDns(`pod-${ordinal}`, {
            'this-pod:6379': redisPort,
            'this-pod:26379': port.sentinels[ordinal]!,
            [`${pods[0]}:26379`]: port.sentinels[0]!,
            [`${pods[1]}:26379`]: port.sentinels[1]!,
            [`${pods[2]}:26379`]: port.sentinels[2]!,
          }),
          POD_NAME: `parley-redis-${ordinal}`,
          NAMESPACE: 'parley',
          STATEFULSET: 'parley-redis',
          HEADLESS: 'parley-redis-headless',
          REPLICAS: '3',
          MASTER_NAME: 'mymaster',
          FAILOVER_WAIT_SECONDS: '30',
        });
        const env = await podEnv(0, port.master);
        let hooksDone = false;
        const writer = (async () => {
          let acknowledged = 0;
          for (;;) {
            const answer = await reply(port.master, 'incr', 'handover:writes');
            if (!/^\d+$/.test(answer)) return { acknowledged, refusal: answer };
            acknowledged = Number(answer);
            if (hooksDone) return { acknowledged, refusal: '' };
          }
        })();
        await until('writes flowing', async () =>
          Number(await cli(port.master, 'get', 'handover:writes')) >= 20 ? true : undefined,
        );
        const sentinelScript = scripts['sentinel-prestop.sh'];
        [handOver, sentinelHook] = await Promise.all([
          hook(scripts['prestop.sh']!, env),
          sentinelScript
            ? hook(sentinelScript, env).catch((e: Error) => e)
            : new Error('no sentinel-prestop.sh'),
        ]);
        hooksDone = true;
        writes = await writer;
      }, 120_000);

      it('hands the master role to the replica through a peer Sentinel', async () => {
        expect(handOver.stdout).toMatch(/^failed over: this pod is now a replica/m);
        expect((await cli(port.master, 'role')).split('\n')[0]).toBe('slave');
        expect((await cli(port.replica, 'role')).split('\n')[0]).toBe('master');
        expect(await cli(port.sentinels[1]!, 'sentinel', 'get-master-addr-by-name', 'mymaster')).toBe(
          `127.0.0.1\n${port.replica}`,
        );
      });

      it('moves the writes: the new master takes them, the old one answers READONLY', async () => {
        expect(await cli(port.replica, 'set', 'after:handover', 'yes')).toBe('OK');
        expect(await reply(port.master, 'set', 'after:handover', 'no')).toMatch(/^READONLY/);
        expect(writes.refusal).toMatch(/^READONLY/);
      });

      it('loses no write the old master acknowledged', async () => {
        expect(writes.acknowledged).toBeGreaterThan(0);
        expect(Number(await cli(port.replica, 'get', 'handover:writes'))).toBe(writes.acknowledged);
      });

      it("keeps the pod's Sentinel up until the hand-over is done, and no longer", () => {
        if (sentinelHook instanceof Error) throw sentinelHook;
        expect(sentinelHook.stdout).toBe('redis is not master here');
        // Both hooks start together; the Sentinel's polls once a second.
        expect(sentinelHook.seconds).toBeGreaterThan(handOver.seconds - 1.5);
        expect(sentinelHook.seconds).toBeLessThan(handOver.seconds + 1.5);
      });

      it("the Sentinel's preStop holds while this pod's Redis is master, up to FAILOVER_WAIT_SECONDS", async () => {
        // After the hand-over the replica is the master: play its pod (pod 1).
        const env = { ...(await podEnv(1, port.replica)), FAILOVER_WAIT_SECONDS: '2' };
        const { stdout, seconds } = await hook(scripts['sentinel-prestop.sh']!, env);
        expect(stdout).toBe('redis still master here after 2s');
        expect(seconds).toBeGreaterThanOrEqual(2);
      });
    });
  },
);
