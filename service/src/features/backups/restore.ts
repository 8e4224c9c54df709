import { GetObjectCommand } from '@aws-sdk/client-s3';
import { createHash, type Hash } from 'node:crypto';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import type { BackupDeps } from './backup.js';
import { BackupRejected, DecryptStream } from './format.js';
import { readEntries, splitLines, type BackupHeader } from './ndjson.js';
import { assertSameSchema, isBinary, quoteName, readMigrationLevel, readTables } from './schema.js';

// The object is read twice; the second read must be the bytes the first one verified. Each block's
// SHA-256 from the first read is checked before the block goes on in the second, so nothing that
// was not verified reaches the database, even if the object were replaced between the two reads.
const BLOCK_BYTES = 1024 * 1024;
// A batch is one multi-row INSERT; a transaction holds several, committed together.
const BATCH_ROWS = 1_000;
const BATCH_BYTES = 1024 * 1024;
const BATCHES_PER_TRANSACTION = 10;

/** Hashes the stream in consecutive blocks of BLOCK_BYTES (the last one shorter). */
class BlockHasher extends Transform {
  readonly digests: Buffer[] = [];
  private hash: Hash = createHash('sha256');
  private filled = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    for (let offset = 0; offset < chunk.length;) {
      const take = Math.min(BLOCK_BYTES - this.filled, chunk.length - offset);
      this.hash.update(chunk.subarray(offset, offset + take));
      this.filled += take;
      offset += take;
      if (this.filled === BLOCK_BYTES) this.nextBlock();
    }
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (this.filled > 0) this.nextBlock();
    callback();
  }

  private nextBlock(): void {
    this.digests.push(this.hash.digest());
    this.hash = createHash('sha256');
    this.filled = 0;
  }
}

/** Lets a block through only once its hash equals the one the first read recorded. */
class BlockVerifier extends Transform {
  private pending: Buffer[] = [];
  private filled = 0;
  private block = 0;

  constructor(private readonly digests: readonly Buffer[]) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      for (let offset = 0; offset < chunk.length;) {
        const take = Math.min(BLOCK_BYTES - this.filled, chunk.length - offset);
        this.pending.push(chunk.subarray(offset, offset + take));
        this.filled += take;
        offset += take;
        if (this.filled === BLOCK_BYTES) this.release();
      }
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    try {
      if (this.filled > 0) this.release();
      if (this.block !== this.digests.length) throw this.changed();
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }

  private release(): void {
    const block = Buffer.concat(this.pending);
    const expected = this.digests[this.block++];
    if (!expected || !createHash('sha256').update(block).digest().equals(expected)) throw this.changed();
    this.pending = [];
    this.filled = 0;
    this.push(block);
  }

  private changed(): Error {
    return new Error('the backup object changed between the verifying read and the restoring read');
  }
}

async function openObject(deps: BackupDeps, key: string): Promise<Readable> {
  try {
    const object = await deps.s3.send(
      new GetObjectCommand({ Bucket: deps.config.s3.backupsBucket, Key: key }),
    );
    return object.Body as Readable;
  } catch (error) {
    if ((error as { name?: string }).name === 'NoSuchKey') {
      throw new BackupRejected(`there is no backup ${key} in ${deps.config.s3.backupsBucket}`, {
        cause: error,
      });
    }
    throw error;
  }
}

/** The configured keys, the current one first, each with the name an operator knows it by. */
function configuredKeys(deps: BackupDeps): { passphrase: string; name: string }[] {
  const { encryptionKey, previousKeys } = deps.config.backups;
  const keys = [
    ...(encryptionKey ? [{ passphrase: encryptionKey, name: 'BACKUP_ENCRYPTION_KEY' }] : []),
    ...previousKeys.map((passphrase, i) => ({ passphrase, name: `BACKUP_PREVIOUS_KEYS #${i + 1}` })),
  ];
  if (keys.length === 0) {
    throw new BackupRejected(
      'no backup key is configured: set BACKUP_ENCRYPTION_KEY (and BACKUP_PREVIOUS_KEYS)',
    );
  }
  return keys;
}

interface Verified {
  header: BackupHeader;
  rows: Record<string, number>;
  digests: Buffer[];
  keyUsed: number;
}

/** The first read: decrypts, checks the tag, decompresses and parses everything; writes nothing. */
async function verifyBackup(deps: BackupDeps, key: string, keys: string[]): Promise<Verified> {
  const hasher = new BlockHasher();
  let header: BackupHeader | undefined;
  let rows: Record<string, number> | undefined;
  let keyUsed = -1;
  try {
    await pipeline(
      await openObject(deps, key),
      hasher,
      new DecryptStream({ passphrases: keys, onKey: (index) => (keyUsed = index) }),
      createGunzip(),
      async (plaintext: AsyncIterable<Buffer>) => {
        for await (const entry of readEntries(splitLines(plaintext))) {
          if (entry.kind === 'header') header = entry.header;
          else if (entry.kind === 'end') rows = entry.rows;
        }
      },
    );
  } catch (error) {
    if (error instanceof BackupRejected) throw error;
    // zlib's complaint about bytes that decrypt to garbage: the tag, checked last, would say the same.
    if ((error as { code?: string }).code?.startsWith('Z_')) {
      throw new BackupRejected(
        'the backup failed its integrity check: its content does not decrypt to what was written (altered or damaged)',
        { cause: error },
      );
    }
    throw error;
  }
  return { header: header!, rows: rows!, digests: hasher.digests, keyUsed };
}

