import { createRoute, z } from '@hono/zod-openapi';
import { jsonContent as json, problemResponse as problem } from '../../http/openapi.js';
import { createRouter } from '../../http/router.js';
import { RoomId } from '../rooms/routes.js';
import { PERIODS } from './periods.js';
import type { LeaderboardsService } from './service.js';

const Period = z.enum(PERIODS);

const LeaderboardSchema = z
  .object({
    period: Period,
    periodKey: z.string().openapi({
      description: 'the period this board covers: an ISO week (2026-W49), a month (2026-12) or `all`',
    }),
    roomId: z.uuid().nullable().openapi({ description: 'null for the global board' }),
    entries: z.array(
      z.object({
        rank: z.number().int().min(1).openapi({
          description: 'standard competition rank: equal scores share a rank, the next counts everyone ahead',
        }),
        userId: z.uuid(),
        username: z.string().nullable(),
        score: z.number().int(),
      }),
    ),
    me: z
      .object({ rank: z.number().int().min(1), score: z.number().int() })
      .nullable()
      .openapi({ description: 'the caller’s own standing; null before their first points in the period' }),
  })
  .openapi('Leaderboard');

const getLeaderboard = createRoute({
  method: 'get',
  path: '/v1/leaderboards/{period}',
  tags: ['leaderboards'],
  security: [{ bearerAuth: [] }],
  description:
    'The top of a board, best first; equal scores are listed by user id, ascending (the older account first). ' +
    'Points: a message posted, a room created (see docs/leaderboards.md). The global board without roomId.',
  request: {
    params: z.object({ period: Period.openapi({ param: { name: 'period', in: 'path' } }) }),
    query: z.strictObject({
      roomId: RoomId.optional().openapi({ description: 'a room’s board instead of the global one' }),
      limit: z.coerce.number().int().min(1).max(100).default(10),
    }),
  },
  responses: {
    200: json(LeaderboardSchema, 'the board'),
    400: problem('unknown period, bad roomId or limit'),
    401: problem('not signed in'),
    404: problem('no such room, or a private room you are not in'),
  },
});

export function leaderboardRoutes(leaderboards: LeaderboardsService) {
  const router = createRouter();
  router.openapi(getLeaderboard, async (c) => {
    const { roomId, limit } = c.req.valid('query');
    const standings = await leaderboards.standings(c.get('principal').userId, {
      period: c.req.valid('param').period,
      roomId,
      limit,
    });
    return c.json(standings, 200);
  });
  return router;
}
