import { createHash, randomUUID } from 'node:crypto';
import { get as httpGet, type IncomingHttpHeaders } from 'node:http';
import { gunzipSync } from 'node:zlib';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminQuery as adminQueryOn, insertStatements } from '../../test-support/admin-sql.js';
import { freeze } from '../../test-support/freeze.js';
import { signUp, startCluster, type Cluster, type Reply, type User } from '../../test-support/cluster.js';

let cluster: Cluster;
let alice: User;
let bob: User;
let roomId: string;

type Message = {
  id: string;
  roomId: string;
  authorId: string;
  body: string;
  createdAt: string;
  detail?: string;
};
type Page = { items: Message[]; nextBefore: string | null };

beforeAll(async () => {
  cluster = await startCluster(2, { redisTopology: 'single' });
  [alice, bob] = await Promise.all([signUp(cluster.apis[0]!, 'alice'), signUp(cluster.apis[1]!, 'bob')]);
  const room = await cluster.apis[0]!('POST', '/v1/rooms', {
    token: alice.accessToken,
    body: { name: 'chat', visibility: 'public' },
  });
  roomId = String(room.body.id);
  await cluster.apis[1]!('POST', `/v1/rooms/${roomId}/members`, { token: bob.accessToken });
});
afterAll(() => cluster?.stop());

const api = (i = 0) => cluster.apis[i]!;
/** `key: null` sends no Idempotency-Key at all. */
const post = (user: User, body: unknown, key: string | null = randomUUID(), via = 0, room = roomId) =>
  api(via)<Message>('POST', `/v1/rooms/${room}/messages`, {
    token: user.accessToken,
    body,
    headers: key === null ? {} : { 'Idempotency-Key': key },
  });

const adminQuery = <T>(sql: string, params: unknown[] = [], target: 'primary' | 'replica' = 'primary') =>
  adminQueryOn<T>(cluster.stack, sql, params, target);

