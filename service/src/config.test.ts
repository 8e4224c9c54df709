import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, loadMigrationConfig, type Role } from './config.js';

const VALID = {
  MYSQL_HOST: 'mysql.internal',
  MYSQL_USER: 'parley_app',
  MYSQL_PASSWORD: 'secret',
  REDIS_URL: 'redis://redis.internal:6379',
  S3_ATTACHMENTS_BUCKET: 'parley-attachments',
  S3_BACKUPS_BUCKET: 'parley-backups',
};

const ED25519_PEM = generateKeyPairSync('ed25519')
  .privateKey.export({ format: 'pem', type: 'pkcs8' })
  .toString();
const RSA_PEM = generateKeyPairSync('rsa', { modulusLength: 1024 })
  .privateKey.export({ format: 'pem', type: 'pkcs8' })
  .toString();

function problemsOf(env: Record<string, string | undefined>, role: Role = 'worker'): string[] {
  try {
    loadConfig(env, role);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

const secrets = mkdtempSync(join(tmpdir(), 'parley-config-test-'));
afterAll(() => rmSync(secrets, { recursive: true, force: true }));

describe('config', () => {
  it('parses a minimal valid environment with production defaults', () => {
    const config = loadConfig(VALID);
    expect(config.env).toBe('production');
    expect(config.http).toMatchObject({ port: 3000, managementPort: 9464, host: '0.0.0.0' });
    expect(config.mysql).toMatchObject({
      primary: { host: 'mysql.internal', port: 3306 },
      replica: undefined,
    });
    expect(config.mysql.migration).toEqual({ user: 'parley_app', password: 'secret' });
    expect(config.redis).toEqual({ kind: 'url', url: 'redis://redis.internal:6379', password: undefined });
    expect(config.mysql.tls).toBeUndefined();
    expect(config.s3.credentials).toBeUndefined();
  });

  it('keeps a Redis password and MySQL TLS settings apart from the URL', () => {
    const caFile = join(secrets, 'rds-ca.pem');
    writeFileSync(caFile, '-----BEGIN CERTIFICATE-----\n');
    const config = loadConfig({
      ...VALID,
      REDIS_PASSWORD: 'auth-token',
      MYSQL_TLS: 'true',
      MYSQL_TLS_CA_FILE: caFile,
    });
    expect(config.redis).toEqual({ kind: 'url', url: 'redis://redis.internal:6379', password: 'auth-token' });
    expect(config.mysql.tls).toEqual({ caFile });
  });

  it('parses Sentinel addresses into host/port pairs', () => {
    const { REDIS_URL: _unused, ...withoutUrl } = VALID;
    const config = loadConfig({
      ...withoutUrl,
      REDIS_SENTINELS: 's-0:26379, s-1:26380',
      REDIS_PASSWORD: 'pw',
    });
    expect(config.redis).toEqual({
      kind: 'sentinel',
      sentinels: [
        { host: 's-0', port: 26379 },
        { host: 's-1', port: 26380 },
      ],
      masterName: 'mymaster',
      password: 'pw',
      sentinelPassword: undefined,
    });
  });

  it.each([
    ['PORT', 'http', /PORT: /],
    ['PORT', '70000', /PORT: /],
    ['MYSQL_PORT', '0', /MYSQL_PORT: /],
    ['MYSQL_POOL_SIZE', '0', /MYSQL_POOL_SIZE: /],
    ['LOG_LEVEL', 'loud', /LOG_LEVEL: /],
    ['NODE_ENV', 'staging', /NODE_ENV: /],
    ['REDIS_URL', 'http://redis', /REDIS_URL: /],
    ['S3_ATTACHMENTS_BUCKET', 'Bad_Bucket', /S3_ATTACHMENTS_BUCKET: not a valid S3 bucket name/],
    ['S3_FORCE_PATH_STYLE', 'maybe', /S3_FORCE_PATH_STYLE: /],
    ['S3_ENDPOINT', 'not a url', /S3_ENDPOINT: /],
    ['MYSQL_DATABASE', 'parley;drop', /MYSQL_DATABASE: letters, digits and _ only/],
    ['MANAGEMENT_PORT', '65536', /MANAGEMENT_PORT: /],
    ['WORKER_HEALTH_PORT', 'x', /WORKER_HEALTH_PORT: /],
    ['SHUTDOWN_GRACE_MS', '0', /SHUTDOWN_GRACE_MS: /],
    ['SHUTDOWN_GRACE_MS', '25s', /SHUTDOWN_GRACE_MS: /],
    ['WORKER_SHUTDOWN_GRACE_MS', '-1', /WORKER_SHUTDOWN_GRACE_MS: /],
    ['READINESS_TIMEOUT_MS', 'soon', /READINESS_TIMEOUT_MS: /],
    ['READINESS_TIMEOUT_MS', '3600001', /READINESS_TIMEOUT_MS: /],
    ['BODY_LIMIT_BYTES', '100', /BODY_LIMIT_BYTES: /],
    ['BODY_LIMIT_BYTES', '1.5', /BODY_LIMIT_BYTES: /],
    ['RATE_LIMIT_AUTH', '5 per 900', /RATE_LIMIT_AUTH: must be "points\/seconds"/],
    ['RATE_LIMIT_API', '0/60', /RATE_LIMIT_API: points and seconds must be positive/],
    ['RATE_LIMIT_UPLOAD', '60/0', /RATE_LIMIT_UPLOAD: points and seconds must be positive/],
    ['TRUSTED_PROXY_HOPS', '-1', /TRUSTED_PROXY_HOPS: /],
    ['TRUSTED_PROXY_HOPS', '6', /TRUSTED_PROXY_HOPS: /],
    [
      'MYSQL_TLS_CA_FILE',
      '/nonexistent/ca.pem',
      /^MYSQL_TLS_CA_FILE: cannot read \/nonexistent\/ca.pem \(ENOENT\)$/,
    ],
  ])('reports a bad %s (%s)', (name, value, expected) => {
    const problems = problemsOf({ ...VALID, [name]: value });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(expected);
  });

  it('reports a malformed Sentinel list', () => {
    const { REDIS_URL: _unused, ...withoutUrl } = VALID;
    expect(problemsOf({ ...withoutUrl, REDIS_SENTINELS: 's-0:26379,nonsense' })).toEqual([
      'REDIS_SENTINELS: "nonsense" is not host:port',
    ]);
  });

  it('reports every problem at once, and never echoes a secret value', () => {
    const problems = problemsOf({ PORT: 'x', MYSQL_PASSWORD: 'hunter2', S3_ACCESS_KEY_ID: 'AKIA' });
    expect(problems).toEqual(
      expect.arrayContaining([
        'MYSQL_HOST: is required',
        'MYSQL_USER: is required',
        'S3_ATTACHMENTS_BUCKET: is required',
        'S3_BACKUPS_BUCKET: is required',
        'REDIS_URL: set REDIS_URL or REDIS_SENTINELS',
        expect.stringMatching(/^PORT: /),
        expect.stringMatching(/^S3_ACCESS_KEY_ID: S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY go together/),
      ]),
    );
    expect(problems.join('\n')).not.toContain('hunter2');
  });

  it('rejects REDIS_URL together with REDIS_SENTINELS', () => {
    expect(problemsOf({ ...VALID, REDIS_SENTINELS: 's:26379' })).toEqual([
      'REDIS_URL: set REDIS_URL or REDIS_SENTINELS, not both',
    ]);
  });

  it('reads secrets from *_FILE as Kubernetes mounts them, without the trailing newline', () => {
    const file = join(secrets, 'mysql-password');
    writeFileSync(file, 's3cr3t\n');
    const { MYSQL_PASSWORD: _unused, ...withoutPassword } = VALID;
    expect(loadConfig({ ...withoutPassword, MYSQL_PASSWORD_FILE: file }).mysql.password).toBe('s3cr3t');
  });

  it('reports an unreadable *_FILE and a secret given twice', () => {
    const problems = problemsOf({
      ...VALID,
      MYSQL_PASSWORD_FILE: join(secrets, 'missing'),
      REDIS_PASSWORD: 'a',
      REDIS_PASSWORD_FILE: '/x',
    });
    expect(problems).toEqual([
      `MYSQL_PASSWORD: set MYSQL_PASSWORD or MYSQL_PASSWORD_FILE, not both`,
      'REDIS_PASSWORD: set REDIS_PASSWORD or REDIS_PASSWORD_FILE, not both',
    ]);
    const { MYSQL_PASSWORD: _unused, ...withoutPassword } = VALID;
    expect(problemsOf({ ...withoutPassword, MYSQL_PASSWORD_FILE: join(secrets, 'missing') })).toEqual([
      `MYSQL_PASSWORD_FILE: cannot read ${join(secrets, 'missing')} (ENOENT)`,
    ]);
  });

  it.each([
    ['is not PEM at all', 'not-a-key', /^JWT_PRIVATE_KEY: is not a PKCS8 PEM private key/],
    ['is truncated', ED25519_PEM.slice(0, 60), /^JWT_PRIVATE_KEY: is not a PKCS8 PEM private key/],
    ['is an RSA key', RSA_PEM, /^JWT_PRIVATE_KEY: is an rsa key; the API signs with Ed25519$/],
  ])('reports a JWT_PRIVATE_KEY that %s, for the API only', (_case, pem, expected) => {
    const problems = problemsOf({ ...VALID, JWT_PRIVATE_KEY: pem }, 'api');
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(expected);
    expect(problems[0]).not.toContain(pem.slice(0, 40));
    expect(problemsOf({ ...VALID, JWT_PRIVATE_KEY: pem }, 'worker')).toEqual([]);
  });

  it('requires the signing key for the API', () => {
    expect(problemsOf(VALID, 'api')).toEqual([
      'JWT_PRIVATE_KEY: is required by the API (a PKCS8 PEM Ed25519 key, or JWT_PRIVATE_KEY_FILE)',
    ]);
  });

  it('reads a multi-line PEM signing key from JWT_PRIVATE_KEY_FILE, and reports one that is not a key', () => {
    const file = join(secrets, 'jwt-private-key');
    writeFileSync(file, ED25519_PEM.endsWith('\n') ? ED25519_PEM : `${ED25519_PEM}\n`);
    expect(ED25519_PEM.trim().split('\n').length).toBeGreaterThan(2);
    expect(loadConfig({ ...VALID, JWT_PRIVATE_KEY_FILE: file }, 'api').auth.privateKeyPem).toBe(
      ED25519_PEM.trimEnd(),
    );

    const garbled = join(secrets, 'jwt-private-key-garbled');
    writeFileSync(garbled, ED25519_PEM.replace(/\n[^-][^\n]*\n/, '\n!!!!\n'));
    expect(problemsOf({ ...VALID, JWT_PRIVATE_KEY_FILE: garbled }, 'api')).toEqual([
      expect.stringMatching(/^JWT_PRIVATE_KEY: is not a PKCS8 PEM private key/),
    ]);
  });

  it('requires BACKUP_ENCRYPTION_KEY of the worker when backups are enabled, and only then', () => {
    expect(loadConfig(VALID).backups).toMatchObject({ enabled: false, schedule: '0 3 * * *', keep: 7 });
    expect(problemsOf({ ...VALID, BACKUP_ENABLED: 'true' })).toEqual([
      'BACKUP_ENCRYPTION_KEY: is required by the worker when BACKUP_ENABLED=true (a passphrase, or BACKUP_ENCRYPTION_KEY_FILE)',
    ]);
    expect(problemsOf({ ...VALID, BACKUP_ENABLED: 'true', JWT_PRIVATE_KEY: ED25519_PEM }, 'api')).toEqual([]);
    expect(problemsOf({ ...VALID, BACKUP_ENABLED: 'false' })).toEqual([]);
  });

  it('reads the backup keys from *_FILE, and the previous keys as a comma-separated list', () => {
    const current = join(secrets, 'backup-key');
    const previous = join(secrets, 'backup-previous-keys');
    writeFileSync(current, 'a passphrase of some length\n');
    writeFileSync(previous, 'the first older passphrase, the second older passphrase\n');
    const config = loadConfig({
      ...VALID,
      BACKUP_ENABLED: 'true',
      BACKUP_ENCRYPTION_KEY_FILE: current,
      BACKUP_PREVIOUS_KEYS_FILE: previous,
      BACKUP_SCHEDULE: '30 2 * * 0',
      BACKUP_KEEP: '30',
    });
    expect(config.backups).toMatchObject({
      enabled: true,
      encryptionKey: 'a passphrase of some length',
      previousKeys: ['the first older passphrase', 'the second older passphrase'],
      schedule: '30 2 * * 0',
      keep: 30,
      partSizeBytes: 8 * 1024 * 1024,
      compressionLevel: 6,
    });
    expect(problemsOf({ ...VALID, BACKUP_ENCRYPTION_KEY_FILE: join(secrets, 'missing') })).toEqual([
      `BACKUP_ENCRYPTION_KEY_FILE: cannot read ${join(secrets, 'missing')} (ENOENT)`,
    ]);
  });

  it('refuses a short backup passphrase and a malformed schedule, never echoing a key', () => {
    const problems = problemsOf({
      ...VALID,
      BACKUP_ENCRYPTION_KEY: 'short-secret',
      BACKUP_PREVIOUS_KEYS: 'a long enough older passphrase,tiny-secret',
      BACKUP_SCHEDULE: 'daily',
      BACKUP_KEEP: '0',
    });
    expect(problems).toEqual([
      'BACKUP_SCHEDULE: must be a cron pattern of 5 or 6 fields, e.g. "0 3 * * *"',
      expect.stringMatching(/^BACKUP_KEEP: /),
      'BACKUP_ENCRYPTION_KEY: must be a passphrase of at least 16 characters',
      'BACKUP_PREVIOUS_KEYS: each key must be a passphrase of at least 16 characters',
    ]);
    expect(problems.join('\n')).not.toMatch(/short-secret|tiny-secret/);
  });

  it('reads the attachment settings: a list of media types, lower-cased, and the limits', () => {
    const config = loadConfig({
      ...VALID,
      ATTACHMENTS_ALLOWED_TYPES: ' image/PNG , text/plain,',
      ATTACHMENTS_MAX_BYTES: '1048576',
    });
    expect(config.attachments).toEqual({
      allowedTypes: ['image/png', 'text/plain'],
      maxBytes: 1_048_576,
      uploadTtlSeconds: 300,
      downloadTtlSeconds: 300,
      pendingTtlSeconds: 86_400,
      rejectedTtlSeconds: 604_800,
      sweepEveryMs: 900_000,
    });
  });

  it('refuses a media type that is not one, and a pending TTL the upload window outlives', () => {
    expect(problemsOf({ ...VALID, ATTACHMENTS_ALLOWED_TYPES: 'image/png,pictures' })).toEqual([
      'ATTACHMENTS_ALLOWED_TYPES: "pictures" is not a media type like image/png',
    ]);
    expect(
      problemsOf({ ...VALID, ATTACHMENTS_UPLOAD_TTL_SECONDS: '600', ATTACHMENTS_PENDING_TTL_SECONDS: '300' }),
    ).toEqual(['ATTACHMENTS_PENDING_TTL_SECONDS: must be longer than ATTACHMENTS_UPLOAD_TTL_SECONDS']);
    expect(problemsOf({ ...VALID, ATTACHMENTS_MAX_BYTES: '6000000000' })).toHaveLength(1);
  });

  it('gives the migration Job a MySQL-only config, with its own user', () => {
    const config = loadMigrationConfig({
      MYSQL_HOST: 'db',
      MYSQL_USER: 'app',
      MYSQL_MIGRATION_USER: 'migrator',
      MYSQL_MIGRATION_PASSWORD: 'm',
    });
    expect(config.mysql).toMatchObject({
      primary: { host: 'db', port: 3306 },
      migration: { user: 'migrator', password: 'm' },
    });
    expect(() => loadMigrationConfig({ MYSQL_USER: 'app' })).toThrow(/MYSQL_HOST: is required/);
    expect(() =>
      loadMigrationConfig({
        MYSQL_HOST: 'db',
        MYSQL_USER: 'app',
        MYSQL_TLS: 'true',
        MYSQL_TLS_CA_FILE: secrets,
      }),
    ).toThrow(/MYSQL_TLS_CA_FILE: cannot read .* \(EISDIR\)/);
  });

  it('gives the service and the migration Job the same MySQL settings from one declaration', () => {
    const mysqlVariables = {
      MYSQL_REPLICA_HOST: 'mysql-replica.internal',
      MYSQL_REPLICA_PORT: '3307',
      MYSQL_DATABASE: 'parley_eu',
      MYSQL_POOL_SIZE: '7',
    };
    const service = loadConfig({ ...VALID, ...mysqlVariables, LOG_LEVEL: 'warn', INSTANCE_ID: 'pod-1' });
    const migration = loadMigrationConfig({
      ...VALID,
      ...mysqlVariables,
      LOG_LEVEL: 'warn',
      INSTANCE_ID: 'pod-1',
    });
    expect(service.mysql).toMatchObject({
      replica: { host: 'mysql-replica.internal', port: 3307 },
      database: 'parley_eu',
      poolSize: 7,
    });
    expect(migration.mysql).toEqual(service.mysql);
    expect(migration).toMatchObject({ logLevel: 'warn', instanceId: 'pod-1' });
  });

  it.each(['main-api', 'main-worker'])('%s exits 1 and lists every problem on stderr', (entry) => {
    const result = spawnSync(process.execPath, ['--import', 'tsx', `src/${entry}.ts`], {
      cwd: new URL('..', import.meta.url),
      env: { PATH: process.env.PATH, PORT: 'nope', MYSQL_HOST: 'db' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('parley: invalid configuration:');
    for (const name of ['PORT', 'MYSQL_USER', 'REDIS_URL', 'S3_ATTACHMENTS_BUCKET', 'S3_BACKUPS_BUCKET']) {
      expect(result.stderr).toContain(`  - ${name}: `);
    }
    expect(result.stderr).not.toContain('    at '); // a list of problems, not a stack trace
  });

  it('main-api exits 1 listing a signing key that is not Ed25519, rather than crashing after start-up', () => {
    const result = spawnSync(process.execPath, ['--import', 'tsx', 'src/main-api.ts'], {
      cwd: new URL('..', import.meta.url),
      env: {
        PATH: process.env.PATH,
        ...VALID,
        // Nothing listens here: a process that got past its config would fail later, and differently.
        MYSQL_HOST: '127.0.0.1',
        MYSQL_PORT: '1',
        REDIS_URL: 'redis://127.0.0.1:1',
        PORT: '0',
        MANAGEMENT_PORT: '0',
        JWT_PRIVATE_KEY: RSA_PEM,
      },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('parley: invalid configuration:');
    expect(result.stderr).toContain('  - JWT_PRIVATE_KEY: is an rsa key');
    expect(result.stderr).not.toContain('    at ');
  });
});
