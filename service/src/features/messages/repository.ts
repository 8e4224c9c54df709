import { and, asc, desc, eq, getTableColumns, gt, gte, lt, sql } from 'drizzle-orm';
import { messages, rooms } from '../../db/schema.js';
import { NotFound } from '../../domain/errors.js';
import { isConnectionError, isMissingReference, type Database, type Db } from '../../platform/mysql.js';
import type { Message } from './message.js';

export type { Message } from './message.js';

/** A message with its place in its room (1, 2, 3, … in commit order, no gaps): for live delivery. */
export interface Sequenced {
  message: Message;
  seq: number;
}

/**
 * A message's row with its attachment ids, in one statement: a correlated subquery on the
 * attachments' message index costs a lookup per row, where a second query would cost a round trip.
 */
const messageColumns = {
  ...getTableColumns(messages),
  // Written out: drizzle leaves columns unqualified in a one-table select, and inside the subquery
  // a bare `id` would be the attachment's.
  attachmentIds: sql<
    string | null
  >`(SELECT GROUP_CONCAT(a.id ORDER BY a.id SEPARATOR ',') FROM attachments AS a WHERE a.message_id = messages.id)`,
};
type MessageRow = typeof messages.$inferSelect & { attachmentIds: string | null };

/** Sorted: UUIDv7 ids sort by creation, and every reader then sees one order. */
const withAttachments = (message: Message, ids: readonly string[] | undefined): Message =>
  ids && ids.length > 0 ? { ...message, attachmentIds: [...ids].sort() } : message;

const toMessage = (row: MessageRow): Message =>
  withAttachments(
    {
      id: String(row.id),
      roomId: row.roomId,
      authorId: row.authorId,
      body: row.body,
      createdAt: row.createdAt.toISOString(),
    },
    row.attachmentIds?.split(','),
  );
const toSequenced = (row: MessageRow): Sequenced => ({
  message: toMessage(row),
  seq: row.seq,
});

export interface Page {
  before?: number;
  after?: number;
  limit: number;
}

export interface NewMessage {
  roomId: string;
  authorId: string;
  body: string;
  idempotencyKey: string;
  /** Ready attachments of the author's in the room, not attached yet: linked in the same transaction. */
  attachmentIds?: string[];
}

/**
 * The insert's transaction could not link every attachment named (another message took one
 * meanwhile, or one is not the author's ready upload in this room): nothing was written.
 */
export class AttachmentsNotLinked extends Error {
  constructor() {
    super('an attachment could not be linked to the message');
    this.name = 'AttachmentsNotLinked';
  }
}

// ER_SUBQUERY_NO_1_ROW: what the link check below raises on purpose.
const SUBQUERY_RETURNS_MORE_THAN_ONE_ROW = 1242;

/**
 * Links each row's attachments to it, after the INSERT, in the same transaction: the rows' ids
 * follow the first one (see below), and each UPDATE takes only the author's ready, unattached
 * uploads in the room. Neither server has a conditional abort outside stored programs (SIGNAL),
 * so a check that fails the statement stands in for one: unless the UPDATE linked every id named,
 * the scalar subquery finds two rows, which is an error, and the script rolls back. A SELECT, not a
 * DO: MariaDB turns that error into a warning in a DO.
 */
function linkStatements(rows: Row[]): { sql: string; values?: unknown[] }[] {
  if (!rows.some((row) => row.attachmentIds?.length)) return [];
  const statements: { sql: string; values?: unknown[] }[] = [
    { sql: 'SET @parley_first_id = LAST_INSERT_ID()' },
  ];
  rows.forEach((row, k) => {
    const ids = row.attachmentIds ?? [];
    if (ids.length === 0) return;
    statements.push(
      {
        sql: `UPDATE attachments SET message_id = @parley_first_id + ${k} WHERE id IN (?) AND room_id = ? AND uploader_id = ? AND status = 'ready' AND message_id IS NULL`,
        values: [ids, row.roomId, row.authorId],
      },
      { sql: 'SET @parley_linked = ROW_COUNT()' },
      {
        sql: 'SELECT (SELECT 1 FROM (SELECT 1 AS n UNION ALL SELECT 2) AS two_rows WHERE @parley_linked <> ?) AS link_check',
        values: [ids.length],
      },
    );
  });
  return statements;
}

