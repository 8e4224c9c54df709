import { and, eq, isNull } from 'drizzle-orm';
import { refreshTokens, users } from '../../db/schema.js';
import type { Database } from '../../platform/mysql.js';

export interface UserRow {
  id: string;
  username: string;
  passwordHash: string;
  createdAt: Date;
}

export interface RefreshTokenRow {
  id: string;
  userId: string;
  familyId: string;
  expiresAt: Date;
  rotatedAt: Date | null;
  revokedAt: Date | null;
}

/** Auth reads go to the primary: a login right after registering must find the user. */
export function authRepository(db: Database) {
  return {
    async insertUser(user: Omit<UserRow, 'createdAt'>): Promise<void> {
      await db.write((database) => database.insert(users).values(user));
    },

    async findUserByUsername(username: string): Promise<UserRow | undefined> {
      const [row] = await db.write((database) =>
        database.select().from(users).where(eq(users.username, username)).limit(1),
      );
      return row;
    },

    async findUserById(id: string): Promise<UserRow | undefined> {
      const [row] = await db.write((database) =>
        database.select().from(users).where(eq(users.id, id)).limit(1),
      );
      return row;
    },

    async insertRefreshToken(token: RefreshTokenRow & { tokenHash: string }): Promise<void> {
      await db.write((database) => database.insert(refreshTokens).values(token));
    },

    async findRefreshToken(tokenHash: string): Promise<RefreshTokenRow | undefined> {
      const [row] = await db.write((database) =>
        database
          .select({
            id: refreshTokens.id,
            userId: refreshTokens.userId,
            familyId: refreshTokens.familyId,
            expiresAt: refreshTokens.expiresAt,
            rotatedAt: refreshTokens.rotatedAt,
            revokedAt: refreshTokens.revokedAt,
          })
          .from(refreshTokens)
          .where(eq(refreshTokens.tokenHash, tokenHash))
          .limit(1),
      );
      return row;
    },

    /** Marks a token rotated; false if another request rotated (or revoked) it first. */
    async markRotated(id: string): Promise<boolean> {
      const [result] = await db.write((database) =>
        database
          .update(refreshTokens)
          .set({ rotatedAt: new Date() })
          .where(
            and(eq(refreshTokens.id, id), isNull(refreshTokens.rotatedAt), isNull(refreshTokens.revokedAt)),
          ),
      );
      return result.affectedRows === 1;
    },

    async revokeFamily(familyId: string): Promise<void> {
      await db.write((database) =>
        database
          .update(refreshTokens)
          .set({ revokedAt: new Date() })
          .where(and(eq(refreshTokens.familyId, familyId), isNull(refreshTokens.revokedAt))),
      );
    },
  };
}

export type AuthRepository = ReturnType<typeof authRepository>;
