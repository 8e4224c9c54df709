import { and, asc, eq, inArray, lt } from 'drizzle-orm';
import { attachments } from '../../db/schema.js';
import type { Database } from '../../platform/mysql.js';
import type { AttachmentRow } from './attachment.js';

export type NewAttachment = Omit<AttachmentRow, 'status' | 'rejectedReason' | 'messageId' | 'completedAt'>;

/**
 * Every read here goes to the primary: an attachment's status changes within seconds of its
 * declaration, and a replica a moment behind would answer "pending" to the uploader who has just
 * been told it is ready. The traffic is small (one row per upload, download or post with files).
 */
export function attachmentsRepository(db: Database) {
  /** A change of status applies only to a pending row: the first verdict stands, a retry adds none. */
  const settle = async (id: string, values: Partial<AttachmentRow>) => {
    const [result] = await db.write((database) =>
      database
        .update(attachments)
        .set({ ...values, completedAt: new Date() })
        .where(and(eq(attachments.id, id), eq(attachments.status, 'pending'))),
    );
    return result.affectedRows === 1;
  };

  return {
    async create(row: NewAttachment): Promise<void> {
      await db.write((database) => database.insert(attachments).values(row));
    },

    async find(id: string): Promise<AttachmentRow | undefined> {
      const [row] = await db.write((database) =>
        database.select().from(attachments).where(eq(attachments.id, id)).limit(1),
      );
      return row;
    },

    async findMany(ids: string[]): Promise<AttachmentRow[]> {
      if (ids.length === 0) return [];
      return db.write((database) => database.select().from(attachments).where(inArray(attachments.id, ids)));
    },

    /** True when this call made it ready; false when it was not pending any more. */
    markReady: (id: string) => settle(id, { status: 'ready' }),

    markRejected: (id: string, reason: string) =>
      settle(id, { status: 'rejected', rejectedReason: reason.slice(0, 255) }),

    /** The oldest rows in `status` declared before `before`, up to `limit`. */
    async olderThan(status: 'pending' | 'rejected', before: Date, limit: number) {
      return db.write((database) =>
        database
          .select({ id: attachments.id, objectKey: attachments.objectKey })
          .from(attachments)
          .where(and(eq(attachments.status, status), lt(attachments.createdAt, before)))
          .orderBy(asc(attachments.createdAt))
          .limit(limit),
      );
    },

    /** Deletes the row if it is still rejected; true when it did. */
    async deleteRejected(id: string): Promise<boolean> {
      const [result] = await db.write((database) =>
        database.delete(attachments).where(and(eq(attachments.id, id), eq(attachments.status, 'rejected'))),
      );
      return result.affectedRows === 1;
    },
  };
}

export type AttachmentsRepository = ReturnType<typeof attachmentsRepository>;
