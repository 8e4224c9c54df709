import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevstack, type Devstack } from '../../devstack/index.js';
import { loadConfig, type Config } from '../config.js';
import { createLogger } from '../platform/logger.js';
import { adminConnection } from '../test-support/admin-sql.js';
import { TEST_ENV } from '../test-support/stack.js';
import { MIGRATIONS_FOLDER, runMigrations } from './migrate.js';

const journal = JSON.parse(readFileSync(join(MIGRATIONS_FOLDER, 'meta/_journal.json'), 'utf8')) as {
  entries: unknown[];
};

let stack: Devstack;
let config: Config;
const logger = createLogger({ logLevel: 'silent', instanceId: 'test' }, 'migrate');

beforeAll(async () => {
  stack = await startDevstack({ redisTopology: 'single' });
  config = loadConfig({ ...TEST_ENV, ...stack.env() });
});
afterAll(() => stack?.stop());

async function query<T>(sql: string, target: 'primary' | 'replica' = 'primary'): Promise<T[]> {
  const server = stack.mysql[target]!;
  const connection = await mysql.createConnection({
    host: server.host,
    port: server.port,
    ...stack.mysql.admin,
    database: stack.mysql.database,
  });
  try {
    return (await connection.query(sql))[0] as T[];
  } finally {
    await connection.end();
  }
}

const tablesSql = `SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'parley' ORDER BY table_name`;

describe('migrations', () => {
  it('run concurrently from three processes-worth of connections: one applies, the others find nothing to do', async () => {
    await Promise.all([
      runMigrations(config.mysql, logger),
      runMigrations(config.mysql, logger),
      runMigrations(config.mysql, logger),
    ]);
    const tables = (await query<{ name: string }>(tablesSql)).map((row) => row.name).sort();
    expect(tables).toEqual([
      '__drizzle_migrations',
      'attachments',
      'leaderboard_flushes',
      'leaderboard_scores',
      'messages',
      'refresh_tokens',
      'replication_heartbeat',
      'room_memberships',
      'rooms',
      'users',
    ]);
    expect(await query('SELECT id FROM __drizzle_migrations')).toHaveLength(journal.entries.length);
  });

  it('are idempotent: a second run changes nothing', async () => {
    await runMigrations(config.mysql, logger);
    expect(await query('SELECT id FROM __drizzle_migrations')).toHaveLength(journal.entries.length);
  });

  it('reach the replica through GTID replication', async () => {
    await stack.mysql.waitForReplication();
    const tables = (await query<{ name: string }>(tablesSql, 'replica')).map((row) => row.name);
    expect(tables).toContain('messages');
  });

  it('create the keys the domain relies on: unique (room, author, idempotency key) and the cursor index', async () => {
    const indexes = await query<{ Key_name: string; Column_name: string; Non_unique: number }>(
      'SHOW INDEX FROM messages',
    );
    const columnsOf = (name: string) =>
      indexes.filter((index) => index.Key_name === name).map((index) => index.Column_name);
    expect(columnsOf('messages_room_author_idempotency_unique')).toEqual([
      'room_id',
      'author_id',
      'idempotency_key',
    ]);
    expect(
      indexes.find((index) => index.Key_name === 'messages_room_author_idempotency_unique')?.Non_unique,
    ).toBe(0);
    expect(columnsOf('messages_room_id_idx')).toEqual(['room_id', 'id']);
  });

  it('wait for, then fail clearly on, a lock held by another migration', async () => {
    const holder = await mysql.createConnection({
      host: stack.mysql.primary.host,
      port: stack.mysql.primary.port,
      ...stack.mysql.migration,
    });
    try {
      await holder.query("SELECT GET_LOCK('parley:migrate', 10)");
      await expect(runMigrations(config.mysql, logger, { lockTimeoutSeconds: 1 })).rejects.toThrow(
        /another migration holds the lock "parley:migrate" for more than 1 s/,
      );
    } finally {
      await holder.end();
    }
  });

  it('are run with the migration user; the app user cannot change the schema', async () => {
    const app = await mysql.createConnection({
      host: stack.mysql.primary.host,
      port: stack.mysql.primary.port,
      ...stack.mysql.app,
      database: stack.mysql.database,
    });
    try {
      await expect(app.query('DROP TABLE messages')).rejects.toMatchObject({
        code: 'ER_TABLEACCESS_DENIED_ERROR',
      });
    } finally {
      await app.end();
    }
  });
});

