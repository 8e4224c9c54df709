import { createLocalJWKSet, jwtVerify } from 'jose';
import { Bench } from 'tinybench';
import { loadConfig } from '../src/config.js';
import { loadSigningKey } from '../src/features/auth/keys.js';
import { TokenService } from '../src/features/auth/tokens.js';
import { createBreakerFactory } from '../src/platform/breakers.js';
import { createLogger } from '../src/platform/logger.js';
import { createMetrics } from '../src/platform/metrics.js';
import { PubSub } from '../src/platform/pubsub.js';
import { createRedis } from '../src/platform/redis.js';
import { median } from './load.js';

/** One verifyAccessToken on a cache hit against one jose EdDSA verify of the same token. */
export async function jwtMicrobenchmark(env: Record<string, string>) {
  const config = loadConfig(env, 'api');
  const logger = createLogger({ ...config, logLevel: 'silent' }, 'api');
  const metrics = createMetrics();
  const redis = createRedis(config.redis, 'app');
  const pubsub = new PubSub(config.redis, redis, logger);
  const key = await loadSigningKey(config.auth.privateKeyPem!);
  const breaker = createBreakerFactory(metrics.registry)('redis', {
    timeoutMs: 1_000,
    openMs: 3_000,
    isFailure: () => true,
  });
  const tokens = new TokenService(key, config.auth, redis, breaker, pubsub, logger, metrics.registry);
  const { token } = await tokens.issueAccessToken('0191d3b4-5d0e-7a3c-9f1e-3c2b1a000001', 'bench');
  await tokens.verifyAccessToken(token); // now cached
  const keySet = createLocalJWKSet({ keys: [key.jwk] });
  const options = { issuer: config.auth.issuer, audience: 'parley-api', algorithms: ['EdDSA'] };

  const bench = new Bench({ time: 2_000, warmupTime: 500 });
  bench
    .add('verifyAccessToken (LRU hit)', async () => {
      await tokens.verifyAccessToken(token);
    })
    .add('jose jwtVerify (EdDSA)', async () => {
      await jwtVerify(token, keySet, options);
    });
  await bench.run();
  await pubsub.close();
  redis.disconnect();
  const [hit, verify] = bench.tasks.map((task) => task.result!);
  return {
    hitNs: median(hit!.samples) * 1e6,
    verifyNs: median(verify!.samples) * 1e6,
    hitMeanNs: hit!.mean * 1e6,
    verifyMeanNs: verify!.mean * 1e6,
  };
}
