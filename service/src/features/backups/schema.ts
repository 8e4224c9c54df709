import type { Connection, RowDataPacket } from 'mysql2/promise';
import { BackupRejected } from './format.js';

/**
 * Tables a backup leaves out, and why:
 * - `__drizzle_migrations` records the schema, not data: the database a backup is restored into is
 *   migrated by the release that restores it, and must be at the backup's migration level (kept in
 *   the file's header and compared before anything is written).
 * - `replication_heartbeat` is the worker's stamp of the primary's clock for the replica-lag
 *   metric; an old stamp restored would only be overwritten within a second.
 * Every other table of the schema is backed up, including the ones a future migration adds.
 */
export const EXCLUDED_TABLES: ReadonlySet<string> = new Set([
  '__drizzle_migrations',
  'replication_heartbeat',
]);
export const MIGRATIONS_TABLE = '__drizzle_migrations';

/** Types that survive the round trip as JSON text; anything else fails the backup loudly. */
const TEXT_TYPES = new Set([
  'char',
  'varchar',
  'tinytext',
  'text',
  'mediumtext',
  'longtext',
  'enum',
  'set',
  'json',
  // Integers, exact decimals and temporal values come back as the server's text (see
  // Database.openSession) and go back in as that text: no float or time zone on the way.
  'tinyint',
  'smallint',
  'mediumint',
  'int',
  'bigint',
  'decimal',
  'date',
  'datetime',
  'timestamp',
  'time',
  'year',
  // Doubles print as the shortest text that parses back to the same double.
  'float',
  'double',
]);
/** Binary columns: the driver returns a Buffer; the file holds base64. */
const BINARY_TYPES = new Set(['binary', 'varbinary', 'tinyblob', 'blob', 'mediumblob', 'longblob', 'bit']);

export interface ColumnInfo {
  name: string;
  type: string;
}

export interface TableInfo {
  name: string;
  columns: ColumnInfo[];
  primaryKey: string[];
}

export interface MigrationLevel {
  /** Migrations applied. */
  applied: number;
  /** The hash of the last one applied (drizzle's record of its SQL), or null when none is. */
  last: string | null;
}

export const isBinary = (column: ColumnInfo) => BINARY_TYPES.has(column.type);
export const quoteName = (name: string) => `\`${name.replace(/`/g, '``')}\``;

/**
 * The application's tables on this connection's database, in an order where every table comes
 * after the tables its foreign keys reference, so that rows can be inserted in file order with the
 * foreign keys checked.
 */
export async function readTables(connection: Connection): Promise<TableInfo[]> {
  const [columns] = await connection.query<RowDataPacket[]>(
    `SELECT c.TABLE_NAME AS tableName, c.COLUMN_NAME AS columnName, c.DATA_TYPE AS dataType,
            c.EXTRA AS extra, c.COLUMN_KEY AS columnKey
       FROM information_schema.COLUMNS c
       JOIN information_schema.TABLES t
         ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME AND t.TABLE_TYPE = 'BASE TABLE'
      WHERE c.TABLE_SCHEMA = DATABASE()
      ORDER BY c.TABLE_NAME, c.ORDINAL_POSITION`,
  );
  const [keys] = await connection.query<RowDataPacket[]>(
    `SELECT TABLE_NAME AS tableName, COLUMN_NAME AS columnName
       FROM information_schema.KEY_COLUMN_USAGE
      WHERE TABLE_SCHEMA = DATABASE() AND CONSTRAINT_NAME = 'PRIMARY'
      ORDER BY TABLE_NAME, ORDINAL_POSITION`,
  );
  const [references] = await connection.query<RowDataPacket[]>(
    `SELECT TABLE_NAME AS tableName, REFERENCED_TABLE_NAME AS referencedTable
       FROM information_schema.REFERENTIAL_CONSTRAINTS
      WHERE CONSTRAINT_SCHEMA = DATABASE()`,
  );
  const tables = new Map<string, TableInfo>();
  for (const row of columns) {
    const tableName = String(row.tableName);
    if (EXCLUDED_TABLES.has(tableName)) continue;
    // Generated columns are computed by the server and cannot be inserted.
    if (/\b(VIRTUAL|STORED|PERSISTENT) GENERATED\b/i.test(String(row.extra))) continue;
    const type = String(row.dataType).toLowerCase();
    if (!TEXT_TYPES.has(type) && !BINARY_TYPES.has(type)) {
      throw new Error(
        `backups cannot yet carry ${tableName}.${row.columnName} of type ${type} without loss; teach schema.ts its encoding`,
      );
    }
    let table = tables.get(tableName);
    if (!table) tables.set(tableName, (table = { name: tableName, columns: [], primaryKey: [] }));
    table.columns.push({ name: String(row.columnName), type });
  }
  for (const row of keys) tables.get(String(row.tableName))?.primaryKey.push(String(row.columnName));
  const dependencies = new Map([...tables.keys()].map((name) => [name, new Set<string>()]));
  for (const row of references) {
    const [from, to] = [String(row.tableName), String(row.referencedTable)];
    if (from !== to && tables.has(from) && tables.has(to)) dependencies.get(from)!.add(to);
  }
  return insertionOrder(dependencies).map((name) => tables.get(name)!);
}

