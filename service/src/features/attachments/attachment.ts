import * as z from 'zod';
import type { attachments } from '../../db/schema.js';

/**
 * The lifecycle: `pending` from the declaration until the worker has read the stored object back;
 * then `ready` (size, type and SHA-256 are the declared ones) or `rejected` (the object is deleted,
 * the reason kept). Only `ready` attachments are visible to anyone but their uploader.
 */
export const AttachmentStatus = z.enum(['pending', 'ready', 'rejected']);

/** An attachment as its uploader and the room's members see it. */
export const AttachmentSchema = z.object({
  id: z.uuid(),
  roomId: z.uuid(),
  uploaderId: z.uuid(),
  filename: z.string(),
  contentType: z.string(),
  size: z.number().int(),
  sha256: z.string().meta({ description: 'hex SHA-256 of the content, as declared' }),
  status: AttachmentStatus,
  rejectedReason: z.string().nullable(),
  messageId: z.string().nullable().meta({ description: 'the message it is attached to, once posted' }),
  createdAt: z.iso.datetime(),
  completedAt: z.iso.datetime().nullable().meta({ description: 'when it became ready or was rejected' }),
});
export type Attachment = z.infer<typeof AttachmentSchema>;

export type AttachmentRow = typeof attachments.$inferSelect;

export const toAttachment = (row: AttachmentRow): Attachment => ({
  id: row.id,
  roomId: row.roomId,
  uploaderId: row.uploaderId,
  filename: row.filename,
  contentType: row.contentType,
  size: row.sizeBytes,
  sha256: row.sha256,
  status: row.status,
  rejectedReason: row.rejectedReason,
  messageId: row.messageId === null ? null : String(row.messageId),
  createdAt: row.createdAt.toISOString(),
  completedAt: row.completedAt?.toISOString() ?? null,
});

/** `attachments/<room>/<yyyy-mm-dd>/<id>`, the day (UTC) it was declared: the IAM policy's prefix. */
export const objectKeyFor = (roomId: string, id: string, declaredAt: Date) =>
  `attachments/${roomId}/${declaredAt.toISOString().slice(0, 10)}/${id}`;

/** How many attachments one message may carry. */
export const MAX_ATTACHMENTS_PER_MESSAGE = 10;
