import type { MiddlewareHandler } from 'hono';
import { matchedRoutes } from 'hono/route';
import { withRequestId, type Logger } from '../platform/logger.js';
import type { Metrics } from '../platform/metrics.js';
import { setResponseHeader } from './response-headers.js';
import type { AppEnv } from './types.js';

/** The route pattern that answered, never the raw path: metric labels must stay few. */
function routeLabel(c: Parameters<MiddlewareHandler<AppEnv>>[0]): string {
  const handler = matchedRoutes(c)
    .filter((route) => route.method !== 'ALL')
    .at(-1);
  return handler?.path ?? 'unmatched';
}

// What hono/request-id accepts from a client: short, and safe to echo and to log.
const USABLE_REQUEST_ID = /^[\w\-=]{1,255}$/;

/**
 * The first middleware: takes the client's X-Request-Id when usable (else makes one) and echoes it;
 * scopes it to everything the request does (see withRequestId, so every line logged meanwhile
 * carries it, by any logger); writes one access-log line and observes the duration histogram.
 */
export function requestContext(logger: Logger, metrics: Metrics): MiddlewareHandler<AppEnv> {
  return (c, next) => {
    const sent = c.req.header('x-request-id');
    const reqId = sent !== undefined && USABLE_REQUEST_ID.test(sent) ? sent : crypto.randomUUID();
    c.set('requestId', reqId);
    setResponseHeader(c, 'X-Request-Id', reqId);
    c.set('log', logger);
    return withRequestId(reqId, async () => {
      const startedAt = performance.now();
      await next();
      const seconds = (performance.now() - startedAt) / 1000;
      const route = routeLabel(c);
      metrics.httpDuration.observe(
        { method: c.req.method, route, status_code: String(c.res.status) },
        seconds,
      );
      logger.info(
        {
          method: c.req.method,
          path: c.req.path,
          route,
          status: c.res.status,
          ms: Math.round(seconds * 1000),
        },
        'request',
      );
    });
  };
}
