import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signUp, startCluster, type Cluster, type User } from '../../test-support/cluster.js';
import { openSocket, type LiveSocket } from '../../test-support/live.js';
import { until } from '../../test-support/until.js';
import { CloseCode } from './protocol.js';

/*
 * A socket that misbehaves, by accident or on purpose, is answered with an error frame or closed
 * with the code that says why; it never takes the process down or holds up anyone else.
 */
let cluster: Cluster;
let user: User;
let publicRoom: string;
let privateRoom: string;

beforeAll(async () => {
  cluster = await startCluster(
    1,
    { mysqlReplica: false, redisTopology: 'single' },
    {
      REALTIME_MAX_FRAMES_PER_SECOND: '5',
      REALTIME_MAX_FRAME_BYTES: '1024',
      REALTIME_MAX_SUBSCRIPTIONS: '2',
      REALTIME_MAX_BUFFERED_BYTES: '65536',
      REALTIME_MAX_SOCKETS_PER_USER: '100',
      REALTIME_RESUME_MAX_AGE_SECONDS: '1',
    },
  );
  user = await signUp(cluster.apis[0]!, 'tester');
  const owner = await signUp(cluster.apis[0]!, 'owner');
  const create = async (by: User, visibility: string) =>
    (
      await cluster.apis[0]!<{ id: string }>('POST', '/v1/rooms', {
        token: by.accessToken,
        body: { name: 'r', visibility },
      })
    ).body.id;
  publicRoom = await create(user, 'public');
  privateRoom = await create(owner, 'private');
});
afterAll(() => cluster?.stop());

const open = () => openSocket(cluster.processes[0]!.ports.port!, { token: user.accessToken });
const post = (body: string, roomId = publicRoom) =>
  cluster.apis[0]!('POST', `/v1/rooms/${roomId}/messages`, {
    token: user.accessToken,
    body: { body },
    headers: { 'Idempotency-Key': randomUUID() },
  });

describe('frames a client gets an error frame for, the socket staying open', () => {
  it.each([
    ['text that is not JSON', 'hello', /not JSON/],
    ['an unknown type', { type: 'shout', roomId: randomUUID() }, /type/],
    ['a field the frame does not have', { type: 'ping', extra: true }, /extra/],
    ['a room id that is not one', { type: 'subscribe', roomId: '42' }, /roomId/],
    [
      'a cursor that is not a message id',
      { type: 'subscribe', roomId: randomUUID(), after: 'yesterday' },
      /after/,
    ],
  ])('%s: bad-frame', async (_label, frame, detail) => {
    const live = await open();
    live.send(frame);
    const error = await live.next('error');
    expect(error.code).toBe('bad-frame');
    expect(error.detail).toMatch(detail);
    live.send({ type: 'ping', id: 'still here' });
    expect(await live.next('pong')).toMatchObject({ id: 'still here' });
    live.close();
  });

  it('a subscription to a room that does not exist, or a private one the user is not in: not-found', async () => {
    const live = await open();
    for (const roomId of [randomUUID(), privateRoom]) {
      live.send({ type: 'subscribe', roomId });
      expect(await live.next('error', (frame) => frame.roomId === roomId)).toMatchObject({
        code: 'not-found',
      });
    }
    live.close();
  });

  it('a subscription over the limit: too-many-subscriptions, the others kept', async () => {
    const second = (
      await cluster.apis[0]!<{ id: string }>('POST', '/v1/rooms', {
        token: user.accessToken,
        body: { name: 'second', visibility: 'public' },
      })
    ).body.id;
    const live = await open();
    for (const roomId of [publicRoom, second]) {
      live.send({ type: 'subscribe', roomId });
      await live.next('subscribed', (frame) => frame.roomId === roomId);
    }
    const third = randomUUID();
    live.send({ type: 'subscribe', roomId: third });
    expect(await live.next('error', (frame) => frame.roomId === third)).toMatchObject({
      code: 'too-many-subscriptions',
    });
    const id = String((await post('still subscribed')).body.id);
    await live.next('message.created', (frame) => frame.message.id === id);
    live.close();
  });
});

