import { and, asc, desc, eq, gt, lt, sql } from 'drizzle-orm';
import { messages } from '../../db/schema.js';
import type { Database, Db } from '../../platform/mysql.js';

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

// The hottest write, built once instead of once per message (the SQL builder showed up in
// bench/profile-room-read.ts post); values travel as placeholders.
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

export function messagesRepository(db: Database) {
  // Writes always reach the primary's drizzle instance, so one prepared statement serves them all.
  let insertStatement: ReturnType<typeof prepareInsert> | undefined;
  return {
    /**
     * One round trip: the row's only server-made value is its id, so the rest comes from what was
     * written (created_at is set here, at the column's millisecond precision, instead of read back).
     * Order is the id's, never created_at's: pods' clocks may differ by a few milliseconds.
     */
    async insert(message: {
      roomId: string;
      authorId: string;
      body: string;
      idempotencyKey: string;
    }): Promise<Message> {
      const createdAt = new Date();
      const [{ id }] = (await db.write((database) =>
        (insertStatement ??= prepareInsert(database)).execute({ ...message, createdAt }),
      )) as [{ id: number }];
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
