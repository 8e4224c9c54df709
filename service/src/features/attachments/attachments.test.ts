import { createHash, randomUUID } from 'node:crypto';
import { HeadObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startJobWorkers, type JobWorkers } from '../../platform/job-workers.js';
import { createLogger } from '../../platform/logger.js';
import { createS3Client } from '../../platform/s3.js';
import { adminQuery as adminQueryOn } from '../../test-support/admin-sql.js';
import { buildTestApp, type TestApp } from '../../test-support/app.js';
import { startTestStack, type TestStack } from '../../test-support/stack.js';
import { eventually } from '../../test-support/until.js';
import { roomChannel } from '../rooms/events.js';
import type { Attachment } from './attachment.js';
import { attachmentsJobs, verifyAttachment } from './jobs.js';
import { sweepAttachmentsJob, verifyAttachmentJob } from './kinds.js';
import { attachmentsRepository } from './repository.js';
import { attachmentStorage } from './storage.js';

/*
 * Against a real MinIO (which checks SigV4 and POST policies as S3 does), MariaDB and Redis, with
 * the verification and the sweep run by the worker's own job runtime.
 */
const MAX_BYTES = 64 * 1024;

let testStack: TestStack;
let subject: TestApp;
let workers: JobWorkers;
const s3 = () => subject.s3;
let bucket: string;

interface User {
  id: string;
  token: string;
}
let alice: User; // owns the rooms
let bob: User; // a member of the public room
let carol: User; // a member of nothing
let publicRoom: string;
let privateRoom: string;

interface Reply<T = Record<string, unknown>> {
  status: number;
  body: T;
  headers: Headers;
}

