import { createRoute, z } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import { Unauthenticated } from '../../domain/errors.js';
import { clientIp } from '../../http/client-ip.js';
import { problemResponse as problem } from '../../http/openapi.js';
import type { RateLimits } from '../../http/rate-limit.js';
import { createRouter } from '../../http/router.js';
import type { AppEnv } from '../../http/types.js';
import type { AuthService } from './service.js';
import type { TokenService } from './tokens.js';

const BEARER = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/i;

/** Requires `Authorization: Bearer <access token>` and puts the verified principal on the context. */
export function requireAuth(tokens: TokenService): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const header = c.req.header('authorization');
    const token = header === undefined ? undefined : BEARER.exec(header)?.[1];
    if (token === undefined)
      throw new Unauthenticated('send an access token as "Authorization: Bearer <token>"');
    c.set('principal', tokens.cachedPrincipal(token) ?? (await tokens.verifyAccessToken(token)));
    await next();
  };
}

const Credentials = z
  .strictObject({
    username: z
      .string()
      .min(3)
      .max(32)
      .regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, "_", "." and "-" only'),
    password: z.string().min(8).max(128),
  })
  .openapi('Credentials');

const TokenPairSchema = z
  .object({
    accessToken: z.string(),
    refreshToken: z.string(),
    tokenType: z.literal('Bearer'),
    expiresIn: z.number().int().openapi({ description: 'access token lifetime in seconds' }),
  })
  .openapi('TokenPair');

const UserSchema = z
  .object({ id: z.uuid(), username: z.string(), createdAt: z.iso.datetime() })
  .openapi('User');
const jsonBody = <T extends z.ZodType>(schema: T) => ({
  required: true,
  content: { 'application/json': { schema } },
});

const register = createRoute({
  method: 'post',
  path: '/v1/auth/register',
  tags: ['auth'],
  request: { body: jsonBody(Credentials) },
  responses: {
    201: { description: 'registered', content: { 'application/json': { schema: UserSchema } } },
    400: problem('invalid username or password'),
    409: problem('username taken'),
    429: problem('rate limited'),
  },
});

const login = createRoute({
  method: 'post',
  path: '/v1/auth/login',
  tags: ['auth'],
  request: { body: jsonBody(Credentials) },
  responses: {
    200: { description: 'tokens', content: { 'application/json': { schema: TokenPairSchema } } },
    401: problem('wrong username or password'),
    429: problem('rate limited'),
  },
});

const refresh = createRoute({
  method: 'post',
  path: '/v1/auth/refresh',
  tags: ['auth'],
  request: { body: jsonBody(z.strictObject({ refreshToken: z.string().min(1).max(200) })) },
  responses: {
    200: { description: 'rotated tokens', content: { 'application/json': { schema: TokenPairSchema } } },
    401: problem('refresh token invalid, expired, revoked or reused'),
  },
});

const logout = createRoute({
  method: 'post',
  path: '/v1/auth/logout',
  tags: ['auth'],
  security: [{ bearerAuth: [] }],
  responses: {
    204: { description: 'the session and its tokens are revoked' },
    401: problem('not signed in'),
  },
});

const jwks = createRoute({
  method: 'get',
  path: '/.well-known/jwks.json',
  tags: ['auth'],
  responses: {
    200: {
      description: 'public keys that verify access tokens',
      content: {
        'application/json': { schema: z.object({ keys: z.array(z.record(z.string(), z.unknown())) }) },
      },
    },
  },
});

export function authRoutes(deps: {
  auth: AuthService;
  tokens: TokenService;
  rateLimits: RateLimits;
  trustedProxyHops: number;
}) {
  const router = createRouter();
  // Brute force is limited per client address and username together (the auth tier).
  const limitAttempts = (c: Parameters<typeof deps.rateLimits.enforce>[0], username: string) =>
    deps.rateLimits.enforce(c, 'auth', `${clientIp(c, deps.trustedProxyHops)}:${username.toLowerCase()}`);

  router.openapi(register, async (c) => {
    const { username, password } = c.req.valid('json');
    await limitAttempts(c, username);
    const user = await deps.auth.register(username, password);
    return c.json({ ...user, createdAt: user.createdAt.toISOString() }, 201);
  });

  router.openapi(login, async (c) => {
    const { username, password } = c.req.valid('json');
    await limitAttempts(c, username);
    return c.json(await deps.auth.login(username, password), 200);
  });

  router.openapi(refresh, async (c) =>
    c.json(await deps.auth.refresh(c.req.valid('json').refreshToken), 200),
  );

  router.use('/v1/auth/logout', requireAuth(deps.tokens));
  router.openapi(logout, async (c) => {
    await deps.auth.logout(c.get('principal').sessionId);
    return c.body(null, 204);
  });

  router.openapi(jwks, (c) => {
    c.header('Cache-Control', 'public, max-age=300');
    return c.json(deps.tokens.jwks, 200);
  });
  return router;
}
