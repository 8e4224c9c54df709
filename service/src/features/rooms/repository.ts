import { and, desc, eq, inArray, lt, or } from 'drizzle-orm';
import { roomMemberships, rooms } from '../../db/schema.js';
import { NotFound } from '../../domain/errors.js';
import { isDuplicateKey, isMissingReference, type Database } from '../../platform/mysql.js';

export interface Room {
  id: string;
  name: string;
  visibility: 'public' | 'private';
  ownerId: string;
  createdAt: string;
}

const toRoom = (row: typeof rooms.$inferSelect): Room => ({ ...row, createdAt: row.createdAt.toISOString() });

export function roomsRepository(db: Database) {
  return {
    async create(room: Omit<Room, 'createdAt'>): Promise<void> {
      await db.write((database) =>
        database.transaction(async (tx) => {
          await tx.insert(rooms).values(room);
          await tx.insert(roomMemberships).values({ roomId: room.id, userId: room.ownerId, role: 'owner' });
        }),
      );
    },

    /** Cache loaders read the latest: a room must be visible the moment its creation returns. */
    async find(id: string): Promise<Room | null> {
      const [row] = await db.readLatest((database) =>
        database.select().from(rooms).where(eq(rooms.id, id)).limit(1),
      );
      return row ? toRoom(row) : null;
    },

    async memberIds(roomId: string): Promise<string[]> {
      const rows = await db.readLatest((database) =>
        database
          .select({ userId: roomMemberships.userId })
          .from(roomMemberships)
          .where(eq(roomMemberships.roomId, roomId)),
      );
      return rows.map((row) => row.userId).sort();
    },

    /** Public rooms and the caller's private rooms, newest first (ids are UUIDv7, time-ordered). */
    async listVisible(userId: string, before: string | undefined, limit: number): Promise<Room[]> {
      const rows = await db.read((database) => {
        const mine = database
          .select({ roomId: roomMemberships.roomId })
          .from(roomMemberships)
          .where(eq(roomMemberships.userId, userId));
        const visible = or(eq(rooms.visibility, 'public'), inArray(rooms.id, mine));
        return database
          .select()
          .from(rooms)
          .where(before ? and(visible, lt(rooms.id, before)) : visible)
          .orderBy(desc(rooms.id))
          .limit(limit);
      });
      return rows.map(toRoom);
    },

    /** False when the user already was a member. */
    async addMember(roomId: string, userId: string): Promise<boolean> {
      try {
        await db.write((database) =>
          database.insert(roomMemberships).values({ roomId, userId, role: 'member' }),
        );
        return true;
      } catch (error) {
        if (isDuplicateKey(error)) return false;
        if (isMissingReference(error)) throw new NotFound(`no user ${userId}`);
        throw error;
      }
    },

    async removeMember(roomId: string, userId: string): Promise<boolean> {
      const [result] = await db.write((database) =>
        database
          .delete(roomMemberships)
          .where(and(eq(roomMemberships.roomId, roomId), eq(roomMemberships.userId, userId))),
      );
      return result.affectedRows === 1;
    },
  };
}

export type RoomsRepository = ReturnType<typeof roomsRepository>;
