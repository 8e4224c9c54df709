/**
 * One route three times: `/hello`; `/hello-auth`, the same handler behind the real requireAuth
 * (jose EdDSA verify on a miss, the LRU cache on a hit); `/hello-redis`, plus one Redis GET.
 * Prints its port and a token.
 */
import { Hono } from 'hono';
import { loadConfig } from '../../src/config.js';
import { loadSigningKey } from '../../src/features/auth/keys.js';
import { TokenService } from '../../src/features/auth/tokens.js';
import { requireAuth } from '../../src/features/auth/routes.js';
import type { AppEnv } from '../../src/http/types.js';
import { createBreakerFactory } from '../../src/platform/breakers.js';
import { listen } from '../../src/platform/http-server.js';
import { createLogger } from '../../src/platform/logger.js';
import { createMetrics } from '../../src/platform/metrics.js';
import { PubSub } from '../../src/platform/pubsub.js';
import { createRedis } from '../../src/platform/redis.js';

const config = loadConfig(process.env, 'api');
const logger = createLogger({ ...config, logLevel: 'warn' }, 'api');
const metrics = createMetrics();
const redis = createRedis(config.redis, 'app');
const tokens = new TokenService(
  await loadSigningKey(config.auth.privateKeyPem!),
  config.auth,
  redis,
  createBreakerFactory(metrics.registry)('redis', { timeoutMs: 1_000, openMs: 3_000, isFailure: () => true }),
  new PubSub(config.redis, redis, logger),
  logger,
  metrics.registry,
);
await tokens.start();

const app = new Hono<AppEnv>();
app.get('/hello', (c) => c.json({ hello: 'world' }));
app.get('/hello-auth', requireAuth(tokens), (c) => c.json({ hello: c.get('principal').userId }));
// The issue's reference point: Hono plus one Redis round trip, the floor for any route that asks Redis.
await redis.set('bench:hello', 'world');
app.get('/hello-redis', async (c) => c.json({ hello: await redis.get('bench:hello') }));
const server = await listen(app.fetch, '127.0.0.1', 0);
const { token } = await tokens.issueAccessToken('0191d3b4-5d0e-7a3c-9f1e-3c2b1a000001', 'bench-session');
process.stdout.write(`${JSON.stringify({ port: server.port, token })}\n`);
