import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isDuplicateKey, isMissingReference } from '../../platform/mysql.js';
import { adminQuery, insertStatements as insertStatementsOn } from '../../test-support/admin-sql.js';
import { buildTestApp, type TestApp } from '../../test-support/app.js';
import { startTestStack, type TestStack } from '../../test-support/stack.js';
import { messagesRepository, type MessagesRepository } from './repository.js';

/* The batched INSERT, driven directly: every call below made in one turn shares one statement. */
let testStack: TestStack;
let subject: TestApp;
let repository: MessagesRepository;
let authorId: string;
let roomId: string;

beforeAll(async () => {
  testStack = await startTestStack({ mysqlReplica: false, redisTopology: 'single' });
  subject = await buildTestApp(testStack.config, { logLevel: 'silent' });
  const json = (body: unknown, token?: string): RequestInit => ({
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  const credentials = { username: 'batcher', password: 'a-long-enough-password' };
  authorId = (
    (await (await subject.app.request('/v1/auth/register', json(credentials))).json()) as { id: string }
  ).id;
  const { accessToken } = (await (await subject.app.request('/v1/auth/login', json(credentials))).json()) as {
    accessToken: string;
  };
  const room = await subject.app.request(
    '/v1/rooms',
    json({ name: 'batches', visibility: 'public' }, accessToken),
  );
  roomId = ((await room.json()) as { id: string }).id;
  repository = messagesRepository(subject.db);
});
afterAll(async () => {
  await subject?.close();
  await testStack?.stack.stop();
});

const query = <T>(sql: string, params: unknown[] = []) => adminQuery<T>(testStack.stack, sql, params);
const insertStatements = () => insertStatementsOn(testStack.stack);
const message = (body: string, key = randomUUID(), room = roomId) => ({
  roomId: room,
  authorId,
  body,
  idempotencyKey: key,
});

describe('the batched message INSERT', () => {
  it('writes 50 messages of one turn in one statement, each answered with its own row’s id', async () => {
    const before = await insertStatements();
    const bodies = Array.from({ length: 50 }, (_, i) => `batched ${i}`);
    const inserted = await Promise.all(bodies.map((body) => repository.insert(message(body))));
    expect((await insertStatements()) - before).toBe(1);
    const rows = await query<{ id: number; body: string }>('SELECT id, body FROM messages WHERE id IN (?)', [
      inserted.map((m) => Number(m.id)),
    ]);
    const bodyOf = new Map(rows.map((row) => [String(row.id), row.body]));
    expect(inserted.map((m) => bodyOf.get(m.id))).toEqual(bodies);
  });

  it('writes messages posted one at a time, each answered with its own row', async () => {
    const first = await repository.insert(message('alone'));
    const second = await repository.insert(message('alone again'));
    expect(Number(second.id)).toBeGreaterThan(Number(first.id));
    // The stored UTC time as text, so the check does not depend on this machine's time zone.
    const rows = await query<{ id: number; body: string; author_id: string; created_at: string }>(
      'SELECT id, body, author_id, CAST(created_at AS CHAR) AS created_at FROM messages WHERE id IN (?) ORDER BY id',
      [[Number(first.id), Number(second.id)]],
    );
    expect(rows.map((row) => [String(row.id), row.body, row.author_id])).toEqual([
      [first.id, 'alone', authorId],
      [second.id, 'alone again', authorId],
    ]);
    const asStored = (iso: string) => iso.replace('T', ' ').replace('Z', '');
    expect(rows.map((row) => row.created_at)).toEqual([
      asStored(first.createdAt),
      asStored(second.createdAt),
    ]);
  });

  it('refuses a message posted alone with a used key, as a duplicate, without quoting it', async () => {
    const key = randomUUID();
    await repository.insert(message('the original', key));
    const refused = await repository.insert(message('a private retry', key)).catch((error: unknown) => error);
    expect(isDuplicateKey(refused)).toBe(true);
    expect(String((refused as Error).message)).not.toContain('a private retry');
    expect(await query('SELECT id FROM messages WHERE idempotency_key = ?', [key])).toHaveLength(1);
  });

  it('fails only the duplicate when one key comes twice in a batch', async () => {
    const key = randomUUID();
    const [first, second, other] = await Promise.allSettled([
      repository.insert(message('twice', key)),
      repository.insert(message('twice', key)),
      repository.insert(message('bystander')),
    ]);
    // The rows are retried side by side, so either copy may be the one that lands.
    const twins = [first, second];
    expect(twins.filter((outcome) => outcome.status === 'fulfilled')).toHaveLength(1);
    const refused = twins.find((outcome) => outcome.status === 'rejected') as PromiseRejectedResult;
    expect(isDuplicateKey(refused.reason)).toBe(true);
    expect(String(refused.reason.message)).not.toContain('bystander');
    expect(other.status).toBe('fulfilled');
    expect(await query('SELECT id FROM messages WHERE idempotency_key = ?', [key])).toHaveLength(1);
  });

  it('fails only the row the database refuses for any other reason, and quotes no other row', async () => {
    const [tooLong, bystander] = await Promise.allSettled([
      repository.insert(message('x'.repeat(4_001))),
      repository.insert(message('private words of a bystander')),
    ]);
    expect(tooLong.status).toBe('rejected');
    const reason = (tooLong as PromiseRejectedResult).reason as Error;
    expect((reason as Error & { code?: string }).code).toBe('ER_DATA_TOO_LONG');
    expect(reason.message).not.toContain('xxxxxxxx');
    expect(bystander.status).toBe('fulfilled');
  });

  it('fails only the row whose room is gone', async () => {
    const [orphan, bystander] = await Promise.allSettled([
      repository.insert(message('nowhere', randomUUID(), randomUUID())),
      repository.insert(message('still here')),
    ]);
    expect(orphan.status === 'rejected' && isMissingReference(orphan.reason)).toBe(true);
    expect(bystander.status).toBe('fulfilled');
  });
});