describe('the message seq migration (0003)', () => {
  it('numbers the messages already stored, per room in id order, and sets each room’s counter', async () => {
    const own = await startDevstack({ redisTopology: 'single', mysqlReplica: false });
    const before = mkdtempSync(join(tmpdir(), 'parley-migrations-'));
    try {
      const ownConfig = loadConfig({ ...TEST_ENV, ...own.env() });
      // The migrations as they were before 0003: the same folder with a shorter journal.
      cpSync(MIGRATIONS_FOLDER, before, { recursive: true });
      const tag = (entry: unknown) => (entry as { tag: string }).tag;
      const upTo = journal.entries.findIndex((entry) => tag(entry) === '0003_message_seq');
      writeFileSync(
        join(before, 'meta/_journal.json'),
        JSON.stringify({ ...journal, entries: journal.entries.slice(0, upTo) }),
      );
      await runMigrations(ownConfig.mysql, logger, { migrationsFolder: before });

      const admin = await adminConnection(own);
      try {
        const user = '0191d3b4-5d0e-7a3c-9f1e-3c2b1a000001';
        const [a, b, empty] = ['a', 'b', 'c'].map((x) => `0191d3b4-5d0e-7a3c-9f1e-3c2b1a00000${x}`) as [
          string,
          string,
          string,
        ];
        await admin.query("INSERT INTO users (id, username, password_hash) VALUES (?, 'seq', 'x')", [user]);
        for (const room of [a, b, empty])
          await admin.query(
            "INSERT INTO rooms (id, name, visibility, owner_id) VALUES (?, 'r', 'public', ?)",
            [room, user],
          );
        // Interleaved: a, b, a, a, b.
        for (const room of [a, b, a, a, b])
          await admin.query("INSERT INTO messages (room_id, author_id, body) VALUES (?, ?, 'm')", [
            room,
            user,
          ]);

        await runMigrations(ownConfig.mysql, logger);
        const [rows] = (await admin.query('SELECT room_id AS room, seq FROM messages ORDER BY id')) as [
          { room: string; seq: number }[],
          unknown,
        ];
        expect(rows).toEqual([
          { room: a, seq: 1 },
          { room: b, seq: 1 },
          { room: a, seq: 2 },
          { room: a, seq: 3 },
          { room: b, seq: 2 },
        ]);
        const [counters] = (await admin.query('SELECT id, message_seq AS seq FROM rooms ORDER BY id')) as [
          { id: string; seq: number }[],
          unknown,
        ];
        expect(Object.fromEntries(counters.map((room) => [room.id, room.seq]))).toEqual({
          [a]: 3,
          [b]: 2,
          [empty]: 0,
        });
        // From now on a seq must be given, and is unique in its room.
        await expect(
          admin.query("INSERT INTO messages (room_id, author_id, body) VALUES (?, ?, 'no seq')", [a, user]),
        ).rejects.toMatchObject({ code: 'ER_NO_DEFAULT_FOR_FIELD' });
        await expect(
          admin.query("INSERT INTO messages (room_id, author_id, body, seq) VALUES (?, ?, 'again', 3)", [
            a,
            user,
          ]),
        ).rejects.toMatchObject({ code: 'ER_DUP_ENTRY' });
      } finally {
        await admin.end();
      }
    } finally {
      rmSync(before, { recursive: true, force: true });
      await own.stop();
    }
  });
});

describe("the migrate entry point, run as the chart's Job runs it", () => {
  const SERVICE_ROOT = fileURLToPath(new URL('../..', import.meta.url));
  const ENTRY = fileURLToPath(new URL('./migrate.ts', import.meta.url));
  const links = mkdtempSync(join(tmpdir(), 'parley-migrate-test-'));
  afterAll(() => rmSync(links, { recursive: true, force: true }));

  async function runMigrate(entry: string, env: Record<string, string>) {
    const child = spawn(process.execPath, ['--import', 'tsx', entry], {
      cwd: SERVICE_ROOT,
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    const [code] = (await once(child, 'close')) as [number | null];
    clearTimeout(timer);
    return { code, stdout, stderr };
  }

  const migrateEnv = (): Record<string, string> => ({ ...TEST_ENV, ...stack.env(), LOG_LEVEL: 'info' });

  beforeAll(async () => {
    // Start from an empty database; the grants on parley.* outlive it.
    const admin = await mysql.createConnection({
      host: stack.mysql.primary.host,
      port: stack.mysql.primary.port,
      ...stack.mysql.admin,
    });
    try {
      await admin.query(`DROP DATABASE ${stack.mysql.database}`);
      await admin.query(`CREATE DATABASE ${stack.mysql.database}`);
    } finally {
      await admin.end();
    }
  });

  it('applies every migration and exits 0, also when started through a symlink', async () => {
    // Images and package managers often put a symlink on the path; Node runs its real path.
    const link = join(links, 'migrate.ts');
    symlinkSync(ENTRY, link);
    const run = await runMigrate(link, migrateEnv());
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain('"msg":"migrations applied"');
    const tables = (await query<{ name: string }>(tablesSql)).map((row) => row.name);
    expect(tables).toEqual(expect.arrayContaining(['__drizzle_migrations', 'messages', 'users']));
    expect(await query('SELECT id FROM __drizzle_migrations')).toHaveLength(journal.entries.length);
  });

  it('exits 0 again on a second run, applying nothing new', async () => {
    const run = await runMigrate(ENTRY, migrateEnv());
    expect(run.code, run.stderr).toBe(0);
    expect(await query('SELECT id FROM __drizzle_migrations')).toHaveLength(journal.entries.length);
  });

  it('exits 1 listing the problems when its config is bad', async () => {
    const { MYSQL_HOST: _host, ...withoutHost } = migrateEnv();
    const run = await runMigrate(ENTRY, { ...withoutHost, MYSQL_PORT: 'nope' });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('parley: invalid configuration:');
    expect(run.stderr).toContain('  - MYSQL_HOST: is required');
    expect(run.stderr).toContain('  - MYSQL_PORT: ');
    expect(run.stderr).not.toContain('    at ');
  });

  it('exits 1 and says why when the database cannot be reached', async () => {
    const run = await runMigrate(ENTRY, { ...migrateEnv(), MYSQL_HOST: '127.0.0.1', MYSQL_PORT: '1' });
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/"level":60.*"msg":"migration failed"/);
    expect(run.stdout).toContain('ECONNREFUSED');
  });
});
