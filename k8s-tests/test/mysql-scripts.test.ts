/**
 * The chart's MySQL scripts, executed by a real shell. There is no MySQL 8.4 here, so the image's
 * programs are stand-ins that record what reaches them and act out what the real ones do: the
 * entrypoint's `docker_process_sql` prints the SQL it would run, and lib/mysql-standin.mjs plays
 * mysqld, mysql and mysqladmin for the replica's seeding (data directory, server, clone).
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { find, scenarioFile } from '../lib/objects.js';
import { renderChart } from '../lib/render.js';

const run = promisify(execFile);
let dir = '';
let data: Record<string, string> = {};

const secrets = {
  'mysql-password': 'app-secret-1',
  'mysql-migration-password': 'migrator-secret-2',
  'mysql-replication-password': 'repl-secret-3',
  'mysql-root-password': 'root-secret-4',
};
const standin = join(import.meta.dirname, '..', 'lib', 'mysql-standin.mjs');

interface Call {
  program: 'mysqld' | 'mysql' | 'mysqladmin';
  args: string[];
  options?: Record<string, string>;
  stdin?: string;
  status?: number;
}

interface Seeding {
  status: number;
  stderr: string;
  calls: Call[];
  datadir: string;
  tmp: string;
  /** The stand-ins' own files: the call log, the server's pid and socket. */
  state: string;
}

/**
 * Runs the replica's seed script with the stand-ins first on PATH, against a data directory that
 * `prepare` fills (it starts with the file system's lost+found, as a fresh volume does).
 */
async function seed(
  prepare: (datadir: string) => Promise<void>,
  env: Record<string, string> = {},
): Promise<Seeding> {
  const root = await mkdtemp(join(dir, 'seed-'));
  const [bin, datadir, state, tmp] = [
    join(root, 'bin'),
    join(root, 'data'),
    join(root, 'state'),
    join(root, 'tmp'),
  ];
  for (const d of [bin, datadir, state, tmp]) await mkdir(d);
  await mkdir(join(datadir, 'lost+found'));
  const executable = (name: string, body: string) =>
    writeFile(join(bin, name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  for (const program of ['mysqld', 'mysql', 'mysqladmin']) {
    await executable(program, `exec '${process.execPath}' '${standin}' ${program} "$@"`);
  }
  // The waits between attempts, shortened.
  const { stdout: realSleep } = await run('sh', ['-c', 'command -v sleep']);
  await executable('sleep', `exec ${realSleep.trim()} 0.02`);
  await prepare(datadir);
  const script = data['replica-seed.sh']!.replaceAll(
    '/var/run/secrets/parley',
    join(dir, 'secrets'),
  ).replaceAll('/var/lib/mysql', datadir);
  let status = 0;
  let stderr = '';
  try {
    ({ stderr } = await run('sh', ['-c', script], {
      env: {
        PATH: `${bin}:${process.env['PATH']}`,
        TMPDIR: tmp,
        PARLEY_PRIMARY_HOST: 'parley-mysql',
        STANDIN_STATE: state,
        STANDIN_PRIMARY_ROOT_PASSWORD: secrets['mysql-root-password'],
        ...env,
      },
    }));
  } catch (error) {
    ({ code: status, stderr } = error as { code: number; stderr: string });
  }
  const log = await readFile(join(state, 'calls.jsonl'), 'utf8').catch(() => '');
  const calls = log
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Call);
  return { status, stderr, calls, datadir, tmp, state };
}

/** What each call did, in order; a failed ping of the local server (still starting) is left out. */
function steps(calls: Call[]): string[] {
  return calls.flatMap((call) => {
    const failed = call.status ? ' (failed)' : '';
    if (call.program === 'mysqld')
      return call.args.includes('--initialize-insecure') ? ['initialize'] : ['start'];
    if (call.program === 'mysqladmin') {
      if (call.options?.['host']) return [`ping ${call.options['host']}${failed}`];
      if (call.args.includes('shutdown')) return [`shut down${failed}`];
      return failed ? [] : ['ping'];
    }
    if (call.stdin?.includes('CLONE INSTANCE')) return [`clone${failed}`];
    if (call.stdin?.includes('CHANGE REPLICATION SOURCE')) return [`configure replication${failed}`];
    return [`mysql${failed}`];
  });
}

const statements = (sql: string): string[] =>
  sql
    .replace(/^--.*$/gm, '')
    .split(';')
    .map((s) => s.replace(/\s+/g, ' ').trim())
    .filter(Boolean);

async function sqlOf(script: string, env: Record<string, string>): Promise<string> {
  const body = script.replaceAll('/var/run/secrets/parley', join(dir, 'secrets'));
  const { stdout } = await run('sh', ['-c', `docker_process_sql() { cat; }\n${body}`], {
    env: { PATH: process.env['PATH'], ...env },
  });
  return stdout;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'parley-mysql-'));
  await mkdir(join(dir, 'secrets'));
  for (const [key, value] of Object.entries(secrets)) await writeFile(join(dir, 'secrets', key), value);
  data = find(await renderChart([scenarioFile('default')]), 'ConfigMap', 'parley-mysql')['data'] as Record<
    string,
    string
  >;
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('MySQL scripts', () => {
  it('the primary creates the database and three least-privilege users from the secret files', async () => {
    const sql = await sqlOf(data['primary-init.sh']!, {
      PARLEY_DATABASE: 'parley',
      PARLEY_USER: 'parley',
      PARLEY_MIGRATION_USER: 'parley_migrator',
    });
    expect(sql).toContain('CREATE DATABASE IF NOT EXISTS `parley`');
    expect(sql).toContain("CREATE USER IF NOT EXISTS 'parley'@'%' IDENTIFIED BY 'app-secret-1';");
    expect(sql).toContain("GRANT SELECT, INSERT, UPDATE, DELETE ON `parley`.* TO 'parley'@'%';");
    expect(sql).toContain("IDENTIFIED BY 'migrator-secret-2'");
    expect(sql).toContain("GRANT ALL PRIVILEGES ON `parley`.* TO 'parley_migrator'@'%';");
    expect(sql).toContain("IDENTIFIED BY 'repl-secret-3' REQUIRE SSL;");
    // Replicas seed themselves by CLONE as this user: the donor side needs BACKUP_ADMIN.
    expect(sql).toContain("GRANT REPLICATION SLAVE, BACKUP_ADMIN ON *.* TO 'replication'@'%';");
  });

  it.each([
    ['primary', 'parley-mysql-primary-0', '1'],
    ['replica', 'parley-mysql-replica-0', '100'],
    ['replica', 'parley-mysql-replica-2', '102'],
  ])('gives the %s pod %s server-id %s', async (role, pod, id) => {
    const config = join(dir, 'config');
    const confD = join(dir, `conf.d-${pod}`);
    await mkdir(config, { recursive: true });
    await mkdir(confD, { recursive: true });
    await writeFile(join(config, 'common.cnf'), data['common.cnf']!);
    const script = data['server-id.sh']!.replaceAll('/config/', `${config}/`).replaceAll('/conf.d', confD);
    await run('sh', ['-c', script], {
      env: {
        PATH: process.env['PATH'],
        ROLE: role,
        POD_NAME: pod,
        HEADLESS: `parley-mysql-${role}-headless`,
      },
    });
    const serverId = await readFile(join(confD, 'server-id.cnf'), 'utf8');
    expect(serverId).toContain(`server-id=${id}\n`);
    expect(serverId).toContain(`report-host=${pod}.parley-mysql-${role}-headless\n`);
    expect(await readFile(join(confD, 'common.cnf'), 'utf8')).toContain('gtid_mode=ON');
  });
});