describe('frames that close the socket', () => {
  it.each([
    [
      'a binary frame',
      (live: LiveSocket) => live.ws.send(Buffer.from('{}'), { binary: true }),
      CloseCode.UNSUPPORTED_DATA,
    ],
    [
      'a frame over the size limit',
      (live: LiveSocket) => live.send({ type: 'ping', id: 'x'.repeat(2_000) }),
      CloseCode.MESSAGE_TOO_BIG,
    ],
    [
      'text that is not UTF-8',
      (live: LiveSocket) => live.ws.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { binary: false }),
      CloseCode.INVALID_PAYLOAD,
    ],
    [
      'more frames a second than allowed',
      (live: LiveSocket) => {
        for (let i = 0; i < 20; i++) live.send({ type: 'ping' });
      },
      CloseCode.POLICY_VIOLATION,
    ],
  ])('%s', async (_label, misbehave, code) => {
    const live = await open();
    misbehave(live);
    expect((await live.closed).code).toBe(code);
  });

  it('and the process serves everyone else all along', async () => {
    const live = await open();
    live.send({ type: 'ping', id: 'after the abuse' });
    expect(await live.next('pong')).toMatchObject({ id: 'after the abuse' });
    expect((await post('the API still answers')).status).toBe(201);
    live.close();
  });
});

describe('a socket that does not read', () => {
  it('is closed with 1013 once its unsent data passes the bound, while the others receive every message', async () => {
    const slow = await open();
    const reader = await open();
    for (const live of [slow, reader]) {
      live.send({ type: 'subscribe', roomId: publicRoom });
      await live.next('subscribed');
    }
    slow.ws.pause(); // the kernel's buffers fill, then the server's
    const metrics = async () =>
      (await fetch(`http://127.0.0.1:${cluster.processes[0]!.ports.managementPort}/metrics`)).text();
    const slowClosed = async () => /parley_ws_slow_consumers_closed_total [1-9]/.test(await metrics());
    const body = 'x'.repeat(4_000);
    const posted: string[] = [];
    while (!(await slowClosed()) && posted.length < 6_000) {
      const replies = await Promise.all(Array.from({ length: 100 }, () => post(body)));
      posted.push(...replies.map((reply) => String(reply.body.id)));
    }
    expect(await slowClosed()).toBe(true);
    expect(await until(() => posted.every((id) => reader.messageIds(publicRoom).includes(id)), 15_000)).toBe(
      true,
    );
    slow.ws.resume();
    expect((await slow.closed).code).toBe(CloseCode.TRY_AGAIN_LATER);
    reader.close();
  });
});

describe('the resume window’s age', () => {
  it('is judged on the missed messages: older ones get resync (too-old), a room quiet since resumes at once', async () => {
    const seen = String((await post('seen')).body.id);
    const missed = String((await post('missed, and soon old')).body.id);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const late = await open();
    late.send({ type: 'subscribe', roomId: publicRoom, after: seen });
    expect(await late.next('subscribed')).toMatchObject({ recovered: false, replayed: 0 });
    expect(await late.next('resync')).toMatchObject({ reason: 'too-old' });
    const quiet = await open();
    quiet.send({ type: 'subscribe', roomId: publicRoom, after: missed }); // nothing after it
    expect(await quiet.next('subscribed')).toMatchObject({
      recovered: true,
      replayed: 0,
      lastMessageId: missed,
    });
    late.close();
    quiet.close();
  });
});

describe('the protocol’s own description', () => {
  it('is served as an AsyncAPI 3.0 document beside the OpenAPI one', async () => {
    const reply = await cluster.apis[0]!<{ asyncapi: string; channels: Record<string, unknown> }>(
      'GET',
      '/asyncapi.json',
    );
    expect(reply.status).toBe(200);
    expect(reply.body.asyncapi).toBe('3.0.0');
    expect(Object.keys(reply.body.channels)).toEqual(['live']);
  });
});
