import {
  GetObjectCommand,
  ListMultipartUploadsCommand,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import mysql, { type Connection, type RowDataPacket } from 'mysql2/promise';
import { v7 as uuidv7 } from 'uuid';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig, type Config } from '../../config.js';
import { runMigrations } from '../../db/migrate.js';
import type { Breaker } from '../../platform/breakers.js';
import { createLogger } from '../../platform/logger.js';
import { createDatabase, type Database } from '../../platform/mysql.js';
import { createS3Client } from '../../platform/s3.js';
import { startTestStack, type TestStack } from '../../test-support/stack.js';
import { InvalidJobData, queuesFrom } from '../../platform/jobs.js';
import { createQueue, QUEUES } from '../../platform/queues.js';
import { listBackups, runBackup, type BackupDeps, type BackupResult } from './backup.js';
import { BackupRejected } from './format.js';
import { BACKUP_JOB, backupsJobs } from './jobs.js';
import { restoreBackup } from './restore.js';
import { EXCLUDED_TABLES } from './schema.js';

const KEY = 'the current backup passphrase';
const OLD_KEY = 'the passphrase before rotation';
const RESTORE_DATABASE = 'parley_restore';
// Tables in an order where deleting them one by one never trips a foreign key.
const DELETE_ORDER = [
  'attachments',
  'leaderboard_scores',
  'leaderboard_flushes',
  'messages',
  'refresh_tokens',
  'room_memberships',
  'rooms',
  'users',
];

const passThroughBreaker: Breaker = { name: 'test', run: (call) => call(), state: () => 'closed' };
const breakers = { primary: passThroughBreaker, replica: passThroughBreaker };

let test: TestStack;
let source: Database;
let target: Database;
let s3: S3Client;
let targetConfig: Config;
const logger = createLogger({ logLevel: 'silent', instanceId: 'test' }, 'worker');

/** Dependencies for a backup or restore: the source database (with replica) or the empty target. */
function depsFor(
  database: 'source' | 'target',
  backups: Partial<Config['backups']> = {},
): BackupDeps & { config: Config } {
  const config = database === 'source' ? test.config : targetConfig;
  return {
    db: database === 'source' ? source : target,
    s3,
    logger,
    config: { ...config, backups: { ...config.backups, encryptionKey: KEY, ...backups } },
  };
}

async function admin(database = test.stack.mysql.database): Promise<Connection> {
  const primary = test.stack.mysql.primary;
  return mysql.createConnection({
    host: primary.host,
    port: primary.port,
    ...test.stack.mysql.admin,
    database,
    dateStrings: true,
    supportBigNumbers: true,
    bigNumberStrings: true,
    timezone: 'Z',
  });
}

async function withAdmin<T>(database: string, work: (connection: Connection) => Promise<T>): Promise<T> {
  const connection = await admin(database);
  try {
    return await work(connection);
  } finally {
    await connection.end();
  }
}

/** Every row of every backed-up table, in primary-key order, as the server's text. */
async function contents(database: string): Promise<Record<string, unknown[]>> {
  return withAdmin(database, async (connection) => {
    const [tables] = await connection.query<RowDataPacket[]>(
      `SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() ORDER BY 1`,
    );
    const result: Record<string, unknown[]> = {};
    for (const { name } of tables) {
      if (EXCLUDED_TABLES.has(name)) continue;
      const [keys] = await connection.query<RowDataPacket[]>(
        `SELECT COLUMN_NAME AS name FROM information_schema.KEY_COLUMN_USAGE
          WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION`,
        [name],
      );
      const order = keys.map((key) => `\`${key.name}\``).join(', ');
      [result[name]] = await connection.query<RowDataPacket[]>(`SELECT * FROM \`${name}\` ORDER BY ${order}`);
    }
    return result;
  });
}

async function rowCounts(database: string): Promise<Record<string, number>> {
  const all = await contents(database);
  return Object.fromEntries(Object.entries(all).map(([table, rows]) => [table, rows.length]));
}

const isEmpty = async (database: string) =>
  Object.values(await rowCounts(database)).every((count) => count === 0);

async function emptyTarget(): Promise<void> {
  await withAdmin(RESTORE_DATABASE, async (connection) => {
    for (const table of DELETE_ORDER) await connection.query(`DELETE FROM \`${table}\``);
  });
}

