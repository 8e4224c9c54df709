import { readFileSync } from 'node:fs';
import { drizzle, type MySql2Database } from 'drizzle-orm/mysql2';
import { sql } from 'drizzle-orm';
import type { Readable } from 'node:stream';
import type { Connection as CoreConnection } from 'mysql2';
import mysql, { type Connection, type Pool, type PoolOptions, type ResultSetHeader } from 'mysql2/promise';
import type { Config, MysqlEndpoint } from '../config.js';
import * as schema from '../db/schema.js';
import { DependencyUnavailable, type Breaker } from './breakers.js';

export type Db = MySql2Database<typeof schema>;

// Errors that say the server is unreachable or unusable, as opposed to a bad query or a duplicate key.
const CONNECTION_ERROR_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENOTFOUND',
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'ER_CON_COUNT_ERROR',
  'ER_SERVER_SHUTDOWN',
  'ER_OPTION_PREVENTS_STATEMENT', // a write reached a read-only server (a demoted primary)
]);

/** The MySQL error code of `error` or of what it wraps (drizzle wraps driver errors in `cause`). */
export function mysqlErrorCode(error: unknown): string | undefined {
  for (
    let current = error, depth = 0;
    current instanceof Error && depth < 5;
    current = current.cause, depth++
  ) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('ER_')) return code;
  }
  return undefined;
}

/** A unique key said no: the row exists (a retried insert, a taken username). */
export const isDuplicateKey = (error: unknown) => mysqlErrorCode(error) === 'ER_DUP_ENTRY';

/** A foreign key said no: the referenced row (a user, a room) does not exist. */
export const isMissingReference = (error: unknown) => mysqlErrorCode(error) === 'ER_NO_REFERENCED_ROW_2';

/** True for errors that mean "the server is not usable"; drizzle wraps driver errors, so follow `cause`. */
export function isConnectionError(error: unknown): boolean {
  for (
    let current = error, depth = 0;
    current instanceof Error && depth < 5;
    current = current.cause, depth++
  ) {
    const code = (current as { code?: string }).code;
    if ((code !== undefined && CONNECTION_ERROR_CODES.has(code)) || current instanceof DependencyUnavailable)
      return true;
  }
  return false;
}

/** mysql2's ssl option: verify the server always; against the given CA bundle when there is one. */
export function tlsOptions(config: Config['mysql']): PoolOptions['ssl'] {
  if (!config.tls) return undefined;
  return {
    rejectUnauthorized: true,
    ...(config.tls.caFile ? { ca: readFileSync(config.tls.caFile, 'utf8') } : {}),
  };
}

function createPool(
  config: Config['mysql'],
  endpoint: MysqlEndpoint,
  extra: Pick<PoolOptions, 'multipleStatements'> = {},
): Pool {
  const options: PoolOptions = {
    ...extra,
    host: endpoint.host,
    port: endpoint.port,
    user: config.user,
    password: config.password,
    database: config.database,
    connectionLimit: config.poolSize,
    maxIdle: config.poolSize,
    idleTimeout: 60_000,
    waitForConnections: true,
    // Bounded: when the database is slow, callers fail instead of queueing without end.
    queueLimit: config.poolSize * 50,
    connectTimeout: 2_000,
    enableKeepAlive: true,
    timezone: 'Z',
    charset: 'utf8mb4_unicode_ci',
    supportBigNumbers: true,
    bigNumberStrings: false,
    ssl: tlsOptions(config),
    // mysql2 captures a stack trace on every query so that a failure can show its caller, a visible
    // share of a message post's CPU (`bench/profile-room-read.ts post 1000`). The driver's errors
    // now show only its own frames; drizzle's DrizzleQueryError around them still has the
    // caller's async stack, and what the logs need of a failure is its code, its message and the
    // request id and route that the log line carries.
    trace: false,
  };
  return mysql.createPool(options);
}

export interface PoolStats {
  total: number;
  idle: number;
  waiting: number;
}

