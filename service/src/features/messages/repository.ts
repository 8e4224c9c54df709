import DataLoader from 'dataloader';
import { and, asc, desc, eq, gt, gte, lt, sql } from 'drizzle-orm';
import { DrizzleQueryError } from 'drizzle-orm/errors';
import { messages, rooms } from '../../db/schema.js';
import { NotFound } from '../../domain/errors.js';
import { DependencyUnavailable } from '../../platform/breakers.js';
import { isConnectionError, type Database, type Db } from '../../platform/mysql.js';
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

/**
 * Inserts a batch in one transaction that first takes the next seqs of its rooms: the UPDATE of each
 * room's counter locks the room's row until commit, so a room's messages commit one transaction at
 * a time, and seqs (and ids, taken after the lock) follow commit order with no gaps: a rollback
 * returns the seqs it took. Rooms are locked in id order, so two batches cannot deadlock.
 */
function insertSequenced(database: Db, rows: Row[]): Promise<{ id: number; seq: number }[]> {
  return database.transaction(async (tx) => {
    const counts = new Map<string, number>();
    for (const row of rows) counts.set(row.roomId, (counts.get(row.roomId) ?? 0) + 1);
    const next = new Map<string, number>();
    for (const roomId of [...counts.keys()].sort()) {
      const count = counts.get(roomId)!;
      // LAST_INSERT_ID(expr) hands the new counter back with the UPDATE's answer: no second read.
      const [result] = await tx
        .update(rooms)
        .set({ messageSeq: sql`LAST_INSERT_ID(${rooms.messageSeq} + ${count})` })
        .where(eq(rooms.id, roomId));
      if (result.affectedRows !== 1) throw new NotFound(`no room ${roomId}`);
      next.set(roomId, Number(result.insertId) - count + 1);
    }
    const sequenced = rows.map((row) => {
      const seq = next.get(row.roomId)!;
      next.set(row.roomId, seq + 1);
      return { ...row, seq };
    });
    const inserted = await tx.insert(messages).values(sequenced).$returningId();
    return inserted.map(({ id }, i) => ({ id, seq: sequenced[i]!.seq }));
  });
}

/**
 * The hottest write, batched: messages posted in the same event-loop turn reach MySQL in one
 * transaction, one INSERT and one commit for all of them (up to 100). Their ids come from drizzle's
 * `$returningId`, which counts up from the statement's first id: InnoDB gives the rows of one
 * multi-row INSERT consecutive ids (with auto_increment_increment 1, the default, in every autoinc
 * lock mode). Only an unreachable database fails the whole batch; any other refusal (a (room,
 * author, key) used before or twice in the batch, a room deleted meanwhile, a deadlock) fails the
 * transaction as a whole, so each row is then inserted alone and only its own error fails it.
 */
function insertBatches(db: Database) {
  const insert = (rows: Row[]) => db.write((database) => insertSequenced(database, rows));
  return new DataLoader<Row, { id: number; seq: number }>(
    async (rows) => {
      try {
        return await insert([...rows]);
      } catch (error) {
        if (rows.length === 1 || isConnectionError(error)) throw withoutParameters(error);
        return Promise.all(
          rows.map((row) =>
            insert([row]).then(
              ([inserted]) => inserted!,
              (failure: unknown) => withoutParameters(failure),
            ),
          ),
        );
      }
    },
    { cache: false, maxBatchSize: 100, batchScheduleFn: (run) => setImmediate(run) },
  );
}

/**
 * drizzle's query errors quote every parameter: a failed batch would put up to 100 users' message
 * bodies in the log, once per caller. Callers get the driver's error (its code and message) instead;
 * its stack shows only the driver's frames (the pools skip mysql2's per-query stack capture), and
 * the log line that reports it carries the request's id and route.
 */
function withoutParameters(error: unknown): Error {
  if (error instanceof DependencyUnavailable)
    return new DependencyUnavailable(error.dependency, error.retryAfterSeconds, {
      cause: withoutParameters(error.cause),
    });
  if (error instanceof DrizzleQueryError && error.cause instanceof Error) return error.cause;
  return error instanceof Error ? error : new Error(String(error));
}

export function messagesRepository(db: Database) {
  const inserts = insertBatches(db);
  return {
    /**
     * One transaction, shared with the other messages of this turn: the row's only server-made
     * values are its id and seq, so the rest comes from what was written (created_at is set here, at
     * the column's millisecond precision, instead of read back). Order is the id's, never
     * created_at's: pods' clocks may differ by a few milliseconds.
     */
    async insert(message: NewMessage): Promise<Sequenced> {
      const createdAt = new Date();
      const { id, seq } = await inserts.load({ ...message, createdAt });
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
