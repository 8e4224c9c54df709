import type { MiddlewareHandler } from 'hono';
import { matchedRoutes } from 'hono/route';
import { withRequestId, type Logger } from '../platform/logger.js';
import type { Metrics } from '../platform/metrics.js';
import type { AppEnv } from './types.js';

/** The route pattern that answered, never the raw path: metric labels must stay few. */
function routeLabel(c: Parameters<MiddlewareHandler<AppEnv>>[0]): string {
  const handler = matchedRoutes(c)
    .filter((route) => route.method !== 'ALL')
    .at(-1);
  return handler?.path ?? 'unmatched';
}

/**
 * Runs after request-id: scopes the request's id to everything it does (see withRequestId, so
 * every line logged meanwhile carries it, by any logger), writes one access-log line, and observes
 * the duration histogram.
 */
export function requestContext(logger: Logger, metrics: Metrics): MiddlewareHandler<AppEnv> {
  return (c, next) =>
    withRequestId(c.get('requestId'), async () => {
      const startedAt = performance.now();
      c.set('log', logger);
      await next();
      const seconds = (performance.now() - startedAt) / 1000;
      const route = routeLabel(c);
      metrics.httpDuration.observe(
        { method: c.req.method, route, status_code: String(c.res.status) },
        seconds,
      );
      // Probe and scrape traffic would drown the access log; it is still in the histogram.
      if (route === '/livez' || route === '/readyz' || route === '/metrics') return;
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
}