function poolStats(pool: Pool): PoolStats {
  // mysql2 exposes no public stats API; these queues have been stable across its v2 and v3.
  const inner = (pool as unknown as { pool: Record<string, { length: number } | undefined> }).pool;
  return {
    total: inner._allConnections?.length ?? 0,
    idle: inner._freeConnections?.length ?? 0,
    waiting: inner._connectionQueue?.length ?? 0,
  };
}

/** One connection of its own; see Database.openSession. */
export interface Session {
  connection: Connection;
  server: 'primary' | 'replica';
  /**
   * Runs a query whose rows arrive as a stream (objects in mode, each row an array of column
   * values), read from the socket only as fast as the consumer takes them: memory stays bounded
   * whatever the result's size.
   */
  streamRows(sql: string, highWaterMark?: number): Readable;
}

export interface Database {
  /** Writes, and reads that must see the latest write. Goes through the primary's breaker. */
  write<T>(query: (db: Db) => Promise<T>): Promise<T>;
  /** Reads from the replica; falls back to the primary when the replica is down or its circuit open. */
  read<T>(query: (db: Db) => Promise<T>): Promise<T>;
  /**
   * Reads that should see the latest write (a cache load, a user's own room just after a post):
   * from the primary, or from the replica while the primary is unavailable, since an answer a
   * moment stale beats a 503 for a read the replica can serve.
   */
  readLatest<T>(query: (db: Db) => Promise<T>): Promise<T>;
  /**
   * Reads from the replica and never from the primary, for questions about the replica itself (its
   * lag), where a fallback answer would be wrong. Throws when none is configured or it is down.
   */
  readReplica<T>(query: (db: Db) => Promise<T>): Promise<T>;
  /**
   * Runs `statements` on the primary as one transaction sent in one round trip (START TRANSACTION …
   * COMMIT together), so that the locks it takes are held only while the server runs it, not across
   * round trips. Any failure rolls it back. Resolves with each statement's result. The statements
   * are fixed SQL with `?` placeholders, filled in by the driver.
   */
  writeScript(statements: { sql: string; values?: unknown[] }[]): Promise<ResultSetHeader[]>;
  /**
   * A connection of its own, outside the pools and their breakers, for one long session (a backup
   * streaming every table, a restore): `read` opens it on the replica, or on the primary when there
   * is none or it does not answer; `write` on the primary. Values come back as the server's text
   * (DATETIME, BIGINT and DECIMAL as strings), so that what is read can be written back unchanged.
   * The caller ends it.
   */
  openSession(target: 'read' | 'write'): Promise<Session>;
  ping(target: 'primary' | 'replica', timeoutMs: number): Promise<void>;
  stats(): { primary: PoolStats; replica: PoolStats | undefined };
  hasReplica: boolean;
  close(): Promise<void>;
}