describe('a replica seeds an empty data directory from the primary by CLONE', () => {
  it('waits for the primary, clones it, then follows it by GTID auto-position over TLS, read-only', async () => {
    const seeding = await seed(async () => {}, { STANDIN_PRIMARY_DOWN_PINGS: '1' });
    expect(seeding.status, seeding.stderr).toBe(0);
    expect(steps(seeding.calls)).toEqual([
      'ping parley-mysql (failed)',
      'ping parley-mysql',
      'initialize',
      'start',
      'ping',
      'clone (failed)', // error 3707: the server stops to restart on the cloned data
      'start',
      'ping',
      'configure replication',
      'shut down',
    ]);
    const servers = seeding.calls.filter(
      (c) => c.program === 'mysqld' && !c.args.includes('--initialize-insecure'),
    );
    const sent = (text: string): Call => seeding.calls.find((c) => c.stdin?.includes(text))!;
    const pingPrimary = seeding.calls[0]!;
    const initialize = seeding.calls.find((c) => c.args.includes('--initialize-insecure'))!;
    const clone = sent('CLONE INSTANCE');
    const configure = sent('CHANGE REPLICATION SOURCE');
    expect(pingPrimary.options).toEqual({
      user: 'replication',
      password: 'repl-secret-3',
      host: 'parley-mysql',
      port: '3306',
      'ssl-mode': 'REQUIRED',
    });
    expect(initialize.args).toEqual([`--datadir=${seeding.datadir}`, '--initialize-insecure']);
    // A server for the script alone: no TCP or X protocol listener, no replication, a private socket.
    expect(servers).toHaveLength(2);
    for (const server of servers) {
      expect(server.args.slice(0, 4)).toEqual([
        `--datadir=${seeding.datadir}`,
        '--skip-networking',
        '--mysqlx=OFF',
        '--skip-replica-start',
      ]);
      expect(server.args[4]).toMatch(new RegExp(`^--socket=${seeding.tmp}/[^/]+/mysqld.sock$`));
    }
    // Right after initialisation root has no password; the clone brings the primary's accounts.
    expect(clone.options).toMatchObject({ user: 'root', password: '' });
    expect(statements(clone.stdin!)).toEqual([
      "SET GLOBAL clone_valid_donor_list = 'parley-mysql:3306'",
      "CLONE INSTANCE FROM 'replication'@'parley-mysql':3306 IDENTIFIED BY 'repl-secret-3' REQUIRE SSL",
    ]);
    expect(configure.options).toMatchObject({ user: 'root', password: 'root-secret-4' });
    expect(statements(configure.stdin!)).toEqual([
      "CHANGE REPLICATION SOURCE TO SOURCE_HOST='parley-mysql', SOURCE_PORT=3306, SOURCE_USER='replication', " +
        "SOURCE_PASSWORD='repl-secret-3', SOURCE_AUTO_POSITION=1, SOURCE_SSL=1, SOURCE_CONNECT_RETRY=5, " +
        'SOURCE_RETRY_COUNT=1000000',
      'SET PERSIST read_only = ON',
      'SET PERSIST super_read_only = ON',
    ]);
    // The primary's data, no marker of a seeding in progress, nothing left in the temporary directory.
    expect((await readdir(seeding.datadir)).sort()).toEqual(['ibdata1', 'lost+found', 'mysql', 'parley']);
    expect(await readFile(join(seeding.datadir, 'parley', 'messages.ibd'), 'utf8')).toBe(
      "the primary's messages\n",
    );
    expect(await readdir(seeding.tmp)).toEqual([]);
  });

  it('leaves a data directory in use alone: nothing runs', async () => {
    const seeding = await seed(async (datadir) => {
      await mkdir(join(datadir, 'mysql'));
      await writeFile(join(datadir, 'ibdata1'), 'replica data\n');
    });
    expect(seeding.status, seeding.stderr).toBe(0);
    expect(seeding.calls).toEqual([]);
    expect((await readdir(seeding.datadir)).sort()).toEqual(['ibdata1', 'lost+found', 'mysql']);
    expect(await readFile(join(seeding.datadir, 'ibdata1'), 'utf8')).toBe('replica data\n');
  });

  it('a failed clone stops the server, empties the data directory again and exits non-zero', async () => {
    const seeding = await seed(async () => {}, { STANDIN_CLONE: 'fail' });
    expect(seeding.status).not.toBe(0);
    expect(seeding.stderr).toContain('Clone Donor Error');
    expect(steps(seeding.calls)).toEqual([
      'ping parley-mysql',
      'initialize',
      'start',
      'ping',
      'clone (failed)',
    ]);
    expect(await readdir(seeding.datadir)).toEqual(['lost+found']);
    const server = JSON.parse(await readFile(join(seeding.state, 'server.json'), 'utf8')) as { pid: number };
    expect(() => process.kill(server.pid, 0)).toThrow();
    expect(await readdir(seeding.tmp)).toEqual([]);
  });

  it('starts over from an empty data directory after a seeding that was killed midway', async () => {
    const seeding = await seed(async (datadir) => {
      await writeFile(join(datadir, '.parley-seeding'), '');
      await mkdir(join(datadir, 'mysql'));
      await writeFile(join(datadir, 'ibdata1'), 'half a clone\n');
    });
    expect(seeding.status, seeding.stderr).toBe(0);
    expect(steps(seeding.calls).slice(0, 2)).toEqual(['ping parley-mysql', 'initialize']);
    expect(await readFile(join(seeding.datadir, 'parley', 'messages.ibd'), 'utf8')).toBe(
      "the primary's messages\n",
    );
    expect(await readdir(seeding.datadir)).not.toContain('.parley-seeding');
  });

  it('refuses a volume holding other files, and leaves them', async () => {
    const seeding = await seed(async (datadir) => {
      await writeFile(join(datadir, 'notes.txt'), 'not MySQL\n');
    });
    expect(seeding.status).not.toBe(0);
    expect(seeding.stderr).toContain('holds files but no MySQL data directory');
    expect(seeding.calls).toEqual([]);
    expect((await readdir(seeding.datadir)).sort()).toEqual(['lost+found', 'notes.txt']);
  });
});
