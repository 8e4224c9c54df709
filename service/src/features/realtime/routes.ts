import { createRoute, z } from '@hono/zod-openapi';
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { DomainError, Unauthenticated } from '../../domain/errors.js';
import type { Principal } from '../../domain/principal.js';
import { problemFromDomainError } from '../../http/errors.js';
import { problemResponse as problem } from '../../http/openapi.js';
import { PROBLEM_CONTENT_TYPE, ProblemError } from '../../http/problem.js';
import type { RateLimits } from '../../http/rate-limit.js';
import { createRouter } from '../../http/router.js';
import { DependencyUnavailable } from '../../platform/breakers.js';
import type { Logger } from '../../platform/logger.js';
import { requireAuth } from '../auth/routes.js';
import type { TokenService } from '../auth/tokens.js';
import { asyncApiDocument } from './asyncapi.js';
import type { RealtimeGateway } from './gateway.js';
import type { RealtimeMetrics, RefusalReason } from './metrics.js';
import { PROTOCOL_VERSION, TICKET_PROTOCOL_PREFIX, WS_PATH } from './protocol.js';
import type { TicketStore } from './tickets.js';

const issueTicket = createRoute({
  method: 'post',
  path: '/v1/realtime/tickets',
  tags: ['realtime'],
  security: [{ bearerAuth: [] }],
  description:
    'A single-use ticket that opens one live connection (`GET /v1/ws`) for the caller: a browser offers it as the subprotocol `parley.ticket.<ticket>` beside `parley.v1`, since it cannot set headers on an upgrade. It ends with the access token it was issued under.',
  responses: {
    201: {
      description: 'the ticket',
      content: {
        'application/json': {
          schema: z
            .object({
              ticket: z.string(),
              expiresIn: z.number().int().openapi({ description: 'seconds until an unused ticket lapses' }),
              protocols: z
                .array(z.string())
                .openapi({ description: 'the subprotocols to offer: `new WebSocket(url, protocols)`' }),
            })
            .openapi('RealtimeTicket'),
        },
      },
    },
    401: problem('not signed in'),
    429: problem('rate limited'),
  },
});

export function realtimeRoutes(deps: { tickets: TicketStore; tokens: TokenService; rateLimits: RateLimits }) {
  const router = createRouter();
  router.use(
    '/v1/realtime/tickets',
    requireAuth(deps.tokens),
    deps.rateLimits.middleware('api', (c) => `user:${c.get('principal').userId}`),
  );
  // The live protocol's AsyncAPI document, beside /openapi.json.
  router.get('/asyncapi.json', (c) => c.json(asyncApiDocument()));

  router.openapi(issueTicket, async (c) => {
    const ticket = await deps.tickets.issue(c.get('principal'));
    c.header('Cache-Control', 'no-store');
    return c.json(
      {
        ticket,
        expiresIn: deps.tickets.ttlSeconds,
        protocols: [PROTOCOL_VERSION, `${TICKET_PROTOCOL_PREFIX}${ticket}`],
      },
      201,
    );
  });
  return router;
}

class UpgradeRefused extends Error {
  constructor(
    readonly problem: ProblemError,
    readonly reason: RefusalReason,
  ) {
    super(problem.message);
  }
}

const refused = (
  status: ContentfulStatusCode,
  reason: RefusalReason,
  title: string,
  detail: string,
  headers: Record<string, string> = {},
) => new UpgradeRefused(new ProblemError(status, reason, title, detail, {}, headers), reason);

/** An HTTP answer on a socket that asked to upgrade: problem+json, then the connection ends. */
function answer(socket: Duplex, problem: ProblemError): void {
  if (socket.destroyed) return;
  const body = JSON.stringify(problem.toProblem(WS_PATH));
  const headers = {
    'Content-Type': PROBLEM_CONTENT_TYPE,
    'Content-Length': String(Buffer.byteLength(body)),
    Connection: 'close',
    'Cache-Control': 'no-store',
    ...problem.headers,
  };
  const lines = Object.entries(headers).map(([name, value]) => `${name}: ${value}`);
  socket.end(
    `HTTP/1.1 ${problem.status} ${STATUS_CODES[problem.status]}\r\n${lines.join('\r\n')}\r\n\r\n${body}`,
  );
}

const offeredProtocols = (request: IncomingMessage) =>
  (request.headers['sec-websocket-protocol'] ?? '')
    .split(',')
    .map((protocol) => protocol.trim())
    .filter((protocol) => protocol !== '');

