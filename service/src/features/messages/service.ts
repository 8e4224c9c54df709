import type { Redis } from 'ioredis';
import { Conflict, IdempotencyKeyReused, type DomainError } from '../../domain/errors.js';
import type { Breaker } from '../../platform/breakers.js';
import { isDuplicateKey } from '../../platform/mysql.js';
import type { RedisWrite } from '../../platform/redis-write.js';
import type { LeaderboardAwards } from '../leaderboards/service.js';
import { roomChannel, roomEventPayload } from '../rooms/events.js';
import type { RoomsService } from '../rooms/service.js';
import {
  AttachmentsNotLinked,
  type Message,
  type MessagesRepository,
  type NewMessage,
  type Page,
  type Sequenced,
} from './repository.js';

// Replica lag here is milliseconds; 5 s of reading one's own room from the primary covers a
// lagging replica without sending everybody's reads there.
const READ_YOUR_WRITES_MS = 5_000;
const recentWriteKey = (userId: string, roomId: string) => `parley:ryw:${userId}:${roomId}`;

/** Says why attachments may not go on a new message (the attachments feature). */
export interface AttachmentLinks {
  linkRefusal(userId: string, roomId: string, ids: string[]): Promise<DomainError | undefined>;
}

const sameIds = (a: readonly string[] | undefined, b: readonly string[] | undefined) =>
  JSON.stringify([...(a ?? [])].sort()) === JSON.stringify([...(b ?? [])].sort());

export function messagesService(deps: {
  repository: MessagesRepository;
  rooms: RoomsService;
  attachments: AttachmentLinks;
  redis: Redis;
  redisBreaker: Breaker;
  instanceId: string;
  leaderboards?: Pick<LeaderboardAwards, 'awardIn'>;
}) {
  const { repository } = deps;

  return {
    /**
     * Posts a message, and adds what must follow its commit to `afterCommit`, which the caller sends:
     * the author's read-your-writes marker, the room event and the author's leaderboard award. The (room, author, key) unique key is
     * the last guard against a duplicate: a key used before (a retry that got past the Redis
     * idempotency layer) returns the stored message when the body matches, and IdempotencyKeyReused
     * when it does not.
     */
    async post(post: NewMessage, afterCommit: RedisWrite): Promise<{ message: Message; replayed: boolean }> {
      const { authorId, roomId } = post;
      const attachmentIds = post.attachmentIds ?? [];
      await deps.rooms.memberRoom(authorId, roomId);
      // A retry of a post that committed finds its attachments taken by its own first attempt.
      const replayOr = async (refusal: Error) => {
        const existing = await repository.findByIdempotencyKey(roomId, authorId, post.idempotencyKey);
        if (!existing) throw refusal;
        if (existing.body !== post.body || !sameIds(existing.attachmentIds, attachmentIds))
          throw new IdempotencyKeyReused();
        return { message: existing, replayed: true };
      };
      if (attachmentIds.length > 0) {
        const refusal = await deps.attachments.linkRefusal(authorId, roomId, attachmentIds);
        if (refusal) return replayOr(refusal);
      }
      let stored: Sequenced;
      try {
        stored = await repository.insert(post);
      } catch (error) {
        if (error instanceof AttachmentsNotLinked) {
          // Something changed since the check above (a concurrent post took one): say what.
          const refusal =
            (await deps.attachments.linkRefusal(authorId, roomId, attachmentIds)) ??
            new Conflict(
              'an attachment changed while the message was posted; retry',
              'attachment-not-usable',
            );
          return replayOr(refusal);
        }
        if (!isDuplicateKey(error)) throw error;
        return replayOr(error as Error);
      }
      const { message, seq } = stored;
      const event = roomEventPayload(deps.instanceId, { type: 'message.created', roomId, message, seq });
      afterCommit.commands
        .set(recentWriteKey(authorId, roomId), '1', 'PX', READ_YOUR_WRITES_MS)
        .publish(roomChannel(roomId), JSON.stringify(event));
      deps.leaderboards?.awardIn(afterCommit.commands, 'message', roomId, authorId);
      return { message, replayed: false };
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
