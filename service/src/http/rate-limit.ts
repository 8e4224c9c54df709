import type { Context, MiddlewareHandler } from 'hono';
import type { Redis } from 'ioredis';
import { Counter, type Registry } from 'prom-client';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import type { RateLimitTier } from '../config.js';
import type { Breaker } from '../platform/breakers.js';
import type { Logger } from '../platform/logger.js';
import { ProblemError } from './problem.js';
import { LeasedLimiter, type Decision } from './rate-limit-leases.js';
import { setResponseHeader } from './response-headers.js';
import type { AppEnv } from './types.js';

export type TierName = 'auth' | 'api' | 'upload';

/**
 * Rate limits shared by every API process through Redis (rate-limiter-flexible), taken in leases
 * (LeasedLimiter: a busy user costs one round trip per block of points, not per request). When Redis
 * is unavailable (its breaker open, or the client not ready) each process falls back to its own
 * in-memory limiter with the same quota: fail open, but never unlimited. The fallback is counted.
 */
export class RateLimits {
  private readonly shared: Record<TierName, LeasedLimiter>;
  private readonly local: Record<TierName, RateLimiterMemory>;
  private readonly fallbacks: Counter<'tier'>;
  private readonly rejections: Counter<'tier'>;

  constructor(
    redis: Redis,
    breaker: Breaker,
    private readonly tiers: Record<TierName, RateLimitTier>,
    registry: Registry,
    private readonly logger: Logger,
  ) {
    const make = <T>(build: (tier: TierName, limit: RateLimitTier) => T) =>
      Object.fromEntries(
        (Object.keys(tiers) as TierName[]).map((tier) => [tier, build(tier, tiers[tier])]),
      ) as Record<TierName, T>;
    this.shared = make(
      (tier, limit) =>
        new LeasedLimiter(
          new RateLimiterRedis({
            storeClient: redis,
            keyPrefix: `parley:rl:${tier}`,
            points: limit.points,
            duration: limit.seconds,
            rejectIfRedisNotReady: true,
          }),
          (call) => breaker.run(call),
        ),
    );
    this.local = make(
      (tier, limit) =>
        new RateLimiterMemory({ keyPrefix: tier, points: limit.points, duration: limit.seconds }),
    );
    this.fallbacks = new Counter({
      name: 'parley_rate_limit_fallback_total',
      help: 'Rate-limit decisions made by the per-process fallback because Redis was unavailable',
      labelNames: ['tier'] as const,
      registers: [registry],
    });
    this.rejections = new Counter({
      name: 'parley_rate_limit_rejected_total',
      help: 'Requests rejected with 429 by tier',
      labelNames: ['tier'] as const,
      registers: [registry],
    });
  }

  /** Takes one point for `key` in `tier`; sets RateLimit headers; throws a 429 problem when spent. */
  async enforce(c: Context, tier: TierName, key: string): Promise<void> {
    const decision = await this.consume(tier, key);
    const limit = this.tiers[tier];
    // On the response whatever it turns out to be: the 429 below carries them as well.
    setResponseHeader(c, 'RateLimit-Policy', `"${tier}";q=${limit.points};w=${limit.seconds}`);
    setResponseHeader(c, 'RateLimit', `"${tier}";r=${decision.remaining};t=${decision.resetSeconds}`);
    if (!decision.allowed) {
      this.rejections.inc({ tier });
      throw new ProblemError(
        429,
        'rate-limited',
        'Too Many Requests',
        `the ${tier} rate limit (${limit.points} per ${limit.seconds} s) is spent; retry in ${decision.resetSeconds} s`,
        { tier },
        { 'Retry-After': String(decision.resetSeconds) },
      );
    }
  }

  middleware(tier: TierName, keyOf: (c: Context<AppEnv>) => string): MiddlewareHandler<AppEnv> {
    return async (c, next) => {
      await this.enforce(c, tier, keyOf(c));
      await next();
    };
  }

  private async consume(tier: TierName, key: string): Promise<Decision> {
    try {
      return await this.shared[tier].consume(key);
    } catch (error) {
      this.fallbacks.inc({ tier });
      this.logger.debug({ err: error, tier }, 'rate limit fell back to the per-process limiter');
      const result = await this.local[tier].consume(key).catch((rejection: unknown) => {
        if (rejection instanceof RateLimiterRes) return rejection;
        throw rejection;
      });
      return toDecision(result, this.tiers[tier]);
    }
  }
}

function toDecision(result: RateLimiterRes, limit: RateLimitTier): Decision {
  return {
    allowed: result.consumedPoints <= limit.points,
    remaining: Math.max(0, result.remainingPoints),
    resetSeconds: Math.max(1, Math.ceil(result.msBeforeNext / 1000)),
  };
}
