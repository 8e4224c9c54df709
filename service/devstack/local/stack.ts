import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateStackSecrets, serviceEnv } from '../env.js';
import { freePorts } from '../ports.js';
import type { Devstack, DevstackOptions, ServerControl } from '../types.js';
export { missingLocalBinaries } from './binaries.js';
import { registerForCleanup, STACK_DIR_PREFIX, sweepAbandonedStacks } from './cleanup.js';
import { startLocalMariadb } from './mariadb.js';
import { startLocalRedis } from './redis.js';
import { startLocalS3 } from './s3.js';

export async function startLocalDevstack(options: DevstackOptions = {}): Promise<Devstack> {
  sweepAbandonedStacks();
  const dir = mkdtempSync(join(tmpdir(), `${STACK_DIR_PREFIX}${process.pid}-`));
  // Every server is tracked the moment it is created, so a start that fails half-way still cleans up.
  const servers: ServerControl[] = [];
  const track = (server: ServerControl) => servers.push(server);
  const pids = () => servers.flatMap((server) => server.pid() ?? []);
  const unregister = options.cleanupOnExit === false ? () => undefined : registerForCleanup({ pids, dir });

  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await Promise.allSettled(servers.map((server) => server.stop()));
    rmSync(dir, { recursive: true, force: true });
    unregister();
  };

  const [primaryPort, replicaPort, s3Port, s3ConsolePort, ...redisPorts] = (await freePorts(9)) as [
    number,
    number,
    number,
    number,
  ];
  const started = await Promise.allSettled([
    startLocalMariadb(
      join(dir, 'mysql'),
      { primary: primaryPort, replica: options.mysqlReplica === false ? undefined : replicaPort },
      track,
    ),
    startLocalRedis(join(dir, 'redis'), options.redisTopology ?? 'sentinel', redisPorts, track),
    startLocalS3(join(dir, 's3'), { api: s3Port, console: s3ConsolePort }, track),
  ] as const);
  const [mysql, redis, s3] = started;
  if (mysql.status === 'rejected' || redis.status === 'rejected' || s3.status === 'rejected') {
    await stop();
    const reasons = started.flatMap((result) =>
      result.status === 'rejected' ? [String(result.reason)] : [],
    );
    throw new Error(`devstack (local) failed to start:\n${reasons.join('\n')}`);
  }
  const secrets = generateStackSecrets();
  return {
    provider: 'local',
    mysql: mysql.value,
    redis: redis.value,
    s3: s3.value,
    env: () => serviceEnv(mysql.value, redis.value, s3.value, secrets),
    pids,
    stop,
  };
}
