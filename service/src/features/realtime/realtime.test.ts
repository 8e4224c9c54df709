import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminConnection, beginMessageInsert } from '../../test-support/admin-sql.js';
import { signUp, startCluster, type Cluster, type User } from '../../test-support/cluster.js';
import { openSocket, type LiveSocket } from '../../test-support/live.js';
import { until } from '../../test-support/until.js';

/*
 * Live delivery across two real API processes sharing one devstack, as two pods of a Deployment:
 * what a socket receives, in what order, and what it gets back after a gap.
 */
let cluster: Cluster;
let redis: Redis;
let alice: User;
let bob: User;

beforeAll(async () => {
  cluster = await startCluster(
    2,
    { redisTopology: 'single' },
    {
      REALTIME_MAX_SOCKETS_PER_USER: '2000',
      REALTIME_RESUME_MAX_MESSAGES: '150',
    },
  );
  redis = new Redis(cluster.env.REDIS_URL!);
  [alice, bob] = await Promise.all([signUp(cluster.apis[0]!, 'alice'), signUp(cluster.apis[1]!, 'bob')]);
});
afterAll(async () => {
  redis?.disconnect();
  await cluster?.stop();
});

const port = (i: number) => cluster.processes[i]!.ports.port!;
const sockets: LiveSocket[] = [];
async function socket(i: number, user: User = alice): Promise<LiveSocket> {
  const opened = await openSocket(port(i), { token: user.accessToken });
  sockets.push(opened);
  return opened;
}
afterAll(() => {
  for (const opened of sockets) opened.ws.terminate();
});

async function room(owner: User, visibility: 'public' | 'private' = 'public'): Promise<string> {
  const reply = await cluster.apis[0]!<{ id: string }>('POST', '/v1/rooms', {
    token: owner.accessToken,
    body: { name: `live-${randomUUID().slice(0, 6)}`, visibility },
  });
  expect(reply.status).toBe(201);
  return reply.body.id;
}

async function post(user: User, roomId: string, body: string, via = 0): Promise<string> {
  const reply = await cluster.apis[via]!<{ id: string }>('POST', `/v1/rooms/${roomId}/messages`, {
    token: user.accessToken,
    body: { body },
    headers: { 'Idempotency-Key': randomUUID() },
  });
  expect(reply.status, JSON.stringify(reply.body)).toBe(201);
  return reply.body.id;
}

async function subscribe(live: LiveSocket, roomId: string, after?: string) {
  live.send({ type: 'subscribe', roomId, ...(after ? { after } : {}) });
  return live.next('subscribed', (frame) => frame.roomId === roomId);
}

const subscribers = async (roomId: string) =>
  Number(((await redis.pubsub('NUMSUB', `parley:room:${roomId}`)) as [string, number])[1]);

