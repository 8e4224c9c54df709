import { createRoute, z } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import { forReplay, IDEMPOTENCY_KEY_PARAMETER, idempotencyKeyOf } from '../../http/idempotency.js';
import { problemResponse as problem } from '../../http/openapi.js';
import { createRouter } from '../../http/router.js';
import type { AppEnv } from '../../http/types.js';
import { RoomId } from '../rooms/routes.js';
import type { MessagesService } from './service.js';

const MessageSchema = z
  .object({
    id: z.string(),
    roomId: z.uuid(),
    authorId: z.uuid(),
    body: z.string(),
    createdAt: z.iso.datetime(),
  })
  .openapi('Message');
const Cursor = z
  .string()
  .regex(/^[1-9]\d{0,15}$/, 'must be a message id')
  .transform(Number);
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
        'application/json': { schema: z.strictObject({ body: z.string().trim().min(1).max(4000) }) },
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
    409: problem('the same Idempotency-Key is still in flight'),
    422: problem('the Idempotency-Key was used with another body'),
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

export function messageRoutes(messages: MessagesService, idempotency: MiddlewareHandler<AppEnv>) {
  const router = createRouter();
  router.on('POST', '/v1/rooms/:roomId/messages', idempotency);

  router.openapi(postMessage, async (c) => {
    const { message, replayed, propagated } = await messages.post(
      c.get('principal').userId,
      c.req.valid('param').roomId,
      c.req.valid('json').body,
      idempotencyKeyOf(c),
    );
    if (replayed) c.header('Idempotent-Replayed', 'true');
    // Recorded in this turn, so the idempotency record shares one Redis write with the marker and
    // the event; the answer waits for the marker, which the author's next read looks for.
    const answer = c.json(forReplay(c, 201, message), 201);
    await propagated;
    return answer;
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
