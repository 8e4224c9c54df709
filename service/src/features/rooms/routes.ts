import { createRoute, z } from '@hono/zod-openapi';
import { jsonContent as json, problemResponse as problem } from '../../http/openapi.js';
import { createRouter } from '../../http/router.js';
import type { RoomsService } from './service.js';

export const RoomId = z.uuid({ error: 'must be a room id (UUID)' });

const RoomSchema = z
  .object({
    id: z.uuid(),
    name: z.string(),
    visibility: z.enum(['public', 'private']),
    ownerId: z.uuid(),
    createdAt: z.iso.datetime(),
    memberCount: z.number().int(),
    isMember: z.boolean(),
  })
  .openapi('Room');
const RoomSummary = RoomSchema.omit({ memberCount: true, isMember: true }).openapi('RoomSummary');
const security = [{ bearerAuth: [] }];
const RoomParams = z.object({ roomId: RoomId.openapi({ param: { name: 'roomId', in: 'path' } }) });

const createRoom = createRoute({
  method: 'post',
  path: '/v1/rooms',
  tags: ['rooms'],
  security,
  request: {
    body: {
      required: true,
      content: {
        'application/json': {
          schema: z.strictObject({
            name: z.string().trim().min(1).max(100),
            visibility: z.enum(['public', 'private']),
          }),
        },
      },
    },
  },
  responses: {
    201: json(RoomSchema, 'created'),
    400: problem('invalid room'),
    401: problem('not signed in'),
  },
});

const listRooms = createRoute({
  method: 'get',
  path: '/v1/rooms',
  tags: ['rooms'],
  security,
  request: {
    query: z.strictObject({
      before: RoomId.optional().openapi({ description: 'cursor: the nextBefore of the previous page' }),
      limit: z.coerce.number().int().min(1).max(100).default(50),
    }),
  },
  responses: {
    200: json(
      z.object({ items: z.array(RoomSummary), nextBefore: z.uuid().nullable() }),
      'rooms you can see, newest first',
    ),
    400: problem('bad cursor or limit'),
  },
});

const getRoom = createRoute({
  method: 'get',
  path: '/v1/rooms/{roomId}',
  tags: ['rooms'],
  security,
  request: { params: RoomParams },
  responses: {
    200: json(RoomSchema, 'the room'),
    404: problem('no such room, or a private room you are not in'),
  },
});

const join = createRoute({
  method: 'post',
  path: '/v1/rooms/{roomId}/members',
  tags: ['rooms'],
  security,
  description:
    'Join a public room (no body), or, as a member, add another user (`{"userId"}`): the invite a private room needs.',
  request: {
    params: RoomParams,
    body: {
      required: false,
      content: { 'application/json': { schema: z.strictObject({ userId: z.uuid().optional() }) } },
    },
  },
  responses: {
    200: json(RoomSchema, 'already a member'),
    201: json(RoomSchema, 'joined'),
    403: problem('only members may invite'),
    404: problem('no such room or user'),
  },
});

const leave = createRoute({
  method: 'delete',
  path: '/v1/rooms/{roomId}/members/me',
  tags: ['rooms'],
  security,
  request: { params: RoomParams },
  responses: { 204: { description: 'left (or was not a member)' }, 404: problem('no such room') },
});

export function roomRoutes(rooms: RoomsService) {
  const router = createRouter();

  router.openapi(createRoom, async (c) => {
    const { name, visibility } = c.req.valid('json');
    const room = await rooms.create(c.get('principal').userId, name, visibility);
    c.header('Location', `/v1/rooms/${room.id}`);
    return c.json(room, 201);
  });

  router.openapi(listRooms, async (c) => {
    const { before, limit } = c.req.valid('query');
    const page = await rooms.list(c.get('principal').userId, before, limit + 1);
    const items = page.slice(0, limit);
    return c.json({ items, nextBefore: page.length > limit ? items.at(-1)!.id : null }, 200);
  });

  router.openapi(getRoom, async (c) =>
    c.json(await rooms.visibleRoom(c.get('principal').userId, c.req.valid('param').roomId), 200),
  );

  router.openapi(join, async (c) => {
    const actorId = c.get('principal').userId;
    const body = c.req.header('content-length') === '0' || !c.req.raw.body ? {} : c.req.valid('json');
    const { joined, room } = await rooms.join(actorId, c.req.valid('param').roomId, body.userId ?? actorId);
    return joined ? c.json(room, 201) : c.json(room, 200);
  });

  router.openapi(leave, async (c) => {
    await rooms.leave(c.get('principal').userId, c.req.valid('param').roomId);
    return c.body(null, 204);
  });
  return router;
}