describe('live delivery', () => {
  it('brings a message posted through one process to a socket on the other, once, with its id and origin', async () => {
    const roomId = await room(alice);
    const live = await socket(0);
    expect(await subscribe(live, roomId)).toMatchObject({ recovered: false, replayed: 0 });
    const id = await post(alice, roomId, 'across pods', 1);
    const frame = await live.next('message.created', (f) => f.message.id === id);
    expect(frame).toMatchObject({
      roomId,
      origin: 'api-1',
      message: { id, body: 'across pods', authorId: alice.id },
    });
    await post(alice, roomId, 'a second one', 0);
    await live.next('message.created', (f) => f.message.body === 'a second one');
    expect(live.messageIds(roomId).filter((seen) => seen === id)).toHaveLength(1);
    expect(live.invalid).toEqual([]);
  });

  it('delivers one message to 1,000 sockets spread over both processes, each exactly once', async () => {
    const roomId = await room(alice);
    const crowd = await Promise.all(
      Array.from({ length: 1_000 }, (_, i) => openSocket(port(i % 2), { token: bob.accessToken })),
    );
    try {
      await Promise.all(crowd.map((live) => subscribe(live, roomId)));
      const id = await post(alice, roomId, 'to everyone', 1);
      expect(await until(() => crowd.every((live) => live.messageIds(roomId).includes(id)), 15_000)).toBe(
        true,
      );
      await new Promise((resolve) => setTimeout(resolve, 200)); // a duplicate would have come by now
      const counts = crowd.map((live) => live.messageIds(roomId).length);
      expect(new Set(counts)).toEqual(new Set([1]));
    } finally {
      for (const live of crowd) live.ws.terminate();
    }
  });

  it('holds a room’s Redis channel on each process while a local socket is in it, and lets go with the last', async () => {
    const roomId = await room(alice);
    expect(await subscribers(roomId)).toBe(0);
    const [a1, a2, b1] = [await socket(0), await socket(0), await socket(1)];
    await subscribe(a1, roomId);
    expect(await subscribers(roomId)).toBe(1);
    await subscribe(a2, roomId); // the same process: the same subscription
    expect(await subscribers(roomId)).toBe(1);
    await subscribe(b1, roomId);
    expect(await subscribers(roomId)).toBe(2);
    a1.send({ type: 'unsubscribe', roomId });
    a2.close();
    expect(await until(async () => (await subscribers(roomId)) === 1)).toBe(true);
    b1.ws.terminate(); // gone without a close frame: the same
    expect(await until(async () => (await subscribers(roomId)) === 0)).toBe(true);
  });

  it('stops a leaving member’s subscriptions on every process at once, with member.left as their last frame', async () => {
    const roomId = await room(alice, 'private');
    const invite = await cluster.apis[0]!('POST', `/v1/rooms/${roomId}/members`, {
      token: alice.accessToken,
      body: { userId: bob.id },
    });
    expect(invite.status).toBe(201);
    const [onA, onB, owner] = [await socket(0, bob), await socket(1, bob), await socket(1, alice)];
    await Promise.all([subscribe(onA, roomId), subscribe(onB, roomId), subscribe(owner, roomId)]);
    await post(alice, roomId, 'before the leave');
    expect(
      (await cluster.apis[1]!('DELETE', `/v1/rooms/${roomId}/members/me`, { token: bob.accessToken })).status,
    ).toBe(204);
    for (const live of [onA, onB, owner]) await live.next('member.left', (f) => f.userId === bob.id);
    const after = await post(alice, roomId, 'after the leave');
    await owner.next('message.created', (f) => f.message.id === after);
    await new Promise((resolve) => setTimeout(resolve, 200));
    for (const live of [onA, onB]) {
      expect(live.frames.at(-1)).toMatchObject({ type: 'member.left', userId: bob.id });
      expect(live.messageIds(roomId)).not.toContain(after);
    }
    // The room is private and bob is out: subscribing again is refused like a read would be.
    onA.send({ type: 'subscribe', roomId });
    expect(await onA.next('error', (f) => f.roomId === roomId)).toMatchObject({ code: 'not-found' });
  });
});

describe('a subscription', () => {
  it('says where its live stream starts: the room’s last message, or null in an empty room', async () => {
    const roomId = await room(alice);
    const live = await socket(0);
    expect(await subscribe(live, roomId)).toMatchObject({ lastMessageId: null });
    const last = await post(alice, roomId, 'the last before it');
    const later = await socket(1);
    expect(await subscribe(later, roomId)).toMatchObject({
      recovered: false,
      replayed: 0,
      lastMessageId: last,
    });
  });

  it('is forgotten when its socket goes, or another subscribe of the room replaces it, while it is still being set up', async () => {
    const roomId = await room(alice);
    const hasty = await Promise.all(Array.from({ length: 5 }, () => socket(0)));
    for (const live of hasty) {
      live.send({ type: 'subscribe', roomId });
      live.ws.terminate();
    }
    const twice = await socket(1);
    twice.send({ type: 'subscribe', roomId });
    twice.send({ type: 'subscribe', roomId });
    await twice.next('subscribed');
    const id = await post(alice, roomId, 'once, not twice', 0);
    await twice.next('message.created', (f) => f.message.id === id);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(twice.messageIds(roomId)).toEqual([id]);
    twice.send({ type: 'unsubscribe', roomId });
    expect(await until(async () => (await subscribers(roomId)) === 0)).toBe(true);
    const after = await post(alice, roomId, 'after the unsubscribe', 1);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(twice.messageIds(roomId)).not.toContain(after);
  });
});

describe('resume', () => {
  it('replays exactly the 100 messages a socket missed, in order, then live ones', async () => {
    const roomId = await room(alice);
    const first = await socket(0, bob);
    await subscribe(first, roomId);
    const seen = await post(alice, roomId, 'seen before the drop');
    await first.next('message.created', (f) => f.message.id === seen);
    first.ws.terminate();

    const missed: string[] = [];
    for (let i = 0; i < 100; i++) missed.push(await post(alice, roomId, `missed ${i}`, i % 2));
    const again = await socket(1, bob);
    expect(await subscribe(again, roomId, seen)).toMatchObject({
      recovered: true,
      replayed: 100,
      lastMessageId: missed.at(-1),
    });
    const live = await post(alice, roomId, 'live after the resume', 0);
    await again.next('message.created', (f) => f.message.id === live);
    expect(again.messageIds(roomId)).toEqual([...missed, live]);
  });

  it('answers resync instead, beyond the window or for a cursor it does not know, and goes on live', async () => {
    const roomId = await room(alice);
    const seen = await post(alice, roomId, 'the last one seen');
    await Promise.all(Array.from({ length: 151 }, (_, i) => post(alice, roomId, `flood ${i}`, i % 2)));
    const behind = await socket(0, bob);
    expect(await subscribe(behind, roomId, seen)).toMatchObject({ recovered: false, replayed: 0 });
    expect(await behind.next('resync', (f) => f.roomId === roomId)).toMatchObject({
      reason: 'too-far-behind',
    });
    const unknown = await socket(1, bob);
    expect(await subscribe(unknown, roomId, '999999999')).toMatchObject({ recovered: false });
    expect(await unknown.next('resync', (f) => f.roomId === roomId)).toMatchObject({
      reason: 'unknown-cursor',
    });
    const live = await post(alice, roomId, 'still live');
    for (const socketAfterResync of [behind, unknown]) {
      await socketAfterResync.next('message.created', (f) => f.message.id === live);
      expect(socketAfterResync.messageIds(roomId)).toEqual([live]);
    }
  });
});

