import { sql } from 'drizzle-orm';
import {
  bigint,
  char,
  datetime,
  index,
  mysqlEnum,
  mysqlTable,
  primaryKey,
  tinyint,
  uniqueIndex,
  varchar,
} from 'drizzle-orm/mysql-core';

/*
 * Valid on MySQL 8.4 and MariaDB 10.11 alike. Ids of users, rooms and attachments are UUIDv7
 * strings (time-ordered, so inserts append to the clustered index); message ids are an
 * auto-increment BIGINT because they are the cursor for pagination and for realtime resume.
 */
const createdAt = () =>
  datetime('created_at', { mode: 'date', fsp: 3 })
    .notNull()
    .default(sql`CURRENT_TIMESTAMP(3)`);

export const users = mysqlTable('users', {
  id: char('id', { length: 36 }).primaryKey(),
  username: varchar('username', { length: 32 }).notNull().unique('users_username_unique'),
  passwordHash: varchar('password_hash', { length: 255 }).notNull(),
  createdAt: createdAt(),
});

/**
 * Refresh tokens, stored only as SHA-256 hashes. Each login starts a family; every refresh rotates
 * to a new token in the family. Presenting a token that was already rotated means it leaked: the
 * whole family is revoked, and so are its access tokens (their `sid` is the family id).
 */
export const refreshTokens = mysqlTable(
  'refresh_tokens',
  {
    id: char('id', { length: 36 }).primaryKey(),
    userId: char('user_id', { length: 36 })
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    familyId: char('family_id', { length: 36 }).notNull(),
    tokenHash: char('token_hash', { length: 64 }).notNull().unique('refresh_tokens_hash_unique'),
    expiresAt: datetime('expires_at', { mode: 'date', fsp: 3 }).notNull(),
    rotatedAt: datetime('rotated_at', { mode: 'date', fsp: 3 }),
    revokedAt: datetime('revoked_at', { mode: 'date', fsp: 3 }),
    createdAt: createdAt(),
  },
  (table) => [index('refresh_tokens_family_idx').on(table.familyId)],
);

export const rooms = mysqlTable(
  'rooms',
  {
    id: char('id', { length: 36 }).primaryKey(),
    name: varchar('name', { length: 100 }).notNull(),
    visibility: mysqlEnum('visibility', ['public', 'private']).notNull(),
    ownerId: char('owner_id', { length: 36 })
      .notNull()
      .references(() => users.id),
    // The seq of the room's last message. A message insert raises it in the same transaction, which
    // locks the room's row until commit: a room's messages commit one batch at a time, in seq order.
    messageSeq: bigint('message_seq', { mode: 'number', unsigned: true }).notNull().default(0),
    createdAt: createdAt(),
  },
  (table) => [index('rooms_visibility_id_idx').on(table.visibility, table.id)],
);

export const roomMemberships = mysqlTable(
  'room_memberships',
  {
    roomId: char('room_id', { length: 36 })
      .notNull()
      .references(() => rooms.id, { onDelete: 'cascade' }),
    userId: char('user_id', { length: 36 })
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    role: mysqlEnum('role', ['owner', 'member']).notNull().default('member'),
    joinedAt: datetime('joined_at', { mode: 'date', fsp: 3 })
      .notNull()
      .default(sql`CURRENT_TIMESTAMP(3)`),
  },
  (table) => [
    primaryKey({ columns: [table.roomId, table.userId] }),
    index('room_memberships_user_idx').on(table.userId),
  ],
);

export const messages = mysqlTable(
  'messages',
  {
    id: bigint('id', { mode: 'number', unsigned: true }).autoincrement().primaryKey(),
    roomId: char('room_id', { length: 36 })
      .notNull()
      .references(() => rooms.id, { onDelete: 'cascade' }),
    authorId: char('author_id', { length: 36 })
      .notNull()
      .references(() => users.id),
    // The message's place in its room, 1, 2, 3, … with no gaps, in commit order (rooms.message_seq).
    // Live delivery orders a room's events by it and fills a gap from here; ids, taken before commit,
    // could otherwise become visible out of order.
    seq: bigint('seq', { mode: 'number', unsigned: true }).notNull(),
    body: varchar('body', { length: 4000 }).notNull(),
    // Idempotency keys are scoped per user, so the last guard against a duplicate is
    // (room, author, key); rows posted without a key (NULL) never collide.
    idempotencyKey: varchar('idempotency_key', { length: 255 }),
    createdAt: createdAt(),
  },
  (table) => [
    uniqueIndex('messages_room_author_idempotency_unique').on(
      table.roomId,
      table.authorId,
      table.idempotencyKey,
    ),
    // Cursor pagination: WHERE room_id = ? AND id < ? ORDER BY id DESC LIMIT n.
    index('messages_room_id_idx').on(table.roomId, table.id),
    // Resume and gap filling: WHERE room_id = ? AND seq > ? ORDER BY seq.
    uniqueIndex('messages_room_seq_unique').on(table.roomId, table.seq),
  ],
);

