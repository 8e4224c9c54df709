import DataLoader from 'dataloader';
import { and, asc, desc, eq, gt, lt, sql } from 'drizzle-orm';
import { DrizzleQueryError } from 'drizzle-orm/errors';
import { messages } from '../../db/schema.js';
import { DependencyUnavailable } from '../../platform/breakers.js';
import { isConnectionError, type Database, type Db } from '../../platform/mysql.js';

export interface Message {
  id: string;
  roomId: string;
  authorId: string;
  body: string;
  createdAt: string;
}

const toMessage = (row: typeof messages.$inferSelect): Message => ({
  id: String(row.id),
  roomId: row.roomId,
  authorId: row.authorId,
  body: row.body,
  createdAt: row.createdAt.toISOString(),
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

// A batch of one (what a post finds at a modest rate, when nothing else is posted in its turn) runs
// a query drizzle builds once instead of once per message: building the SQL was a visible share of
// a post's CPU at such rates (`bench/profile-room-read.ts post 1000`). It is still sent as text,
// values filled in on the client, so one query object serves every connection of the pool.
function prepareInsert(database: Db) {
  return database
    .insert(messages)
    .values({
      roomId: sql.placeholder('roomId'),
      authorId: sql.placeholder('authorId'),
      body: sql.placeholder('body'),
      idempotencyKey: sql.placeholder('idempotencyKey'),
      createdAt: sql.placeholder('createdAt'),
    })
    .$returningId()
    .prepare();
}

/**
 * The hottest write, batched: messages posted in the same event-loop turn reach MySQL as one
 * multi-row INSERT, one round trip and one commit for all of them (up to 100). Their ids come from
 * drizzle's `$returningId`, which counts up from the statement's first id: InnoDB gives the rows of
 * one multi-row INSERT consecutive ids (with auto_increment_increment 1, the default, in every
 * autoinc lock mode). Only an unreachable database fails the whole batch; any other refusal (a
 * (room, author, key) used before or twice in the batch, a room deleted meanwhile, a deadlock)
 * fails the statement as a whole, so each row is then inserted alone and only its own error fails it.
 */
function insertBatches(db: Database) {
  type Row = NewMessage & { createdAt: Date };
  // Writes always reach the primary's drizzle instance (made once, in createDatabase), so one query
  // built for it serves them all.
  let insertOne: ReturnType<typeof prepareInsert> | undefined;
  const insert = (rows: Row[]) =>
    db.write((database) =>
      rows.length === 1
        ? (insertOne ??= prepareInsert(database)).execute({ ...rows[0] })
        : database.insert(messages).values(rows).$returningId(),
    );
  return new DataLoader<Row, number>(
    async (rows) => {
      try {
        return (await insert([...rows])).map(({ id }) => id);
      } catch (error) {
        if (rows.length === 1 || isConnectionError(error)) throw withoutParameters(error);
        return Promise.all(
          rows.map((row) =>
            insert([row]).then(
              ([inserted]) => inserted!.id,
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
     * One round trip, shared with the other messages of this turn: the row's only server-made value
     * is its id, so the rest comes from what was written (created_at is set here, at the column's
     * millisecond precision, instead of read back). Order is the id's, never created_at's: pods'
     * clocks may differ by a few milliseconds.
     */
    async insert(message: NewMessage): Promise<Message> {
      const createdAt = new Date();
      const id = await inserts.load({ ...message, createdAt });
      return {
        id: String(id),
        roomId: message.roomId,
        authorId: message.authorId,
        body: message.body,
        createdAt: createdAt.toISOString(),
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
  };
}

export type MessagesRepository = ReturnType<typeof messagesRepository>;
