import { OpenAPIHono, type Hook } from '@hono/zod-openapi';
import type { Redis } from 'ioredis';
import { bodyLimit } from 'hono/body-limit';
import { methodNotAllowed } from 'hono/method-not-allowed';
import { requestId } from 'hono/request-id';
import { secureHeaders } from 'hono/secure-headers';
import type { Config } from './config.js';
import { dependencyChecks } from './features/health/checks.js';
import { healthRoutes } from './features/health/routes.js';
import { requireJsonBody } from './http/content-type.js';
import { handleError, handleNotFound } from './http/errors.js';
import { ProblemError, ValidationFailed } from './http/problem.js';
import { requestContext } from './http/request-context.js';
import type { AppEnv } from './http/types.js';
import type { Lifecycle } from './platform/lifecycle.js';
import type { Logger } from './platform/logger.js';
import type { Metrics } from './platform/metrics.js';
import type { Database } from './platform/mysql.js';

export interface AppDeps {
  config: Pick<Config, 'http' | 'readinessTimeoutMs' | 'instanceId'>;
  logger: Logger;
  metrics: Metrics;
  lifecycle: Lifecycle;
  db: Database;
  redis: Redis;
}

export type App = OpenAPIHono<AppEnv>;

const TARGET_NAMES: Record<string, string> = {
  json: 'body',
  query: 'query',
  param: 'path',
  header: 'header',
};

/** zod failures become one 400 problem listing every bad field, never a 500. */
const validationHook: Hook<unknown, AppEnv, string, unknown> = (result) => {
  if (result.success) return;
  const where = TARGET_NAMES[result.target] ?? result.target;
  const errors = result.error.issues.map((issue) => ({
    path: [where, ...issue.path].join('.'),
    message: issue.message,
  }));
  throw new ValidationFailed(errors.map((error) => `${error.path}: ${error.message}`).join('; '), errors);
};

export function healthFor(deps: Pick<AppDeps, 'config' | 'metrics' | 'lifecycle' | 'db' | 'redis'>) {
  return healthRoutes({
    checks: dependencyChecks(deps.db, deps.redis),
    timeoutMs: deps.config.readinessTimeoutMs,
    isDraining: () => deps.lifecycle.draining,
    registry: deps.metrics.registry,
    details: () => ({ instance: deps.config.instanceId, pools: deps.db.stats() }),
  });
}

/** Builds the API from explicit dependencies; tests build the same app against their own servers. */
export function createApp(deps: AppDeps): App {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });

  app.use(requestId({ headerName: 'X-Request-Id' }));
  app.use(requestContext(deps.logger, deps.metrics));
  app.use(async (c, next) => {
    await next();
    // While draining, tell keep-alive clients to reconnect (to another pod) after this response.
    if (deps.lifecycle.draining) c.header('Connection', 'close');
  });
  app.use(secureHeaders());
  app.use(
    methodNotAllowed({
      app,
      onMethodNotAllowed: (c, methods) => {
        throw new ProblemError(
          405,
          'method-not-allowed',
          'Method Not Allowed',
          `${c.req.method} is not allowed on ${c.req.path}; allowed: ${methods.join(', ')}`,
          {},
          { Allow: methods.join(', ') },
        );
      },
    }),
  );
  app.use(
    '/v1/*',
    bodyLimit({
      maxSize: deps.config.http.bodyLimitBytes,
      onError: () => {
        throw new ProblemError(
          413,
          'payload-too-large',
          'Payload Too Large',
          `request bodies are limited to ${deps.config.http.bodyLimitBytes} bytes`,
        );
      },
    }),
    requireJsonBody(),
  );

  app.route('/', healthFor(deps));

  app.doc31('/openapi.json', {
    openapi: '3.1.0',
    info: { title: 'Parley API', version: '1.0.0', description: 'Chat rooms, messages and live events.' },
  });
  app.onError(handleError);
  app.notFound(handleNotFound);
  return app;
}