/** Kahn's algorithm, alphabetical among equals so that the order is stable from run to run. */
function insertionOrder(dependencies: Map<string, Set<string>>): string[] {
  const order: string[] = [];
  const remaining = new Map([...dependencies].map(([name, on]) => [name, new Set(on)]));
  while (remaining.size > 0) {
    const ready = [...remaining].filter(([, on]) => on.size === 0).map(([name]) => name);
    if (ready.length === 0) {
      throw new Error(
        `foreign keys form a cycle between ${[...remaining.keys()].join(', ')}: no insertion order restores them`,
      );
    }
    for (const name of ready.sort()) {
      order.push(name);
      remaining.delete(name);
      for (const on of remaining.values()) on.delete(name);
    }
  }
  return order;
}

export async function readMigrationLevel(connection: Connection): Promise<MigrationLevel> {
  const [present] = await connection.query<RowDataPacket[]>(
    `SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?`,
    [MIGRATIONS_TABLE],
  );
  if (present.length === 0) return { applied: 0, last: null };
  const [rows] = await connection.query<RowDataPacket[]>(
    `SELECT COUNT(*) AS applied,
            (SELECT hash FROM ${quoteName(MIGRATIONS_TABLE)} ORDER BY created_at DESC, id DESC LIMIT 1) AS last
       FROM ${quoteName(MIGRATIONS_TABLE)}`,
  );
  return { applied: Number(rows[0]!.applied), last: (rows[0]!.last as string | null) ?? null };
}

/**
 * Refuses a target whose schema is not the backup's: another migration level, or tables and
 * columns that differ (a hand-made change), named one by one.
 */
export function assertSameSchema(
  backup: { migrations: MigrationLevel; tables: TableInfo[] },
  target: { migrations: MigrationLevel; tables: TableInfo[] },
): void {
  const level = (m: MigrationLevel) => `${m.applied} migrations (last ${m.last?.slice(0, 12) ?? 'none'})`;
  if (
    backup.migrations.applied !== target.migrations.applied ||
    backup.migrations.last !== target.migrations.last
  ) {
    throw new BackupRejected(
      `the target database is at ${level(target.migrations)} and the backup at ${level(backup.migrations)}: ` +
        'restore with the release that wrote the backup, into a database migrated by that release',
    );
  }
  const describe = (tables: TableInfo[]) =>
    new Map(tables.map((table) => [table.name, table.columns.map((c) => `${c.name} ${c.type}`).join(', ')]));
  const [mine, theirs] = [describe(backup.tables), describe(target.tables)];
  const problems: string[] = [];
  for (const [name, columns] of mine) {
    if (!theirs.has(name)) problems.push(`table ${name} is missing`);
    else if (theirs.get(name) !== columns)
      problems.push(`table ${name} has columns (${theirs.get(name)}), not (${columns})`);
  }
  for (const name of theirs.keys()) if (!mine.has(name)) problems.push(`table ${name} is not in the backup`);
  if (problems.length > 0) {
    throw new BackupRejected(
      `the target database's schema differs from the backup's: ${problems.join('; ')}`,
    );
  }
}