/** Rows in every table, with the values that a lossy encoding would change. */
async function seed(): Promise<void> {
  await withAdmin(test.stack.mysql.database, async (connection) => {
    const users = [uuidv7(), uuidv7(), uuidv7()];
    const rooms = [uuidv7(), uuidv7()];
    await connection.query('INSERT INTO users (id, username, password_hash, created_at) VALUES ?', [
      users.map((id, i) => [
        id,
        ['alice', 'zoë', 'bob'][i],
        `$argon2id$v=19$hash-${i}`,
        `2026-12-0${i + 1} 10:00:00.12${i}`,
      ]),
    ]);
    await connection.query('INSERT INTO rooms (id, name, visibility, owner_id, message_seq) VALUES ?', [
      [
        [rooms[0], 'général 💬', 'public', users[0], 150],
        [rooms[1], 'private "quoted" \\ room', 'private', users[1], 150],
      ],
    ]);
    await connection.query('INSERT INTO room_memberships (room_id, user_id, role, joined_at) VALUES ?', [
      [
        [rooms[0], users[0], 'owner', '2026-12-01 10:00:00.001'],
        [rooms[0], users[1], 'member', '2026-12-01 10:00:00.002'],
        [rooms[1], users[1], 'owner', '2026-12-01 10:00:00.003'],
        [rooms[1], users[2], 'member', '2026-12-01 10:00:00.004'],
      ],
    ]);
    const bodies = [
      'plain',
      'line one\nline two\r\n',
      'tab\tquote" backslash\\ nul\u0000 end',
      '💬 ünïcödé ✓',
      'x'.repeat(3990),
    ];
    const messages = Array.from({ length: 300 }, (_, i) => [
      rooms[i % 2],
      users[i % 3],
      Math.floor(i / 2) + 1,
      `${bodies[i % bodies.length]} #${i}`,
      i % 4 === 0 ? null : `key-${i}`,
      `2026-12-02 ${String(Math.floor(i / 60) + 10).padStart(2, '0')}:${String(i % 60).padStart(2, '0')}:00.${String(i % 1000).padStart(3, '0')}`,
    ]);
    await connection.query(
      'INSERT INTO messages (room_id, author_id, seq, body, idempotency_key, created_at) VALUES ?',
      [messages],
    );
    const [[first]] = await connection.query<RowDataPacket[]>('SELECT MIN(id) AS id FROM messages');
    await connection.query(
      `INSERT INTO attachments (id, room_id, uploader_id, message_id, object_key, filename, content_type, size_bytes,
         sha256, status, rejected_reason, completed_at) VALUES ?`,
      [
        [
          [
            uuidv7(),
            rooms[0],
            users[0],
            first!.id,
            'attachments/a/1',
            'a.png',
            'image/png',
            '9007199254740993',
            'ab'.repeat(32),
            'ready',
            null,
            '2026-12-02 10:00:01.999',
          ],
          [
            uuidv7(),
            rooms[1],
            users[1],
            null,
            'attachments/b/2',
            'b.pdf',
            'application/pdf',
            12,
            'cd'.repeat(32),
            'rejected',
            'checksum differs',
            null,
          ],
        ],
      ],
    );
    await connection.query(
      'INSERT INTO leaderboard_scores (room_id, period_key, user_id, score, updated_at) VALUES ?',
      [
        [
          [rooms[0], 'all', users[0], '9007199254740993', '2026-12-03 00:00:00.000'],
          [rooms[0], '2026-W49', users[1], -5, '2026-12-03 00:00:00.001'],
        ],
      ],
    );
    await connection.query('INSERT INTO leaderboard_flushes (batch_id) VALUES (?)', ['batch-1']);
    await connection.query(
      'INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, expires_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?)',
      [uuidv7(), users[0], uuidv7(), 'ef'.repeat(32), '2027-01-01 00:00:00.000', '2026-12-02 00:00:00.500'],
    );
    await connection.query('REPLACE INTO replication_heartbeat (id, beat_at) VALUES (1, UTC_TIMESTAMP(3))');
  });
  await test.stack.mysql.waitForReplication();
}

async function readObject(key: string): Promise<Buffer> {
  const object = await s3.send(new GetObjectCommand({ Bucket: test.config.s3.backupsBucket, Key: key }));
  return Buffer.from(await object.Body!.transformToByteArray());
}

