import { connect } from 'node:net';
import { text } from 'node:stream/consumers';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signUp, startCluster, type Cluster, type User } from '../../test-support/cluster.js';

let cluster: Cluster;
let owner: User;
let stranger: User;
beforeAll(async () => {
  cluster = await startCluster(2, { redisTopology: 'single' });
  [owner, stranger] = await Promise.all([
    signUp(cluster.apis[0]!, 'owner'),
    signUp(cluster.apis[1]!, 'stranger'),
  ]);
});
afterAll(() => cluster?.stop());

const api = (i = 0) => cluster.apis[i]!;
type Room = { id: string; name: string; visibility: string; memberCount: number; isMember: boolean };

async function createRoom(
  user: User,
  name: string,
  visibility: 'public' | 'private',
  via = 0,
): Promise<Room> {
  const reply = await api(via)<Room>('POST', '/v1/rooms', {
    token: user.accessToken,
    body: { name, visibility },
  });
  expect(reply.status).toBe(201);
  return reply.body;
}

describe('rooms', () => {
  it('creates a room; its creator is its first member; any process serves it', async () => {
    const room = await createRoom(owner, 'general', 'public');
    expect(room).toMatchObject({ name: 'general', visibility: 'public', memberCount: 1, isMember: true });
    const fetched = await api(1)<Room>('GET', `/v1/rooms/${room.id}`, { token: owner.accessToken });
    expect(fetched.body).toEqual({ ...room });
  });

  it('lets anyone join and leave a public room, and reflects it at once on the other process', async () => {
    const room = await createRoom(owner, 'lobby', 'public');
    expect(
      (await api(0)('POST', `/v1/rooms/${room.id}/members`, { token: stranger.accessToken })).status,
    ).toBe(201);
    expect(
      (await api(1)('POST', `/v1/rooms/${room.id}/members`, { token: stranger.accessToken })).status,
    ).toBe(200);
    expect(
      (await api(1)<Room>('GET', `/v1/rooms/${room.id}`, { token: stranger.accessToken })).body,
    ).toMatchObject({
      memberCount: 2,
      isMember: true,
    });
    expect(
      (await api(0)('DELETE', `/v1/rooms/${room.id}/members/me`, { token: stranger.accessToken })).status,
    ).toBe(204);
    expect(
      (await api(1)<Room>('GET', `/v1/rooms/${room.id}`, { token: stranger.accessToken })).body,
    ).toMatchObject({
      memberCount: 1,
      isMember: false,
    });
  });

  it('hides a private room from non-members with 404, exactly like a missing room', async () => {
    const room = await createRoom(owner, 'secret', 'private');
    const hidden = await api(1)('GET', `/v1/rooms/${room.id}`, { token: stranger.accessToken });
    const missing = await api(1)('GET', '/v1/rooms/0191d3b4-5d0e-7a3c-9f1e-3c2b1a999999', {
      token: stranger.accessToken,
    });
    expect(hidden.status).toBe(404);
    expect(missing.status).toBe(404);
    expect(hidden.body.title).toBe(missing.body.title);
    expect(
      (await api(0)('POST', `/v1/rooms/${room.id}/members`, { token: stranger.accessToken })).status,
    ).toBe(404);
    expect(
      (await api(0)('GET', `/v1/rooms/${room.id}/messages`, { token: stranger.accessToken })).status,
    ).toBe(404);
  });

  it('lets a client join with a bare POST that carries no body at all (no Content-Length)', async () => {
    const room = await createRoom(owner, 'curl-friendly', 'public');
    const joiner = await signUp(api(1), 'bare-post');
    // What `curl -X POST` sends: no Content-Length, no Transfer-Encoding, no Content-Type.
    const socket = connect(cluster.processes[1]!.ports.port!, '127.0.0.1');
    // Written, not ended: a half-closed socket would make the server drop the connection unanswered.
    socket.write(
      `POST /v1/rooms/${room.id}/members HTTP/1.1\r\nHost: parley\r\n` +
        `Authorization: Bearer ${joiner.accessToken}\r\nConnection: close\r\n\r\n`,
    );
    const raw = (await text(socket)).split('\r\n')[0];
    expect(raw).toBe('HTTP/1.1 201 Created');
    expect(
      (await api(0)<Room>('GET', `/v1/rooms/${room.id}`, { token: joiner.accessToken })).body.isMember,
    ).toBe(true);
  });

  it('admits a user to a private room only on a member’s invite', async () => {
    const room = await createRoom(owner, 'invite-only', 'private');
    const outsider = await signUp(api());
    // A non-member cannot invite, even themselves.
    expect(
      (
        await api(1)('POST', `/v1/rooms/${room.id}/members`, {
          token: outsider.accessToken,
          body: { userId: stranger.id },
        })
      ).status,
    ).toBe(404);
    const invited = await api(0)('POST', `/v1/rooms/${room.id}/members`, {
      token: owner.accessToken,
      body: { userId: stranger.id },
    });
    expect(invited.status).toBe(201);
    expect(
      (await api(1)<Room>('GET', `/v1/rooms/${room.id}`, { token: stranger.accessToken })).body.isMember,
    ).toBe(true);
    // Inviting someone who does not exist is a clear 404, not a 500.
    const ghost = await api(0)('POST', `/v1/rooms/${room.id}/members`, {
      token: owner.accessToken,
      body: { userId: '0191d3b4-5d0e-7a3c-9f1e-3c2b1a0abcde' },
    });
    expect(ghost.status).toBe(404);
    expect(ghost.body.detail).toMatch(/no user/);
  });

  it('lists public rooms and the caller’s private ones, newest first, with a cursor', async () => {
    const lister = await signUp(api(), 'lister');
    const mine = await createRoom(lister, 'mine-private', 'private');
    const others = await createRoom(owner, 'others-private', 'private');
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const query: string = cursor ? `?limit=2&before=${cursor}` : '?limit=2';
      const page = await api(seen.length % 2)<{ items: Room[]; nextBefore: string | null }>(
        'GET',
        `/v1/rooms${query}`,
        {
          token: lister.accessToken,
        },
      );
      expect(page.status).toBe(200);
      expect(page.body.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.body.items.map((room) => room.id));
      cursor = page.body.nextBefore;
    } while (cursor);
    expect(seen).toContain(mine.id);
    expect(seen).not.toContain(others.id);
    expect([...seen].sort().reverse()).toEqual(seen); // newest first, no repeats
    expect(new Set(seen).size).toBe(seen.length);
  });

  it.each([
    ['POST', '/v1/rooms', {}, /body\.name/],
    ['POST', '/v1/rooms', { name: '', visibility: 'public' }, /body\.name/],
    ['POST', '/v1/rooms', { name: '   ', visibility: 'public' }, /body\.name/],
    ['POST', '/v1/rooms', { name: 'x'.repeat(101), visibility: 'public' }, /body\.name/],
    ['POST', '/v1/rooms', { name: 'ok', visibility: 'secret' }, /body\.visibility/],
    ['POST', '/v1/rooms', { name: 'ok', visibility: 'public', owner: 'me' }, /owner/],
    ['POST', '/v1/rooms', { name: 42, visibility: 'public' }, /body\.name/],
    ['GET', '/v1/rooms?limit=0', undefined, /query\.limit/],
    ['GET', '/v1/rooms?limit=101', undefined, /query\.limit/],
    ['GET', '/v1/rooms?limit=many', undefined, /query\.limit/],
    ['GET', '/v1/rooms?before=not-a-uuid', undefined, /query\.before/],
    ['GET', '/v1/rooms?sort=asc', undefined, /sort/],
    ['GET', '/v1/rooms/not-a-uuid', undefined, /path\.roomId: must be a room id/],
    ['POST', '/v1/rooms/not-a-uuid/members', undefined, /path\.roomId/],
    ['DELETE', '/v1/rooms/123/members/me', undefined, /path\.roomId/],
  ])('%s %s rejects bad input with 400 problem+json', async (method, path, body, detail) => {
    const reply = await api()(method, path, { token: owner.accessToken, body });
    expect(reply.status).toBe(400);
    expect(reply.headers.get('content-type')).toBe('application/problem+json');
    expect(reply.body.detail).toMatch(detail);
  });
});