describe('posting and reading messages', () => {
  it('posts a message and reads it back from the other process', async () => {
    const posted = await post(alice, { body: 'hello, world' });
    expect(posted.status).toBe(201);
    expect(posted.body).toEqual({
      id: expect.stringMatching(/^\d+$/),
      roomId,
      authorId: alice.id,
      body: 'hello, world',
      createdAt: expect.any(String),
    });
    const page = await api(1)<Page>('GET', `/v1/rooms/${roomId}/messages?limit=1`, {
      token: alice.accessToken,
    });
    expect(page.body.items[0]).toEqual(posted.body);
  });

  it('gives each of 100 concurrent posts across both processes its own row and that row’s id, in few INSERTs', async () => {
    const insertsBefore = await insertStatements(cluster.stack);
    const bodies = Array.from({ length: 100 }, (_, i) => `concurrent ${i} ${randomUUID()}`);
    const replies = await Promise.all(
      bodies.map((body, i) => post(i % 2 ? bob : alice, { body }, randomUUID(), i % 2)),
    );
    expect(replies.map((reply) => reply.status)).toEqual(bodies.map(() => 201));
    const ids = replies.map((reply) => reply.body.id);
    expect(new Set(ids).size).toBe(100);
    const rows = await adminQuery<{ id: number; body: string; author_id: string }>(
      'SELECT id, body, author_id FROM messages WHERE id IN (?)',
      [ids.map(Number)],
    );
    const stored = new Map(rows.map((row) => [String(row.id), row]));
    replies.forEach((reply, i) => {
      expect(stored.get(reply.body.id)).toEqual({
        id: Number(reply.body.id),
        body: bodies[i],
        author_id: (i % 2 ? bob : alice).id,
      });
    });
    // Posts that arrive together share a multi-row INSERT (counted by the server, both processes).
    expect((await insertStatements(cluster.stack)) - insertsBefore).toBeLessThan(100);
  });

  it('pages newest first with before, and catches up without gaps with after', async () => {
    const room = await api()('POST', '/v1/rooms', {
      token: alice.accessToken,
      body: { name: 'paging', visibility: 'public' },
    });
    const id = String(room.body.id);
    const ids: string[] = [];
    for (let i = 0; i < 7; i++)
      ids.push((await post(alice, { body: `m${i}` }, randomUUID(), i % 2, id)).body.id);

    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: Reply<Page> = await api(seen.length % 2)<Page>(
        'GET',
        `/v1/rooms/${id}/messages?limit=3${cursor ? `&before=${cursor}` : ''}`,
        {
          token: bob.accessToken,
        },
      );
      seen.push(...page.body.items.map((message) => message.id));
      cursor = page.body.nextBefore;
    } while (cursor);
    expect(seen).toEqual([...ids].reverse());

    const after = await api()<Page>('GET', `/v1/rooms/${id}/messages?after=${ids[1]}&limit=3`, {
      token: bob.accessToken,
    });
    expect(after.body.items.map((message) => message.id)).toEqual([ids[4], ids[3], ids[2]]);
  });

  it('gzips a large page for a client that accepts it, and leaves small answers and scrapes plain', async () => {
    for (let i = 0; i < 20; i++)
      await post(alice, { body: `a longer line of chat, number ${i}, to fill a page` });
    const get = (port: number, path: string) =>
      new Promise<{ headers: IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
        httpGet(
          {
            host: '127.0.0.1',
            port,
            path,
            headers: { authorization: `Bearer ${bob.accessToken}`, 'accept-encoding': 'gzip' },
          },
          (response) => {
            const chunks: Buffer[] = [];
            response.on('data', (chunk: Buffer) => chunks.push(chunk));
            response.on('end', () => resolve({ headers: response.headers, body: Buffer.concat(chunks) }));
          },
        ).on('error', reject);
      });
    const { port, managementPort } = cluster.processes[1]!.ports;
    const page = await get(port!, `/v1/rooms/${roomId}/messages?limit=20`);
    expect(page.headers['content-encoding']).toBe('gzip');
    expect(page.headers.vary).toMatch(/accept-encoding/i);
    expect((JSON.parse(gunzipSync(page.body).toString()) as Page).items).toHaveLength(20);

    const room = await get(port!, `/v1/rooms/${roomId}`);
    expect(room.headers['content-encoding']).toBeUndefined();
    expect(JSON.parse(room.body.toString())).toMatchObject({ id: roomId });
    const scrape = await get(managementPort!, '/metrics');
    expect(scrape.headers['content-encoding']).toBeUndefined();
    expect(scrape.body.toString()).toMatch(/^# HELP /m);
  });

  it('lets only members post, and only members read a private room', async () => {
    const carol = await signUp(api(), 'carol');
    const notMember = await post(carol, { body: 'let me in' });
    expect(notMember.status).toBe(403);
    expect(notMember.body.detail).toMatch(/join room/);
    expect((await api()('GET', `/v1/rooms/${roomId}/messages`, { token: carol.accessToken })).status).toBe(
      200,
    ); // public

    const hidden = await api()('POST', '/v1/rooms', {
      token: alice.accessToken,
      body: { name: 'private', visibility: 'private' },
    });
    expect(
      (await api(1)('GET', `/v1/rooms/${hidden.body.id}/messages`, { token: carol.accessToken })).status,
    ).toBe(404);
    expect((await post(carol, { body: 'x' }, randomUUID(), 1, String(hidden.body.id))).status).toBe(404);
  });

  it.each([
    ['missing body', {}, /body\.body/],
    ['empty body', { body: '' }, /body\.body/],
    ['whitespace body', { body: '   ' }, /body\.body/],
    ['too long', { body: 'x'.repeat(4001) }, /body\.body/],
    ['not a string', { body: { text: 'hi' } }, /body\.body/],
    ['unknown field', { body: 'hi', authorId: 'someone-else' }, /authorId/],
  ])('rejects a post with %s', async (_label, body, detail) => {
    const reply = await post(alice, body);
    expect(reply.status).toBe(400);
    expect(reply.body.detail).toMatch(detail);
  });

  it.each([
    ['?before=abc', /query\.before: must be a message id/],
    ['?before=0', /query\.before/],
    ['?before=-5', /query\.before/],
    ['?after=1.5', /query\.after/],
    ['?before=10&after=5', /use before or after, not both/],
    ['?limit=0', /query\.limit/],
    ['?limit=101', /query\.limit/],
    ['?cursor=5', /cursor/],
  ])('rejects a listing with %s', async (query, detail) => {
    const reply = await api()('GET', `/v1/rooms/${roomId}/messages${query}`, { token: alice.accessToken });
    expect(reply.status).toBe(400);
    expect(reply.body.detail).toMatch(detail);
  });

  it('requires a sane Idempotency-Key', async () => {
    expect((await post(alice, { body: 'no key' }, null)).body.detail).toMatch(/send an Idempotency-Key/);
    expect((await post(alice, { body: 'bad key' }, 'has spaces in it')).status).toBe(400);
    expect((await post(alice, { body: 'long key' }, 'k'.repeat(256))).status).toBe(400);
  });

  it('documents the Idempotency-Key as a required header of a post, with the rules it is checked by', async () => {
    type Parameter = {
      name: string;
      in: string;
      required: boolean;
      schema: { pattern: string; maxLength: number };
    };
    const document = (await api()('GET', '/openapi.json')).body as {
      paths: Record<string, { post: { parameters: Parameter[] } }>;
    };
    const { parameters } = document.paths['/v1/rooms/{roomId}/messages']!.post;
    const header = parameters.find((parameter) => parameter.in === 'header')!;
    expect(header).toMatchObject({ name: 'Idempotency-Key', required: true });
    const pattern = new RegExp(header.schema.pattern);
    expect(pattern.test('0191d3b4-5d0e-7a3c-9f1e-3c2b1a000001')).toBe(true);
    expect(pattern.test('has spaces in it')).toBe(false);
    expect(header.schema.maxLength).toBe(255);
  });
});