/**
 * The HTTP side of `GET /v1/ws`, run on the API server's `upgrade` event before any WebSocket
 * exists: the path, the draining state, the browser's Origin (against cross-site WebSocket
 * hijacking), the subprotocol, the caller's credential (a Bearer token, or a browser's ticket) and
 * the per-user socket limit. A refusal is a real HTTP answer with problem+json, never a dropped
 * socket; the admitted upgrade goes to the gateway.
 */
export function realtimeUpgrade(deps: {
  gateway: RealtimeGateway;
  tokens: TokenService;
  tickets: TicketStore;
  allowedOrigins: string[];
  metrics: RealtimeMetrics;
  logger: Logger;
}) {
  const allowedOrigins = new Set(deps.allowedOrigins);

  async function principalOf(request: IncomingMessage, protocols: string[]): Promise<Principal> {
    const header = request.headers.authorization;
    if (header !== undefined) {
      const token = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/i.exec(header)?.[1];
      if (token === undefined)
        throw new Unauthenticated('send an access token as "Authorization: Bearer <token>"');
      return deps.tokens.cachedPrincipal(token) ?? (await deps.tokens.verifyAccessToken(token));
    }
    const ticket = protocols.find((protocol) => protocol.startsWith(TICKET_PROTOCOL_PREFIX));
    if (ticket === undefined) {
      throw new Unauthenticated(
        `send "Authorization: Bearer <token>", or (from a browser) offer the subprotocol ${TICKET_PROTOCOL_PREFIX}<ticket> from POST /v1/realtime/tickets`,
      );
    }
    const principal = await deps.tickets.consume(ticket.slice(TICKET_PROTOCOL_PREFIX.length));
    if (!principal)
      throw new Unauthenticated('the ticket is not valid: it was used, it lapsed, or it never was');
    if (principal.exp * 1000 <= Date.now())
      throw new Unauthenticated('the access token behind the ticket expired');
    if (await deps.tokens.isRevoked(principal.sessionId))
      throw new Unauthenticated('the session behind the ticket was revoked');
    return principal;
  }

  async function admit(request: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const path = new URL(request.url ?? '/', 'http://parley').pathname;
    if (path !== WS_PATH)
      throw refused(404, 'not-found', 'Not Found', `no WebSocket endpoint at ${path}; use ${WS_PATH}`);
    if (request.headers.upgrade?.toLowerCase() !== 'websocket')
      throw refused(400, 'bad-request', 'Bad Request', 'only a WebSocket upgrade is served here');
    if (deps.gateway.draining)
      throw refused(503, 'draining', 'Service Unavailable', 'this server is draining; reconnect', {
        'Retry-After': '1',
      });
    const origin = request.headers.origin;
    if (origin !== undefined && !allowedOrigins.has(origin))
      throw refused(403, 'origin', 'Forbidden', `pages from ${origin} may not open the live connection`);
    const protocols = offeredProtocols(request);
    if (protocols.length > 0 && !protocols.includes(PROTOCOL_VERSION))
      throw refused(400, 'bad-request', 'Bad Request', `offer the subprotocol ${PROTOCOL_VERSION}`);

    let principal: Principal;
    let socketId: string | undefined;
    try {
      principal = await principalOf(request, protocols);
      socketId = await deps.gateway.admit(principal.userId);
    } catch (error) {
      if (error instanceof DomainError) {
        const problem = problemFromDomainError(error);
        if (problem) throw new UpgradeRefused(problem, 'unauthenticated');
      }
      if (error instanceof DependencyUnavailable) {
        throw refused(
          503,
          'unavailable',
          'Service Unavailable',
          `${error.dependency} is unavailable; retry`,
          {
            'Retry-After': String(error.retryAfterSeconds),
          },
        );
      }
      throw error;
    }
    if (socketId === undefined) {
      throw refused(
        429,
        'too-many-sockets',
        'Too Many Requests',
        'this user has as many live connections open as allowed',
        {
          'Retry-After': '10',
        },
      );
    }
    if (socket.destroyed) {
      void deps.gateway.release(principal.userId, socketId);
      return;
    }
    deps.gateway.accept(request, socket, head, principal, socketId);
  }

  return (request: IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on('error', () => undefined); // a peer that resets during admission: nothing to answer
    admit(request, socket, head).catch((error: unknown) => {
      if (error instanceof UpgradeRefused) {
        deps.metrics.refusedUpgrades.inc({ reason: error.reason });
        deps.logger.info({ status: error.problem.status, reason: error.reason }, 'websocket upgrade refused');
        answer(socket, error.problem);
        return;
      }
      deps.logger.error({ err: error }, 'websocket upgrade failed');
      answer(socket, new ProblemError(500, 'internal-error', 'Internal Server Error', 'the upgrade failed'));
    });
  };
}
