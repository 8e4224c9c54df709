import { DeleteObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { PassThrough, Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { createGzip } from 'node:zlib';
import { v7 as uuidv7 } from 'uuid';
import type { BackupsConfig, Config } from '../../config.js';
import type { Logger } from '../../platform/logger.js';
import type { Database, Session } from '../../platform/mysql.js';
import { S3_CONTRACT } from '../../platform/s3-contract.js';
import { EncryptStream } from './format.js';
import { endLine, headerLine } from './ndjson.js';
import { isBinary, quoteName, readMigrationLevel, readTables, type TableInfo } from './schema.js';

/** What backups and restores need; the worker's and the CLI's dependencies have it. */
export interface BackupDeps {
  db: Pick<Database, 'openSession'>;
  s3: S3Client;
  config: { s3: Pick<Config['s3'], 'backupsBucket'>; backups: BackupsConfig };
  logger: Pick<Logger, 'info' | 'warn'>;
}

export const BACKUP_PREFIX = S3_CONTRACT.backups.prefix;
export const BACKUP_SUFFIX = '.ndjson.gz.enc';
// Parts uploaded at once. Memory holds about (queue + 1) parts: the one filling and those in flight.
const UPLOAD_QUEUE_SIZE = 2;
// Plaintext is handed to gzip in chunks of this size: each chunk is a trip to the libuv pool.
const CHUNK_BYTES = 64 * 1024;

/** `backups/2026/12/03/20261203T030000123Z-<uuidv7>.ndjson.gz.enc`: sorts by time, never collides. */
export function backupKey(at: Date, id = uuidv7()): string {
  const iso = at.toISOString(); // 2026-12-03T03:00:00.123Z
  const stamp = iso.replace(/[-:.]/g, '');
  return `${BACKUP_PREFIX}${iso.slice(0, 4)}/${iso.slice(5, 7)}/${iso.slice(8, 10)}/${stamp}-${id}${BACKUP_SUFFIX}`;
}

export interface BackupResult {
  key: string;
  /** Size of the encrypted object in S3. */
  bytes: number;
  /** Size of the NDJSON before compression. */
  plaintextBytes: number;
  rows: number;
  tables: number;
  rowsPerTable: Record<string, number>;
  /** Where the rows were read: the replica, or the primary when there is none or it is down. */
  server: 'primary' | 'replica';
  /** Older backups deleted to keep the last BACKUP_KEEP. */
  deleted: string[];
}

/** Counts the bytes that pass. */
class ByteCounter extends Transform {
  bytes = 0;
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    callback(null, chunk);
  }
}

/**
 * Every row of every application table, read inside one snapshot, as NDJSON in chunks. The rows of
 * a table come in primary-key order from a streaming query, so memory holds a few rows, not a table.
 */
async function* snapshotLines(
  session: Session,
  tables: TableInfo[],
  header: string,
  rowsPerTable: Record<string, number>,
): AsyncGenerator<Buffer> {
  let pending = header;
  for (const table of tables) {
    const binary = table.columns.map(isBinary);
    // MySQL's JSON columns arrive parsed: back to their text, which is what goes back in.
    const json = table.columns.map((column) => column.type === 'json');
    const reencode = binary.includes(true) || json.includes(true);
    const prefix = `{"t":${JSON.stringify(table.name)},"r":`;
    const columns = table.columns.map((column) => quoteName(column.name)).join(', ');
    const order =
      table.primaryKey.length > 0 ? ` ORDER BY ${table.primaryKey.map(quoteName).join(', ')}` : '';
    let count = 0;
    for await (const row of session.streamRows(`SELECT ${columns} FROM ${quoteName(table.name)}${order}`)) {
      const values = row as unknown[];
      if (reencode) {
        for (let i = 0; i < values.length; i++) {
          if (values[i] === null) continue;
          if (binary[i] && Buffer.isBuffer(values[i])) values[i] = (values[i] as Buffer).toString('base64');
          else if (json[i] && typeof values[i] !== 'string') values[i] = JSON.stringify(values[i]);
        }
      }
      pending += `${prefix}${JSON.stringify(values)}}\n`;
      count++;
      if (pending.length >= CHUNK_BYTES) {
        yield Buffer.from(pending);
        pending = '';
        // Rows already buffered resolve the loop's promises at once, and gzip's and the socket's
        // callbacks keep more coming: without a turn of the event loop here, a run of chunks would
        // go by as one long task, and timers (BullMQ's lock renewal, probes) would wait behind it.
        await yieldToLoop();
      }
    }
    rowsPerTable[table.name] = count;
  }
  yield Buffer.from(pending + endLine(rowsPerTable));
}

/**
 * Backs up every application table (see schema.ts for the two left out) from one consistent
 * snapshot of the replica: rows → NDJSON → gzip → AES-256-GCM → S3 multipart upload, streamed end
 * to end with backpressure, so memory stays bounded whatever the database's size. Then deletes the
 * backups beyond the last BACKUP_KEEP. A failure aborts the upload: no partial object remains.
 */
export async function runBackup(deps: BackupDeps): Promise<BackupResult> {
  const { config, logger } = deps;
  const passphrase = config.backups.encryptionKey;
  if (!passphrase) {
    throw new Error('BACKUP_ENCRYPTION_KEY is not set: backups are encrypted, and need a key to be written');
  }
  const startedAt = new Date();
  const key = backupKey(startedAt);
  const session = await deps.db.openSession('read');
  const { connection } = session;
  let ended = false;
  try {
    // A long upload stall must not make the server drop a connection it cannot write to.
    await connection.query('SET SESSION net_write_timeout = 600, time_zone = ?', ['+00:00']);
    await connection.query('SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ');
    await connection.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
    const tables = await readTables(connection);
    const migrations = await readMigrationLevel(connection);
    const header = headerLine({ createdAt: startedAt, server: session.server, migrations, tables });
    const rowsPerTable: Record<string, number> = {};

    const plaintext = new ByteCounter();
    const ciphertext = new ByteCounter();
    const body = new PassThrough();
    const stop = new AbortController();
    const produced = pipeline(
      Readable.from(snapshotLines(session, tables, header, rowsPerTable), { objectMode: false }),
      plaintext,
      createGzip({ level: config.backups.compressionLevel }),
      new EncryptStream(passphrase),
      ciphertext,
      body,
      { signal: stop.signal },
    );
    const upload = new Upload({
      client: deps.s3,
      params: {
        Bucket: config.s3.backupsBucket,
        Key: key,
        Body: body,
        ContentType: 'application/octet-stream',
      },
      queueSize: UPLOAD_QUEUE_SIZE,
      partSize: config.backups.partSizeBytes,
      // Upload aborts the multipart upload itself when a part or the body fails.
      leavePartsOnError: false,
    });
    // A failed upload stops reading the body: the rows would wait on backpressure for ever.
    const uploaded = upload.done().catch((error: unknown) => {
      stop.abort(error);
      throw error;
    });
    const [production, upload_] = await Promise.allSettled([produced, uploaded]);
    if (production.status === 'rejected' || upload_.status === 'rejected') {
      // The root cause: a failed read or encryption also fails the upload (its body broke), and a
      // failed upload aborts the reading (with the upload's own error).
      const cause =
        production.status === 'rejected' ? production.reason : (upload_ as PromiseRejectedResult).reason;
      throw new Error(`backup ${key} failed; its upload was aborted`, { cause });
    }
    await connection.query('COMMIT');
    await connection.end();
    ended = true;

    const rows = Object.values(rowsPerTable).reduce((sum, n) => sum + n, 0);
    // The backup is written: a failure to prune must not fail it (a retry would write another).
    const deleted = await pruneBackups(deps, key).catch((error: unknown) => {
      logger.warn({ err: error, key }, 'backup written, but deleting older backups failed');
      return [];
    });
    const result: BackupResult = {
      key,
      bytes: ciphertext.bytes,
      plaintextBytes: plaintext.bytes,
      rows,
      tables: tables.length,
      rowsPerTable,
      server: session.server,
      deleted,
    };
    logger.info({ ...result, ms: Date.now() - startedAt.getTime() }, 'backup written');
    return result;
  } finally {
    // After a failure the connection may be mid-result: destroyed, not ended politely.
    if (!ended) connection.destroy();
  }
}

export interface StoredBackup {
  key: string;
  bytes: number;
  lastModified: Date | undefined;
}

/** The backups in the bucket, newest first. */
export async function listBackups(deps: Pick<BackupDeps, 's3' | 'config'>): Promise<StoredBackup[]> {
  const found: StoredBackup[] = [];
  let token: string | undefined;
  do {
    const page = await deps.s3.send(
      new ListObjectsV2Command({
        Bucket: deps.config.s3.backupsBucket,
        Prefix: BACKUP_PREFIX,
        ContinuationToken: token,
      }),
    );
    for (const object of page.Contents ?? []) {
      if (object.Key?.endsWith(BACKUP_SUFFIX)) {
        found.push({ key: object.Key, bytes: object.Size ?? 0, lastModified: object.LastModified });
      }
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  // Keys start with the time they were taken, so their order is the backups' order.
  return found.sort((a, b) => (a.key < b.key ? 1 : a.key > b.key ? -1 : 0));
}

/** Deletes every backup but the newest BACKUP_KEEP; `justWritten` is never deleted. */
export async function pruneBackups(deps: BackupDeps, justWritten?: string): Promise<string[]> {
  const backups = await listBackups(deps);
  const doomed = backups.slice(deps.config.backups.keep).filter((backup) => backup.key !== justWritten);
  for (const backup of doomed) {
    await deps.s3.send(new DeleteObjectCommand({ Bucket: deps.config.s3.backupsBucket, Key: backup.key }));
  }
  if (doomed.length > 0) {
    deps.logger.info(
      { deleted: doomed.map((backup) => backup.key), keep: deps.config.backups.keep },
      'old backups deleted',
    );
  }
  return doomed.map((backup) => backup.key);
}