describe('the room cache', () => {
  it('turns 1,000 concurrent cold reads across both processes into one MySQL query per key', async () => {
    const room = await createRoom(owner, 'hot-room', 'public');
    const admin = await mysql.createConnection({
      host: cluster.stack.mysql.primary.host,
      port: cluster.stack.mysql.primary.port,
      ...cluster.stack.mysql.admin,
    });
    const redisKeys = [`parley:cache:room:${room.id}`];
    try {
      // Cold: nothing cached for this room on either process.
      const { Redis } = await import('ioredis');
      const redis = new Redis(cluster.env.REDIS_URL!);
      await redis.del(...redisKeys);
      redis.disconnect();
      await admin.query("SET GLOBAL log_output = 'TABLE'");
      await admin.query('TRUNCATE mysql.general_log');
      await admin.query('SET GLOBAL general_log = 1');

      const replies = await Promise.all(
        Array.from({ length: 1_000 }, (_, i) =>
          api(i % 2)<Room>('GET', `/v1/rooms/${room.id}`, { token: stranger.accessToken }),
        ),
      );
      await admin.query('SET GLOBAL general_log = 0');
      expect(replies.every((reply) => reply.status === 200 && reply.body.id === room.id)).toBe(true);

      const [rows] = (await admin.query(
        `SELECT argument FROM mysql.general_log WHERE command_type = 'Query' AND argument LIKE ?`,
        [`%${room.id}%`],
      )) as [{ argument: Buffer | string }[], unknown];
      const statements = rows.map((row) => String(row.argument));
      const roomQueries = statements.filter((sql) => /from `rooms`/i.test(sql));
      const memberQueries = statements.filter((sql) => /from `room_memberships`/i.test(sql));
      console.info(
        `1,000 cold reads → ${roomQueries.length} rooms query, ${memberQueries.length} member-list query`,
      );
      expect(roomQueries).toHaveLength(1);
      expect(memberQueries).toHaveLength(1);

      const metrics = await (
        await fetch(`http://127.0.0.1:${cluster.processes[0]!.ports.managementPort}/metrics`)
      ).text();
      expect(metrics).toMatch(/parley_cache_requests_total\{cache="room",outcome="hit"\} \d+/);
      expect(metrics).toMatch(/parley_cache_requests_total\{cache="room",outcome="(miss|lock_wait)"\} \d+/);
    } finally {
      await admin.query('SET GLOBAL general_log = 0');
      await admin.end();
    }
  });
});
