import type { S3Client } from '@aws-sdk/client-s3';
import type { OpenAPIHono } from '@hono/zod-openapi';
import type { Redis } from 'ioredis';
import { compress } from 'hono/compress';
import { methodNotAllowed } from 'hono/method-not-allowed';
import type { Config } from './config.js';
import { attachmentsRepository } from './features/attachments/repository.js';
import { attachmentRoutes } from './features/attachments/routes.js';
import { attachmentsService } from './features/attachments/service.js';
import { attachmentStorage } from './features/attachments/storage.js';
import { loadSigningKey } from './features/auth/keys.js';
import { authRepository } from './features/auth/repository.js';
import { authRoutes, requireAuth } from './features/auth/routes.js';
import { authService } from './features/auth/service.js';
import { TokenService } from './features/auth/tokens.js';
import { dependencyChecks } from './features/health/checks.js';
import { healthRoutes } from './features/health/routes.js';
import { leaderboardsRepository } from './features/leaderboards/repository.js';
import { leaderboardRoutes } from './features/leaderboards/routes.js';
import { leaderboardAwards, leaderboardsService } from './features/leaderboards/service.js';
import { messagesRepository } from './features/messages/repository.js';
import { messageRoutes } from './features/messages/routes.js';
import { messagesService } from './features/messages/service.js';
import { roomsRepository } from './features/rooms/repository.js';
import { roomRoutes } from './features/rooms/routes.js';
import { roomsService } from './features/rooms/service.js';
import { setResponseHeader } from './http/response-headers.js';
import { limitRequestBody } from './http/body-limit.js';
import { requireJsonBody } from './http/content-type.js';
import { handleError, handleNotFound } from './http/errors.js';
import { idempotency } from './http/idempotency.js';
import { ProblemError } from './http/problem.js';
import { RateLimits } from './http/rate-limit.js';
import { requestContext } from './http/request-context.js';
import { securityHeaders } from './http/security-headers.js';
import { createRouter } from './http/router.js';
import type { AppEnv } from './http/types.js';
import { Cache } from './platform/cache.js';
import { openDependencies, type Dependencies } from './platform/dependencies.js';
import type { Lifecycle } from './platform/lifecycle.js';
import type { Logger } from './platform/logger.js';
import type { Metrics } from './platform/metrics.js';
import type { Database } from './platform/mysql.js';
import { PubSub } from './platform/pubsub.js';
import { createGateway, type RealtimeGateway } from './features/realtime/gateway.js';
import { realtimeMetrics } from './features/realtime/metrics.js';
import { realtimeRoutes, realtimeUpgrade } from './features/realtime/routes.js';
import { ticketStore } from './features/realtime/tickets.js';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { RedisWrite } from './platform/redis-write.js';
import { queuesFrom, type JobQueues } from './platform/jobs.js';
import { createQueue } from './platform/queues.js';
import { createS3Client } from './platform/s3.js';

export type App = OpenAPIHono<AppEnv>;

export interface AppDeps extends Dependencies {
  config: Config;
  logger: Logger;
  metrics: Metrics;
  lifecycle: Lifecycle;
  pubsub: PubSub;
  tokens: TokenService;
  cache: Cache;
  rateLimits: RateLimits;
  /** Slow work handed to the worker. */
  jobs: JobQueues;
  /** Signs uploads and downloads; the API itself moves no file. */
  s3: S3Client;
}

/**
 * /livez, /readyz and /metrics, for the management port only: they tell anyone who can reach them
 * route names, pool sizes and breaker states, so the public API port does not serve them.
 */
export function healthFor(deps: {
  config: Pick<Config, 'readinessTimeoutMs' | 'instanceId'>;
  metrics: Metrics;
  lifecycle: Lifecycle;
  db: Database;
  redis: Redis;
}) {
  return healthRoutes({
    checks: dependencyChecks(deps.db, deps.redis),
    timeoutMs: deps.config.readinessTimeoutMs,
    isDraining: () => deps.lifecycle.draining,
    registry: deps.metrics.registry,
    details: () => ({ instance: deps.config.instanceId, pools: deps.db.stats() }),
  });
}

/** Opens every connection and service the API needs, each registered with the lifecycle. */
export async function openApiDeps(
  config: Config,
  logger: Logger,
  metrics: Metrics,
  lifecycle: Lifecycle,
): Promise<AppDeps> {
  const dependencies = openDependencies(config, logger, metrics, lifecycle);
  const { redis, breakers } = dependencies;
  const pubsub = new PubSub(config.redis, redis, logger);
  lifecycle.register('redis subscriber', () => pubsub.close());
  if (!config.auth.privateKeyPem) throw new Error('the API needs JWT_PRIVATE_KEY');
  const tokens = new TokenService(
    await loadSigningKey(config.auth.privateKeyPem),
    config.auth,
    redis,
    breakers.redis,
    pubsub,
    logger,
    metrics.registry,
  );
  await tokens.start();
  const cache = new Cache(redis, breakers.redis, pubsub, metrics.registry);
  await cache.start();
  const jobs = queuesFrom((name) => createQueue(config, name));
  lifecycle.register('job queues', () => jobs.close());
  const s3 = createS3Client(config.s3);
  lifecycle.register('s3 client', async () => s3.destroy());
  return {
    ...dependencies,
    config,
    logger,
    metrics,
    lifecycle,
    pubsub,
    tokens,
    cache,
    jobs,
    s3,
    rateLimits: new RateLimits(redis, breakers.redis, config.rateLimits, metrics.registry, logger),
  };
}