async function assertEmpty(connection: Connection, tables: string[]): Promise<void> {
  const holding: string[] = [];
  for (const table of tables) {
    const [rows] = await connection.query<RowDataPacket[]>(`SELECT 1 FROM ${quoteName(table)} LIMIT 1`);
    if (rows.length > 0) holding.push(table);
  }
  if (holding.length > 0) {
    throw new BackupRejected(
      `a backup restores only into an empty database, and these tables have rows: ${holding.join(', ')}`,
    );
  }
}

/** Values as the driver should send them: base64 back to bytes; the rest is the server's text. */
function decoder(header: BackupHeader, table: number): (values: unknown[]) => unknown[] {
  const binary = header.tables[table]!.columns.map(isBinary);
  if (!binary.includes(true)) return (values) => values;
  return (values) =>
    values.map((value, i) => (binary[i] && value !== null ? Buffer.from(String(value), 'base64') : value));
}

/** The second read: the verified bytes again, their rows inserted in batches inside transactions. */
async function writeRows(
  deps: BackupDeps,
  key: string,
  verified: Verified,
  connection: Connection,
  keys: string[],
) {
  const { header } = verified;
  let batch: unknown[][] = [];
  let batchBytes = 0;
  let batchTable = -1;
  let batchesInTransaction = 0;
  let written = 0;
  const flush = async () => {
    if (batch.length === 0) return;
    const table = header.tables[batchTable]!;
    if (batchesInTransaction === 0) await connection.query('START TRANSACTION');
    await connection.query(
      `INSERT INTO ${quoteName(table.name)} (${table.columns.map((c) => quoteName(c.name)).join(', ')}) VALUES ?`,
      [batch],
    );
    written += batch.length;
    batch = [];
    batchBytes = 0;
    if (++batchesInTransaction >= BATCHES_PER_TRANSACTION) await commit();
  };
  const commit = async () => {
    if (batchesInTransaction === 0) return;
    await connection.query('COMMIT');
    batchesInTransaction = 0;
  };
  const decoders = header.tables.map((_, index) => decoder(header, index));
  await pipeline(
    await openObject(deps, key),
    new BlockVerifier(verified.digests),
    new DecryptStream({ passphrases: [keys[verified.keyUsed]!] }),
    createGunzip(),
    async (plaintext: AsyncIterable<Buffer>) => {
      for await (const entry of readEntries(splitLines(plaintext))) {
        if (entry.kind !== 'row') continue;
        if (entry.table !== batchTable) {
          await flush();
          await commit();
          batchTable = entry.table;
        }
        const values = decoders[entry.table]!(entry.values);
        batch.push(values);
        batchBytes +=
          16 * values.length + values.reduce<number>((n, v) => n + (typeof v === 'string' ? v.length : 8), 0);
        if (batch.length >= BATCH_ROWS || batchBytes >= BATCH_BYTES) await flush();
      }
      await flush();
      await commit();
    },
  );
  return written;
}

export interface RestoreResult {
  key: string;
  rows: number;
  tables: number;
  rowsPerTable: Record<string, number>;
  /** Which key opened it: `BACKUP_ENCRYPTION_KEY` or `BACKUP_PREVIOUS_KEYS #<n>` (from 1). */
  keyUsed: string;
}

/**
 * Restores a backup into the configured database, which must be migrated to the backup's level
 * and hold no application rows. The whole object is read and verified first (key, GCM tag,
 * structure), writing nothing; only then is it read again and its rows written, on the primary with
 * the app user's privileges (foreign keys stay checked: the file's table order satisfies them).
 * If that second part fails, the rows written are deleted again, so that a retry finds the
 * database empty.
 */
export async function restoreBackup(deps: BackupDeps, key: string): Promise<RestoreResult> {
  const candidates = configuredKeys(deps);
  const keys = candidates.map((candidate) => candidate.passphrase);
  const startedAt = Date.now();
  const verified = await verifyBackup(deps, key, keys);
  const keyUsed = candidates[verified.keyUsed]!.name;
  deps.logger.info({ key, keyUsed, ms: Date.now() - startedAt }, 'backup verified; restoring');

  const { connection } = await deps.db.openSession('write');
  try {
    await connection.query('SET SESSION time_zone = ?', ['+00:00']);
    const target = { tables: await readTables(connection), migrations: await readMigrationLevel(connection) };
    assertSameSchema(verified.header, target);
    const names = verified.header.tables.map((table) => table.name);
    await assertEmpty(connection, names);
    let rows: number;
    try {
      rows = await writeRows(deps, key, verified, connection, keys);
    } catch (error) {
      const undone = await removeRestoredRows(deps, names).then(
        () => 'the rows it had written were deleted again',
        (cleanup: unknown) =>
          `deleting the rows it had written failed too (${String(cleanup)}): empty the tables before a retry`,
      );
      throw new Error(`restore of ${key} failed; ${undone}`, { cause: error });
    }
    const result: RestoreResult = {
      key,
      rows,
      tables: names.length,
      rowsPerTable: verified.rows,
      keyUsed,
    };
    deps.logger.info({ ...result, ms: Date.now() - startedAt }, 'backup restored');
    await connection.end();
    return result;
  } catch (error) {
    connection.destroy();
    throw error;
  }
}

/** On its own connection: the restore's may be the thing that broke. */
async function removeRestoredRows(deps: BackupDeps, tables: string[]): Promise<void> {
  const { connection } = await deps.db.openSession('write');
  try {
    for (const table of [...tables].reverse()) await connection.query(`DELETE FROM ${quoteName(table)}`);
  } finally {
    connection.destroy();
  }
}
