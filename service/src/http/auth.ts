import type { MiddlewareHandler } from 'hono';
import { InvalidToken, type TokenService } from '../features/auth/tokens.js';
import { ProblemError } from './problem.js';
import type { AppEnv } from './types.js';

export class Unauthorized extends ProblemError {
  constructor(detail: string) {
    super(401, 'unauthorized', 'Unauthorized', detail, {}, { 'WWW-Authenticate': 'Bearer realm="parley"' });
  }
}

/** Requires `Authorization: Bearer <access token>` and puts the verified principal on the context. */
export function requireAuth(tokens: TokenService): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const header = c.req.header('authorization');
    const match = header ? /^Bearer ([A-Za-z0-9._~+/-]+=*)$/i.exec(header) : null;
    if (!match) throw new Unauthorized('send an access token as "Authorization: Bearer <token>"');
    try {
      c.set('principal', tokens.cachedPrincipal(match[1]!) ?? (await tokens.verifyAccessToken(match[1]!)));
    } catch (error) {
      if (error instanceof InvalidToken)
        throw new Unauthorized(`the access token is not valid: ${error.message}`);
      throw error;
    }
    await next();
  };
}
