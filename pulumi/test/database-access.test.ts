/**
 * `dataPlane: aws-managed`: RDS creates only its master user, so a Job that Pulumi runs before the
 * release creates the service's and the migrations' users. Its wiring is checked on the mocked
 * resources, and its script runs in a real bash against a stand-in `mysql` that records what it
 * was given: arguments, option file and statements.
 */
import { execFile } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';

import { chartDir } from '../../k8s-tests/lib/render.js';
import {
  dependsOn,
  exampleStack,
  containsWireSecret,
  only,
  parentOf,
  runParley,
  type Loose,
  type Recorded,
} from './harness.js';

const run = promisify(execFile);
const JOB = 'kubernetes:batch/v1:Job';

describe('the database users Job (prod example)', () => {
  let resources: Recorded[];
  let job: Loose;
  let pod: Loose;
  let container: Loose;
  let passwords: Record<string, string>;

  beforeAll(async () => {
    ({ resources } = await runParley('prod', exampleStack('prod')));
    job = only(resources, JOB).inputs;
    pod = job.spec.template.spec;
    [container] = pod.containers;
    passwords = JSON.parse(
      only(resources, 'aws:secretsmanager/secretVersion:SecretVersion', 'parley').inputs
        .secretString as string,
    ) as Record<string, string>;
  });

  it('runs the mysql client of the image the chart runs for MySQL', async () => {
    const values = parseYaml(await readFile(join(chartDir, 'values.yaml'), 'utf8')) as Loose;
    const { repository, tag, digest } = values.mysql.image;
    expect(container.image).toBe(`${repository}:${tag}${digest ? `@${digest}` : ''}`);
  });

  it('runs the user script in bash, configured by environment variables only', async () => {
    const script = await readFile(
      new URL('../src/components/create-database-users.sh', import.meta.url),
      'utf8',
    );
    expect(container.command).toEqual(['bash', '-c', script]);
    expect(container.args).toBeUndefined();
    expect(Object.fromEntries((container.env as Loose[]).map((v) => [v.name, v.value]))).toEqual({
      MYSQL_HOST: 'parley-prod-mysql.c0ffee.eu-west-1.rds.amazonaws.com',
      MYSQL_PORT: '3306',
      MYSQL_DATABASE: 'parley',
      MYSQL_ADMIN_USER: 'parley_admin',
      MYSQL_CA_FILE: '/etc/parley/mysql-ca/ca.pem',
      APP_USER: 'parley',
      APP_PRIVILEGES: 'SELECT, INSERT, UPDATE, DELETE',
      MIGRATION_USER: 'parley_migrator',
      MIGRATION_PRIVILEGES: 'SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, DROP, INDEX, REFERENCES',
      SECRETS_DIR: '/var/run/secrets/parley',
      TMPDIR: '/tmp',
      HOME: '/tmp',
    });
  });

  it('reads the three passwords it needs from the Secret, and the RDS CA bundle from the ConfigMap', () => {
    expect(pod.volumes).toEqual([
      {
        name: 'secrets',
        secret: {
          secretName: 'parley-credentials',
          defaultMode: 0o400,
          items: ['mysql-root-password', 'mysql-password', 'mysql-migration-password'].map((key) => ({
            key,
            path: key,
          })),
        },
      },
      {
        name: 'mysql-ca',
        configMap: { name: 'parley-mysql-ca', items: [{ key: 'ca.pem', path: 'ca.pem' }] },
      },
      { name: 'tmp', emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } },
    ]);
    expect(container.volumeMounts).toEqual([
      { name: 'secrets', mountPath: '/var/run/secrets/parley', readOnly: true },
      { name: 'mysql-ca', mountPath: '/etc/parley/mysql-ca', readOnly: true },
      { name: 'tmp', mountPath: '/tmp' },
    ]);
  });

  it('puts no credential into the Job, only a digest keyed with the master password', () => {
    const text = JSON.stringify(job);
    for (const [key, value] of Object.entries(passwords)) {
      const needle = key === 'jwt-private-key' ? value.split('\n')[1]! : value;
      expect(text.includes(needle), key).toBe(false);
    }
    // Nothing secret in it, so previews show the Job's changes instead of a hidden spec.
    expect(containsWireSecret(only(resources, JOB).raw)).toBe(false);
    const digest = job.spec.template.metadata.annotations['checksum/credentials'] as string;
    const expected = createHmac('sha256', passwords['mysql-root-password']!)
      .update(`${passwords['mysql-password']}\n${passwords['mysql-migration-password']}`)
      .digest('hex');
    expect(digest).toBe(expected.slice(0, 32));
  });

  it('satisfies Pod Security "restricted", as the namespace enforces', () => {
    expect(pod.securityContext).toMatchObject({
      runAsNonRoot: true,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(pod.securityContext.runAsUser).toBeGreaterThan(0);
    expect(container.securityContext).toEqual({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.restartPolicy).toBe('Never');
  });

  it('stays out of the chart’s NetworkPolicies: not labelled as a pod of the release', () => {
    const labels = job.spec.template.metadata.labels as Record<string, string>;
    expect(labels['app.kubernetes.io/instance']).toBeUndefined();
    expect(labels['app.kubernetes.io/name']).toBeUndefined();
  });

  it('runs after the writer and the credentials exist, and the release waits for it', () => {
    const usersJob = only(resources, JOB);
    expect(parentOf(resources, usersJob)?.type).toBe('parley:data:ManagedDatabaseAccess');
    const access = parentOf(resources, usersJob)!;
    expect(dependsOn(access, only(resources, 'aws:rds/instance:Instance', 'parley-mysql'))).toBe(true);
    expect(dependsOn(access, only(resources, 'kubernetes:external-secrets.io/v1:ExternalSecret'))).toBe(true);
    expect(dependsOn(usersJob, only(resources, 'kubernetes:core/v1:ConfigMap', 'parley-mysql-ca'))).toBe(
      true,
    );
    const release = only(resources, 'parley:release:ParleyRelease');
    expect(dependsOn(release, usersJob)).toBe(true);
  });

  it('is replaced, not waited for again, after a failure; and deleted before it is recreated', () => {
    expect(job.metadata).toMatchObject({
      name: 'parley-mysql-users',
      namespace: 'parley',
      annotations: { 'pulumi.com/replaceUnready': 'true' },
    });
    expect(job.spec.backoffLimit).toBeGreaterThan(0);
    expect(job.spec.activeDeadlineSeconds).toBeGreaterThan(0);
  });

  it('is not created for the in-cluster data plane, whose MySQL creates the users itself', async () => {
    const { resources: dev } = await runParley('dev', exampleStack('dev'));
    expect(dev.filter((r) => r.type === JOB)).toEqual([]);
  });
});

describe('the credentials digest', () => {
  it('changes when a password is rotated, so the Job runs again', async () => {
    const digest = async (settings: Record<string, unknown>, secretKeys: string[]) => {
      const { resources } = await runParley('prod', { ...exampleStack('prod'), ...settings }, secretKeys);
      return only(resources, JOB).inputs.spec.template.metadata.annotations['checksum/credentials'] as string;
    };
    const first = await digest({ 'parley:mysqlPassword': 'Rotated-Passw0rd-One' }, ['parley:mysqlPassword']);
    const again = await digest({ 'parley:mysqlPassword': 'Rotated-Passw0rd-One' }, ['parley:mysqlPassword']);
    const rotated = await digest({ 'parley:mysqlPassword': 'Rotated-Passw0rd-Two' }, [
      'parley:mysqlPassword',
    ]);
    expect(again).toBe(first);
    expect(rotated).not.toBe(first);
  });
});

describe('the user script, run by bash against a stand-in mysql', () => {
  let dir: string;
  let job: Loose;
  const secrets = {
    // Quotes, backslashes and a hash: whatever an operator's password holds must arrive intact.
    'mysql-root-password': String.raw`adm'in\#pw\n`,
    'mysql-password': String.raw`app'pass\word`,
    'mysql-migration-password': 'MigratorPassw0rd',
  };

  async function runScript() {
    const env = Object.fromEntries(
      (job.spec.template.spec.containers[0].env as Loose[]).map((v) => [v.name, v.value as string]),
    );
    return run('bash', ['-c', job.spec.template.spec.containers[0].command[2]], {
      env: {
        ...env,
        PATH: `${join(dir, 'bin')}:${process.env.PATH}`,
        SECRETS_DIR: join(dir, 'secrets'),
        TMPDIR: join(dir, 'tmp'),
        HOME: join(dir, 'tmp'),
        RECORD: join(dir, 'record'),
      },
    });
  }

  beforeAll(async () => {
    const { resources } = await runParley('prod', exampleStack('prod'));
    job = only(resources, JOB).inputs;
    dir = await mkdtemp(join(tmpdir(), 'parley-db-users-'));
    for (const sub of ['bin', 'secrets', 'tmp', 'record']) await mkdir(join(dir, sub));
    for (const [key, value] of Object.entries(secrets)) await writeFile(join(dir, 'secrets', key), value);
    // Records its arguments, a copy of the option file named by the first one, and its stdin.
    const stub = join(dir, 'bin', 'mysql');
    await writeFile(
      stub,
      [
        '#!/usr/bin/env bash',
        'printf "%s\\n" "$@" > "$RECORD/argv"',
        'cp "${1#--defaults-extra-file=}" "$RECORD/options"',
        'cat > "$RECORD/stdin"',
      ].join('\n'),
    );
    await chmod(stub, 0o755);
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('creates, updates and grants both users in one idempotent batch, with the passwords quoted', async () => {
    const { stdout } = await runScript();
    expect(stdout).toContain('database users parley and parley_migrator are in place');
    const statements = (await readFile(join(dir, 'record', 'stdin'), 'utf8')).trim().split('\n');
    expect(statements).toEqual([
      "SET SESSION sql_mode = 'NO_BACKSLASH_ESCAPES';",
      String.raw`CREATE USER IF NOT EXISTS 'parley'@'%' IDENTIFIED BY 'app''pass\word' REQUIRE SSL;`,
      String.raw`ALTER USER 'parley'@'%' IDENTIFIED BY 'app''pass\word' REQUIRE SSL;`,
      "GRANT SELECT, INSERT, UPDATE, DELETE ON `parley`.* TO 'parley'@'%';",
      "CREATE USER IF NOT EXISTS 'parley_migrator'@'%' IDENTIFIED BY 'MigratorPassw0rd' REQUIRE SSL;",
      "ALTER USER 'parley_migrator'@'%' IDENTIFIED BY 'MigratorPassw0rd' REQUIRE SSL;",
      'GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, DROP, INDEX, REFERENCES ON `parley`.* TO ' +
        "'parley_migrator'@'%';",
    ]);
  });

  it('logs in as the master user over TLS that verifies the RDS certificate and host name', async () => {
    await runScript();
    const argv = (await readFile(join(dir, 'record', 'argv'), 'utf8')).trim().split('\n');
    // mysql reads --defaults-extra-file only as the first option.
    expect(argv[0]).toMatch(/^--defaults-extra-file=/);
    expect(argv.slice(1)).toEqual([
      '--host=parley-prod-mysql.c0ffee.eu-west-1.rds.amazonaws.com',
      '--port=3306',
      '--user=parley_admin',
      '--ssl-mode=VERIFY_IDENTITY',
      '--ssl-ca=/etc/parley/mysql-ca/ca.pem',
      '--connect-timeout=10',
      '--batch',
    ]);
    for (const value of Object.values(secrets)) expect(argv.join(' ')).not.toContain(value);
  });

  it('hands mysql the master password in a private option file, removed afterwards', async () => {
    await runScript();
    // Backslashes doubled: option files read \\ as one backslash (and \n as a newline).
    expect(await readFile(join(dir, 'record', 'options'), 'utf8')).toBe(
      String.raw`[client]` + '\n' + String.raw`password="adm'in\\#pw\\n"` + '\n',
    );
    expect(await readdir(join(dir, 'tmp'))).toEqual([]);
  });

  it('fails when mysql fails, so the Job fails and the release does not start', async () => {
    const stub = join(dir, 'bin', 'mysql');
    const original = await readFile(stub, 'utf8');
    await writeFile(stub, '#!/usr/bin/env bash\ncat > /dev/null\nexit 1\n');
    try {
      await expect(runScript()).rejects.toMatchObject({ code: 1 });
    } finally {
      await writeFile(stub, original);
    }
  });
});
