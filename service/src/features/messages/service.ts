import type { Redis } from 'ioredis';
import { IdempotencyKeyReused } from '../../domain/errors.js';
import type { Breaker } from '../../platform/breakers.js';
import { isDuplicateKey } from '../../platform/mysql.js';
import { roomChannel, roomEventPayload } from '../rooms/events.js';
import type { RoomsService } from '../rooms/service.js';
import type { Message, MessagesRepository, Page } from './repository.js';

// Replica lag here is milliseconds; 5 s of reading one's own room from the primary covers a
// lagging replica without sending everybody's reads there.
const READ_YOUR_WRITES_MS = 5_000;
const recentWriteKey = (userId: string, roomId: string) => `parley:ryw:${userId}:${roomId}`;

export function messagesService(deps: {
  repository: MessagesRepository;
  rooms: RoomsService;
  redis: Redis;
  redisBreaker: Breaker;
  instanceId: string;
}) {
  const { repository } = deps;

  return {
    /**
     * Posts a message. The (room, author, key) unique key is the last guard against a duplicate: if
     * the same key was used before (a retry that bypassed the Redis idempotency layer), the stored
     * message is returned when the body matches, and 422 when it does not.
     */
    async post(
      authorId: string,
      roomId: string,
      body: string,
      idempotencyKey: string,
    ): Promise<{
      message: Message;
      replayed: boolean;
      /**
       * Settles once the read-your-writes marker and the room event have reached Redis (or failed
       * to). Await it before answering: the author's next read must find the marker. It is issued,
       * not awaited, here so that a caller can add its own commands to the same Redis write first.
       */
      propagated: Promise<void>;
    }> {
      await deps.rooms.memberRoom(authorId, roomId);
      let message: Message;
      try {
        message = await repository.insert({ roomId, authorId, body, idempotencyKey });
      } catch (error) {
        if (!isDuplicateKey(error)) throw error;
        const existing = await repository.findByIdempotencyKey(roomId, authorId, idempotencyKey);
        if (!existing) throw error;
        if (existing.body !== body) {
          throw new IdempotencyKeyReused();
        }
        return { message: existing, replayed: true, propagated: Promise.resolve() };
      }
      // Issued together, so the client's auto-pipelining sends both in the write it makes for every
      // command of this turn (an explicit pipeline would be a socket write of its own).
      const event = roomEventPayload(deps.instanceId, { type: 'message.created', roomId, message });
      const propagated = deps.redisBreaker
        .run(() =>
          Promise.all([
            deps.redis.set(recentWriteKey(authorId, roomId), '1', 'PX', READ_YOUR_WRITES_MS),
            deps.redis.publish(roomChannel(roomId), JSON.stringify(event)),
          ]),
        )
        .then(
          () => undefined,
          () => undefined, // the message is stored; a missed event is recovered from MySQL
        );
      return { message, replayed: false, propagated };
    },

    /** Reads from the replica, except a user's own room right after they posted in it. */
    async list(userId: string, roomId: string, page: Page): Promise<Message[]> {
      await deps.rooms.visibleRoom(userId, roomId);
      const recentlyWrote = await deps.redisBreaker
        .run(() => deps.redis.exists(recentWriteKey(userId, roomId)))
        .then((count) => count === 1)
        .catch(() => true); // unknown: the primary is the safe answer
      return repository.page(roomId, page, recentlyWrote);
    },
  };
}

export type MessagesService = ReturnType<typeof messagesService>;
