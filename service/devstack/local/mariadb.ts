import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { adminQuery, assembleMysqlStack } from '../mysql-topology.js';
import type { MysqlStack, ServerControl } from '../types.js';
import { LocalServer } from './local-server.js';

// The stack administers each server through its private unix socket as root@localhost.
const socketOf = (dir: string, role: string) => join(dir, `${role}.sock`);

function mariadbServer(dir: string, role: 'primary' | 'replica', port: number): LocalServer {
  const socketPath = socketOf(dir, role);
  const roleArgs =
    role === 'primary'
      ? ['--server-id=1', '--log-bin=mysql-bin', '--binlog-format=ROW']
      : ['--server-id=2', '--read-only=ON', '--relay-log=relay-bin'];
  return new LocalServer({
    name: `mariadb-${role}`,
    host: '127.0.0.1',
    port,
    command: 'mariadbd',
    args: [
      '--no-defaults',
      `--datadir=${join(dir, role)}`,
      '--user=root',
      `--port=${port}`,
      '--bind-address=127.0.0.1',
      `--socket=${socketPath}`,
      `--pid-file=${join(dir, `${role}.pid`)}`,
      '--skip-name-resolve',
      '--character-set-server=utf8mb4',
      '--collation-server=utf8mb4_unicode_ci',
      '--max-connections=500',
      // A dev/test server: durability traded for speed, never the correctness of replication.
      '--innodb-buffer-pool-size=64M',
      '--innodb-flush-log-at-trx-commit=2',
      '--sync-binlog=0',
      '--performance-schema=OFF',
      ...roleArgs,
    ],
    logFile: join(dir, `${role}.log`),
    probe: () => adminQuery({ socketPath, user: 'root' }, 'SELECT 1').then(() => undefined),
  });
}

function initialiseDataDir(target: string): void {
  const result = spawnSync(
    'mariadb-install-db',
    [
      '--no-defaults',
      `--datadir=${target}`,
      '--auth-root-authentication-method=normal',
      '--skip-test-db',
      '--user=root',
    ],
    { encoding: 'utf8' },
  );
  if (result.status !== 0) {
    throw new Error(
      `mariadb-install-db failed (${result.status ?? result.error?.message}):\n${result.stderr}`,
    );
  }
}

export async function startLocalMariadb(
  dir: string,
  ports: { primary: number; replica: number | undefined },
  track: (server: ServerControl) => void,
): Promise<MysqlStack> {
  mkdirSync(dir, { recursive: true });
  initialiseDataDir(join(dir, 'primary'));
  // A copy of a fresh data dir is a valid second server: both start from the same empty state, and
  // GTID replication then carries every statement, users and schema included.
  if (ports.replica !== undefined) cpSync(join(dir, 'primary'), join(dir, 'replica'), { recursive: true });

  const primary = mariadbServer(dir, 'primary', ports.primary);
  const replica = ports.replica !== undefined ? mariadbServer(dir, 'replica', ports.replica) : undefined;
  track(primary);
  if (replica) track(replica);
  await Promise.all([primary.start(), replica?.start()]);

  return assembleMysqlStack({
    flavor: 'mariadb',
    primary,
    replica,
    adminConnection: (role) => ({ socketPath: socketOf(dir, role), user: 'root' }),
  });
}