describe('a room’s order', () => {
  /** Inserts a message as the repository does (the room's counter, then the row) without publishing it. */
  async function insertUnpublished(roomId: string, body: string) {
    const connection = await adminConnection(cluster.stack);
    try {
      const createdAt = new Date();
      const row = await beginMessageInsert(connection, { roomId, authorId: alice.id, body, createdAt });
      await connection.query('COMMIT');
      const message = {
        id: String(row.id),
        roomId,
        authorId: alice.id,
        body,
        createdAt: createdAt.toISOString(),
      };
      const event = {
        type: 'message.created',
        roomId,
        message,
        seq: row.seq,
        origin: 'elsewhere',
        at: createdAt.toISOString(),
      };
      return { id: message.id, publish: () => redis.publish(`parley:room:${roomId}`, JSON.stringify(event)) };
    } finally {
      await connection.end();
    }
  }

  it('delivers messages whose events arrive out of order in seq order, and a repeated event once', async () => {
    const roomId = await room(alice);
    const live = await socket(0);
    await subscribe(live, roomId);
    const [first, second] = [
      await insertUnpublished(roomId, 'first'),
      await insertUnpublished(roomId, 'second'),
    ];
    await second.publish();
    await first.publish();
    await first.publish();
    await live.next('message.created', (f) => f.message.id === second.id);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(live.messageIds(roomId)).toEqual([first.id, second.id]);
  });

  it('fills a gap left by an event that never came from MySQL, in order', async () => {
    const roomId = await room(alice);
    const live = await socket(1);
    await subscribe(live, roomId);
    const lost = await insertUnpublished(roomId, 'its publish was lost'); // committed, never published
    const next = await post(alice, roomId, 'posted after it', 0);
    await live.next('message.created', (f) => f.message.id === next);
    expect(live.messageIds(roomId)).toEqual([lost.id, next]);
  });
});

describe('a room’s other events', () => {
  it('forwards a leaderboard change as the worker will publish it, and ignores a kind it does not know', async () => {
    const roomId = await room(alice);
    const live = await socket(1);
    await subscribe(live, roomId);
    const publish = (event: object) =>
      redis.publish(`parley:room:${roomId}`, JSON.stringify({ roomId, origin: 'worker-0', ...event }));
    await publish({ type: 'room.renamed', name: 'from a newer version' });
    await publish({ type: 'leaderboard.updated', period: 'week' });
    expect(await live.next('leaderboard.updated')).toEqual({
      type: 'leaderboard.updated',
      roomId,
      period: 'week',
      origin: 'worker-0',
    });
    expect(live.frames.map((frame) => frame.type)).toEqual(['subscribed', 'leaderboard.updated']);
    expect(live.invalid).toEqual([]);
  });
});

describe('when the Redis subscriber connection drops', () => {
  it('recovers every message published meanwhile from MySQL, in order, and tells the sockets (resync, connection-lost)', async () => {
    const roomId = await room(alice);
    const [onA, onB] = [await socket(0, bob), await socket(1, bob)];
    await Promise.all([subscribe(onA, roomId), subscribe(onB, roomId)]);
    const posted: string[] = [];
    // Posts flow every 10 ms; the subscriber connections of both processes die in the middle, and
    // the last posts are made while they reconnect, so that no later event reveals the gap.
    for (let i = 0; i < 30; i++) {
      posted.push(await post(alice, roomId, `before ${i}`, i % 2));
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(Number(await redis.call('CLIENT', 'KILL', 'TYPE', 'pubsub'))).toBeGreaterThanOrEqual(2);
    for (let i = 0; i < 3; i++) posted.push(await post(alice, roomId, `during ${i}`, i % 2));
    for (const live of [onA, onB]) {
      expect(await live.next('resync', (f) => f.roomId === roomId)).toMatchObject({
        reason: 'connection-lost',
      });
      expect(await until(() => live.messageIds(roomId).length >= posted.length, 10_000)).toBe(true);
      expect(live.messageIds(roomId)).toEqual(posted);
    }
  });
});