export interface Api {
  /** The HTTP API. */
  app: App;
  /** The live side: its sockets are drained on SIGTERM. */
  gateway: RealtimeGateway;
  /** For the API server's `upgrade` event: `GET /v1/ws`. */
  upgrade: (request: IncomingMessage, socket: Duplex, head: Buffer) => void;
}

/** Builds the API from explicit dependencies; tests build the same API against their own servers. */
export function createApi(deps: AppDeps): Api {
  const { config, tokens, rateLimits } = deps;
  const app = createRouter();

  app.use(requestContext(deps.logger, deps.metrics));
  app.use(async (c, next) => {
    await next();
    // While draining, tell keep-alive clients to reconnect (to another pod) after this response.
    if (deps.lifecycle.draining) setResponseHeader(c, 'Connection', 'close');
  });
  app.use(securityHeaders());
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
  app.use('/v1/*', limitRequestBody(config.http.bodyLimitBytes), requireJsonBody());
  // Pages of rooms and messages, and the API documents, can be large and compress well. Nothing
  // else is compressed: single objects are small, and compress() adds `Vary` after the handler,
  // which makes @hono/node-server rebuild the response, so it runs only where it can pay off.
  const compressPage = compress({ threshold: 1_024 });
  for (const path of ['/v1/rooms', '/v1/rooms/:roomId/messages', '/openapi.json', '/asyncapi.json']) {
    app.use(path, (c, next) => (c.req.method === 'GET' ? compressPage(c, next) : next()));
  }

  const auth = authService(authRepository(deps.db), tokens, config.auth.refreshTokenTtlSeconds);
  app.route('/', authRoutes({ auth, tokens, rateLimits, trustedProxyHops: config.trustedProxyHops }));

  // Everything under /v1/rooms, /v1/leaderboards and /v1/attachments needs a signed-in user, limited
  // per user across all processes.
  for (const path of ['/v1/rooms', '/v1/rooms/*', '/v1/leaderboards/*', '/v1/attachments/*']) {
    app.use(
      path,
      requireAuth(tokens),
      rateLimits.middleware('api', (c) => `user:${c.get('principal').userId}`),
    );
  }
  const common = {
    redis: deps.redis,
    redisBreaker: deps.breakers.redis,
    pubsub: deps.pubsub,
    instanceId: config.instanceId,
  };
  const awards = leaderboardAwards({
    redis: deps.redis,
    redisBreaker: deps.breakers.redis,
    jobs: deps.jobs,
    config: config.leaderboards,
    logger: deps.logger,
  });
  const rooms = roomsService({
    ...common,
    repository: roomsRepository(deps.db),
    cache: deps.cache,
    leaderboards: awards,
  });
  const attachments = attachmentsService({
    repository: attachmentsRepository(deps.db),
    storage: attachmentStorage(deps.s3, config.s3.attachmentsBucket),
    rooms,
    jobs: deps.jobs,
    config: config.attachments,
  });
  const messagesStore = messagesRepository(deps.db);
  const messages = messagesService({
    ...common,
    repository: messagesStore,
    rooms,
    leaderboards: awards,
    attachments,
  });
  app.route('/', roomRoutes(rooms));
  app.route(
    '/',
    attachmentRoutes({
      attachments,
      // Declaring an upload also takes a point of the upload tier (on top of the api tier).
      uploadLimit: rateLimits.middleware('upload', (c) => `user:${c.get('principal').userId}`),
    }),
  );
  app.route(
    '/',
    messageRoutes({
      messages,
      idempotency: idempotency({ redis: deps.redis, breaker: deps.breakers.redis }),
      redisWrite: () => new RedisWrite(deps.redis, deps.breakers.redis),
    }),
  );

  app.route(
    '/',
    leaderboardRoutes(
      leaderboardsService({
        redis: deps.redis,
        redisBreaker: deps.breakers.redis,
        rooms,
        repository: leaderboardsRepository(deps.db),
      }),
    ),
  );

  const metrics = realtimeMetrics(deps.metrics.registry);
  const tickets = ticketStore(deps.redis, deps.breakers.redis, config.realtime.ticketTtlSeconds);
  const gateway = createGateway({
    config: config.realtime,
    instanceId: config.instanceId,
    tokens,
    rooms,
    messages: messagesStore,
    pubsub: deps.pubsub,
    redis: deps.redis,
    redisBreaker: deps.breakers.redis,
    metrics,
    logger: deps.logger,
  });
  app.route('/', realtimeRoutes({ tickets, tokens, rateLimits }));

  app.openAPIRegistry.registerComponent('securitySchemes', 'bearerAuth', {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'JWT',
  });
  app.doc31('/openapi.json', {
    openapi: '3.1.0',
    info: { title: 'Parley API', version: '1.0.0', description: 'Chat rooms, messages and live events.' },
  });
  app.onError(handleError);
  app.notFound(handleNotFound);
  const upgrade = realtimeUpgrade({
    gateway,
    tokens,
    tickets,
    allowedOrigins: config.realtime.allowedOrigins,
    metrics,
    logger: deps.logger,
  });
  return { app, gateway, upgrade };
}
