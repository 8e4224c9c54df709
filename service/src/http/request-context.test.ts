import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from '../test-support/app.js';
import { startTestStack, type TestStack } from '../test-support/stack.js';

let testStack: TestStack;
let subject: TestApp;
let accessToken: string;

beforeAll(async () => {
  testStack = await startTestStack({ redisTopology: 'single' });
  subject = await buildTestApp(testStack.config, { logLevel: 'debug' });
  const credentials = { username: 'log-reader', password: 'a-long-enough-password' };
  const json = (body: unknown) => ({
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect((await subject.app.request('/v1/auth/register', json(credentials))).status).toBe(201);
  const login = await subject.app.request('/v1/auth/login', json(credentials));
  accessToken = ((await login.json()) as { accessToken: string }).accessToken;
});
afterAll(async () => {
  await subject?.close();
  await testStack?.stack.stop();
});

async function listRooms(requestId: string): Promise<Response> {
  return subject.app.request('/v1/rooms', {
    headers: { authorization: `Bearer ${accessToken}`, 'x-request-id': requestId },
  });
}

const linesWith = (msg: string) => subject.logLines.filter((line) => line.msg === msg);

describe('the request id in the logs', () => {
  it('is on the access-log line and echoed in X-Request-Id', async () => {
    const response = await listRooms('spec-access-log');
    expect(response.status).toBe(200);
    expect(response.headers.get('x-request-id')).toBe('spec-access-log');
    expect(linesWith('request').at(-1)).toMatchObject({ reqId: 'spec-access-log', route: '/v1/rooms' });
  });

  it('is on a line a platform adapter logs during the request: the replica fallback', async () => {
    await testStack.stack.mysql.replica!.stop();
    try {
      expect((await listRooms('spec-replica-fallback')).status).toBe(200);
    } finally {
      await testStack.stack.mysql.replica!.start();
    }
    const fallback = linesWith('replica unavailable; read served by the primary');
    expect(fallback.length).toBeGreaterThan(0);
    for (const line of fallback) expect(line.reqId).toBe('spec-replica-fallback');
  });

  it('is on the rate limiter and the token check lines while Redis is down', async () => {
    const redis = testStack.stack.redis.nodes[0]!;
    const fellBack = 'rate limit fell back to the per-process limiter';
    await redis.stop();
    try {
      // Points leased before the outage are spent first (up to one lease); then the limiter asks Redis.
      for (let i = 0; i < 70 && linesWith(fellBack).length === 0; i++) await listRooms('spec-redis-down');
    } finally {
      await redis.start();
    }
    const rateLimit = linesWith(fellBack);
    expect(rateLimit.length).toBeGreaterThan(0);
    for (const line of rateLimit) expect(line.reqId).toBe('spec-redis-down');
    const revocation = linesWith('revocation list unavailable; accepting a validly signed token');
    for (const line of revocation) expect(line.reqId).toBe('spec-redis-down');
  });

  it('is not on a line logged after the request has ended', async () => {
    await listRooms('spec-ended');
    subject.logger.warn('logged outside any request');
    expect(linesWith('logged outside any request').at(-1)).not.toHaveProperty('reqId');
  });
});