async function putObject(key: string, body: Buffer): Promise<void> {
  await s3.send(new PutObjectCommand({ Bucket: test.config.s3.backupsBucket, Key: key, Body: body }));
}

beforeAll(async () => {
  test = await startTestStack({ redisTopology: 'single' });
  await withAdmin(test.stack.mysql.database, async (connection) => {
    const { app, migration } = test.stack.mysql;
    await connection.query(
      `CREATE DATABASE ${RESTORE_DATABASE} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`,
    );
    await connection.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON ${RESTORE_DATABASE}.* TO ?@'%'`, [
      app.user,
    ]);
    await connection.query(
      `GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, DROP, INDEX, REFERENCES, LOCK TABLES
         ON ${RESTORE_DATABASE}.* TO ?@'%'`,
      [migration.user],
    );
  });
  targetConfig = loadConfig(
    { ...test.env, MYSQL_DATABASE: RESTORE_DATABASE, MYSQL_REPLICA_HOST: '' },
    'worker',
  );
  await runMigrations(targetConfig.mysql, logger);
  source = createDatabase(test.config.mysql, breakers);
  target = createDatabase(targetConfig.mysql, breakers);
  s3 = createS3Client(test.config.s3);
  await seed();
}, 120_000);

afterAll(async () => {
  s3?.destroy();
  await Promise.allSettled([source?.close(), target?.close()]);
  await test?.stack.stop();
});

describe('encrypted backups', () => {
  let backup: Awaited<ReturnType<typeof runBackup>>;

  beforeAll(async () => {
    backup = await runBackup(depsFor('source'));
  });
  beforeEach(emptyTarget);

  it('backs up every application table from the replica into an encrypted object under backups/<yyyy>/<mm>/<dd>/', async () => {
    expect(backup.server).toBe('replica');
    expect(backup.key).toMatch(/^backups\/\d{4}\/\d{2}\/\d{2}\/\d{8}T\d{9}Z-[0-9a-f-]{36}\.ndjson\.gz\.enc$/);
    expect(backup.rowsPerTable).toEqual(await rowCounts(test.stack.mysql.database));
    expect(backup.rowsPerTable.messages).toBe(300);
    expect(Object.keys(backup.rowsPerTable)).not.toContain('replication_heartbeat');
    expect(backup.tables).toBe(8);
    const stored = await readObject(backup.key);
    expect(stored.length).toBe(backup.bytes);
    expect(stored.subarray(0, 8).toString()).toBe('PARLEYBK');
    // Encrypted: no row's text shows through.
    expect(stored.includes(Buffer.from('alice'))).toBe(false);
  });

  it('restores into an empty database with every row identical', async () => {
    const restored = await restoreBackup(depsFor('target'), backup.key);
    expect(restored).toMatchObject({ rows: backup.rows, tables: 8, keyUsed: 'BACKUP_ENCRYPTION_KEY' });
    expect(await contents(RESTORE_DATABASE)).toEqual(await contents(test.stack.mysql.database));
    // The restored database goes on where the original left off: new message ids follow the old.
    await withAdmin(RESTORE_DATABASE, async (connection) => {
      const [[room]] = await connection.query<RowDataPacket[]>('SELECT id, owner_id FROM rooms LIMIT 1');
      const [inserted] = await connection.query<mysql.ResultSetHeader>(
        'INSERT INTO messages (room_id, author_id, seq, body) VALUES (?, ?, 1000, ?)',
        [room!.id, room!.owner_id, 'after restore'],
      );
      const [[max]] = await connection.query<RowDataPacket[]>(
        'SELECT MAX(id) AS id FROM messages WHERE id < ?',
        [inserted.insertId],
      );
      expect(inserted.insertId).toBeGreaterThan(Number(max!.id));
    });
  });

  it('reads one snapshot of the replica, not the primary', async () => {
    await withAdmin(test.stack.mysql.database, async (connection) => {
      const replica = test.stack.mysql.replica!;
      const replicaAdmin = await mysql.createConnection({
        host: replica.host,
        port: replica.port,
        ...test.stack.mysql.admin,
      });
      try {
        await replicaAdmin.query('STOP SLAVE');
        await connection.query('INSERT INTO users (id, username, password_hash) VALUES (?, ?, ?)', [
          uuidv7(),
          'late',
          'h',
        ]);
        const behind = await runBackup(depsFor('source'));
        expect(behind.rowsPerTable.users).toBe(backup.rowsPerTable.users);
      } finally {
        await connection.query("DELETE FROM users WHERE username = 'late'");
        await replicaAdmin.query('START SLAVE');
        await replicaAdmin.end();
      }
    });
    await test.stack.mysql.waitForReplication();
  });

  it.each([
    ['a byte in the middle of the ciphertext', (length: number) => Math.floor(length / 2)],
    // Everything before the tag decrypts, decompresses and parses: only the tag tells.
    ['a byte of the GCM tag at the end', (length: number) => length - 5],
    ['a byte of the header', () => 20],
  ])('refuses a file with %s before writing any row', async (_where, offset) => {
    const tampered = Buffer.from(await readObject(backup.key));
    tampered[offset(tampered.length)]! ^= 0x40;
    const key = backup.key.replace('.ndjson', '-tampered.ndjson');
    await putObject(key, tampered);
    const restoring = restoreBackup(depsFor('target'), key);
    await expect(restoring).rejects.toBeInstanceOf(BackupRejected);
    await expect(restoring).rejects.toThrow(/integrity check|header was altered|opens this backup/);
    expect(await isEmpty(RESTORE_DATABASE)).toBe(true);
  });

  it('refuses a wrong key with a clear message before writing any row', async () => {
    const restoring = restoreBackup(
      depsFor('target', { encryptionKey: 'not the key it was written with' }),
      backup.key,
    );
    await expect(restoring).rejects.toThrow(
      'none of the 1 configured backup keys (BACKUP_ENCRYPTION_KEY, BACKUP_PREVIOUS_KEYS) opens this backup',
    );
    expect(await isEmpty(RESTORE_DATABASE)).toBe(true);
  });

  it('restores a backup written before a key rotation with the previous key', async () => {
    const before = await runBackup(depsFor('source', { encryptionKey: OLD_KEY }));
    const rotated = depsFor('target', {
      encryptionKey: 'the new passphrase after rotation',
      previousKeys: [OLD_KEY],
    });
    const restored = await restoreBackup(rotated, before.key);
    expect(restored.keyUsed).toBe('BACKUP_PREVIOUS_KEYS #1');
    expect(await contents(RESTORE_DATABASE)).toEqual(await contents(test.stack.mysql.database));
  });

  it('refuses to restore into a database that has rows, and leaves them as they are', async () => {
    await restoreBackup(depsFor('target'), backup.key);
    const before = await contents(RESTORE_DATABASE);
    await expect(restoreBackup(depsFor('target'), backup.key)).rejects.toThrow(
      /restores only into an empty database, and these tables have rows: .*users/,
    );
    expect(await contents(RESTORE_DATABASE)).toEqual(before);
  });

  it('refuses a database at another migration level', async () => {
    await withAdmin(RESTORE_DATABASE, async (connection) => {
      const [[last]] = await connection.query<RowDataPacket[]>(
        'SELECT * FROM __drizzle_migrations ORDER BY created_at DESC, id DESC LIMIT 1',
      );
      await connection.query('DELETE FROM __drizzle_migrations WHERE id = ?', [last!.id]);
      try {
        await expect(restoreBackup(depsFor('target'), backup.key)).rejects.toThrow(
          /the target database is at \d+ migrations .* and the backup at \d+ migrations/,
        );
      } finally {
        await connection.query('INSERT INTO __drizzle_migrations SET ?', [last]);
      }
    });
    expect(await isEmpty(RESTORE_DATABASE)).toBe(true);
  });

  it('names a key that holds no backup', async () => {
    await expect(restoreBackup(depsFor('target'), 'backups/2020/01/01/none.ndjson.gz.enc')).rejects.toThrow(
      /there is no backup backups\/2020\/01\/01\/none/,
    );
  });
});

describe('keeping the last BACKUP_KEEP backups', () => {
  it('deletes the older backups after each new one, and only backups', async () => {
    const unrelated = 'backups/README.txt';
    await putObject(unrelated, Buffer.from('not a backup'));
    const deps = depsFor('source', { keep: 2 });
    const written = [];
    for (let i = 0; i < 3; i++) written.push(await runBackup(deps));
    const kept = (await listBackups(deps)).map((stored) => stored.key);
    expect(kept).toEqual([written[2]!.key, written[1]!.key]);
    expect(written[2]!.deleted).toContain(written[0]!.key);
    await expect(readObject(written[0]!.key)).rejects.toMatchObject({ name: 'NoSuchKey' });
    expect((await readObject(unrelated)).toString()).toBe('not a backup');
  });
});

describe('a backup that fails half-way', () => {
  it('aborts its multipart upload and leaves no object behind', async () => {
    const sent: string[] = [];
    const recording = createS3Client(test.config.s3);
    recording.middlewareStack.add(
      (next, context) => (args) => {
        sent.push(context.commandName ?? '?');
        return next(args);
      },
      { step: 'initialize', name: 'recordCommands' },
    );
    // Rows of messages stream until well past the first 5 MiB part, then the read fails.
    const failing: Pick<Database, 'openSession'> = {
      openSession: async (target) => {
        const session = await source.openSession(target);
        return {
          ...session,
          streamRows: (sql, highWaterMark) => {
            if (!sql.includes('FROM `messages`')) return session.streamRows(sql, highWaterMark);
            let produced = 0;
            return new Readable({
              objectMode: true,
              read() {
                if (produced++ < 3_000) {
                  this.push([
                    produced,
                    'r',
                    'u',
                    produced,
                    randomBytes(3_000).toString('base64'),
                    null,
                    '2026-12-03 00:00:00.000',
                  ]);
                } else this.destroy(new Error('connection lost mid-table'));
              },
            });
          },
        };
      },
    };
    const deps = { ...depsFor('source', { partSizeBytes: 5 * 1024 * 1024 }), db: failing, s3: recording };
    const before = (await listBackups(deps)).map((stored) => stored.key);
    await expect(runBackup(deps)).rejects.toMatchObject({
      message: expect.stringMatching(/failed; its upload was aborted/),
      cause: expect.objectContaining({ message: 'connection lost mid-table' }),
    });
    expect(sent).toContain('UploadPartCommand');
    expect(sent).toContain('AbortMultipartUploadCommand');
    expect(sent).not.toContain('CompleteMultipartUploadCommand');
    expect((await listBackups(deps)).map((stored) => stored.key)).toEqual(before);
    // MinIO, like S3, keeps an upload's parts until it is completed or aborted: none is left open.
    const open = await recording.send(
      new ListMultipartUploadsCommand({ Bucket: deps.config.s3.backupsBucket, Prefix: 'backups/' }),
    );
    expect(open.Uploads ?? []).toEqual([]);
    recording.destroy();
  });
});

describe('the backup job', () => {
  it('collapses a second add while one waits, and backs up when the worker runs it', async () => {
    const jobs = queuesFrom((name) => createQueue(test.config, name));
    try {
      const first = await jobs.add(BACKUP_JOB, { reason: 'manual' as const });
      const second = await jobs.add(BACKUP_JOB, { reason: 'scheduled' as const });
      expect(second.id).toBe(first.id);
      expect(await jobs.queue(QUEUES.backups).getWaitingCount()).toBe(1);
      await expect(jobs.add(BACKUP_JOB, { reason: 'weekly' } as never)).rejects.toBeInstanceOf(
        InvalidJobData,
      );

      const { handlers } = backupsJobs(depsFor('source'));
      expect(handlers.map((handler) => handler.kind)).toEqual([BACKUP_JOB]);
      const result = (await handlers[0]!.run({ reason: 'manual' }, first)) as BackupResult;
      expect((await listBackups(depsFor('source'))).map((stored) => stored.key)).toContain(result.key);
    } finally {
      await jobs.queue(QUEUES.backups).obliterate({ force: true });
      await jobs.close();
    }
  });

  it('is scheduled by BACKUP_SCHEDULE when backups are enabled, and not otherwise', () => {
    expect(backupsJobs(depsFor('source', { enabled: true, schedule: '15 4 * * *' })).schedules).toEqual([
      { kind: BACKUP_JOB, pattern: '15 4 * * *', data: { reason: 'scheduled' } },
    ]);
    expect(backupsJobs(depsFor('source', { enabled: false })).schedules).toEqual([]);
  });
});