/**
 * An upload declared by a member of the room. The client uploads straight to S3 with a presigned
 * POST; the row stays `pending` (invisible to everyone but the uploader) until the worker has read
 * the stored object back and found the declared size, type and SHA-256; then `ready`, or `rejected`
 * with the object deleted.
 */
export const attachments = mysqlTable(
  'attachments',
  {
    id: char('id', { length: 36 }).primaryKey(),
    roomId: char('room_id', { length: 36 })
      .notNull()
      .references(() => rooms.id, { onDelete: 'cascade' }),
    uploaderId: char('uploader_id', { length: 36 })
      .notNull()
      .references(() => users.id),
    messageId: bigint('message_id', { mode: 'number', unsigned: true }).references(() => messages.id, {
      onDelete: 'set null',
    }),
    objectKey: varchar('object_key', { length: 512 }).notNull().unique('attachments_object_key_unique'),
    filename: varchar('filename', { length: 255 }).notNull(),
    contentType: varchar('content_type', { length: 127 }).notNull(),
    sizeBytes: bigint('size_bytes', { mode: 'number', unsigned: true }).notNull(),
    sha256: char('sha256', { length: 64 }).notNull(),
    status: mysqlEnum('status', ['pending', 'ready', 'rejected']).notNull().default('pending'),
    // Why the worker rejected the upload, in words an uploader can act on.
    rejectedReason: varchar('rejected_reason', { length: 255 }),
    createdAt: createdAt(),
    completedAt: datetime('completed_at', { mode: 'date', fsp: 3 }),
  },
  (table) => [
    index('attachments_room_created_idx').on(table.roomId, table.createdAt),
    // The sweep of uploads never completed: WHERE status = 'pending' AND created_at < ?.
    index('attachments_status_created_idx').on(table.status, table.createdAt),
    index('attachments_message_idx').on(table.messageId),
  ],
);

/**
 * The durable record behind the Redis leaderboards: each user's points in a room for one period
 * (`all`, an ISO week `2026-W49`, a month `2026-12`). The worker adds to it in batches; the global
 * board is the sum over rooms. `npm run jobs -- rebuild-leaderboards` rebuilds Redis from it.
 */
export const leaderboardScores = mysqlTable(
  'leaderboard_scores',
  {
    roomId: char('room_id', { length: 36 })
      .notNull()
      .references(() => rooms.id, { onDelete: 'cascade' }),
    periodKey: varchar('period_key', { length: 16 }).notNull(),
    userId: char('user_id', { length: 36 })
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    score: bigint('score', { mode: 'number' }).notNull(),
    updatedAt: datetime('updated_at', { mode: 'date', fsp: 3 })
      .notNull()
      .default(sql`CURRENT_TIMESTAMP(3)`),
  },
  (table) => [
    primaryKey({ columns: [table.roomId, table.periodKey, table.userId] }),
    index('leaderboard_scores_period_user_idx').on(table.periodKey, table.userId),
  ],
);

/**
 * Batches of awards already added to leaderboard_scores, by the batch's id, written in the same
 * transaction: a flush retried after its commit (the worker died before acknowledging) finds its
 * batch here and adds nothing twice.
 */
export const leaderboardFlushes = mysqlTable('leaderboard_flushes', {
  batchId: varchar('batch_id', { length: 64 }).primaryKey(),
  flushedAt: createdAt(),
});

/**
 * One row (id 1) that the worker stamps with the primary's clock every second and reads back on the
 * replica: the replica's lag is how old its copy is (pt-heartbeat's method). It needs only DML, so
 * it works where the app user may not run SHOW REPLICA STATUS (RDS, Aurora).
 */
export const replicationHeartbeat = mysqlTable('replication_heartbeat', {
  id: tinyint('id', { unsigned: true }).primaryKey(),
  beatAt: datetime('beat_at', { mode: 'date', fsp: 3 }).notNull(),
});
