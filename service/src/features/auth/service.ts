import { createHash, randomBytes } from 'node:crypto';
import { v7 as uuidv7 } from 'uuid';
import { Conflict, Unauthenticated } from '../../domain/errors.js';
import { isDuplicateKey } from '../../platform/mysql.js';
import { DUMMY_HASH_PROMISE, hashPassword, verifyPassword } from './passwords.js';
import type { AuthRepository } from './repository.js';
import type { TokenService } from './tokens.js';

export interface TokenPair {
  accessToken: string;
  refreshToken: string;
  tokenType: 'Bearer';
  expiresIn: number;
}

const hashToken = (token: string) => createHash('sha256').update(token).digest('hex');

export function authService(
  repository: AuthRepository,
  tokens: TokenService,
  refreshTokenTtlSeconds: number,
) {
  async function issuePair(userId: string, familyId: string): Promise<TokenPair> {
    const refreshToken = randomBytes(32).toString('base64url');
    await repository.insertRefreshToken({
      id: uuidv7(),
      userId,
      familyId,
      tokenHash: hashToken(refreshToken),
      expiresAt: new Date(Date.now() + refreshTokenTtlSeconds * 1000),
      rotatedAt: null,
      revokedAt: null,
    });
    const access = await tokens.issueAccessToken(userId, familyId);
    return { accessToken: access.token, refreshToken, tokenType: 'Bearer', expiresIn: access.expiresIn };
  }

  async function revokeFamily(familyId: string): Promise<void> {
    await repository.revokeFamily(familyId);
    await tokens.revokeSession(familyId);
  }

  return {
    async register(username: string, password: string) {
      const user = { id: uuidv7(), username, passwordHash: await hashPassword(password) };
      try {
        await repository.insertUser(user);
      } catch (error) {
        if (isDuplicateKey(error))
          throw new Conflict(`the username "${username}" is taken`, 'username-taken');
        throw error;
      }
      const created = await repository.findUserById(user.id);
      return { id: user.id, username, createdAt: created!.createdAt };
    },

    async login(username: string, password: string): Promise<TokenPair> {
      const user = await repository.findUserByUsername(username);
      // Verify against a dummy hash for unknown users too: the timing must not reveal who exists.
      const valid = await verifyPassword(password, user?.passwordHash ?? (await DUMMY_HASH_PROMISE));
      if (!user || !valid) throw new Unauthenticated('the username or password is wrong');
      return issuePair(user.id, uuidv7());
    },

    /**
     * Rotates a refresh token. A token presented after it was rotated has leaked (or raced): the
     * whole family, and every access token issued from it, is revoked.
     */
    async refresh(refreshToken: string): Promise<TokenPair> {
      const row = await repository.findRefreshToken(hashToken(refreshToken));
      if (!row) throw new Unauthenticated('the refresh token is not valid');
      if (row.revokedAt) throw new Unauthenticated('the refresh token was revoked');
      if (row.rotatedAt || !(await repository.markRotated(row.id))) {
        await revokeFamily(row.familyId);
        throw new Unauthenticated(
          'the refresh token was already used; this session has been revoked everywhere',
        );
      }
      if (row.expiresAt.getTime() <= Date.now()) throw new Unauthenticated('the refresh token has expired');
      return issuePair(row.userId, row.familyId);
    },

    async logout(sessionId: string): Promise<void> {
      await revokeFamily(sessionId);
    },
  };
}

export type AuthService = ReturnType<typeof authService>;