type Row = NewMessage & { createdAt: Date };
type Stored = { id: number; seq: number };

/**
 * Inserts rows of one room in one transaction, sent in one round trip: the room's counter raised by
 * their number (which locks the room's row until the commit: a room's messages commit one
 * transaction at a time, so their seqs, and their ids, taken after the lock, follow commit order
 * with no gaps, and a rolled-back insert gives its seqs back), then the rows with those seqs. As one
 * script, the lock is held while the server runs it, not across the client's round trips.
 */
async function insertSequenced(db: Database, roomId: string, rows: Row[]): Promise<Stored[]> {
  const n = rows.length;
  const [, counter, , inserted] = await db
    .writeScript([
      { sql: 'START TRANSACTION' },
      // LAST_INSERT_ID(expr) hands the new counter back with the UPDATE's answer.
      {
        sql: 'UPDATE rooms SET message_seq = LAST_INSERT_ID(message_seq + ?) WHERE id = ?',
        values: [n, roomId],
      },
      { sql: 'SET @parley_seq = LAST_INSERT_ID()' },
      {
        sql: `INSERT INTO messages (room_id, author_id, body, idempotency_key, created_at, seq) VALUES ${rows
          .map((_, k) => `(?, ?, ?, ?, ?, @parley_seq - ${n - 1 - k})`)
          .join(', ')}`,
        values: rows.flatMap((row) => [
          row.roomId,
          row.authorId,
          row.body,
          row.idempotencyKey,
          row.createdAt,
        ]),
      },
      ...linkStatements(rows),
      { sql: 'COMMIT' },
    ])
    .catch((error: unknown) => {
      if ((error as { errno?: number }).errno === SUBQUERY_RETURNS_MORE_THAN_ONE_ROW)
        throw new AttachmentsNotLinked();
      // No room row to raise: the rows' foreign key on room_id refuses them, and the script rolls back.
      if (isMissingReference(error) && /`room_id`/.test((error as Error).message))
        throw new NotFound(`no room ${roomId}`);
      throw error;
    });
  // InnoDB gives the rows of one multi-row INSERT consecutive ids (auto_increment_increment 1, the
  // default, in every autoinc lock mode); the answer carries the first.
  return rows.map((_, k) => ({ id: inserted!.insertId + k, seq: counter!.insertId - n + 1 + k }));
}

// Errors come from Database.writeScript, which keeps the statement (and so every body) out of them.
const asError = (error: unknown) => (error instanceof Error ? error : new Error(String(error)));

interface Pending {
  row: Row;
  resolve: (stored: Stored) => void;
  reject: (error: Error) => void;
}

/**
 * The hottest write, as group commit per room: at most one insert transaction per room is in
 * flight from this process, and the messages posted to the room meanwhile go together in the next
 * one (up to 100), so that a busy room costs few transactions, and the room's lock is asked for by
 * one transaction per process at a time instead of one per post. Only an unreachable database fails
 * a whole batch; any other refusal (a (room, author, key) used before or twice in the batch, a
 * deadlock) fails the transaction as a whole, so each row is then inserted alone and only its own
 * error fails it.
 */
function roomInserts(db: Database) {
  const rooms = new Map<string, Pending[]>();

  async function insertBatch(roomId: string, batch: Pending[]): Promise<void> {
    try {
      const stored = await insertSequenced(
        db,
        roomId,
        batch.map(({ row }) => row),
      );
      batch.forEach((pending, i) => pending.resolve(stored[i]!));
    } catch (error) {
      if (batch.length === 1 || isConnectionError(error)) {
        for (const pending of batch) pending.reject(asError(error));
        return;
      }
      for (const pending of batch) {
        await insertSequenced(db, roomId, [pending.row]).then(
          ([stored]) => pending.resolve(stored!),
          (failure: unknown) => pending.reject(asError(failure)),
        );
      }
    }
  }

  async function drain(roomId: string, queue: Pending[]): Promise<void> {
    while (queue.length > 0) await insertBatch(roomId, queue.splice(0, 100));
    rooms.delete(roomId);
  }

  return (row: Row): Promise<Stored> =>
    new Promise((resolve, reject) => {
      let queue = rooms.get(row.roomId);
      if (!queue) {
        queue = [];
        rooms.set(row.roomId, queue);
        const started = queue;
        // The room's first batch waits out this turn, so the posts that arrive with it join it.
        setImmediate(() => void drain(row.roomId, started));
      }
      queue.push({ row, resolve, reject });
    });
}