export function createDatabase(
  config: Config['mysql'],
  breakers: { primary: Breaker; replica: Breaker },
  onReplicaFallback: (error: unknown) => void = () => undefined,
): Database {
  const primaryPool = createPool(config, config.primary);
  // Only writeScript's fixed statements run here: the rest of the app never sends several in one.
  const scriptPool = createPool(config, config.primary, { multipleStatements: true });
  const replicaPool = config.replica ? createPool(config, config.replica) : undefined;
  const primary = drizzle({ client: primaryPool, schema, mode: 'default' });
  const replica = replicaPool ? drizzle({ client: replicaPool, schema, mode: 'default' }) : undefined;

  const write = <T>(query: (db: Db) => Promise<T>) => breakers.primary.run(() => query(primary));

  return {
    hasReplica: replica !== undefined,
    write,
    read: async (query) => {
      if (!replica) return write(query);
      try {
        return await breakers.replica.run(() => query(replica));
      } catch (error) {
        if (!isConnectionError(error)) throw error;
        onReplicaFallback(error);
        return write(query);
      }
    },
    readLatest: async (query) => {
      try {
        return await write(query);
      } catch (error) {
        if (!replica || !isConnectionError(error)) throw error;
        // Should the replica fail too, the primary's outage is the one to report.
        return breakers.replica.run(() => query(replica)).catch(() => Promise.reject(error));
      }
    },
    writeScript: (statements) =>
      breakers.primary.run(async () => {
        const format = (sql: string, values: unknown[] = []) =>
          mysql.format(sql, values as Parameters<typeof mysql.format>[1]);
        const text = statements.map(({ sql, values }) => format(sql, values)).join(';\n');
        const connection = await scriptPool.getConnection();
        try {
          const [results] = await connection.query<ResultSetHeader[]>(text);
          connection.release();
          return results;
        } catch (error) {
          // A statement failed and those after it (COMMIT) did not run: the transaction is still
          // open on this connection, and must not be handed to the next caller so.
          await connection.query('ROLLBACK').then(
            () => connection.release(),
            () => connection.destroy(),
          );
          throw withoutStatement(error);
        }
      }),
    readReplica: async (query) => {
      if (!replica) throw new Error('no replica configured');
      return breakers.replica.run(() => query(replica));
    },
    openSession: async (target) => {
      const open = (endpoint: MysqlEndpoint) =>
        mysql.createConnection({
          host: endpoint.host,
          port: endpoint.port,
          user: config.user,
          password: config.password,
          database: config.database,
          connectTimeout: 5_000,
          enableKeepAlive: true,
          timezone: 'Z',
          charset: 'utf8mb4_unicode_ci',
          dateStrings: true,
          supportBigNumbers: true,
          bigNumberStrings: true,
          ssl: tlsOptions(config),
          trace: false,
        });
      const session = (connection: Connection, server: Session['server']): Session => ({
        connection,
        server,
        // The promise wrapper has no streaming query; the callback connection inside it does.
        streamRows: (sql, highWaterMark = 256) =>
          (connection as unknown as { connection: CoreConnection }).connection
            .query({ sql, rowsAsArray: true })
            .stream({ highWaterMark }),
      });
      if (target === 'read' && config.replica) {
        try {
          return session(await open(config.replica), 'replica');
        } catch (error) {
          if (!isConnectionError(error)) throw error;
          onReplicaFallback(error);
        }
      }
      return session(await open(config.primary), 'primary');
    },
    ping: async (target, timeoutMs) => {
      const pool = target === 'primary' ? primaryPool : replicaPool;
      if (!pool) throw new Error('no replica configured');
      const connection = await pool.getConnection();
      try {
        await connection.query({ sql: 'SELECT 1', timeout: timeoutMs });
      } finally {
        connection.release();
      }
    },
    stats: () => ({
      primary: poolStats(primaryPool),
      replica: replicaPool ? poolStats(replicaPool) : undefined,
    }),
    close: async () => {
      await Promise.allSettled([primaryPool.end(), scriptPool.end(), replicaPool?.end()]);
    },
  };
}

/**
 * A driver error without the statement it failed on: mysql2 attaches the SQL with every value
 * filled in, and a log line must not carry message bodies. Code, number and message stay.
 */
function withoutStatement(error: unknown): unknown {
  if (!(error instanceof Error) || !('sql' in error)) return error;
  const { code, errno, sqlState, sqlMessage } = error as Error & Record<string, unknown>;
  return Object.assign(new Error(error.message), { name: error.name, code, errno, sqlState, sqlMessage });
}

/** A short-lived connection with the migration user's privileges (DDL), for the migrate entry point. */
export function createMigrationConnection(config: Config['mysql']) {
  return mysql.createConnection({
    host: config.primary.host,
    port: config.primary.port,
    user: config.migration.user,
    password: config.migration.password,
    database: config.database,
    connectTimeout: 5_000,
    timezone: 'Z',
    multipleStatements: false,
    ssl: tlsOptions(config),
  });
}

export { sql };
