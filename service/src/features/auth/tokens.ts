import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { createLocalJWKSet, jwtVerify, SignJWT, type JWTPayload } from 'jose';
import { LRUCache } from 'lru-cache';
import { Counter, type Registry } from 'prom-client';
import { Unauthenticated } from '../../domain/errors.js';
import type { Principal } from '../../domain/principal.js';
import type { Breaker } from '../../platform/breakers.js';
import type { Logger } from '../../platform/logger.js';
import type { PubSub } from '../../platform/pubsub.js';
import type { SigningKey } from './keys.js';

const REVOCATIONS_CHANNEL = 'parley:auth:revocations';
const AUDIENCE = 'parley-api';
const revokedKey = (sessionId: string) => `parley:auth:revoked:${sessionId}`;

/**
 * Issues, verifies and revokes access tokens: the one place a token is checked, for HTTP requests
 * (requireAuth) and anything else that authenticates a caller. Verification is cached per token in a bounded LRU whose entry
 * lives exactly until the token's `exp`, so the hit path costs a map lookup instead of an Ed25519
 * verify. Revoking a session reaches every process at once: a Redis key (checked on every cache
 * miss) plus a pub/sub message that evicts the session's tokens from every process's cache. If the
 * subscription drops, the cache is cleared, since a revocation may have been missed.
 */
export class TokenService {
  private readonly cache: LRUCache<string, Principal>;
  private readonly keySet: ReturnType<typeof createLocalJWKSet>;
  private readonly lookups: Record<'cache_hit' | 'verified' | 'rejected', { inc(): void }>;
  private readonly revokedListeners: ((sessionId: string) => void)[] = [];

  constructor(
    private readonly key: SigningKey,
    private readonly options: { issuer: string; accessTokenTtlSeconds: number },
    private readonly redis: Redis,
    private readonly redisBreaker: Breaker,
    private readonly pubsub: PubSub,
    private readonly logger: Logger,
    registry: Registry,
    cacheSize = 50_000,
  ) {
    this.cache = new LRUCache({ max: cacheSize, ttlAutopurge: false });
    this.keySet = createLocalJWKSet({ keys: [key.jwk] });
    const counter = new Counter({
      name: 'parley_jwt_verify_total',
      help: 'Access token verifications by result (cache_hit, verified, rejected)',
      labelNames: ['result'] as const,
      registers: [registry],
    });
    // Bound once: label lookup on every request would cost more than the cache hit it counts.
    this.lookups = {
      cache_hit: counter.labels('cache_hit'),
      verified: counter.labels('verified'),
      rejected: counter.labels('rejected'),
    };
    pubsub.onResubscribed(() => {
      logger.warn('revocation channel reconnected: clearing the token cache');
      this.cache.clear();
    });
  }

  /** Subscribes to revocations; call once at start-up. */
  async start(): Promise<void> {
    await this.pubsub.subscribe(REVOCATIONS_CHANNEL, (message) => {
      const { sessionId } = message as { sessionId?: string };
      if (typeof sessionId === 'string') this.evictSession(sessionId);
    });
  }

  get jwks(): { keys: object[] } {
    return { keys: [this.key.jwk] };
  }

  async issueAccessToken(userId: string, sessionId: string): Promise<{ token: string; expiresIn: number }> {
    const token = await new SignJWT({ sid: sessionId })
      .setProtectedHeader({ alg: 'EdDSA', kid: this.key.kid, typ: 'at+jwt' })
      .setSubject(userId)
      .setIssuer(this.options.issuer)
      .setAudience(AUDIENCE)
      .setJti(randomUUID())
      .setIssuedAt()
      .setExpirationTime(`${this.options.accessTokenTtlSeconds}s`)
      .sign(this.key.privateKey);
    return { token, expiresIn: this.options.accessTokenTtlSeconds };
  }

  /** The hit path, synchronous: an await costs more than the lookup itself. */
  cachedPrincipal(token: string): Principal | undefined {
    const cached = this.cache.get(token);
    if (!cached || cached.exp * 1000 <= Date.now()) return undefined;
    this.lookups.cache_hit.inc();
    return cached;
  }

  /** The token's principal; Unauthenticated when it is malformed, expired, forged or revoked. */
  async verifyAccessToken(token: string): Promise<Principal> {
    const cached = this.cachedPrincipal(token);
    if (cached) return cached;
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.keySet, {
        issuer: this.options.issuer,
        audience: AUDIENCE,
        algorithms: ['EdDSA'],
        typ: 'at+jwt',
        requiredClaims: ['sub', 'exp', 'sid'],
      }));
    } catch (error) {
      this.lookups.rejected.inc();
      throw new Unauthenticated(`the access token is not valid: ${(error as Error).message}`);
    }
    const principal: Principal = { userId: payload.sub!, sessionId: String(payload.sid), exp: payload.exp! };
    if (await this.isRevoked(principal.sessionId)) {
      this.lookups.rejected.inc();
      throw new Unauthenticated('the access token is not valid: the session was revoked');
    }
    this.lookups.verified.inc();
    const ttl = principal.exp * 1000 - Date.now();
    if (ttl > 0) this.cache.set(token, principal, { ttl });
    return principal;
  }

  /** Revokes every access token of a session, on every process. */
  async revokeSession(sessionId: string): Promise<void> {
    this.evictSession(sessionId);
    await this.redisBreaker.run(() =>
      this.redis.set(revokedKey(sessionId), '1', 'EX', this.options.accessTokenTtlSeconds + 60),
    );
    await this.pubsub.publish(REVOCATIONS_CHANNEL, { sessionId });
  }

  /** Called on every process when a session is revoked (live connections of it must end). */
  onSessionRevoked(listener: (sessionId: string) => void): void {
    this.revokedListeners.push(listener);
  }

  /** Whether the session was revoked; false when Redis cannot say (see verifyAccessToken). */
  async isRevoked(sessionId: string): Promise<boolean> {
    try {
      return (await this.redisBreaker.run(() => this.redis.exists(revokedKey(sessionId)))) === 1;
    } catch (error) {
      // Redis down: accept the signed token (reads keep working); revocations resume with Redis.
      this.logger.warn({ err: error }, 'revocation list unavailable; accepting a validly signed token');
      return false;
    }
  }

  private evictSession(sessionId: string): void {
    for (const [token, principal] of this.cache.entries()) {
      if (principal.sessionId === sessionId) this.cache.delete(token);
    }
    for (const listener of this.revokedListeners) listener(sessionId);
  }
}
