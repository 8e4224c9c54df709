import type { Redis } from 'ioredis';
import { v7 as uuidv7 } from 'uuid';
import { Forbidden, NotFound, NotPropagated } from '../../domain/errors.js';
import type { Breaker } from '../../platform/breakers.js';
import type { Cache } from '../../platform/cache.js';
import type { PubSub } from '../../platform/pubsub.js';
import type { LeaderboardAwards } from '../leaderboards/service.js';
import { publishRoomEvent } from './events.js';
import type { Room, RoomsRepository } from './repository.js';

// The room and its member ids are one entry: every request on a room needs both. Each process keeps
// a copy for a few seconds at most (dropped at once on every process by any membership change).
const ROOM_CACHE = { name: 'room', ttlSeconds: 60, localTtlMs: 5_000 };

interface CachedRoom {
  room: Room | null;
  memberIds: string[];
}

export interface RoomView extends Room {
  memberCount: number;
  isMember: boolean;
}

export function roomsService(deps: {
  repository: RoomsRepository;
  cache: Cache;
  redis: Redis;
  redisBreaker: Breaker;
  pubsub: PubSub;
  instanceId: string;
  leaderboards?: Pick<LeaderboardAwards, 'award'>;
}) {
  const { repository, cache } = deps;
  const cachedRoom = (roomId: string, fresh = false) =>
    cache.getOrLoad<CachedRoom>(
      ROOM_CACHE.name,
      roomId,
      ROOM_CACHE,
      async () => {
        const room = await repository.find(roomId);
        return { room, memberIds: room ? await repository.memberIds(roomId) : [] };
      },
      fresh,
    );
  const refuses = ({ room, memberIds }: CachedRoom, userId: string) =>
    !room || (room.visibility === 'private' && !memberIds.includes(userId));

  /**
   * The room as `userId` may see it. A private room the user is not in answers 404, exactly as a
   * room that does not exist: its existence must not leak.
   */
  async function visibleRoom(userId: string, roomId: string, mustBeMember = false): Promise<RoomView> {
    let entry = await cachedRoom(roomId);
    // A refusal is never served from this process's copy alone: a join committed on another
    // process a moment ago may not have reached it yet.
    if (refuses(entry, userId) || (mustBeMember && !entry.memberIds.includes(userId)))
      entry = await cachedRoom(roomId, true);
    const { room: found, memberIds } = entry;
    if (refuses(entry, userId)) throw new NotFound(`no room ${roomId}`);
    return { ...found!, memberCount: memberIds.length, isMember: memberIds.includes(userId) };
  }

  /**
   * The durable change is in MySQL already; this drops the cached room entry (in Redis and, through
   * the same MULTI/EXEC, on every process) checks every reply, and only then announces the change.
   */
  async function commitMembershipChange(
    roomId: string,
    userId: string,
    type: 'member.joined' | 'member.left',
  ) {
    const replies = await deps.redisBreaker
      .run(() => cache.invalidateIn(deps.redis.multi(), ROOM_CACHE.name, roomId).exec())
      .catch((error: unknown) => [[error as Error, null]] as [Error | null, unknown][]);
    const failed = replies?.find(([error]) => error !== null);
    if (!replies || failed) {
      // The cache may still list the old members for up to its TTL; MySQL is right already.
      throw new NotPropagated(
        'the membership change is saved but could not be propagated; retry',
        'membership-not-propagated',
      );
    }
    await publishRoomEvent(deps.pubsub, deps.instanceId, { type, roomId, userId }).catch(() => undefined);
  }

  return {
    visibleRoom,

    /** A member of the room (any visibility) or a 404/403 problem. */
    async memberRoom(userId: string, roomId: string): Promise<RoomView> {
      const view = await visibleRoom(userId, roomId, true);
      if (!view.isMember) throw new Forbidden(`join room ${roomId} before posting in it`);
      return view;
    },

    async create(ownerId: string, name: string, visibility: Room['visibility']): Promise<RoomView> {
      const id = uuidv7();
      await deps.repository.create({ id, name, visibility, ownerId });
      await deps.leaderboards?.award('room-created', id, ownerId);
      return { ...(await deps.repository.find(id))!, memberCount: 1, isMember: true };
    },

    list: (userId: string, before: string | undefined, limit: number) =>
      repository.listVisible(userId, before, limit),

    /** Joins `userId` to the room; a private room needs the caller (`actorId`) to be a member already. */
    async join(
      actorId: string,
      roomId: string,
      userId: string,
    ): Promise<{ joined: boolean; room: RoomView }> {
      const view = await visibleRoom(actorId, roomId);
      if (actorId !== userId && !view.isMember)
        throw new Forbidden('only members can invite others to a room');
      const joined = await repository.addMember(roomId, userId);
      if (joined) await commitMembershipChange(roomId, userId, 'member.joined');
      return { joined, room: await visibleRoom(actorId, roomId) };
    },

    async leave(userId: string, roomId: string): Promise<void> {
      await visibleRoom(userId, roomId);
      if (await repository.removeMember(roomId, userId))
        await commitMembershipChange(roomId, userId, 'member.left');
    },
  };
}

export type RoomsService = ReturnType<typeof roomsService>;