export function messagesRepository(db: Database) {
  const insertInOrder = roomInserts(db);
  return {
    /**
     * One transaction, shared with the other messages of this turn: the row's only server-made
     * values are its id and seq, so the rest comes from what was written (created_at is set here, at
     * the column's millisecond precision, instead of read back). Order is the id's, never
     * created_at's: pods' clocks may differ by a few milliseconds.
     */
    async insert(message: NewMessage): Promise<Sequenced> {
      const createdAt = new Date();
      const { id, seq } = await insertInOrder({ ...message, createdAt });
      return {
        message: withAttachments(
          {
            id: String(id),
            roomId: message.roomId,
            authorId: message.authorId,
            body: message.body,
            createdAt: createdAt.toISOString(),
          },
          message.attachmentIds,
        ),
        seq,
      };
    },

    async findByIdempotencyKey(roomId: string, authorId: string, idempotencyKey: string) {
      const [row] = await db.write((database) =>
        database
          .select(messageColumns)
          .from(messages)
          .where(
            and(
              eq(messages.roomId, roomId),
              eq(messages.authorId, authorId),
              eq(messages.idempotencyKey, idempotencyKey),
            ),
          )
          .limit(1),
      );
      return row ? toMessage(row) : undefined;
    },

    /**
     * Newest first. `before`: the page older than that id. `after`: the `limit` messages right after
     * that id (so catching up leaves no gap), still returned newest first.
     */
    async page(roomId: string, page: Page, fromPrimary: boolean): Promise<Message[]> {
      const query = (database: Db) => {
        if (page.after !== undefined) {
          return database
            .select(messageColumns)
            .from(messages)
            .where(and(eq(messages.roomId, roomId), gt(messages.id, page.after)))
            .orderBy(asc(messages.id))
            .limit(page.limit)
            .then((rows) => rows.reverse());
        }
        return database
          .select(messageColumns)
          .from(messages)
          .where(
            page.before !== undefined
              ? and(eq(messages.roomId, roomId), lt(messages.id, page.before))
              : eq(messages.roomId, roomId),
          )
          .orderBy(desc(messages.id))
          .limit(page.limit);
      };
      const rows = await (fromPrimary ? db.readLatest(query) : db.read(query));
      return rows.map(toMessage);
    },

    /** The seq of the room's last message (0 before the first), from the primary. */
    async lastSeq(roomId: string): Promise<number> {
      const [row] = await db.write((database) =>
        database.select({ seq: rooms.messageSeq }).from(rooms).where(eq(rooms.id, roomId)).limit(1),
      );
      return row?.seq ?? 0;
    },

    /** The room's message `id` as a resume point: its seq and time; undefined if not in that room. */
    async cursor(roomId: string, id: number): Promise<{ seq: number; createdAt: Date } | undefined> {
      const [row] = await db.write((database) =>
        database
          .select({ seq: messages.seq, createdAt: messages.createdAt })
          .from(messages)
          .where(and(eq(messages.roomId, roomId), eq(messages.id, id)))
          .limit(1),
      );
      return row;
    },

    /** The id of the room's message with this seq; undefined for seq 0 (none yet). */
    async idAtSeq(roomId: string, seq: number): Promise<number | undefined> {
      if (seq === 0) return undefined;
      const [row] = await db.write((database) =>
        database
          .select({ id: messages.id })
          .from(messages)
          .where(and(eq(messages.roomId, roomId), eq(messages.seq, seq)))
          .limit(1),
      );
      return row?.id;
    },

    /**
     * Up to `limit` of the room's messages from seq `from` on, in seq order, from the primary: what a
     * replica has not received yet would be a gap.
     */
    async fromSeq(roomId: string, from: number, limit: number): Promise<Sequenced[]> {
      const rows = await db.write((database) =>
        database
          .select(messageColumns)
          .from(messages)
          .where(and(eq(messages.roomId, roomId), gte(messages.seq, from)))
          .orderBy(asc(messages.seq))
          .limit(limit),
      );
      return rows.map(toSequenced);
    },
  };
}

export type MessagesRepository = ReturnType<typeof messagesRepository>;
