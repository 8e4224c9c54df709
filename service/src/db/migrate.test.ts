import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevstack, type Devstack } from '../../devstack/index.js';
import { loadConfig, type Config } from '../config.js';
import { createLogger } from '../platform/logger.js';
import { TEST_ENV } from '../test-support/stack.js';
import { MIGRATIONS_FOLDER, runMigrations } from './migrate.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

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
      'messages',
      'points',
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
