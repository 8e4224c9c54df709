import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NotFound } from '../../domain/errors.js';
import { isDuplicateKey } from '../../platform/mysql.js';
import {
  adminConnection,
  adminQuery,
  beginMessageInsert,
  insertStatements as insertStatementsOn,
} from '../../test-support/admin-sql.js';
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
    const inserted = (await Promise.all(bodies.map((body) => repository.insert(message(body))))).map(
      ({ message }) => message,
    );
    expect((await insertStatements()) - before).toBe(1);
    const rows = await query<{ id: number; body: string }>('SELECT id, body FROM messages WHERE id IN (?)', [
      inserted.map((m) => Number(m.id)),
    ]);
    const bodyOf = new Map(rows.map((row) => [String(row.id), row.body]));
    expect(inserted.map((m) => bodyOf.get(m.id))).toEqual(bodies);
  });

  it('writes messages posted one at a time, each answered with its own row', async () => {
    const { message: first } = await repository.insert(message('alone'));
    const { message: second } = await repository.insert(message('alone again'));
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
    expect(orphan.status === 'rejected' && orphan.reason instanceof NotFound).toBe(true);
    expect(bystander.status).toBe('fulfilled');
  });
});

describe("a room's message seq", () => {
  async function newRoom(): Promise<string> {
    const id = randomUUID();
    await query("INSERT INTO rooms (id, name, visibility, owner_id) VALUES (?, 'seq', 'public', ?)", [
      id,
      authorId,
    ]);
    return id;
  }

  it('numbers each room’s messages 1, 2, 3, … across batches, and leaves no gap where an insert fails', async () => {
    const [a, b] = [await newRoom(), await newRoom()];
    const key = randomUUID();
    const first = await Promise.allSettled([
      repository.insert(message('a1', randomUUID(), a)),
      repository.insert(message('b1', randomUUID(), b)),
      repository.insert(message('a2', key, a)),
      repository.insert(message('a2 again', key, a)), // one of the two is refused: its seq is given back
    ]);
    // The batch fails on the duplicate, and its rows are retried side by side: either copy may land.
    expect(first.map((outcome) => outcome.status).sort()).toEqual([
      'fulfilled',
      'fulfilled',
      'fulfilled',
      'rejected',
    ]);
    expect(first[0]!.status).toBe('fulfilled');
    await repository.insert(message('a3', randomUUID(), a));
    await repository.insert(message('b2', randomUUID(), b));
    const seqs = async (room: string) =>
      (await query<{ seq: number }>('SELECT seq FROM messages WHERE room_id = ? ORDER BY id', [room])).map(
        (row) => row.seq,
      );
    expect(await seqs(a)).toEqual([1, 2, 3]);
    expect(await seqs(b)).toEqual([1, 2]);
    expect(await repository.lastSeq(a)).toBe(3);
    expect((await repository.fromSeq(a, 1, 10)).map(({ seq }) => seq)).toEqual([1, 2, 3]);
    expect((await repository.fromSeq(a, 3, 10)).map(({ message, seq }) => [message.body, seq])).toEqual([
      ['a3', 3],
    ]);
  });

  it('orders a room’s commits: a post waits while another insert holds the room, and commits after it with the higher id', async () => {
    // The race this prevents: ids are taken before commit, so without the room's lock a message
    // with a lower id (here, the held one) could become visible after one with a higher id, and a
    // reader that saw the higher id and resumed after it would never get the lower one.
    const room = await newRoom();
    const held = await adminConnection(testStack.stack);
    try {
      // An insert made as the repository makes it, its transaction left open.
      const heldInsert = await beginMessageInsert(held, {
        roomId: room,
        authorId,
        body: 'held',
        createdAt: new Date(),
      });

      let committed = false;
      const posted = repository.insert(message('posted meanwhile', randomUUID(), room)).then((result) => {
        committed = true;
        return result;
      });
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(committed).toBe(false); // it waits for the room
      expect(await repository.fromSeq(room, 1, 10)).toEqual([]); // and nothing is visible yet

      await held.query('COMMIT');
      const { message: later, seq } = await posted;
      expect(seq).toBe(2);
      expect(Number(later.id)).toBeGreaterThan(heldInsert.id);
      // A reader that saw the held message's id and resumes after its seq gets exactly the later one.
      const cursor = await repository.cursor(room, heldInsert.id);
      expect(cursor?.seq).toBe(1);
      expect((await repository.fromSeq(room, cursor!.seq + 1, 10)).map(({ message }) => message.id)).toEqual([
        later.id,
      ]);
    } finally {
      await held.end();
    }
  });
});