async function call<T = Record<string, unknown>>(
  method: string,
  path: string,
  options: { user?: User; body?: unknown; headers?: Record<string, string> } = {},
): Promise<Reply<T>> {
  const response = await subject.app.request(path, {
    method,
    headers: {
      ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(options.user ? { authorization: `Bearer ${options.user.token}` } : {}),
      ...options.headers,
    },
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  const text = await response.text();
  return { status: response.status, body: (text ? JSON.parse(text) : {}) as T, headers: response.headers };
}

async function signUp(username: string): Promise<User> {
  const credentials = { username, password: 'a-long-enough-password' };
  const { id } = (await call<{ id: string }>('POST', '/v1/auth/register', { body: credentials })).body;
  const { accessToken } = (
    await call<{ accessToken: string }>('POST', '/v1/auth/login', { body: credentials })
  ).body;
  return { id, token: accessToken };
}

const sha256 = (content: Buffer) => createHash('sha256').update(content).digest('hex');

interface Declared {
  attachment: Attachment;
  upload: { url: string; fields: Record<string, string>; expiresAt: string };
}

function declare(user: User, content: Buffer, overrides: Record<string, unknown> = {}, room = publicRoom) {
  return call<Declared>('POST', `/v1/rooms/${room}/attachments`, {
    user,
    body: {
      filename: 'notes.txt',
      contentType: 'text/plain',
      size: content.length,
      sha256: sha256(content),
      ...overrides,
    },
  });
}

/** What a browser does with the presigned POST: the fields as they are, then the file, last. */
async function upload(declared: Declared, content: Buffer, fieldOverrides: Record<string, string> = {}) {
  const form = new FormData();
  for (const [name, value] of Object.entries({ ...declared.upload.fields, ...fieldOverrides }))
    form.append(name, value);
  form.append('file', new Blob([content]), declared.attachment.filename);
  const response = await fetch(declared.upload.url, { method: 'POST', body: form });
  const text = await response.text();
  return { status: response.status, code: /<Code>([^<]+)<\/Code>/.exec(text)?.[1] };
}

const complete = (user: User, id: string) =>
  call<{ attachment: Attachment }>('POST', `/v1/attachments/${id}/complete`, { user });

type Got = { attachment: Attachment; download: { url: string; expiresAt: string } | null };
const get = (user: User, id: string) => call<Got>('GET', `/v1/attachments/${id}`, { user });

/** Polls as the uploader until the worker has settled it. */
async function settled(user: User, id: string): Promise<Got> {
  const reply = await eventually(
    () => get(user, id),
    (got) => got.body.attachment?.status !== 'pending',
    20_000,
    50,
  );
  return reply.body;
}

async function stored(key: string): Promise<boolean> {
  try {
    await s3().send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return true;
  } catch (error) {
    if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404)
      return false;
    throw error;
  }
}

async function keysUnder(prefix: string): Promise<string[]> {
  const listed = await s3().send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  return (listed.Contents ?? []).map((object) => object.Key!);
}

const objectKey = async (id: string) =>
  (await adminQuery<{ object_key: string }>('SELECT object_key FROM attachments WHERE id = ?', [id]))[0]!
    .object_key;

const adminQuery = <T>(sql: string, params: unknown[] = []) => adminQueryOn<T>(testStack.stack, sql, params);

/** Declared, uploaded through the presigned POST, completed and verified by the worker. */
async function readyAttachment(user: User, content = Buffer.from(`file ${randomUUID()}`), room = publicRoom) {
  const declared = (await declare(user, content, {}, room)).body;
  expect((await upload(declared, content)).status).toBe(204);
  expect((await complete(user, declared.attachment.id)).status).toBe(202);
  expect((await settled(user, declared.attachment.id)).attachment.status).toBe('ready');
  return declared.attachment.id;
}

beforeAll(async () => {
  testStack = await startTestStack(
    { mysqlReplica: false, redisTopology: 'single' },
    {
      ATTACHMENTS_ALLOWED_TYPES: 'text/plain,image/png',
      ATTACHMENTS_MAX_BYTES: String(MAX_BYTES),
      ATTACHMENTS_PENDING_TTL_SECONDS: '3600',
      ATTACHMENTS_REJECTED_TTL_SECONDS: '7200',
      JOBS_BACKOFF_MS: '100',
      JOBS_ATTEMPTS: '12',
    },
  );
  subject = await buildTestApp(testStack.config, { logLevel: 'silent' });
  bucket = testStack.config.s3.attachmentsBucket;
  const logger = createLogger({ ...testStack.config, logLevel: 'silent' }, 'worker');
  workers = startJobWorkers({
    config: testStack.config,
    handlers: attachmentsJobs({ db: subject.db, s3: subject.s3, config: testStack.config, logger }).handlers,
    logger,
    registry: new Registry(),
  });
  [alice, bob, carol] = await Promise.all([signUp('alice'), signUp('bob'), signUp('carol')]);
  publicRoom = (
    await call<{ id: string }>('POST', '/v1/rooms', {
      user: alice,
      body: { name: 'files', visibility: 'public' },
    })
  ).body.id;
  privateRoom = (
    await call<{ id: string }>('POST', '/v1/rooms', {
      user: alice,
      body: { name: 'secret', visibility: 'private' },
    })
  ).body.id;
  expect((await call('POST', `/v1/rooms/${publicRoom}/members`, { user: bob })).status).toBe(201);
});

afterAll(async () => {
  await workers?.close(5_000);
  await subject?.close();
  await testStack?.stack.stop();
});

describe('an upload, from declaration to download', () => {
  it('declares, uploads through the presigned POST, verifies in the worker, and downloads the same bytes', async () => {
    const content = Buffer.from('the minutes of the meeting, in full\n'.repeat(100));
    const declaredAt = new Date();
    const declared = await declare(alice, content, { filename: 'minutes ünïcode "q".txt' });
    expect(declared.status).toBe(201);
    const { attachment } = declared.body;
    expect(attachment).toEqual({
      id: expect.stringMatching(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-/), // UUIDv7, as every id
      roomId: publicRoom,
      uploaderId: alice.id,
      filename: 'minutes ünïcode "q".txt',
      contentType: 'text/plain',
      size: content.length,
      sha256: sha256(content),
      status: 'pending',
      rejectedReason: null,
      messageId: null,
      createdAt: expect.any(String),
      completedAt: null,
    });
    expect(Date.parse(declared.body.upload.expiresAt) - declaredAt.getTime()).toBeLessThanOrEqual(301_000);
    expect(await objectKey(attachment.id)).toBe(
      `attachments/${publicRoom}/${attachment.createdAt.slice(0, 10)}/${attachment.id}`,
    );

    expect(await upload(declared.body, content)).toEqual({ status: 204, code: undefined });
    const completed = await complete(alice, attachment.id);
    expect(completed.status).toBe(202);
    expect(completed.body.attachment.status).toBe('pending');

    const ready = await settled(alice, attachment.id);
    expect(ready.attachment).toMatchObject({
      status: 'ready',
      rejectedReason: null,
      completedAt: expect.any(String),
    });

    // Another member downloads it through the short-lived link: the same bytes, as a named file.
    const seen = await get(bob, attachment.id);
    expect(seen.status).toBe(200);
    const download = await fetch(seen.body.download!.url);
    expect(download.status).toBe(200);
    expect(Buffer.from(await download.arrayBuffer()).equals(content)).toBe(true);
    expect(download.headers.get('content-type')).toBe('text/plain');
    expect(download.headers.get('content-disposition')).toBe(
      `attachment; filename="minutes _n_code _q_.txt"; filename*=UTF-8''minutes%20%C3%BCn%C3%AFcode%20%22q%22.txt`,
    );

    // Completing it again changes nothing and queues nothing.
    const again = await complete(alice, attachment.id);
    expect(again.status).toBe(200);
    expect(again.body.attachment.status).toBe('ready');
  });

  it('queues one verification however often the upload is completed, and a second run changes nothing', async () => {
    const content = Buffer.from('once');
    const declared = (await declare(alice, content)).body;
    await upload(declared, content);
    const replies = await Promise.all(
      Array.from({ length: 5 }, () => complete(alice, declared.attachment.id)),
    );
    expect(
      replies.map((reply) => reply.status).filter((status) => status === 202).length,
    ).toBeGreaterThanOrEqual(1);
    await settled(alice, declared.attachment.id);
    const jobs = await subject.jobs
      .queue(verifyAttachmentJob.queue)
      .getJobs(['completed', 'active', 'waiting', 'delayed']);
    expect(
      jobs.filter((job) => job.data.attachmentId === declared.attachment.id).map((job) => job.id),
    ).toEqual([`verify-${declared.attachment.id}`]);
    const parts = {
      repository: attachmentsRepository(subject.db),
      storage: attachmentStorage(subject.s3, bucket),
    };
    expect(await verifyAttachment(parts, declared.attachment.id)).toEqual({
      outcome: 'unchanged',
      status: 'ready',
    });
  });

  it('shows a pending upload to its uploader only, without a download link', async () => {
    const content = Buffer.from('not yet');
    const declared = (await declare(alice, content)).body;
    const own = await get(alice, declared.attachment.id);
    expect(own.status).toBe(200);
    expect(own.body).toMatchObject({ attachment: { status: 'pending' }, download: null });
    expect((await get(bob, declared.attachment.id)).status).toBe(404);
    expect((await complete(bob, declared.attachment.id)).status).toBe(404);
  });
});

describe('what the signature enforces: S3 itself refuses', () => {
  it.each([
    ['a larger upload than signed', Buffer.from('exactly sized.!'), {}, 400, 'EntityTooLarge'],
    ['a smaller upload than signed', Buffer.from('exactly size'), {}, 400, 'EntityTooSmall'],
    ['other bytes of the same size', Buffer.from('EXACTLY SIZED.'), {}, 400, 'XAmzContentChecksumMismatch'],
    [
      'another Content-Type',
      Buffer.from('exactly sized.'),
      { 'Content-Type': 'image/png' },
      403,
      'AccessDenied',
    ],
    [
      'a form field the policy does not name',
      Buffer.from('exactly sized.'),
      { 'x-amz-meta-x': '1' },
      403,
      'AccessDenied',
    ],
  ])('%s', async (_case, content, fields, status, code) => {
    const declared = (await declare(alice, Buffer.from('exactly sized.'))).body;
    expect(await upload(declared, content, fields)).toEqual({ status, code });
    expect(await stored(await objectKey(declared.attachment.id))).toBe(false);
  });
});

describe('what the worker refuses: rejected, and the object deleted', () => {
  // Written behind the API's back, as a store that enforced nothing would have kept them.
  it.each([
    [
      'other bytes than declared',
      Buffer.from('what was declared'),
      Buffer.from('WHAT WAS DECLARED'),
      'text/plain',
      'its SHA-256 is not the one declared',
    ],
    [
      'another size than declared',
      Buffer.from('what was declared'),
      Buffer.from('longer than what was declared'),
      'text/plain',
      /^the upload is 29 bytes, not the 17 declared$/,
    ],
    [
      'another type than declared',
      Buffer.from('what was declared'),
      Buffer.from('what was declared'),
      'image/png',
      'the upload is image/png, not the text/plain declared',
    ],
  ])('%s', async (_case, declaredContent, storedContent, storedType, reason) => {
    const { attachment } = (await declare(alice, declaredContent)).body;
    const key = await objectKey(attachment.id);
    await s3().send(
      new PutObjectCommand({ Bucket: bucket, Key: key, Body: storedContent, ContentType: storedType }),
    );
    expect((await complete(alice, attachment.id)).status).toBe(202);
    const { attachment: rejected, download } = await settled(alice, attachment.id);
    expect(rejected.status).toBe('rejected');
    expect(rejected.rejectedReason).toMatch(reason);
    expect(download).toBeNull();
    expect(await stored(key)).toBe(false);
    expect(await keysUnder(key)).toEqual([]);
    // Nobody else ever sees it.
    expect((await get(bob, attachment.id)).status).toBe(404);
  });

  it('retries a verification while S3 is down, and settles it once S3 is back', async () => {
    const content = Buffer.from('verified after an outage');
    const declared = (await declare(alice, content)).body;
    expect((await upload(declared, content)).status).toBe(204);
    const minio = testStack.stack.s3.server;
    await minio.stop();
    try {
      expect((await complete(alice, declared.attachment.id)).status).toBe(202);
      const queue = subject.jobs.queue(verifyAttachmentJob.queue);
      const failedOnce = await eventually(
        async () => (await queue.getJob(`verify-${declared.attachment.id}`))?.attemptsMade ?? 0,
        (attempts) => attempts >= 1,
      );
      expect(failedOnce).toBeGreaterThanOrEqual(1);
      expect((await get(alice, declared.attachment.id)).body.attachment.status).toBe('pending');
    } finally {
      await minio.start();
    }
    expect((await settled(alice, declared.attachment.id)).attachment.status).toBe('ready');
  });

  it('rejects a completed upload whose file never arrived: "no object was uploaded"', async () => {
    const { attachment } = (await declare(alice, Buffer.from('never sent'))).body;
    expect((await complete(alice, attachment.id)).status).toBe(202);
    expect((await settled(alice, attachment.id)).attachment).toMatchObject({
      status: 'rejected',
      rejectedReason: 'no object was uploaded',
    });
  });
});

describe('refusals', () => {
  it('refuses non-members: 403 in a public room, 404 in a private one (its existence stays hidden)', async () => {
    const content = Buffer.from('x');
    expect((await declare(carol, content)).status).toBe(403);
    const hidden = await declare(carol, content, {}, privateRoom);
    expect(hidden.status).toBe(404);
    expect(hidden.headers.get('content-type')).toBe('application/problem+json');
    const id = await readyAttachment(alice);
    expect((await get(carol, id)).status).toBe(403);
    const secret = await readyAttachment(alice, Buffer.from('secret'), privateRoom);
    expect((await get(bob, secret)).status).toBe(404);
  });

  it('refuses a media type not allowed, a size over the cap and a malformed declaration, naming what is wrong', async () => {
    const content = Buffer.from('x');
    const type = await declare(alice, content, { contentType: 'application/x-msdownload' });
    expect(type.status).toBe(422);
    expect(type.body).toMatchObject({
      type: 'urn:parley:problem:attachment-type-not-allowed',
      detail: 'application/x-msdownload files are not accepted; allowed: text/plain, image/png',
    });
    const big = await declare(alice, content, { size: MAX_BYTES + 1 });
    expect(big.status).toBe(422);
    expect(big.body).toMatchObject({ type: 'urn:parley:problem:attachment-too-large' });
    const badSha = await declare(alice, content, { sha256: 'not-a-digest' });
    expect(badSha.status).toBe(400);
    expect((badSha.body as unknown as { errors: unknown }).errors).toEqual([
      { path: 'body.sha256', message: 'must be the hex SHA-256 of the content (64 hex digits)' },
    ]);
    expect((await declare(alice, content, { filename: '../../etc/passwd' })).status).toBe(400);
    expect((await declare(alice, content, { size: 0 })).status).toBe(400);
    expect(
      await adminQuery('SELECT id FROM attachments WHERE content_type = ?', ['application/x-msdownload']),
    ).toEqual([]);
  });

  it('answers unknown ids with 404, and a completion by someone else than the uploader with 403', async () => {
    expect((await get(alice, randomUUID())).status).toBe(404);
    expect((await complete(alice, randomUUID())).status).toBe(404);
    expect((await get(alice, 'not-a-uuid')).status).toBe(400);
    const id = await readyAttachment(alice);
    expect((await complete(bob, id)).status).toBe(403);
  });

  it('takes a point of the upload rate-limit tier on each declaration', async () => {
    const declared = await declare(bob, Buffer.from('counted'));
    expect(declared.status).toBe(201);
    expect(declared.headers.get('ratelimit-policy')).toMatch(/^"upload";q=60;w=60$/);
  });
});

describe('messages with attachments', () => {
  type Message = { id: string; body: string; attachmentIds?: string[] };
  const post = (user: User, body: Record<string, unknown>, key = randomUUID(), room = publicRoom) =>
    call<Message & { type?: string; detail?: string }>('POST', `/v1/rooms/${room}/messages`, {
      user,
      body,
      headers: { 'Idempotency-Key': key },
    });

  it('posts a message with ready attachments: linked in its transaction, listed wherever it is read and delivered live', async () => {
    const first = await readyAttachment(alice);
    const second = await readyAttachment(alice);
    const subscriber = new Redis(testStack.env.REDIS_URL!);
    try {
      await subscriber.subscribe(roomChannel(publicRoom));
      const live = new Promise<{ message: Message }>((resolve) =>
        subscriber.on('message', (_channel, payload: string) => resolve(JSON.parse(payload))),
      );
      const posted = await post(alice, { body: 'see attached', attachmentIds: [second, first] });
      expect(posted.status).toBe(201);
      expect(posted.body.attachmentIds).toEqual([first, second]);
      expect((await live).message.attachmentIds).toEqual([first, second]);

      const rows = await adminQuery<{ id: string; message_id: number }>(
        'SELECT id, message_id FROM attachments WHERE id IN (?) ORDER BY id',
        [[first, second]],
      );
      expect(rows).toEqual([
        { id: first, message_id: Number(posted.body.id) },
        { id: second, message_id: Number(posted.body.id) },
      ]);
      const page = await call<{ items: Message[] }>('GET', `/v1/rooms/${publicRoom}/messages?limit=5`, {
        user: bob,
      });
      expect(page.body.items.find((message) => message.id === posted.body.id)).toEqual(posted.body);
      expect((await get(bob, first)).body.attachment.messageId).toBe(posted.body.id);
    } finally {
      subscriber.disconnect();
    }
  });

  it('leaves a message without attachments as it always was: no attachmentIds', async () => {
    const posted = await post(alice, { body: 'plain' });
    expect(posted.status).toBe(201);
    expect(Object.keys(posted.body).sort()).toEqual(['authorId', 'body', 'createdAt', 'id', 'roomId']);
    const page = await call<{ items: Message[] }>('GET', `/v1/rooms/${publicRoom}/messages?limit=1`, {
      user: bob,
    });
    expect(page.body.items).toEqual([posted.body]);
  });

  it('refuses attachments that are pending, another user’s, in another room, rejected, unknown or taken, and writes nothing', async () => {
    const pending = (await declare(alice, Buffer.from('pending'))).body.attachment.id;
    const bobs = await readyAttachment(bob);
    const elsewhere = await readyAttachment(alice, Buffer.from('private'), privateRoom);
    const rejected = (await declare(alice, Buffer.from('rejected'))).body.attachment.id;
    await complete(alice, rejected);
    await settled(alice, rejected);
    const taken = await readyAttachment(alice);
    expect((await post(alice, { body: 'first', attachmentIds: [taken] })).status).toBe(201);
    const fresh = await readyAttachment(alice);

    const cases: [string, number, string][] = [
      [pending, 409, 'attachment-not-ready'],
      [bobs, 422, 'attachment-not-usable'],
      [elsewhere, 422, 'attachment-not-usable'],
      [rejected, 422, 'attachment-rejected'],
      [randomUUID(), 422, 'attachment-not-usable'],
      [taken, 409, 'attachment-already-attached'],
    ];
    for (const [id, status, type] of cases) {
      const key = randomUUID();
      const refused = await post(alice, { body: 'refused', attachmentIds: [fresh, id] }, key);
      expect([id, refused.status, refused.body.type]).toEqual([id, status, `urn:parley:problem:${type}`]);
      expect(refused.headers.get('content-type')).toBe('application/problem+json');
      expect(await adminQuery('SELECT id FROM messages WHERE idempotency_key = ?', [key])).toEqual([]);
    }
    // The good one of each pair was not linked either.
    expect((await get(alice, fresh)).body.attachment.messageId).toBeNull();
    expect(
      (await post(alice, { body: 'eleven', attachmentIds: Array.from({ length: 11 }, randomUUID) })).status,
    ).toBe(400);
    expect((await post(alice, { body: 'twice', attachmentIds: [fresh, fresh] })).status).toBe(400);
  });

  it('gives a ready attachment to one of two posts that race for it; the other is refused and not written', async () => {
    const contested = await readyAttachment(alice);
    const keys = [randomUUID(), randomUUID()];
    const replies = await Promise.all(
      keys.map((key, i) => post(alice, { body: `racer ${i}`, attachmentIds: [contested] }, key)),
    );
    expect(replies.map((reply) => reply.status).sort()).toEqual([201, 409]);
    const winner = replies.find((reply) => reply.status === 201)!;
    expect(replies.find((reply) => reply.status === 409)!.body.type).toBe(
      'urn:parley:problem:attachment-already-attached',
    );
    const written = await adminQuery<{ id: number }>('SELECT id FROM messages WHERE idempotency_key IN (?)', [
      keys,
    ]);
    expect(written.map((row) => String(row.id))).toEqual([winner.body.id]);
    expect((await get(alice, contested)).body.attachment.messageId).toBe(winner.body.id);
  });

  it('replays a retried post with attachments instead of refusing them as taken by its first attempt', async () => {
    const id = await readyAttachment(alice);
    const key = randomUUID();
    const first = await post(alice, { body: 'retried', attachmentIds: [id] }, key);
    // The Redis record would answer a retry first; without it the database's unique key does.
    const redis = new Redis(testStack.env.REDIS_URL!);
    try {
      await redis.del(...(await redis.keys(`parley:idem:${alice.id}:*`)));
    } finally {
      redis.disconnect();
    }
    const retry = await post(alice, { body: 'retried', attachmentIds: [id] }, key);
    expect(retry.status).toBe(201);
    expect(retry.body).toEqual(first.body);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
  });
});

describe('the OpenAPI document', () => {
  type Operation = { responses: Record<string, { content?: Record<string, { schema: object }> }> };
  type Document = { paths: Record<string, Record<string, Operation>>; components: { schemas: object } };

  it('describes the attachment routes, and their answers are what it says', async () => {
    const document = (await call<Document>('GET', '/openapi.json')).body;
    const statuses = (path: string, method: string) =>
      Object.keys(document.paths[path]![method]!.responses).sort();
    expect(statuses('/v1/rooms/{roomId}/attachments', 'post')).toEqual([
      '201',
      '400',
      '403',
      '404',
      '422',
      '429',
    ]);
    expect(statuses('/v1/attachments/{id}/complete', 'post')).toEqual(['200', '202', '403', '404']);
    expect(statuses('/v1/attachments/{id}', 'get')).toEqual(['200', '403', '404']);

    // Each answer checked against the schema the document gives for its status.
    const ajv = new Ajv2020({ strict: false, validateFormats: false });
    ajv.addSchema({ $id: 'openapi', components: document.components });
    const conforms = (path: string, method: string, reply: Reply<unknown>) => {
      const schema =
        document.paths[path]![method]!.responses[String(reply.status)]!.content!['application/json']!.schema;
      const validate = ajv.compile(
        JSON.parse(JSON.stringify(schema).replaceAll('"#/components/', '"openapi#/components/')) as object,
      );
      return validate(reply.body) ? 'conforms' : JSON.stringify(validate.errors);
    };
    const wrong = { status: 201, body: { attachment: {} }, headers: new Headers() };
    expect(conforms('/v1/rooms/{roomId}/attachments', 'post', wrong)).not.toBe('conforms');
    expect(document.components).toMatchObject({
      schemas: { Message: { properties: { attachmentIds: { type: 'array', items: { format: 'uuid' } } } } },
    });
    const content = Buffer.from('documented');
    const declared = await declare(alice, content);
    expect(conforms('/v1/rooms/{roomId}/attachments', 'post', declared)).toBe('conforms');
    await upload(declared.body, content);
    const completed = await complete(alice, declared.body.attachment.id);
    expect(conforms('/v1/attachments/{id}/complete', 'post', completed)).toBe('conforms');
    await settled(alice, declared.body.attachment.id);
    expect(conforms('/v1/attachments/{id}', 'get', await get(bob, declared.body.attachment.id))).toBe(
      'conforms',
    );
    const posted = await call('POST', `/v1/rooms/${publicRoom}/messages`, {
      user: alice,
      body: { body: 'documented', attachmentIds: [declared.body.attachment.id] },
      headers: { 'Idempotency-Key': randomUUID() },
    });
    expect(conforms('/v1/rooms/{roomId}/messages', 'post', posted)).toBe('conforms');
  });
});

describe('the sweep', () => {
  it('removes an upload never completed (row and object) and an old rejected one, and nothing else', async () => {
    const abandonedContent = Buffer.from('abandoned');
    const abandoned = (await declare(alice, abandonedContent)).body;
    await upload(abandoned, abandonedContent);
    const abandonedKey = await objectKey(abandoned.attachment.id);
    expect(await stored(abandonedKey)).toBe(true);
    const rejected = (await declare(alice, Buffer.from('old and rejected'))).body.attachment.id;
    await complete(alice, rejected);
    await settled(alice, rejected);
    const recent = (await declare(alice, Buffer.from('recent'))).body.attachment.id;
    const kept = await readyAttachment(alice);
    // Past their time-to-live (1 h pending, 2 h rejected in this suite).
    await adminQuery('UPDATE attachments SET created_at = created_at - INTERVAL 2 HOUR WHERE id = ?', [
      abandoned.attachment.id,
    ]);
    await adminQuery('UPDATE attachments SET created_at = created_at - INTERVAL 3 HOUR WHERE id IN (?)', [
      [rejected, kept],
    ]);

    await subject.jobs.add(sweepAttachmentsJob, {});
    const left = await eventually(
      () =>
        adminQuery<{ id: string }>('SELECT id FROM attachments WHERE id IN (?)', [
          [abandoned.attachment.id, rejected, recent, kept],
        ]),
      (rows) => rows.length === 2,
    );
    expect(left.map((row) => row.id).sort()).toEqual([recent, kept].sort());
    expect(await stored(abandonedKey)).toBe(false);
    expect(await stored(await objectKey(kept))).toBe(true);
  });

  it('is exported as a schedule for the worker to keep', () => {
    const logger = createLogger({ ...testStack.config, logLevel: 'silent' }, 'worker');
    const { schedules } = attachmentsJobs({
      db: subject.db,
      s3: createS3Client(testStack.config.s3),
      config: testStack.config,
      logger,
    });
    expect(schedules).toEqual([{ kind: sweepAttachmentsJob, data: {}, every: 900_000 }]);
  });
});
