import { and, asc, desc, eq, gt, gte, lt } from 'drizzle-orm';
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

const toMessage = (row: typeof messages.$inferSelect): Message => ({
  id: String(row.id),
  roomId: row.roomId,
  authorId: row.authorId,
  body: row.body,
  createdAt: row.createdAt.toISOString(),
});
const toSequenced = (row: typeof messages.$inferSelect): Sequenced => ({
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
      { sql: 'COMMIT' },
    ])
    .catch((error: unknown) => {
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
        message: {
          id: String(id),
          roomId: message.roomId,
          authorId: message.authorId,
          body: message.body,
          createdAt: createdAt.toISOString(),
        },
        seq,
      };
    },

    async findByIdempotencyKey(roomId: string, authorId: string, idempotencyKey: string) {
      const [row] = await db.write((database) =>
        database
          .select()
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
            .select()
            .from(messages)
            .where(and(eq(messages.roomId, roomId), gt(messages.id, page.after)))
            .orderBy(asc(messages.id))
            .limit(page.limit)
            .then((rows) => rows.reverse());
        }
        return database
          .select()
          .from(messages)
          .where(
            page.before !== undefined
              ? and(eq(messages.roomId, roomId), lt(messages.id, page.before))
              : eq(messages.roomId, roomId),
          )
          .orderBy(desc(messages.id))
          .limit(page.limit);
      };
      const rows = await (fromPrimary ? db.write(query) : db.read(query));
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
          .select()
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