describe('Idempotency-Key', () => {
  it('turns 50 concurrent identical posts across both processes into one row and 50 identical responses', async () => {
    const key = randomUUID();
    const replies = await Promise.all(
      Array.from({ length: 50 }, (_, i) => post(alice, { body: 'exactly once' }, key, i % 2)),
    );
    expect(new Set(replies.map((reply) => reply.status))).toEqual(new Set([201]));
    expect(new Set(replies.map((reply) => JSON.stringify(reply.body))).size).toBe(1);
    const replayed = replies.filter((reply) => reply.headers.get('idempotent-replayed') === 'true');
    expect(replayed).toHaveLength(49);
    // A replay is still this request's response: its own request id and the edge's headers.
    for (const reply of replayed) {
      expect(reply.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
      expect(reply.headers.get('x-content-type-options')).toBe('nosniff');
      expect(reply.headers.get('ratelimit-policy')).toMatch(/^"api";/);
    }
    const rows = await adminQuery('SELECT id FROM messages WHERE idempotency_key = ?', [key]);
    expect(rows).toHaveLength(1);
  });

  it('answers 422 when the key comes back with another body', async () => {
    const key = randomUUID();
    expect((await post(alice, { body: 'first' }, key)).status).toBe(201);
    const reused = await post(alice, { body: 'second' }, key, 1);
    expect(reused.status).toBe(422);
    expect(reused.body.detail).toMatch(/different request body/);
  });

  it('replays a refusal too, as it was sent: same status, problem body and content type', async () => {
    const secret = await api(0)('POST', '/v1/rooms', {
      token: alice.accessToken,
      body: { name: 'members only', visibility: 'private' },
    });
    const key = randomUUID();
    const first = await post(bob, { body: 'let me in' }, key, 0, String(secret.body.id));
    const again = await post(bob, { body: 'let me in' }, key, 1, String(secret.body.id));
    expect(first.status).toBe(404);
    expect(again.status).toBe(404);
    expect(again.body).toEqual(first.body);
    expect(again.headers.get('content-type')).toBe('application/problem+json');
    expect(again.headers.get('idempotent-replayed')).toBe('true');
  });

  it('scopes keys per user', async () => {
    const key = randomUUID();
    const fromAlice = await post(alice, { body: 'same key' }, key);
    const fromBob = await post(bob, { body: 'same key' }, key, 1);
    expect(fromBob.status).toBe(201);
    expect(fromBob.body.id).not.toBe(fromAlice.body.id);
  });

  it('answers 409 to a duplicate while the original is still in flight', async () => {
    const key = randomUUID();
    const thaw = await freeze(cluster.stack.mysql.primary); // the original will hang on its INSERT
    try {
      const original = post(alice, { body: 'slow one' }, key, 0);
      await new Promise((resolve) => setTimeout(resolve, 200));
      const duplicate = await post(alice, { body: 'slow one' }, key, 1);
      expect(duplicate.status).toBe(409);
      expect(duplicate.headers.get('retry-after')).toBe('1');
      await thaw();
      expect((await original).status).toBe(201);
      const replay = await post(alice, { body: 'slow one' }, key, 1);
      expect(replay.status).toBe(201);
      expect(replay.headers.get('idempotent-replayed')).toBe('true');
    } finally {
      await thaw();
    }
  });
});

describe('an Idempotency-Key whose request is still running', () => {
  it('is claimed for a minute only, so a process that dies holding it frees it soon; once answered it is kept a day', async () => {
    const redis = new Redis(cluster.env.REDIS_URL!);
    const claims = () => redis.keys(`parley:idem:${alice.id}:*`);
    const thaw = await freeze(cluster.stack.mysql.primary); // the request will hang on its INSERT
    try {
      const before = new Set(await claims());
      const original = post(alice, { body: 'held' });
      let claim: string | undefined;
      for (let i = 0; i < 100 && !claim; i++) {
        claim = (await claims()).find((key) => !before.has(key));
        if (!claim) await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(claim).toBeDefined();
      expect(JSON.parse((await redis.get(claim!))!)).toMatchObject({ state: 'in-flight' });
      const claimedFor = await redis.ttl(claim!);
      expect(claimedFor).toBeGreaterThan(30);
      expect(claimedFor).toBeLessThanOrEqual(60);
      await thaw();
      expect((await original).status).toBe(201);
      expect(JSON.parse((await redis.get(claim!))!)).toMatchObject({ state: 'done', status: 201 });
      expect(await redis.ttl(claim!)).toBeGreaterThan(23 * 3_600);
    } finally {
      await thaw();
      redis.disconnect();
    }
  });
});

describe("an Idempotency-Key's record", () => {
  it('lives under a name derived from the user, the method, the path and the key, so records outlive a deploy', async () => {
    const redis = new Redis(cluster.env.REDIS_URL!);
    try {
      const key = randomUUID();
      expect((await post(alice, { body: 'named' }, key)).status).toBe(201);
      const digest = createHash('sha256').update(`POST /v1/rooms/${roomId}/messages ${key}`).digest('hex');
      expect(JSON.parse((await redis.get(`parley:idem:${alice.id}:${digest}`))!)).toMatchObject({
        state: 'done',
        status: 201,
      });
    } finally {
      redis.disconnect();
    }
  });
});

describe('read-your-writes', () => {
  it('shows authors their own new message even while the replica lags; others read the replica', async () => {
    const reader = await signUp(api(), 'reader'); // has written nothing, so reads the replica
    await adminQuery('STOP SLAVE', [], 'replica'); // the replica now lags without bound
    try {
      const posted = await post(alice, { body: 'fresh off the press' });
      const own = await api(1)<Page>('GET', `/v1/rooms/${roomId}/messages?limit=5`, {
        token: alice.accessToken,
      });
      expect(own.body.items.map((message) => message.id)).toContain(posted.body.id);
      const others = await api(0)<Page>('GET', `/v1/rooms/${roomId}/messages?limit=5`, {
        token: reader.accessToken,
      });
      expect(others.body.items.map((message) => message.id)).not.toContain(posted.body.id);
    } finally {
      await adminQuery('START SLAVE', [], 'replica');
    }
    await cluster.stack.mysql.waitForReplication();
  });
});

describe("a post's Redis traffic", () => {
  it('is two writes: the idempotency claim, then the marker, the event and the idempotency record together', async () => {
    const redis = new Redis(cluster.env.REDIS_URL!);
    // Redis counts each read of a client's socket: one per write the client makes, when sequential.
    const readsProcessed = async () =>
      Number(/total_reads_processed:(\d+)/.exec(await redis.info('stats'))![1]);
    try {
      const author = await signUp(api(), 'pipelined');
      await api()('POST', `/v1/rooms/${roomId}/members`, { token: author.accessToken });
      for (let i = 0; i < 3; i++) await post(author, { body: `warm-up ${i}` }); // its rate-limit leases grow
      const posts = 20;
      const before = await readsProcessed();
      for (let i = 0; i < posts; i++) expect((await post(author, { body: `post ${i}` })).status).toBe(201);
      const reads = (await readsProcessed()) - before - 1; // the INFO above is one
      // Three writes a post before (the record had a round trip of its own); the rate limit's leases
      // (1, 2, 4, … points) and a lapsed local room copy add a few.
      expect(reads).toBeGreaterThanOrEqual(2 * posts);
      expect(reads).toBeLessThan(2.5 * posts);
    } finally {
      redis.disconnect();
    }
  });
});

describe('with Redis down', () => {
  it('still writes no duplicate: the MySQL unique key replays the first message', async () => {
    await cluster.stack.redis.nodes[0]!.stop();
    try {
      const key = randomUUID();
      const first = await post(alice, { body: 'redis is down' }, key, 0);
      const retry = await post(alice, { body: 'redis is down' }, key, 1);
      expect(first.status).toBe(201);
      expect(retry.status).toBe(201);
      expect(retry.body).toEqual(first.body);
      expect(retry.headers.get('idempotent-replayed')).toBe('true');
      expect((await post(alice, { body: 'another body' }, key, 0)).status).toBe(422);
      expect(await adminQuery('SELECT id FROM messages WHERE idempotency_key = ?', [key])).toHaveLength(1);
    } finally {
      await cluster.stack.redis.nodes[0]!.start();
    }
  });

  it('turns 20 concurrent identical posts across both processes into one row and one answer', async () => {
    await cluster.stack.redis.nodes[0]!.stop();
    try {
      const key = randomUUID();
      const replies = await Promise.all(
        Array.from({ length: 20 }, (_, i) => post(alice, { body: 'same batch' }, key, i % 2)),
      );
      expect(replies.map((reply) => reply.status)).toEqual(replies.map(() => 201));
      for (const reply of replies) expect(reply.body).toEqual(replies[0]!.body);
      expect(replies.filter((reply) => reply.headers.get('idempotent-replayed') !== 'true')).toHaveLength(1);
      expect(await adminQuery('SELECT id FROM messages WHERE idempotency_key = ?', [key])).toHaveLength(1);
    } finally {
      await cluster.stack.redis.nodes[0]!.start();
    }
  });
});
