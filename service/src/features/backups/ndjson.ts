import { z } from 'zod';
import { BackupRejected } from './format.js';
import type { MigrationLevel, TableInfo } from './schema.js';

/**
 * The plaintext of a backup, one JSON document a line:
 *
 *   {"format":"parley-backup","version":1,"createdAt":…,"server":"replica","migrations":{…},"tables":[…]}
 *   {"t":"users","r":["0194…","alice","$argon2…","2026-12-03 03:00:00.123"]}
 *   …                                       (every row of each table, tables in insertion order)
 *   {"end":{"rows":{"users":2,"rooms":1,…}}}
 *
 * A row is its values in the header's column order, each as the server's text (DATETIME as
 * "YYYY-MM-DD hh:mm:ss.fff", BIGINT and DECIMAL as strings), null as null, binary as base64.
 * The end line makes a file cut short at a line boundary detectable even before the GCM tag is.
 */
export const FORMAT = 'parley-backup';
export const FORMAT_VERSION = 1;

const Column = z.object({ name: z.string().min(1), type: z.string().min(1) });
const Header = z.object({
  format: z.literal(FORMAT),
  version: z.number().int(),
  createdAt: z.string(),
  server: z.enum(['primary', 'replica']),
  migrations: z.object({ applied: z.number().int().min(0), last: z.string().nullable() }),
  tables: z.array(
    z.object({ name: z.string().min(1), columns: z.array(Column).min(1), primaryKey: z.array(z.string()) }),
  ),
});
export type BackupHeader = z.infer<typeof Header>;

const Row = z.object({ t: z.string(), r: z.array(z.unknown()) });
const End = z.object({ end: z.object({ rows: z.record(z.string(), z.number().int().min(0)) }) });

export function headerLine(header: {
  createdAt: Date;
  server: 'primary' | 'replica';
  migrations: MigrationLevel;
  tables: TableInfo[];
}): string {
  const document: BackupHeader = {
    format: FORMAT,
    version: FORMAT_VERSION,
    createdAt: header.createdAt.toISOString(),
    server: header.server,
    migrations: header.migrations,
    tables: header.tables,
  };
  return `${JSON.stringify(document)}\n`;
}

export const endLine = (rows: Record<string, number>) => `${JSON.stringify({ end: { rows } })}\n`;

// A row is at most a few tens of KB in this schema; a longer line means a damaged file, and the
// bound keeps a forged one from filling memory before the tag is checked.
const MAX_LINE_BYTES = 64 * 1024 * 1024;

/** The lines of a stream of bytes, without their "\n"; the last must end with one. */
export async function* splitLines(source: AsyncIterable<Buffer>): AsyncGenerator<string> {
  let rest: Buffer | undefined;
  for await (const chunk of source) {
    const data = rest ? Buffer.concat([rest, chunk]) : chunk;
    let start = 0;
    for (let newline = data.indexOf(10, start); newline !== -1; newline = data.indexOf(10, start)) {
      yield data.toString('utf8', start, newline);
      start = newline + 1;
    }
    rest = start < data.length ? data.subarray(start) : undefined;
    if (rest && rest.length > MAX_LINE_BYTES) {
      throw new BackupRejected(`the backup holds a line longer than ${MAX_LINE_BYTES} bytes: it is damaged`);
    }
  }
  if (rest) throw new BackupRejected('the backup ends in the middle of a line: it is truncated');
}

export type BackupEntry =
  | { kind: 'header'; header: BackupHeader }
  | { kind: 'row'; table: number; values: unknown[] }
  | { kind: 'end'; rows: Record<string, number> };

function parse<T>(schema: z.ZodType<T>, line: string, lineNumber: number): T {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new BackupRejected(`line ${lineNumber} of the backup is not JSON: the file is damaged`);
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    throw new BackupRejected(`line ${lineNumber} of the backup is not a backup entry: the file is damaged`);
  }
  return parsed.data;
}

/**
 * Reads the lines of a backup and checks their structure as it goes: the header first, rows of
 * known tables in the header's table order, each with one value per column, the end line last with
 * counts that match, nothing after it.
 */
export async function* readEntries(lines: AsyncIterable<string>): AsyncGenerator<BackupEntry> {
  let header: BackupHeader | undefined;
  let tableIndex = new Map<string, number>();
  let current = 0;
  let counts: number[] = [];
  let ended = false;
  let lineNumber = 0;
  for await (const line of lines) {
    lineNumber++;
    if (ended) throw new BackupRejected(`the backup goes on after its end line (line ${lineNumber})`);
    if (!header) {
      header = parse(Header, line, lineNumber);
      if (header.version !== FORMAT_VERSION) {
        throw new BackupRejected(`backup format version ${header.version} is not one this release reads`);
      }
      tableIndex = new Map(header.tables.map((table, index) => [table.name, index]));
      counts = header.tables.map(() => 0);
      yield { kind: 'header', header };
      continue;
    }
    if (line.startsWith('{"t":')) {
      const row = parse(Row, line, lineNumber);
      const table = tableIndex.get(row.t);
      if (table === undefined || table < current) {
        throw new BackupRejected(`line ${lineNumber} of the backup has a row of ${row.t} out of place`);
      }
      if (row.r.length !== header.tables[table]!.columns.length) {
        throw new BackupRejected(
          `line ${lineNumber} of the backup has a row of ${row.t} with the wrong column count`,
        );
      }
      current = table;
      counts[table]!++;
      yield { kind: 'row', table, values: row.r };
      continue;
    }
    const { end } = parse(End, line, lineNumber);
    for (const [index, table] of header.tables.entries()) {
      if ((end.rows[table.name] ?? 0) !== counts[index]) {
        throw new BackupRejected(
          `the backup's end line counts ${end.rows[table.name] ?? 0} rows of ${table.name}, the file holds ${counts[index]}`,
        );
      }
    }
    ended = true;
    yield { kind: 'end', rows: end.rows };
  }
  if (!ended) throw new BackupRejected('the backup has no end line: it is truncated');
}
