import * as z from 'zod';

/** A message as every client sees it, over HTTP and on the live connection alike. */
export const MessageSchema = z.object({
  id: z.string(),
  roomId: z.uuid(),
  authorId: z.uuid(),
  body: z.string(),
  createdAt: z.iso.datetime(),
  // Only present when there are some, so a message without files reads as it always has.
  attachmentIds: z
    .array(z.uuid())
    .optional()
    .meta({ description: 'its attachments (verified, ready to download), oldest first; absent when none' }),
});

export type Message = z.infer<typeof MessageSchema>;

/** A message id as a cursor (`before`, `after`, a live resume): digits, as ids are sent. */
export const MessageCursor = z.string().regex(/^[1-9]\d{0,15}$/, 'must be a message id');
