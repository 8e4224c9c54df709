import * as z from 'zod';

/** A message as every client sees it, over HTTP and on the live connection alike. */
export const MessageSchema = z.object({
  id: z.string(),
  roomId: z.uuid(),
  authorId: z.uuid(),
  body: z.string(),
  createdAt: z.iso.datetime(),
});

export type Message = z.infer<typeof MessageSchema>;

/** A message id as a cursor (`before`, `after`, a live resume): digits, as ids are sent. */
export const MessageCursor = z.string().regex(/^[1-9]\d{0,15}$/, 'must be a message id');
