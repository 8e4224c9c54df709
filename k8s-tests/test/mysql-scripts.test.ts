/**
 * The chart's MySQL scripts, executed by a real shell. The official image's entrypoint sources
 * the init scripts and provides `docker_process_sql`; here a stand-in prints the SQL it would run,
 * so the test sees exactly what reaches MySQL (secrets read from files, grants, replication).
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
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
};

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
    expect(sql).toContain("GRANT REPLICATION SLAVE ON *.* TO 'replication'@'%';");
  });

  it('a replica clears its GTID state, follows the primary by auto-position over TLS and turns read-only', async () => {
    const sql = await sqlOf(data['replica-init.sh']!, { PARLEY_PRIMARY_HOST: 'parley-mysql' });
    const statements = sql
      .replace(/^--.*$/gm, '')
      .split(';')
      .map((s) => s.replace(/\s+/g, ' ').trim())
      .filter(Boolean);
    expect(statements[0]).toBe('RESET BINARY LOGS AND GTIDS');
    expect(statements[1]).toMatch(
      /^CHANGE REPLICATION SOURCE TO SOURCE_HOST='parley-mysql', SOURCE_PORT=3306,/,
    );
    expect(statements[1]).toContain("SOURCE_PASSWORD='repl-secret-3'");
    expect(statements[1]).toContain('SOURCE_AUTO_POSITION=1');
    expect(statements[1]).toContain('SOURCE_SSL=1');
    expect(statements.slice(2)).toEqual([
      'START REPLICA',
      'SET PERSIST read_only = ON',
      'SET PERSIST super_read_only = ON',
    ]);
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
