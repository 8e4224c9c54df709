import { createRoute, z } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import { IDEMPOTENCY_KEY_PARAMETER } from '../../http/idempotency.js';
import { problemResponse as problem } from '../../http/openapi.js';
import { createRouter } from '../../http/router.js';
import type { AppEnv } from '../../http/types.js';
import type { RedisWrite } from '../../platform/redis-write.js';
import { MAX_ATTACHMENTS_PER_MESSAGE } from '../attachments/attachment.js';
import { RoomId } from '../rooms/routes.js';
import { MessageCursor, MessageSchema as Message } from './message.js';
import type { MessagesService } from './service.js';

const MessageSchema = Message.openapi('Message');
const Cursor = MessageCursor.transform(Number);
const params = z.object({ roomId: RoomId.openapi({ param: { name: 'roomId', in: 'path' } }) });

const postMessage = createRoute({
  method: 'post',
  path: '/v1/rooms/{roomId}/messages',
  tags: ['messages'],
  security: [{ bearerAuth: [] }],
  parameters: [IDEMPOTENCY_KEY_PARAMETER],
  request: {
    params,
    body: {
      required: true,
      content: {
        'application/json': {
          schema: z.strictObject({
            body: z.string().trim().min(1).max(4000),
            attachmentIds: z
              .array(z.uuid({ error: 'must be an attachment id (UUID)' }))
              .max(MAX_ATTACHMENTS_PER_MESSAGE)
              .refine((ids) => new Set(ids).size === ids.length, 'must not name an attachment twice')
              .optional()
              .openapi({
                description: `up to ${MAX_ATTACHMENTS_PER_MESSAGE} of the author's ready attachments in this room, not attached yet`,
              }),
          }),
        },
      },
    },
  },
  responses: {
    201: {
      description: 'posted (or replayed: Idempotent-Replayed: true)',
      content: { 'application/json': { schema: MessageSchema } },
    },
    403: problem('not a member of the room'),
    404: problem('no such room'),
    409: problem(
      'the same Idempotency-Key is still in flight, or an attachment is not ready yet or already attached',
    ),
    422: problem(
      'the Idempotency-Key was used with another body, or an attachment is not the author’s upload in this room, or was rejected',
    ),
  },
});

const listMessages = createRoute({
  method: 'get',
  path: '/v1/rooms/{roomId}/messages',
  tags: ['messages'],
  security: [{ bearerAuth: [] }],
  request: {
    params,
    query: z
      .strictObject({
        before: Cursor.optional(),
        after: Cursor.optional(),
        limit: z.coerce.number().int().min(1).max(100).default(50),
      })
      .refine((query) => query.before === undefined || query.after === undefined, {
        message: 'use before or after, not both',
        path: ['after'],
      }),
  },
  responses: {
    200: {
      description: 'newest first',
      content: {
        'application/json': {
          schema: z.object({
            items: z.array(MessageSchema),
            nextBefore: z
              .string()
              .nullable()
              .openapi({ description: 'cursor for older messages; null at the start' }),
          }),
        },
      },
    },
    400: problem('bad cursor or limit'),
    404: problem('no such room'),
  },
});

export function messageRoutes(deps: {
  messages: MessagesService;
  idempotency: MiddlewareHandler<AppEnv>;
  redisWrite: () => RedisWrite;
}) {
  const { messages } = deps;
  const router = createRouter();
  router.on('POST', '/v1/rooms/:roomId/messages', deps.idempotency);

  router.openapi(postMessage, async (c) => {
    const idempotent = c.get('idempotentRequest');
    // Once the INSERT commits, one Redis write carries everything that follows it: the author's
    // read-your-writes marker and the room event (added by post) and this answer's idempotency
    // record. It is sent before the answer leaves, so the author's next read finds the marker.
    const afterCommit = deps.redisWrite();
    const { message, replayed } = await messages.post(
      {
        authorId: c.get('principal').userId,
        roomId: c.req.valid('param').roomId,
        body: c.req.valid('json').body,
        attachmentIds: c.req.valid('json').attachmentIds,
        idempotencyKey: idempotent.key,
      },
      afterCommit,
    );
    idempotent.recordIn(afterCommit, 201, message);
    const lost = await afterCommit.send();
    // The message is stored: a missed event is recovered from MySQL by a client's resume, and
    // without the record a retry is answered by the database's unique key.
    if (lost) c.get('log').warn({ err: lost }, 'the post is stored, but its Redis write failed');
    if (replayed) c.header('Idempotent-Replayed', 'true');
    return c.json(message, 201);
  });

  router.openapi(listMessages, async (c) => {
    const { before, after, limit } = c.req.valid('query');
    const page = await messages.list(c.get('principal').userId, c.req.valid('param').roomId, {
      before,
      after,
      limit: limit + 1,
    });
    // One extra row says whether more exist. Paging forward (after), the extra row is the newest
    // one, which the next request fetches; dropping the oldest would leave a gap.
    const items = after === undefined ? page.slice(0, limit) : page.slice(Math.max(0, page.length - limit));
    const hasOlder = after === undefined && page.length > limit;
    return c.json({ items, nextBefore: hasOlder ? items.at(-1)!.id : null }, 200);
  });
  return router;
}
